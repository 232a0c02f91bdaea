"""Bybit's stream frames read as cockpit's typed messages (cockpit/feeds/bybit/parse.py): frames taken from
the simulator's Bybit sockets over real connections, after orders placed through ccxt's bybit; and hostile
frames refused whole, naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import websockets

from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.feeds.bybit.parse import PrivateParser
from cockpit.feeds.messages import AccountUpdate, AlgoUpdate, BookTicker, MarkPrice, OrderUpdate
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.test_sim_bybit import login, recv, ws_url

BTC = "BTC/USDT:USDT"


async def _sim(**options: Any) -> SimServer:
    settings: dict[str, Any] = {"seed": 7, "activity": False, "tick_interval": 0.05, **options}
    sim = SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, exchange="bybit", **settings)
    await sim.start()
    return sim


@pytest.fixture
async def bybit_sim() -> AsyncIterator[SimServer]:
    sim = await _sim()
    try:
        yield sim
    finally:
        await sim.stop()


def test_one_bad_ticker_figure_is_refused_alone_and_the_private_frames_are_checked() -> None:
    """A refused figure in a ticker is left out, the good ones beside it kept: a NaN index price in the
    snapshot does not hold back the marks after it, nor a bad mark a good funding time in the same delta."""
    from cockpit.feeds.bybit.market import BybitStreams

    streams = BybitStreams()
    topic = "tickers.BTCUSDT"
    snapshot = {"symbol": "BTCUSDT", "markPrice": "64000.5", "indexPrice": "NaN", "nextFundingTime": "1000"}
    first = streams.message(topic, {"topic": topic, "type": "snapshot", "ts": 1, "data": snapshot})
    assert (
        isinstance(first, MarkPrice) and first.mark == 64000.5 and first.index is None
    )  # the mark still given
    assert len(streams.refusals) == 1 and "indexPrice" in streams.refusals[0]  # and the refusal said
    streams.refusals.clear()
    mark = streams.message(topic, {"topic": topic, "type": "delta", "ts": 2, "data": {"markPrice": "64001"}})
    assert isinstance(mark, MarkPrice) and mark.mark == 64001.0 and mark.next_funding_time == 1000
    bad = {"markPrice": "-1", "nextFundingTime": "2000"}
    with pytest.raises(ValueError, match="markPrice"):
        streams.message(topic, {"topic": topic, "type": "delta", "ts": 3, "data": bad})
    after = streams.message(topic, {"topic": topic, "type": "delta", "ts": 4, "data": {"markPrice": "64002"}})
    assert isinstance(after, MarkPrice) and after.next_funding_time == 2000  # kept from the refused frame

    private = PrivateParser()
    with pytest.raises(ValueError, match="execQty"):
        private.frame(
            {"topic": "execution", "creationTime": 1, "data": [{"execType": "Trade", "side": "Buy"}]}
        )
    with pytest.raises(ValueError, match="positionIdx"):
        private.frame({"topic": "position", "creationTime": 1, "data": [{"positionIdx": 7, "size": "1"}]})


def test_the_exchanges_own_executions_are_fills_with_their_leg_and_reduce_only() -> None:
    """Auto-deleveraging, liquidation and delivery move a position as a trade does: recorded as fills (or
    the position would be a ghost). A fill says its order's leg and reduce-only flag (Bybit's executions say
    neither); an execution of an order never seen on this socket takes its leg from its side and closedSize
    on a symbol known to be in hedge mode."""
    parser = PrivateParser()
    execution = {
        "symbol": "BTCUSDT", "side": "Sell", "execQty": "0.01", "orderQty": "0.01", "leavesQty": "0",
        "execPrice": "63000", "execTime": "5", "execId": "adl-1", "orderId": "o-adl", "closedSize": "0.01",
        "execFee": "0", "execPnl": "-1.5",
    }  # fmt: skip
    (adl,) = parser.frame(
        {"topic": "execution", "creationTime": 5, "data": [{**execution, "execType": "AdlTrade"}]}
    )
    assert (
        isinstance(adl, OrderUpdate) and adl.execution_type == "TRADE" and adl.realized_pnl == Decimal("-1.5")
    )
    assert adl.position_side == "BOTH"
    settle = {**execution, "execType": "Settle", "execId": "s-1"}
    assert parser.frame({"topic": "execution", "creationTime": 6, "data": [settle]}) == []

    order = {
        "orderId": "o-1", "orderLinkId": "tp-1", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Limit",
        "orderStatus": "New", "qty": "0.01", "price": "70000", "positionIdx": 1, "reduceOnly": True,
        "updatedTime": "7",
    }  # fmt: skip
    parser.frame({"topic": "order", "creationTime": 7, "data": [order]})
    fill = {**execution, "execType": "Trade", "execId": "t-1", "orderId": "o-1"}
    (update,) = parser.frame({"topic": "execution", "creationTime": 8, "data": [fill]})
    assert isinstance(update, OrderUpdate) and update.reduce_only and update.position_side == "LONG"

    leg = {"symbol": "ETHUSDT", "positionIdx": 2, "side": "Sell", "size": "0.5", "entryPrice": "3000"}
    parser.frame({"topic": "position", "creationTime": 9, "data": [leg]})
    unseen = {**execution, "symbol": "ETHUSDT", "execType": "Trade", "execId": "t-2", "orderId": "never-seen"}
    (opened,) = parser.frame(
        {"topic": "execution", "creationTime": 10, "data": [{**unseen, "closedSize": "0"}]}
    )
    assert isinstance(opened, OrderUpdate) and opened.position_side == "SHORT"  # a sell that closed nothing


async def test_an_orders_life_reads_as_the_user_streams_typed_events() -> None:
    sim = await _sim(dual_side=True)
    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=3000)
    parser = PrivateParser()
    events: list[Any] = []
    try:
        await client.load_markets()
        async with websockets.connect(ws_url(sim, "/v5/private")) as ws:
            await login(ws)
            await ws.send(
                orjson.dumps(
                    {"op": "subscribe", "args": ["order", "execution", "position", "wallet"]}
                ).decode()
            )
            await recv(ws, lambda f: f.get("op") == "subscribe")
            mark = float(sim.account.mark("BTCUSDT"))
            placed = await client.create_order(BTC, "market", "sell", 0.02, None, {"positionIdx": 2})
            trigger = client.price_to_precision(BTC, mark * 1.2)
            params = {"positionIdx": 2, "triggerPrice": trigger, "triggerDirection": "above"}
            stop = await client.create_order(BTC, "market", "buy", 0.02, None, params)
            await client.cancel_order(stop["id"], BTC)

            def parsed(frame: dict[str, Any]) -> bool:
                events.extend(parser.frame(frame))
                return any(isinstance(e, AlgoUpdate) and e.status == "CANCELED" for e in events) and any(
                    isinstance(e, AccountUpdate) and e.balances for e in events
                )

            await recv(ws, parsed)
    finally:
        await client.close()
        await sim.stop()
    fills = [e for e in events if isinstance(e, OrderUpdate) and e.execution_type == "TRADE"]
    (fill,) = fills
    trade = sim.account.trades[-1]
    assert (fill.order_id, fill.side, fill.status) == (placed["id"], "SELL", "FILLED")
    assert fill.last_fill_qty == Decimal("0.02") == trade.qty and fill.last_fill_price == trade.price
    assert fill.commission == trade.commission and str(fill.trade_id) == str(trade.trade_id)
    assert fill.position_side == "SHORT"  # from the order's own row: Bybit's executions do not say
    legs = [p for e in events if isinstance(e, AccountUpdate) for p in e.positions if p.amount]
    assert legs and legs[-1].position_side == "SHORT" and legs[-1].amount == Decimal("-0.02")
    algo = [e for e in events if isinstance(e, AlgoUpdate)]
    assert [a.status for a in algo] == ["NEW", "CANCELED"] and algo[0].algo_id == stop["id"]
    assert algo[0].trigger_price > 0 and algo[0].position_side == "SHORT" and algo[0].side == "BUY"
    wallets = [b.wallet_balance for e in events if isinstance(e, AccountUpdate) for b in e.balances]
    assert wallets[-1] == sim.account.wallet


# ----- the feeds on Bybit's sockets -------------------------------------------------------------------------
def _ws_base(sim: SimServer) -> str:
    return sim.base_url.replace("http", "ws", 1)


async def test_the_market_feed_on_bybit_gives_books_and_marks_and_follows_streams_at_runtime(
    bybit_sim: SimServer,
) -> None:
    from cockpit.feeds.bybit.market import BybitStreams
    from cockpit.feeds.market import MarketFeed
    from tests.waiting import wait_until

    bybit_sim.dialect.streams.idle_s = 1.5  # type: ignore[union-attr]  # a socket without app pings dies
    dialect = BybitStreams()
    dialect.ping_every_s = 0.3
    books: list[BookTicker] = []
    marks: list[MarkPrice] = []
    feed = MarketFeed(
        _ws_base(bybit_sim),
        [dialect.book_stream("btcusdt"), dialect.mark_stream("BTCUSDT")],
        on_book_ticker=books.append,
        on_mark_price=marks.append,
        streams_dialect=dialect,
        backoff=(0.1,),
    )
    assert feed.streams == ("orderbook.1.BTCUSDT", "tickers.BTCUSDT")
    async with feed:
        await wait_until(lambda: books and marks, 10, "a book and a mark")
        assert books[-1].symbol == "BTCUSDT" and books[-1].bid < books[-1].ask
        mark = Decimal(str(marks[-1].mark))
        assert abs(mark - bybit_sim.account.mark("BTCUSDT")) / mark < Decimal("0.01")
        assert await feed.subscribe([dialect.mark_stream("ETHUSDT")]) == ["tickers.ETHUSDT"]
        await wait_until(lambda: any(m.symbol == "ETHUSDT" for m in marks), 10, "ETH's mark")
        assert await feed.unsubscribe(["tickers.ETHUSDT"]) == ["tickers.ETHUSDT"]
        first = marks[0].event_time
        # past the socket's idle limit three times over: kept alive by the application pings alone
        await wait_until(lambda: marks[-1].event_time - first > 4500, 15, "4.5 s of marks")
        assert [c.connects for c in feed.connections] == [1]
        assert feed.parse_errors == 0 and feed.rest_polls == 0


async def test_a_bad_mark_on_bybit_is_refused_and_the_merged_ticker_keeps_the_good_one(
    bybit_sim: SimServer,
) -> None:
    from cockpit.feeds.bybit.market import BybitStreams
    from cockpit.feeds.market import MarketFeed
    from cockpit.feeds.messages import Rejected
    from tests.waiting import wait_until

    marks: list[MarkPrice] = []
    rejected: list[Rejected] = []
    feed = MarketFeed(
        _ws_base(bybit_sim),
        ["tickers.BTCUSDT"],
        on_mark_price=marks.append,
        on_rejected=rejected.append,
        streams_dialect=BybitStreams(),
    )
    async with feed:
        await wait_until(lambda: marks, 10, "a mark")
        await bybit_sim.inject(
            {
                "kind": "hostile",
                "target": "mark",
                "field": "data.markPrice",
                "value": "NaN",
                "symbol": "BTCUSDT",
            }
        )
        await wait_until(lambda: rejected, 10, "the NaN refused")
        seen = len(marks)
        await wait_until(lambda: len(marks) > seen + 2, 10, "marks after it")
    assert "markPrice" in rejected[0].reason and rejected[0].source == "market_feed"
    assert all(m.mark > 0 for m in marks)


async def test_the_private_feed_logs_in_subscribes_and_reads_the_accounts_pushes(
    bybit_sim: SimServer,
) -> None:
    from cockpit.feeds.bybit.user import BybitUserFeed
    from cockpit.feeds.messages import UserEvent
    from tests.waiting import wait_until

    seen: list[UserEvent] = []
    auth: list[tuple[bool, str]] = []
    feed = BybitUserFeed(
        _ws_base(bybit_sim),
        TEST_KEY,
        TEST_SECRET,
        on_user_event=seen.append,
        on_auth=lambda ok, why: auth.append((ok, why)),
        ping_every_s=0.3,
    )
    async with feed:
        await feed.wait_connected()
        client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=bybit_sim.base_url)
        try:
            await client.create_order(BTC, "market", "buy", 0.01)
        finally:
            await client.close()
        await wait_until(
            lambda: any(isinstance(e, OrderUpdate) and e.execution_type == "TRADE" for e in seen),
            10,
            "the fill",
        )
        await wait_until(
            lambda: any(isinstance(e, AccountUpdate) and e.positions for e in seen), 10, "position"
        )
    assert feed.logins == 1 and auth == [] and feed.parse_errors == 0
    fill = next(e for e in seen if isinstance(e, OrderUpdate) and e.execution_type == "TRADE")
    assert fill.last_fill_qty == Decimal("0.01") and fill.side == "BUY"


async def test_a_refused_login_is_said_once_and_retried_with_backoff(bybit_sim: SimServer) -> None:
    from cockpit.feeds.bybit.user import BybitUserFeed
    from cockpit.feeds.messages import FeedState, FeedStatus, Severity
    from tests.waiting import wait_until

    auth: list[tuple[bool, str]] = []
    statuses: list[FeedStatus] = []
    feed = BybitUserFeed(
        _ws_base(bybit_sim),
        TEST_KEY,
        "not-the-secret",
        on_auth=lambda ok, why: auth.append((ok, why)),
        on_status=statuses.append,
        backoff=(0.05, 0.1),
    )

    def critical() -> bool:  # the status of an attempt follows its refusal: wait for what is asserted
        return feed.refusals >= 4 and any(
            s.state == FeedState.RECONNECTING and s.severity == Severity.CRITICAL for s in statuses
        )

    async with feed:
        await wait_until(critical, 10, "a first login and 3 retries refused, said critical")
        assert not feed.connected
    assert auth == [(False, "private socket login refused: Params Error")]  # once, not per attempt
    retries = [s for s in statuses if s.state == FeedState.RECONNECTING]
    assert retries and retries[-1].severity == Severity.CRITICAL  # after 3 failed reconnect attempts
    assert feed.logins == 0


async def test_a_quiet_bybit_market_is_no_outage_and_a_stalled_stream_still_is(bybit_sim: SimServer) -> None:
    """Bybit pushes a ticker only when something in it changes: a market that does not move sends nothing.
    The feed asks the silent stream again (its snapshot) before calling it stale — so a quiet market never
    reads as an outage nor falls back to REST marks — while a stream that stops delivering is still stale."""
    from cockpit.feeds.bybit.market import BybitStreams
    from cockpit.feeds.market import MarketFeed
    from cockpit.feeds.messages import FeedState, FeedStatus
    from tests.waiting import wait_until

    statuses: list[FeedStatus] = []
    marks: list[MarkPrice] = []
    polls: list[list[str]] = []

    async def rest_marks(symbols: Any) -> dict[str, float]:
        polls.append(list(symbols))
        return {s: float(bybit_sim.account.mark(s)) for s in symbols}

    feed = MarketFeed(
        _ws_base(bybit_sim),
        ["orderbook.1.BTCUSDT", "tickers.BTCUSDT"],
        on_status=statuses.append,
        on_mark_price=marks.append,
        fetch_marks=rest_marks,
        streams_dialect=BybitStreams(),
        stale_after_s=1.0,
    )
    async with feed:
        await wait_until(lambda: marks, 10, "a mark")
        bybit_sim.prices.step = lambda: None  # type: ignore[method-assign]  # the market stops moving
        quiet_from = len(marks)
        # four stale limits of a market where nothing changes: asked again each time, answered each time
        await wait_until(lambda: len(marks) >= quiet_from + 3, 10, "the quiet stream's snapshots")
        assert not [s for s in statuses if s.state == FeedState.STALE], "a quiet market read as stale"
        assert polls == [] and [c.connects for c in feed.connections] == [1]

        await bybit_sim.inject({"kind": "ws_stall", "seconds": 30})  # now it delivers nothing at all
        await wait_until(
            lambda: any(s.state == FeedState.STALE and s.stream == "tickers.BTCUSDT" for s in statuses),
            10,
            "the stalled stream called stale",
        )
