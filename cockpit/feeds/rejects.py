"""What the feeds refuse, and how they say so: a rate-limited log line, a `Rejected` message, a mark held.

A frame that cannot be parsed, or holds a figure cockpit refuses, is dropped whole and reported to the owner
(`on_rejected`) with its reason; the log hears the first one at once and then one line per `LOG_EVERY_S` with
the count, never a line per frame (a bad stream sends hundreds a second).

A mark that moved implausibly far from the last good one (`JUMP`, either way) is held rather than taken: a
second source must agree with it (the next frame, or a REST mark, within `AGREE`) before it is believed. A
real crash confirms itself within a second; a lone absurd frame never reaches the fold. A stream that sends
frames but no mark that is believed is marked by REST meanwhile (`MarketFeed`), and a REST mark judges a
held stream mark as the next frame would.
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


@dataclass(frozen=True)
class Refused:
    """A held mark proven wrong: why, and which source sent it ("ws": the stream, "rest": a REST mark)."""

    reason: str
    source: str


@dataclass
class MarkCheck:
    """Per symbol, the last good mark and one held for confirmation (with the source that sent it).

    A held mark is reported (refused) only once it is proven wrong — the next mark, from the stream or from
    REST, does not confirm it — so a real move, confirmed a second later, is never called bad data. `last` can
    be seeded (a restored session's marks), so that the first mark after a restart is judged too."""

    last: dict[str, float] = field(default_factory=dict)
    held: dict[str, tuple[float, str]] = field(default_factory=dict)

    def judge(self, symbol: str, mark: float, source: str = "ws") -> tuple[bool, Refused | None]:
        """(take this mark?, the held mark just refused, if one was)."""
        last = self.last.get(symbol)
        waiting = self.held.pop(symbol, None)
        if waiting is not None and _near(mark, waiting[0], AGREE):
            self.last[symbol] = mark  # two marks agree: the market really moved
            return True, None
        refused = None
        if waiting is not None and last is not None:
            held, held_from = waiting
            refused = Refused(_unconfirmed(symbol, held, last), held_from)
        if last is None or _near(mark, last, JUMP):
            self.last[symbol] = mark
            return True, refused
        self.held[symbol] = (mark, source)  # implausibly far: wait for a second source
        return False, refused


def _unconfirmed(symbol: str, held: float, last: float) -> str:
    ratio = held / last
    return f"mark {held:g} for {symbol} was {ratio:.3g}x the last good one ({last:g}); nothing confirmed it"


def _near(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * b
