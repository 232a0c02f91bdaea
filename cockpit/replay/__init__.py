"""Replay of a stored session: the same fold over the events of its DuckDB file."""
