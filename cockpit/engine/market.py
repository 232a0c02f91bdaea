"""Market feed → ticks (batched into the store) and marks (a `market.marks` event a second while moving)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.domain import Severity
from cockpit.engine import baddata
from cockpit.engine.exchange_feeds import feeds_of
from cockpit.feeds import BookTicker, MarketFeed, MarkPrice
from cockpit.feeds.messages import FeedStatus

if TYPE_CHECKING:
    from cockpit.core.state import State
    from cockpit.engine.context import EngineContext, TickContext
    from cockpit.engine.symbols import SymbolMap

TICK_BATCH = 10_000
# a restored mark this recent judges the first mark after a restart (see `restored_marks`)
RESTORED_MARK_MAX_AGE_S = 24 * 3600.0


def build_market_feed(engine: EngineContext) -> MarketFeed:
    buffers = engine.market
    symbols = engine.symbols
    ids = symbols.exchange_ids
    # the followed markets, and the mark of every position held elsewhere (a restored session's, say)
    buffers.held = held_elsewhere(engine)
    held_ids = [symbols.exchange_id(s) for s in sorted(buffers.held)]
    dialect = feeds_of(engine.config.exchange.id).market_streams()
    streams = [dialect.book_stream(i) for i in ids] + [dialect.mark_stream(i) for i in (*ids, *held_ids)]

    def on_book(tick: BookTicker) -> None:
        buffers.ticks.append(
            (
                tick.event_time / 1000.0,
                symbols.unified(tick.symbol),
                tick.bid,
                tick.ask,
                tick.bid_qty,
                tick.ask_qty,
            )
        )
        buffers.ticks_seen += 1
        if len(buffers.ticks) >= TICK_BATCH:
            flush_ticks(engine)

    def on_mark(mark: MarkPrice) -> None:
        buffers.marks[symbols.unified(mark.symbol)] = repr(mark.mark)
        buffers.marks_source = mark.source

    async def fetch_marks(symbol_ids: Sequence[str]) -> Mapping[str, float]:
        unified = [symbols.unified(i) for i in symbol_ids]
        marks = await engine.gateway.fetch_mark_prices(unified)
        return {symbols.exchange_id(s): float(v) for s, v in marks.items()}

    return MarketFeed(
        engine.ws_base,
        streams,
        on_book_ticker=on_book,
        on_mark_price=on_mark,
        on_status=lambda status: on_feed_status(engine, status),
        on_rejected=lambda rejection: baddata.on_rejected(engine, rejection),
        fetch_marks=fetch_marks,
        last_marks=restored_marks(engine.state, symbols, time.time()),
        stale_after_s=engine.config.feeds.stale_after_s,
        backoff=engine.options.feed_backoff,
        connect_budget=engine.connect_budget,
        streams_dialect=dialect,
    )


def restored_marks(state: State, symbols: SymbolMap, now: float) -> dict[str, float]:
    """The restored session's marks (by exchange id) that are at most `RESTORED_MARK_MAX_AGE_S` old: the first
    mark after a restart is judged against them, as any later one against the last, so a first mark 100x off
    is held and refused instead of folded into equity and peak.

    A genuine move while cockpit was stopped costs one REST read: the first mark is held, the exchange's REST
    mark confirms it (within 2 %). An older mark says too little about today's market to hold its first mark
    against it."""
    return {
        symbols.exchange_id(symbol): float(mark)
        for symbol, mark in state.marks.items()
        if now - state.mark_ts.get(symbol, 0.0) <= RESTORED_MARK_MAX_AGE_S and mark > 0
    }


def held_elsewhere(engine: EngineContext) -> set[str]:
    """The (unified) symbols of positions on markets cockpit does not follow."""
    symbols = engine.symbols
    held = {p.symbol for p in engine.state.positions.values()}  # a hedge symbol's legs: one symbol
    return {s for s in held if not symbols.is_followed(s) and symbols.exchange_id(s) != s}


async def follow_held_positions(engine: EngineContext) -> None:
    """Every position the account holds is marked: a position on a market cockpit does not follow gets that
    market's mark stream (and so the REST mark fallback) while it is open, and loses it once closed."""
    feed = engine.feeds[0] if engine.feeds else None
    if not isinstance(feed, MarketFeed):
        return
    symbols = engine.symbols
    buffers = engine.market
    held = held_elsewhere(engine)
    opened, closed = held - buffers.held, buffers.held - held
    if opened:
        buffers.held |= opened
        await feed.subscribe([feed.dialect.mark_stream(symbols.exchange_id(s)) for s in sorted(opened)])
    if closed:
        buffers.held -= closed
        await feed.unsubscribe([feed.dialect.mark_stream(symbols.exchange_id(s)) for s in sorted(closed)])


def flush_ticks(engine: TickContext) -> None:
    buffers = engine.market
    if buffers.ticks and not engine.core.store_failed:
        rows, buffers.ticks = buffers.ticks, []
        engine.store.append_ticks(rows)


def emit_marks(engine: EngineContext) -> None:
    buffers = engine.market
    if buffers.marks:
        marks, buffers.marks = buffers.marks, {}
        engine.emit(
            "market.marks", events.market_marks(marks=marks, source=buffers.marks_source), source="feed"
        )


async def market_loop(engine: EngineContext) -> None:
    """Flush ticks often (and follow the marks of new positions as often); emit marks once per
    `marks_every_s`."""
    ticks_every = engine.options.ticks_flush_s
    marks_every = engine.options.marks_every_s
    loop = asyncio.get_running_loop()
    next_marks = loop.time() + marks_every
    while True:
        await asyncio.sleep(ticks_every)
        flush_ticks(engine)
        await follow_held_positions(engine)
        if loop.time() >= next_marks:
            next_marks = loop.time() + marks_every
            emit_marks(engine)


def on_feed_status(engine: EngineContext, status: FeedStatus) -> None:
    """A feed's status as an event: connected / reconnected / disconnected (with backoff) / stale."""
    if engine.stopping or status.reason == "stopped":
        return
    key = f"{status.feed}/{status.stream}" if status.stream else status.feed
    severity: Severity = "critical" if status.severity == "critical" else "warning"
    source = "user_stream" if status.feed == "user" else "feed"
    state = status.state.value
    down_for_s = round(status.down_for_s, 3) if status.down_for_s is not None else None
    if state == "connected":
        again = key in engine.feed_seen
        engine.feed_seen.add(key)
        if again:
            back = events.feed_reconnected(stream=key, feed=status.feed, down_for_s=down_for_s)
            engine.emit("feed.reconnected", back, "info", source)
        else:
            up = events.feed_connected(stream=key, feed=status.feed, down_for_s=down_for_s)
            engine.emit("feed.connected", up, "info", source)
    elif state == "reconnecting":
        disconnected = events.feed_disconnected(
            stream=key,
            feed=status.feed,
            attempt=status.attempt,
            failures=status.failures,
            retry_in_s=status.retry_in_s,
            reason=status.reason,
            close_code=status.close_code,
            down_for_s=down_for_s,
        )
        engine.emit("feed.disconnected", disconnected, severity, source)
    elif state == "stale":
        stale = events.feed_stale(
            stream=key, feed=status.feed, silent_s=round(status.age_s or 0.0, 3), reason=status.reason
        )
        engine.emit("feed.stale", stale, "warning", source)
    elif state == "disconnected" and status.feed.endswith(":rest"):
        engine.emit("alert", events.alert(message=status.reason, feed=status.feed), "warning", source)
    # a plain "disconnected" (socket lost) is followed at once by "reconnecting", which carries the reason
