"""A second, independent Binance client drives the simulator: Binance's own Python connector
(`binance-futures-connector`, `binance.um_futures.UMFutures` with `base_url=` the simulator, and its
websocket client with `stream_url=`). Orders, queries, cancels, algo orders (through its raw signed request),
the market stream and the user data stream, with the field names and types Binance documents: decimals as
strings, ids and times as integers.

The connector is synchronous (requests, websocket-client threads): every call runs in a worker thread so
the simulator, on this test's event loop, can answer it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pytest

from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

um_futures = pytest.importorskip("binance.um_futures")
binance_error = pytest.importorskip("binance.error")
um_websocket = pytest.importorskip("binance.websocket.um_futures.websocket_client")


def is_decimal_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def assert_shape(row: dict[str, Any], decimals: tuple[str, ...], ints: tuple[str, ...] = ()) -> None:
    for name in decimals:
        assert is_decimal_string(row[name]), (name, row[name])
    for name in ints:
        assert type(row[name]) is int, (name, row[name])


ORDER_DECIMALS = ("price", "avgPrice", "origQty", "executedQty", "cumQuote", "stopPrice")


class Inbox:
    """Frames a websocket-client thread hands over, read from the test's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frames: list[Any] = []

    def on_message(self, _manager: Any, message: str) -> None:
        with self._lock:
            self.frames.append(orjson.loads(message))

    def matching(self, test: Callable[[Any], bool]) -> list[Any]:
        with self._lock:
            return [f for f in self.frames if test(f)]


@pytest.fixture
async def um(sim: SimServer) -> Any:
    return um_futures.UMFutures(key=TEST_KEY, secret=TEST_SECRET, base_url=sim.base_url)


@pytest.fixture
async def counted(sim: SimServer) -> Any:
    """The same client, returning the rate-limit headers with each answer."""
    return um_futures.UMFutures(
        key=TEST_KEY, secret=TEST_SECRET, base_url=sim.base_url, show_limit_usage=True
    )


async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(method, *args, **kwargs)


async def test_market_data_over_rest(sim: SimServer, um: Any) -> None:
    info = await call(um.exchange_info)
    assert {s["symbol"] for s in info["symbols"]} == set(sim.specs)
    ticker = await call(um.book_ticker, symbol="BTCUSDT")
    assert_shape(ticker, ("bidPrice", "bidQty", "askPrice", "askQty"), ("time", "lastUpdateId"))
    premium = await call(um.mark_price, symbol="BTCUSDT")
    assert_shape(premium, ("markPrice", "indexPrice", "lastFundingRate"), ("nextFundingTime", "time"))
    depth = await call(um.depth, symbol="ETHUSDT", limit=5)
    assert all(is_decimal_string(p) and is_decimal_string(q) for p, q in depth["bids"] + depth["asks"])
    assert type((await call(um.time))["serverTime"]) is int


async def test_orders_queries_and_cancels(sim: SimServer, um: Any, counted: Any) -> None:
    ack = await call(counted.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
    assert int(ack["limit_usage"]["x-mbx-order-count-10s"]) == 1
    assert int(ack["limit_usage"]["x-mbx-order-count-1m"]) == 1
    ack = ack["data"]
    assert (ack["status"], ack["executedQty"]) == ("NEW", "0")  # Binance's default answer: ACK
    assert_shape(ack, ORDER_DECIMALS + ("cumQty",), ("orderId", "updateTime"))
    assert "time" not in ack

    result = await call(
        um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01", newOrderRespType="RESULT"
    )
    assert (result["status"], result["executedQty"]) == ("FILLED", "0.01") and Decimal(result["avgPrice"]) > 0

    price = str(sim.specs["BTCUSDT"].round_price(sim.prices.prices["BTCUSDT"] * Decimal("0.9")))
    resting = await call(
        um.new_order, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01",
        price=price, newClientOrderId="second-client-1",
    )  # fmt: skip
    queried = await call(um.query_order, symbol="BTCUSDT", orderId=resting["orderId"])
    assert_shape(queried, ORDER_DECIMALS, ("orderId", "time", "updateTime"))
    assert queried["clientOrderId"] == "second-client-1" and queried["reduceOnly"] is False
    one_open = await call(um.get_open_orders, symbol="BTCUSDT", orderId=resting["orderId"])
    assert one_open["orderId"] == resting["orderId"]
    assert [o["orderId"] for o in await call(um.get_orders, symbol="BTCUSDT")] == [resting["orderId"]]
    everything = await call(um.get_all_orders, symbol="BTCUSDT")
    assert [o["status"] for o in everything] == ["FILLED", "FILLED", "NEW"]

    canceled = await call(um.cancel_order, symbol="BTCUSDT", orderId=resting["orderId"])
    assert canceled["status"] == "CANCELED"
    with pytest.raises(binance_error.ClientError) as gone:
        await call(um.get_open_orders, symbol="BTCUSDT", orderId=resting["orderId"])
    assert (gone.value.status_code, gone.value.error_code) == (400, -2013)

    for _ in range(2):
        await call(
            um.new_order, symbol="ETHUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1",
            price=str(sim.specs["ETHUSDT"].round_price(sim.prices.prices["ETHUSDT"] * Decimal("1.1"))),
        )  # fmt: skip
    all_canceled = await call(um.cancel_open_orders, symbol="ETHUSDT")
    assert all_canceled == {"code": 200, "msg": "The operation of cancel all open order is done."}
    assert await call(um.get_orders, symbol="ETHUSDT") == []

    with pytest.raises(binance_error.ClientError) as refused:
        await call(
            um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01", positionSide="LONG"
        )
    assert refused.value.error_code == -4061


async def test_account_positions_trades_and_income(sim: SimServer, um: Any) -> None:
    await call(um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    await call(um.new_order, symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01")
    sim.settle_funding()

    account = await call(um.account)  # the connector asks v3
    assert_shape(
        account, ("totalWalletBalance", "availableBalance", "totalUnrealizedProfit", "maxWithdrawAmount")
    )
    [held] = account["positions"]
    assert_shape(held, ("positionAmt", "unrealizedProfit", "notional", "initialMargin"), ("updateTime",))
    [balance] = await call(um.balance)
    assert_shape(balance, ("balance", "availableBalance", "crossWalletBalance"), ("updateTime",))
    [position] = await call(um.get_position_risk, symbol="BTCUSDT")
    assert position["positionAmt"] == "0.01" and position["positionSide"] == "BOTH"
    assert_shape(position, ("entryPrice", "markPrice", "unRealizedProfit", "liquidationPrice", "notional"))
    assert type(position["adl"]) is int

    trades = await call(um.get_account_trades, symbol="BTCUSDT")
    assert [t["side"] for t in trades] == ["BUY", "SELL"]
    for trade in trades:
        assert_shape(
            trade, ("price", "qty", "quoteQty", "commission", "realizedPnl"), ("id", "orderId", "time")
        )
        assert trade["marginAsset"] == trade["commissionAsset"] == "USDT"
    income = await call(um.get_income_history, symbol="BTCUSDT")
    assert {i["incomeType"] for i in income} == {"COMMISSION", "REALIZED_PNL", "FUNDING_FEE"}
    for entry in income:
        assert_shape(entry, ("income",), ("tranId", "time"))
        assert isinstance(entry["tradeId"], str)
    funding = await call(um.get_income_history, incomeType="FUNDING_FEE")
    assert len(funding) == 1 and Decimal(funding[0]["income"]) < 0


async def test_algo_orders_through_raw_signed_requests(sim: SimServer, um: Any) -> None:
    await call(um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
    trigger = str(sim.specs["BTCUSDT"].round_price(sim.prices.prices["BTCUSDT"] * Decimal("0.98")))
    stop = await call(
        um.sign_request, "POST", "/fapi/v1/algoOrder",
        {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
         "quantity": "0.02", "triggerPrice": trigger, "reduceOnly": "true"},
    )  # fmt: skip
    assert_shape(stop, ("quantity", "triggerPrice", "price"), ("algoId", "createTime", "updateTime"))
    [listed] = await call(um.sign_request, "GET", "/fapi/v1/openAlgoOrders", {"symbol": "BTCUSDT"})
    assert listed["algoId"] == stop["algoId"] and listed["algoStatus"] == "NEW"
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -3})
    done = await call(um.sign_request, "GET", "/fapi/v1/algoOrder", {"algoId": stop["algoId"]})
    assert done["algoStatus"] == "FINISHED" and done["actualOrderId"] != ""
    assert sim.account.positions["BTCUSDT"].qty == 0

    far_below = str(sim.specs["BTCUSDT"].round_price(sim.prices.prices["BTCUSDT"] * Decimal("0.9")))
    spare = await call(
        um.sign_request, "POST", "/fapi/v1/algoOrder",
        {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "BUY", "type": "TAKE_PROFIT_MARKET",
         "quantity": "0.01", "triggerPrice": far_below},
    )  # fmt: skip
    canceled = await call(um.sign_request, "DELETE", "/fapi/v1/algoOrder", {"algoId": spare["algoId"]})
    assert canceled["code"] == "200" and canceled["algoId"] == spare["algoId"]


async def test_market_and_user_streams_through_the_connectors_websocket_client(
    sim: SimServer, um: Any
) -> None:
    ws_base = sim.base_url.replace("http", "ws", 1)
    market, user = Inbox(), Inbox()
    market_ws = await asyncio.to_thread(
        um_websocket.UMFuturesWebsocketClient,
        stream_url=ws_base,
        on_message=market.on_message,
        is_combined=True,
    )
    user_ws = await asyncio.to_thread(
        um_websocket.UMFuturesWebsocketClient, stream_url=ws_base, on_message=user.on_message
    )
    try:
        await asyncio.to_thread(market_ws.book_ticker, symbol="btcusdt")
        await asyncio.to_thread(market_ws.mark_price, symbol="ethusdt", speed=1)
        listen_key = (await call(um.new_listen_key))["listenKey"]
        await asyncio.to_thread(user_ws.user_data, listen_key=listen_key)  # SUBSCRIBE with the listenKey
        await wait_until(
            lambda: user.matching(lambda f: "result" in f), what="the user stream's subscription"
        )

        await call(um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        await wait_until(
            lambda: len(user.matching(lambda f: f.get("e") == "ORDER_TRADE_UPDATE")) >= 2,
            what="the order updates",
        )
        await wait_until(
            lambda: market.matching(lambda f: f.get("stream") == "ethusdt@markPrice@1s"),
            within=5,
            what="a mark price",
        )
    finally:
        await asyncio.to_thread(market_ws.stop)
        await asyncio.to_thread(user_ws.stop)

    [tick] = market.matching(lambda f: f.get("stream") == "btcusdt@bookTicker")[:1]
    assert_shape(tick["data"], ("b", "B", "a", "A"), ("u", "E", "T"))
    [mark] = market.matching(lambda f: f.get("stream") == "ethusdt@markPrice@1s")[:1]
    assert_shape(mark["data"], ("p", "i", "P", "r"), ("E", "T"))
    new, fill = user.matching(lambda f: f.get("e") == "ORDER_TRADE_UPDATE")[:2]
    assert (new["o"]["x"], fill["o"]["x"], fill["o"]["X"]) == ("NEW", "TRADE", "FILLED")
    assert_shape(fill["o"], ("q", "p", "ap", "l", "z", "L", "n", "rp"), ("i", "t", "T"))
    assert type(fill["E"]) is int and fill["o"]["er"] == "0"
    [position] = user.matching(lambda f: f.get("e") == "ACCOUNT_UPDATE")[0]["a"]["P"]
    assert_shape(position, ("pa", "ep", "up", "iw")) and position["ps"] == "BOTH"
