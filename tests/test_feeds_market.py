"""Market feeds against the simulator over real sockets: ticks, backoff, clean close, stall, REST marks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import pytest

from cockpit.feeds import (
    AggTrade,
    BookTicker,
    FeedState,
    FeedStatus,
    MarketFeed,
    MarkPrice,
    ParseError,
    Rejected,
    Severity,
    reconnect_backoff,
)
from cockpit.feeds.parse import combined_frame, market_event
from cockpit.sim.server import SimServer
from tests.waiting import wait_until

SCALED = (0.2, 0.4, 0.8)  # the real 2/4/8 schedule divided by 10, so the suite stays fast


class Recorder:
    """Everything a feed delivered, in arrival order, and a way to wait for a condition with a deadline."""

    def __init__(self) -> None:
        self.log: list[Any] = []

    def __call__(self, item: Any) -> None:
        self.log.append(item)

    def statuses(self, state: FeedState | None = None, feed: str | None = None) -> list[FeedStatus]:
        return [
            s
            for s in self.log
            if isinstance(s, FeedStatus)
            and (state is None or s.state == state)
            and (feed is None or s.feed == feed)
        ]

    def of(self, kind: type, **where: Any) -> list[Any]:
        return [
            m for m in self.log if isinstance(m, kind) and all(getattr(m, k) == v for k, v in where.items())
        ]

    async def wait_for(self, what: str, cond: Callable[[], object], within_s: float = 10.0) -> None:
        deadline = time.monotonic() + within_s
        while not cond():
            if time.monotonic() > deadline:
                tail = "\n  ".join(repr(x) for x in self.log[-15:] if isinstance(x, FeedStatus))
                raise AssertionError(
                    f"timed out after {within_s} s waiting for {what}; last statuses:\n  {tail}"
                )
            await asyncio.sleep(0.02)


def ws_base(sim: SimServer) -> str:
    return sim.base_url.replace("http://", "ws://")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


def premium_index_marks(sim: SimServer, http: aiohttp.ClientSession) -> Callable[[Sequence[str]], Any]:
    """The REST fallback the engine will build on the gateway, here a plain GET to the simulator."""

    async def fetch_marks(symbols: Sequence[str]) -> Mapping[str, float]:
        async with http.get(sim.base_url + "/fapi/v1/premiumIndex") as resp:
            resp.raise_for_status()
            rows = await resp.json()
        return {r["symbol"]: float(r["markPrice"]) for r in rows if r["symbol"] in symbols}

    return fetch_marks


def make_feed(sim: SimServer, rec: Recorder, streams: list[str], **kw: Any) -> MarketFeed:
    return MarketFeed(
        ws_base(sim), streams, on_book_ticker=rec, on_mark_price=rec, on_agg_trade=rec, on_status=rec, **kw
    )


# ----- unit ---------------------------------------------------------------------------------------------
def test_default_backoff_schedule_is_2_4_8_then_capped_at_8() -> None:
    delays = reconnect_backoff()
    it = iter(delays)
    assert [next(it) for _ in range(7)] == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert delays.delay(1) == 2.0 and delays.delay(100) == 8.0 and delays.cap == 8.0
    with pytest.raises(ValueError, match="positive"):
        reconnect_backoff((2.0, 0.0))  # a zero pause would be a reconnect storm
    with pytest.raises(ValueError, match="empty"):
        reconnect_backoff(())


def test_recorded_binance_market_payloads_parse_to_typed_ticks() -> None:
    # Shapes as Binance USD-M sends them (fstream), values from a recorded session.
    book = (
        b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"E":1568014460893,'
        b'"T":1568014460891,"s":"BTCUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000",'
        b'"A":"40.66000000"}}'
    )
    stream, data = combined_frame(book)
    assert stream == "btcusdt@bookTicker"
    assert market_event(data) == BookTicker(
        "BTCUSDT", 25.3519, 31.21, 25.3652, 40.66, 400900217, 1568014460893, 1568014460891
    )
    mark = {
        "e": "markPriceUpdate",
        "E": 1562305380000,
        "s": "BTCUSDT",
        "p": "11794.15000000",
        "i": "11784.62659091",
        "P": "11784.25641265",
        "r": "0.00038167",
        "T": 1562306400000,
    }
    assert market_event(mark) == MarkPrice(
        "BTCUSDT", 11794.15, 11784.62659091, 0.00038167, 1562306400000, 1562305380000, "ws"
    )
    agg = {
        "e": "aggTrade",
        "E": 123456789,
        "s": "BTCUSDT",
        "a": 5933014,
        "p": "0.001",
        "q": "100",
        "f": 100,
        "l": 105,
        "T": 123456785,
        "m": True,
    }
    assert market_event(agg) == AggTrade(
        "BTCUSDT", 5933014, 0.001, 100.0, 100, 105, 123456785, True, 123456789
    )
    # A raw (uncombined) frame and a SUBSCRIBE ack have no stream; an unknown event type is ignored.
    assert combined_frame(b'{"result":null,"id":1}') == (None, {"result": None, "id": 1})
    assert market_event({"e": "kline", "E": 1, "s": "BTCUSDT"}) is None
    with pytest.raises(ParseError, match="bookTicker"):
        market_event({"e": "bookTicker", "s": "BTCUSDT", "b": "1"})
    with pytest.raises(ValueError):
        combined_frame(b"{not json")


# ----- against the simulator -------------------------------------------------------------------------------
async def test_market_feed_delivers_book_ticker_and_mark_prices(sim: SimServer) -> None:
    rec = Recorder()
    feed = make_feed(
        sim, rec, ["BTCUSDT@bookTicker", "ethusdt@bookTicker", "btcusdt@markPrice@1s", "btcusdt@aggTrade"]
    )
    await feed.start()
    try:
        await asyncio.wait_for(feed.wait_connected(), 5)
        # Binance 2026 routing: bookTicker on /public, markPrice and aggTrade on /market: two sockets.
        assert {c.name for c in feed.connections} == {"market:public", "market:market"}
        await rec.wait_for(
            "book tickers for both symbols, a mark and a trade",
            lambda: (
                rec.of(BookTicker, symbol="BTCUSDT")
                and rec.of(BookTicker, symbol="ETHUSDT")
                and rec.of(MarkPrice, symbol="BTCUSDT")
                and rec.of(AggTrade, symbol="BTCUSDT")
            ),
        )
        tick = rec.of(BookTicker, symbol="BTCUSDT")[-1]
        assert 0 < tick.bid < tick.ask and tick.bid_qty > 0
        mark = rec.of(MarkPrice, symbol="BTCUSDT")[-1]
        assert mark.source == "ws" and mark.mark > 0 and mark.funding_rate is not None
        assert not rec.statuses(FeedState.STALE) and not rec.statuses(FeedState.RECONNECTING)
        assert all(s.severity == Severity.INFO for s in rec.statuses())
        ages = feed.stream_ages()
        assert set(ages) == {
            "btcusdt@bookTicker",
            "ethusdt@bookTicker",
            "btcusdt@markPrice@1s",
            "btcusdt@aggTrade",
        }
        assert all(a is not None and a < 5 for a in ages.values())
    finally:
        await feed.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("market")]
    assert [s.reason for s in rec.statuses(FeedState.DISCONNECTED)] == ["stopped", "stopped"]


async def test_ws_drop_reconnects_with_2_4_8_backoff(sim: SimServer) -> None:
    rec = Recorder()
    feed = make_feed(sim, rec, ["btcusdt@bookTicker"], routing="single", backoff=SCALED)
    await feed.start()
    try:
        await rec.wait_for("first ticks", lambda: rec.of(BookTicker))
        # Refused long enough that attempts 1, 2, 3 (after 0.2, 0.6, 1.4 s) fail and attempt 4 (2.2 s) works.
        await sim.inject({"kind": "ws_drop", "refuse_s": 1.8})
        dropped_at = len(rec.log)
        await rec.wait_for("a reconnect", lambda: feed.connections[0].connects == 2, within_s=8)
        reconnected_at = len(rec.log)
        await rec.wait_for(
            "ticks after the resubscribe",
            lambda: any(isinstance(m, BookTicker) for m in rec.log[reconnected_at:]),
        )
    finally:
        await feed.stop()

    after = rec.log[dropped_at:]
    disconnected = next(s for s in after if isinstance(s, FeedStatus) and s.state == FeedState.DISCONNECTED)
    assert disconnected.close_code == 1001 and "closed cleanly" in disconnected.reason
    tries = [s for s in after if isinstance(s, FeedStatus) and s.state == FeedState.RECONNECTING]
    assert [s.attempt for s in tries] == [1, 2, 3, 4]
    assert [s.retry_in_s for s in tries] == [0.2, 0.4, 0.8, 0.8]
    assert [s.failures for s in tries] == [0, 1, 2, 3]
    assert [s.severity for s in tries] == [Severity.WARNING] * 3 + [Severity.CRITICAL]
    assert all("HTTP 503" in s.reason for s in tries[1:])
    assert all(s.retry_at is not None and s.down_for_s is not None for s in tries)
    back = [s for s in after if isinstance(s, FeedStatus) and s.state == FeedState.CONNECTED][0]
    assert back.severity == Severity.INFO and back.failures == 3
    assert back.down_for_s is not None and back.down_for_s >= 0.2 + 0.4 + 0.8 + 0.8


async def test_clean_close_is_treated_as_disconnect(sim: SimServer) -> None:
    rec = Recorder()
    # Subscribed by SUBSCRIBE message this time, so the resubscribe after the reconnect is by message too.
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@bookTicker", "ethusdt@bookTicker"],
        routing="single",
        subscribe="message",
        backoff=SCALED,
    )
    await feed.start()
    try:
        await rec.wait_for("first ticks", lambda: rec.of(BookTicker))
        await sim.inject({"kind": "ws_drop", "refuse_s": 0})  # a clean 1001 close, nothing refused after
        mark = len(rec.log)
        await rec.wait_for(
            "reconnected and both symbols flowing again",
            lambda: (
                feed.connections[0].connects == 2
                and {m.symbol for m in rec.log[mark:] if isinstance(m, BookTicker)} == {"BTCUSDT", "ETHUSDT"}
            ),
        )
    finally:
        await feed.stop()
    states = [(s.state, s.close_code, s.attempt) for s in rec.log[mark:] if isinstance(s, FeedStatus)]
    assert states[:3] == [
        (FeedState.DISCONNECTED, 1001, 0),
        (FeedState.RECONNECTING, 1001, 1),
        (FeedState.CONNECTED, None, 0),
    ]


async def test_silent_open_socket_is_detected_as_stale(sim: SimServer) -> None:
    rec = Recorder()
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@bookTicker", "ethusdt@bookTicker"],
        routing="single",
        stale_after_s=0.5,
        backoff=SCALED,
    )  # silent socket forced to reconnect after 2 × 0.5 s
    await feed.start()
    try:
        await rec.wait_for("first ticks", lambda: rec.of(BookTicker, symbol="ETHUSDT"))
        await sim.inject({"kind": "ws_stall", "seconds": 2.5})  # open socket, pongs flow, no data
        mark = len(rec.log)
        await rec.wait_for(
            "both streams stale",
            lambda: (
                len([s for s in rec.log[mark:] if isinstance(s, FeedStatus) and s.state == FeedState.STALE])
                >= 2
            ),
        )
        await rec.wait_for(
            "a forced reconnect of the silent socket",
            lambda: any(
                isinstance(s, FeedStatus) and s.state == FeedState.DISCONNECTED and "silent" in s.reason
                for s in rec.log[mark:]
            ),
            within_s=3,
        )
        await rec.wait_for(
            "data after the stall", lambda: any(isinstance(m, BookTicker) for m in rec.log[mark:]), within_s=8
        )
    finally:
        await feed.stop()
    stale = [s for s in rec.log[mark:] if isinstance(s, FeedStatus) and s.state == FeedState.STALE]
    assert {s.stream for s in stale[:2]} == {"btcusdt@bookTicker", "ethusdt@bookTicker"}
    assert all(s.age_s is not None and s.age_s >= 0.5 and s.severity == Severity.WARNING for s in stale)
    # The stale report comes before the forced reconnect: the operator hears "stale" first.
    first_stale = rec.log.index(stale[0])
    first_silent = next(
        i for i, s in enumerate(rec.log) if isinstance(s, FeedStatus) and "silent" in s.reason
    )
    assert first_stale < first_silent


async def test_rest_fallback_supplies_marks_while_down(sim: SimServer, http: aiohttp.ClientSession) -> None:
    rec = Recorder()
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@markPrice@1s", "ethusdt@markPrice@1s"],
        backoff=(0.5,),
        fetch_marks=premium_index_marks(sim, http),
        rest_poll_s=0.2,
    )
    await feed.start()
    try:
        await rec.wait_for("websocket marks", lambda: rec.of(MarkPrice, symbol="ETHUSDT", source="ws"))
        assert not rec.of(MarkPrice, source="rest")  # no fallback while the socket is fine
        await sim.inject({"kind": "ws_drop", "refuse_s": 1.5})
        mark = len(rec.log)
        await rec.wait_for(
            "REST marks for both symbols",
            lambda: (
                {m.symbol for m in rec.log[mark:] if isinstance(m, MarkPrice) and m.source == "rest"}
                == {"BTCUSDT", "ETHUSDT"}
            ),
        )
        await rec.wait_for(
            "websocket marks again",
            lambda: any(isinstance(m, MarkPrice) and m.source == "ws" for m in rec.log[mark:]),
            within_s=8,
        )
        polls_when_back = feed.rest_polls
        back = len(rec.log)
        await rec.wait_for(
            "more websocket marks",
            lambda: len([m for m in rec.log[back:] if isinstance(m, MarkPrice) and m.source == "ws"]) >= 2,
        )
    finally:
        await feed.stop()
    assert (
        feed.rest_polls <= polls_when_back + 1
    )  # at most one poll already in flight when the socket returned
    rest = [m for m in rec.log[mark:] if isinstance(m, MarkPrice) and m.source == "rest"]
    assert all(m.mark > 0 and m.index is None for m in rest)
    btc_rest = [m.mark for m in rest if m.symbol == "BTCUSDT"][-1]
    btc_ws = rec.of(MarkPrice, symbol="BTCUSDT", source="ws")[-1].mark
    assert abs(btc_rest / btc_ws - 1) < 0.05  # the same mark series, seconds apart


def btc_marks(rec: Recorder, since: int = 0, source: str | None = None) -> list[float]:
    return [
        m.mark
        for m in rec.log[since:]
        if isinstance(m, MarkPrice) and m.symbol == "BTCUSDT" and (source is None or m.source == source)
    ]


async def test_a_held_stream_mark_asks_rest_once_and_a_real_move_is_believed(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """The market moves 60 %: the stream's first frame is held and REST (premiumIndex) is asked at once, once
    for the episode (not per frame); it agrees, so the move is believed within a REST round trip, and the
    stream's next frames near it are taken as usual. No bad data, no REST fallback."""
    rec = Recorder()
    rejected: list[Rejected] = []
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@markPrice@1s"],
        fetch_marks=premium_index_marks(sim, http),
        on_rejected=rejected.append,
    )
    await feed.start()
    try:
        await rec.wait_for("websocket marks", lambda: btc_marks(rec, source="ws"))
        before = btc_marks(rec)[-1]
        start = len(rec.log)
        await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
        await rec.wait_for("the moved mark", lambda: max(btc_marks(rec, start), default=0) > before * 1.5)
        assert feed.rest_confirms == 1
        await rec.wait_for(
            "two stream marks after the move",
            lambda: len([m for m in btc_marks(rec, start, "ws") if m > before * 1.5]) >= 2,
        )
    finally:
        await feed.stop()
    assert btc_marks(rec, start)[0] > before * 1.5  # nothing in between: the old mark, then the moved one
    assert feed.rest_confirms == 1 and feed.rest_polls == 0 and rejected == []


async def test_a_held_stream_mark_is_not_believed_while_rest_fails(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    """REST answers 503 while the stream jumps 60 %: nothing independent confirms the jump, so it is never
    believed (the symbol keeps its last good mark); the failed read is reported, the REST fallback asks again
    once the stream has had no believable mark for the stale limit, and the first REST answer confirms it."""
    rec = Recorder()
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@markPrice@1s"],
        fetch_marks=premium_index_marks(sim, http),
        stale_after_s=1.5,
        rest_poll_s=0.2,
    )
    await feed.start()
    try:
        await rec.wait_for("websocket marks", lambda: btc_marks(rec, source="ws"))
        before = btc_marks(rec)[-1]
        start = len(rec.log)
        await sim.inject({"kind": "http_error", "status": 503, "count": 100_000})
        await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
        await rec.wait_for(
            "the confirming read failed, then three fallback reads",
            lambda: len(rec.statuses(FeedState.DISCONNECTED, feed="market:rest")) >= 4,
        )
        failures = [s.reason for s in rec.statuses(FeedState.DISCONNECTED, feed="market:rest")]
        assert "REST mark to confirm a held BTCUSDT mark failed (the mark stays held)" in failures[0]
        assert "503" in failures[0]
        assert max(btc_marks(rec, start), default=0) < before * 1.5, btc_marks(rec, start)
        assert feed.rest_confirms == 0 and feed.marks_check.last["BTCUSDT"] == before
        sim.clear_faults()  # REST answers again: the first answer confirms the move
        await rec.wait_for("the moved mark", lambda: max(btc_marks(rec, start), default=0) > before * 1.5)
    finally:
        await feed.stop()
    assert btc_marks(rec, start, "rest")[0] > before * 1.5


async def test_feed_started_during_an_outage_counts_reconnects_from_1(
    sim: SimServer, http: aiohttp.ClientSession
) -> None:
    await sim.inject(
        {"kind": "ws_drop", "refuse_s": 0.4}
    )  # refuses the connect at 0 s and the retry at 0.2 s
    rec = Recorder()
    feed = make_feed(
        sim,
        rec,
        ["btcusdt@markPrice@1s"],
        backoff=SCALED,
        fetch_marks=premium_index_marks(sim, http),
        rest_poll_s=0.1,
    )
    await feed.start()
    try:
        await rec.wait_for("marks over the websocket", lambda: rec.of(MarkPrice, source="ws"))
    finally:
        await feed.stop()
    tries = rec.statuses(FeedState.RECONNECTING)
    assert rec.statuses()[0].state == FeedState.CONNECTING
    assert [(s.attempt, s.retry_in_s) for s in tries] == [(1, 0.2), (2, 0.4)]
    assert rec.of(MarkPrice, source="rest")  # marks from REST while the first connect was refused


async def test_reconnect_attempts_are_budgeted_too() -> None:
    from cockpit.feeds.budget import ConnectBudget

    budget = ConnectBudget(limit=3, window_s=0.5)
    waits = [await budget.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0] and budget.used == 3
    started = asyncio.get_running_loop().time()
    assert await budget.acquire() > 0.3  # the fourth attempt waits for the window to move
    assert asyncio.get_running_loop().time() - started >= 0.4


async def test_a_feed_takes_every_connection_attempt_from_the_shared_budget(sim: SimServer) -> None:
    from cockpit.feeds.budget import ConnectBudget

    budget = ConnectBudget(limit=50, window_s=60)
    statuses: list[FeedStatus] = []
    feed = MarketFeed(
        ws_base(sim),
        ["btcusdt@bookTicker", "btcusdt@markPrice@1s"],
        on_status=statuses.append,
        backoff=(0.1,),
        connect_budget=budget,
    )
    async with feed:
        await feed.wait_connected()
        assert budget.used == 2  # one socket per route
        await sim.inject({"kind": "ws_drop", "refuse_s": 0.3})
        await wait_until(
            lambda: budget.used >= 4 and feed.connected, within=10, what="reconnects from the budget"
        )


async def test_a_burst_of_queued_frames_lets_other_tasks_run_while_it_is_handled() -> None:
    """After a stall the socket hands over a burst; `recv()` does not suspend while frames are queued, so
    without a yield the reader would run through up to max_queue frames with the UI (keys, repaints) shut
    out. Here a server sends 3 000 frames at once and a ticker task counts frames between its turns."""
    from websockets.asyncio.server import ServerConnection, serve

    from cockpit.feeds.connection import YIELD_EVERY_FRAMES, StreamConnection

    total = 3000

    async def handler(ws: ServerConnection) -> None:
        for i in range(total):  # back to back: the client finds them queued
            await ws.send(b'{"n":%d}' % i)
        await ws.wait_closed()

    handled = 0
    most_between_turns = 0
    since_turn = 0

    def on_frame(raw: bytes) -> None:
        nonlocal handled, since_turn, most_between_turns
        handled += 1
        since_turn += 1
        most_between_turns = max(most_between_turns, since_turn)

    async def ticker() -> None:
        nonlocal since_turn
        while handled < total:
            since_turn = 0
            await asyncio.sleep(0)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]

        async def url() -> str:
            return f"ws://127.0.0.1:{port}"

        connection = StreamConnection("burst", url, on_frame, healthy_on_open=True)
        turns = asyncio.create_task(ticker())
        reader = asyncio.create_task(connection.run())
        try:
            await wait_until(lambda: handled == total, what="every frame handled")
            await turns
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    assert handled == total
    assert most_between_turns <= YIELD_EVERY_FRAMES + 1
