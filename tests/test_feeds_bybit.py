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
from cockpit.feeds.bybit.parse import PrivateParser, TickerBook
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


async def test_tickers_give_the_mark_and_the_book_from_snapshot_and_deltas(bybit_sim: SimServer) -> None:
    book = TickerBook()
    marks: list[MarkPrice] = []
    tops: list[BookTicker] = []
    async with websockets.connect(ws_url(bybit_sim, "/v5/public/linear")) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}).decode())
        assert book.frame(await recv(ws)) == []  # the subscribe ack
        for _ in range(30):
            for message in book.frame(await recv(ws)):
                (marks if isinstance(message, MarkPrice) else tops).append(message)
            if len(marks) >= 3 and tops:
                break
    assert marks and tops and all(m.symbol == "BTCUSDT" for m in marks)
    first = marks[0]
    assert first.funding_rate is not None and first.next_funding_time is not None  # from the snapshot
    assert marks[-1].funding_rate == first.funding_rate  # a delta without it keeps the snapshot's
    last = Decimal(str(marks[-1].mark))
    assert abs(last - bybit_sim.account.mark("BTCUSDT")) / last < Decimal("0.01")
    assert tops[-1].bid < tops[-1].ask


def test_a_delta_before_its_snapshot_is_held_and_a_bad_mark_is_refused_naming_it() -> None:
    book = TickerBook()
    delta = {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "ts": 1,
        "data": {"symbol": "BTCUSDT", "markPrice": "1"},
    }
    assert book.frame(delta) == []
    snapshot = {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": 2, "data": {"symbol": "BTCUSDT"}}
    book.frame({**snapshot, "data": {"symbol": "BTCUSDT", "markPrice": "64000.5"}})
    bad = {**delta, "data": {"symbol": "BTCUSDT", "markPrice": "NaN"}}
    with pytest.raises(ValueError, match="markPrice"):
        book.frame(bad)
    private = PrivateParser()
    with pytest.raises(ValueError, match="execQty"):
        private.frame(
            {"topic": "execution", "creationTime": 1, "data": [{"execType": "Trade", "side": "Buy"}]}
        )
    with pytest.raises(ValueError, match="positionIdx"):
        private.frame({"topic": "position", "creationTime": 1, "data": [{"positionIdx": 7, "size": "1"}]})


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
