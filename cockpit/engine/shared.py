"""The working state the engine's parts share: the market data not yet written, the kill switch guard's
episode, and the risk flags the order path and the risk worker set for each other. Plain data, no logic."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict


@dataclass
class RiskFlags:
    """Set by one part, read by another: never State (they are not facts from the exchange, not events)."""

    margin_block: Decimal | None = None  # free margin when an order met InsufficientFunds: no new orders
    fill_rate_low: bool = False  # the fill rate fell below its threshold (an alert is out)


@dataclass
class MarketBuffers:
    ticks: list[tuple[float, str, float, float, float, float]] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)  # unified symbol -> decimal string, not yet emitted
    marks_source: str = "ws"
    ticks_seen: int = 0
    held: set[str] = field(default_factory=set)  # unfollowed symbols whose mark stream follows a position


@dataclass
class GuardEpisode:
    """What other clients did during one engagement of the kill switch."""

    kill_since: float
    canceled: int = 0
    already_gone: int = 0  # filled (or canceled) before our cancel arrived
    cancel_failed: int = 0
    flagged: int = 0
    symbols: set[str] = field(default_factory=set)
    reported_at: float = field(default_factory=time.monotonic)  # the episode's first event, or last summary
    dirty: bool = False
    flush: asyncio.TimerHandle | None = None

    def counts(self) -> GuardCounts:
        return {
            "canceled": self.canceled,
            "already_filled": self.already_gone,
            "cancel_failed": self.cancel_failed,
            "flagged": self.flagged,
            "symbols": sorted(self.symbols),
        }


class GuardCounts(TypedDict):
    """What a `killswitch.guard` event counts (`events.killswitch_guard`'s count arguments)."""

    canceled: int
    already_filled: int
    cancel_failed: int
    flagged: int
    symbols: list[str]


@dataclass
class BadDataTally:
    """Bad exchange data refused at the boundary, per source (`engine/baddata.py` reports it)."""

    totals: dict[str, int] = field(default_factory=dict)  # since the engine started
    unsaid: dict[str, int] = field(default_factory=dict)  # refused since the source's last event
    last_reason: dict[str, str] = field(default_factory=dict)
    reported_at: dict[str, float] = field(default_factory=dict)  # monotonic time of each source's last event
    flush: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    quiet: asyncio.TimerHandle | None = None  # clears the "data" health item once nothing bad comes

    def cancel(self) -> None:
        for handle in (*self.flush.values(), self.quiet):
            if handle is not None:
                handle.cancel()
        self.flush.clear()
        self.quiet = None
