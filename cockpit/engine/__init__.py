"""The engine: workers that turn exchange facts and operator actions into events (no Textual here)."""
