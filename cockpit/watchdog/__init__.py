"""The watchdog: outside the engine's process, it tells the operator when the engine stops answering,
committing or hearing the market."""
