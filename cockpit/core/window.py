"""A sliding window: weights counted over the last `span_s` seconds (a rolling minute, five minutes…).

The one window behind every rate budget: the request weight of the rolling minute (the gateway's limiter and
the simulator's `X-MBX-USED-WEIGHT-1M`), the 429s of the last five minutes, and the websocket connection
attempts of the last five minutes. The caller passes the clock (`now`, monotonic seconds), so it does no I/O.
"""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Weights added at a time; an entry leaves once `span_s` seconds have passed since it was added."""

    def __init__(self, span_s: float) -> None:
        if not span_s > 0:
            raise ValueError(f"a sliding window needs a positive span in seconds, got {span_s!r}")
        self.span_s = span_s
        self._entries: deque[tuple[float, int]] = deque()
        self._total = 0

    def add(self, now: float, weight: int = 1) -> None:
        self._expire(now)
        self._entries.append((now, weight))
        self._total += weight

    def total(self, now: float) -> int:
        """The sum of the weights still inside the window."""
        self._expire(now)
        return self._total

    def fits(self, now: float, weight: int, limit: int) -> bool:
        """Would adding `weight` keep the window's total within `limit`?"""
        return self.total(now) + weight <= limit

    def wait(self, now: float) -> float:
        """Seconds until the oldest entry leaves (0.0 when the window is empty): when room may open up."""
        self._expire(now)
        if not self._entries:
            return 0.0
        return self.span_s - (now - self._entries[0][0])

    def _expire(self, now: float) -> None:
        while self._entries and now - self._entries[0][0] >= self.span_s:
            self._total -= self._entries.popleft()[1]
