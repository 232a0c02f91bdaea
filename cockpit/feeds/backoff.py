"""The reconnect schedule: 2 s, 4 s, 8 s, then 8 s for ever (CRITICAL after 3 consecutive failures)."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.core.retry import Backoff

DEFAULT_BACKOFF: tuple[float, ...] = (2.0, 4.0, 8.0)
CRITICAL_AFTER_FAILURES = 3  # consecutive failed reconnect attempts before a status turns CRITICAL
CRITICAL_AFTER_DOWN_S = 60.0  # …or this long without a working socket


def reconnect_backoff(schedule: Sequence[float] = DEFAULT_BACKOFF) -> Backoff:
    """Reconnects for ever, each after a pause: a zero delay would be a reconnect storm, so it is refused."""
    delays = tuple(float(d) for d in schedule)
    if not delays:
        raise ValueError("backoff schedule is empty; give at least one delay in seconds, e.g. (2, 4, 8)")
    bad = [d for d in delays if not d > 0]
    if bad:
        raise ValueError(f"backoff delays must be positive seconds, got {bad!r} in {delays!r}")
    return Backoff(delays)
