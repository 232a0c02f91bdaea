"""Times in reports: ISO 8601 UTC, millisecond precision (event ts are epoch seconds)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None, *, seconds: bool = False) -> str | None:
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, UTC)
    if seconds:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def clock(ts: float) -> str:
    """HH:MM:SS.mmm UTC, for timelines within one session."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]
