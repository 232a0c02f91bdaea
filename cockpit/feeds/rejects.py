"""What the feeds refuse, and how they say so: a rate-limited log line, a `Rejected` message, a mark held.

A frame that cannot be parsed, or holds a figure cockpit refuses, is dropped whole and reported to the owner
(`on_rejected`) with its reason; the log hears the first one at once and then one line per `LOG_EVERY_S` with
the count, never a line per frame (a bad stream sends hundreds a second).

A mark that moved implausibly far from the last good one (`JUMP`, either way) is held rather than taken: a
second source must agree with it (the next frame, or a REST mark, within `AGREE`) before it is believed. A
real crash confirms itself within a second; a lone absurd frame never reaches the fold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cockpit.feeds.messages import Rejected

JUMP = 0.5  # a mark more than 50 % away from the last good one is held
AGREE = 0.02  # a second mark within 2 % of the held one confirms it
LOG_EVERY_S = 30.0

RejectSink = Callable[[Rejected], None]


@dataclass
class RejectLog:
    """The log side of rejections: the first at once, then a count at most every `every_s`."""

    logger: logging.Logger
    name: str
    every_s: float = LOG_EVERY_S
    total: int = 0
    _unsaid: int = 0
    _said_at: float | None = None

    def __call__(self, reason: str, raw: bytes | str = b"") -> None:
        self.total += 1
        now = time.monotonic()
        if self._said_at is not None and now - self._said_at < self.every_s:
            self._unsaid += 1
            return
        more = f" ({self._unsaid} more since the last line)" if self._unsaid else ""
        self.logger.warning("%s: rejected input (%s)%s: %r", self.name, reason, more, raw[:200])
        self._said_at, self._unsaid = now, 0


@dataclass
class MarkCheck:
    """Per symbol, the last good mark and one held for confirmation."""

    last: dict[str, float] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)

    def judge(self, symbol: str, mark: float) -> str | None:
        """None: take the mark. Otherwise the reason it is held (not taken yet)."""
        last = self.last.get(symbol)
        if last is None or _near(mark, last, JUMP):
            self._take(symbol, mark)
            return None
        held = self.held.get(symbol)
        if held is not None and _near(mark, held, AGREE):
            self._take(symbol, mark)  # two sources agree: the market really moved
            return None
        self.held[symbol] = mark
        ratio = mark / last
        return f"mark {mark:g} for {symbol} is {ratio:.3g}x the last good one ({last:g}): held to confirm"

    def _take(self, symbol: str, mark: float) -> None:
        self.last[symbol] = mark
        self.held.pop(symbol, None)


def _near(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * b
