"""How long to wait before each retry: the one retry policy behind every loop that tries again.

The gateway (per error class), the websocket reconnects, the engine's worker supervisor and the session
writer all take their delays from a `Backoff`. Pure arithmetic: the caller sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays before retry 1, 2, 3, …: `schedule[n-1]`, then its last entry (the cap) for ever, or, with
    `retries`, no retry past that many."""

    schedule: tuple[float, ...]
    retries: int | None = None  # None: retry for ever

    def __post_init__(self) -> None:
        if not self.schedule:
            raise ValueError(
                "a backoff schedule is empty; give at least one delay in seconds, e.g. (2, 4, 8)"
            )
        bad = [d for d in self.schedule if not d >= 0]
        if bad:
            raise ValueError(f"backoff delays are seconds >= 0, got {bad!r} in {self.schedule!r}")
        if self.retries is not None and self.retries < 0:
            raise ValueError(f"retries must be >= 0 (or None for ever), got {self.retries}")

    @classmethod
    def of(cls, delays: Sequence[float], retries: int | None = None) -> Backoff:
        return cls(tuple(float(d) for d in delays), retries)

    @classmethod
    def doubling(cls, first: float, cap: float, retries: int | None = None) -> Backoff:
        """`first`, twice that, … up to `cap` (1, 2, 4, 8, 16, 30 for 1 and 30)."""
        if not 0 < first <= cap:
            raise ValueError(f"a doubling backoff needs 0 < first <= cap, got {first} and {cap}")
        delays = [first]
        while delays[-1] < cap:
            delays.append(min(cap, delays[-1] * 2))
        return cls(tuple(delays), retries)

    def delay(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        return self.schedule[min(attempt, len(self.schedule)) - 1]

    def allows(self, attempt: int) -> bool:
        """May retry number `attempt` (1-based) be made?"""
        return self.retries is None or attempt <= self.retries

    @property
    def cap(self) -> float:
        return self.schedule[-1]

    def __iter__(self) -> Iterator[float]:
        """The delays for retries 1, 2, 3, … as far as they are allowed (endless without `retries`)."""
        attempt = 1
        while self.allows(attempt):
            yield self.delay(attempt)
            attempt += 1
