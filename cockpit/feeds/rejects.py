"""What the feeds refuse, and how they say so: a rate-limited log line, a `Rejected` message, a mark held.

A frame that cannot be parsed, or holds a figure cockpit refuses, is dropped whole and reported to the owner
(`on_rejected`) with its reason; the log hears the first one at once and then one line per `LOG_EVERY_S` with
the count, never a line per frame (a bad stream sends hundreds a second).

A mark that moved implausibly far from the last good one (`JUMP`, either way) is held rather than taken: an
independent source must agree with it (within `AGREE`) before it is believed — for a stream mark, the
exchange's REST mark, which `MarketFeed` asks for at once; for a REST mark, the stream. The stream's next
frame is no confirmation: a stuck publisher repeats its absurd mark. A real crash is confirmed within one REST
round trip; an absurd mark never reaches the fold. A stream REST proved wrong, or that sends frames but no
mark that is believed, has its symbol marked by REST meanwhile (`MarketFeed`).
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
    """Per symbol, the last good mark, one held for confirmation (with the source that sent it), and whether
    the stream is disputed (REST proved it wrong).

    Two sources: the stream ("ws") and REST ("rest", the exchange's premiumIndex). A held mark is confirmed
    only by the other source — a stream repeating itself (a stuck publisher sending the same 100x mark frame
    after frame) confirms nothing. A held mark is reported (refused) only once it is proven wrong: the other
    source disagrees, or its own source comes back near the last good mark — so a real move, confirmed by the
    other source, is never called bad data. A stream mark proven wrong by REST disputes the stream: its frames
    are refused at once (and reported) until one agrees, within `AGREE`, with the last good mark (REST's,
    meanwhile). `last` can be seeded (a restored session's marks), so that the first mark after a restart is
    judged too."""

    last: dict[str, float] = field(default_factory=dict)
    held: dict[str, tuple[float, str]] = field(default_factory=dict)
    disputed: set[str] = field(default_factory=set)

    def judge(self, symbol: str, mark: float, source: str = "ws") -> tuple[bool, Refused | None]:
        """(take this mark?, the mark just refused, if one was: the held one, or this disputed frame)."""
        last = self.last.get(symbol)
        if source == "ws" and symbol in self.disputed:
            return self._disputed(symbol, mark, last)
        waiting = self.held.get(symbol)
        refused = None
        if waiting is not None:
            held, held_from = waiting
            if held_from != source:  # the independent source: it settles the held mark
                del self.held[symbol]
                if _near(mark, held, AGREE):
                    self.last[symbol] = mark  # two sources agree: the market really moved
                    return True, None
                if last is not None:
                    refused = Refused(_unconfirmed(symbol, held, last), held_from)
                if held_from == "ws":
                    self.disputed.add(symbol)  # REST proved the stream wrong: it marks the symbol meanwhile
            elif last is None or not _near(mark, last, JUMP):
                self.held[symbol] = (mark, source)  # the same source, still far: only the other can confirm
                return False, None
            else:  # the same source came back near the last good mark: the held one was wrong
                del self.held[symbol]
                refused = Refused(_unconfirmed(symbol, held, last), held_from)
        if last is None or _near(mark, last, JUMP):
            self.last[symbol] = mark
            return True, refused
        self.held[symbol] = (mark, source)  # implausibly far: wait for the other source
        return False, refused

    def _disputed(self, symbol: str, mark: float, last: float | None) -> tuple[bool, Refused | None]:
        """A stream frame while REST has proven the stream wrong: taken only when it agrees with REST again
        (or confirms a mark REST holds); refused at once otherwise."""
        waiting = self.held.get(symbol)
        if waiting is not None and _near(mark, waiting[0], AGREE):  # confirms the mark REST holds
            del self.held[symbol]
            self.disputed.discard(symbol)
            self.last[symbol] = mark
            return True, None
        if last is None or _near(mark, last, AGREE):
            self.disputed.discard(symbol)
            self.last[symbol] = mark
            refused = None
            if waiting is not None:  # the stream, agreeing with REST's last mark again, refutes REST's jump
                del self.held[symbol]
                refused = Refused(_unconfirmed(symbol, waiting[0], mark), waiting[1])
            return True, refused
        reason = (
            f"mark {mark:g} for {symbol} was {mark / last:.3g}x the last good one ({last:g}); "
            "the exchange's REST mark disagrees with the stream"
        )
        return False, Refused(reason, "ws")

    def forget(self, symbol: str) -> None:
        """The symbol is no longer followed: nothing held or disputed for it (its last mark stays)."""
        self.held.pop(symbol, None)
        self.disputed.discard(symbol)


def _unconfirmed(symbol: str, held: float, last: float) -> str:
    ratio = held / last
    return f"mark {held:g} for {symbol} was {ratio:.3g}x the last good one ({last:g}); nothing confirmed it"


def _near(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * b
