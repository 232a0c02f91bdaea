"""The core: the trading vocabulary, events, State and its fold, incidents, errors, text formatting.

No I/O and nothing above it: every other part builds on these."""
