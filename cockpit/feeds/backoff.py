"""The reconnect schedule: 2 s, 4 s, 8 s, then 8 s for ever (CRITICAL after 3 consecutive failures)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

DEFAULT_BACKOFF: tuple[float, ...] = (2.0, 4.0, 8.0)
CRITICAL_AFTER_FAILURES = 3  # consecutive failed reconnect attempts before a status turns CRITICAL
CRITICAL_AFTER_DOWN_S = 60.0  # …or this long without a working socket


class Backoff:
    """Delay before reconnect attempt n (1-based): schedule[n-1], then the last entry (the cap)."""

    def __init__(self, schedule: Sequence[float] = DEFAULT_BACKOFF) -> None:
        delays = tuple(float(d) for d in schedule)
        if not delays:
            raise ValueError("backoff schedule is empty; give at least one delay in seconds, e.g. (2, 4, 8)")
        bad = [d for d in delays if not d > 0]
        if bad:
            raise ValueError(f"backoff delays must be positive seconds, got {bad!r} in {delays!r}")
        self.schedule = delays

    def delay(self, attempt: int) -> float:
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        return self.schedule[min(attempt, len(self.schedule)) - 1]

    def __iter__(self) -> Iterator[float]:
        """The delays for attempts 1, 2, 3, … (endless)."""
        attempt = 1
        while True:
            yield self.delay(attempt)
            attempt += 1

    @property
    def cap(self) -> float:
        return self.schedule[-1]
