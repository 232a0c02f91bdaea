"""The simulator's Bybit v5 dialect: an unmodified ccxt `bybit`, only its URLs pointed at the simulator,
trades against it; its websockets push the account's changes; the faults act in Bybit's terms. Real
sockets, no mocks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import orjson
import pytest
import websockets

from cockpit.exchange.ccxt_client import rewrite_api_urls
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def _server(**options: Any) -> SimServer:
    settings: dict[str, Any] = {"seed": 7, "activity": False, "tick_interval": 0.05, **options}
    return SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, exchange="bybit", **settings)


@pytest.fixture
async def bybit_sim() -> AsyncIterator[SimServer]:
    server = _server()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def hedge_sim() -> AsyncIterator[SimServer]:
    server = _server(dual_side=True)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_client(base_url: str, key: str = TEST_KEY, secret: str = TEST_SECRET) -> Any:
    """ccxt bybit exactly as shipped: its URLs rewritten and the options that keep it on linear contracts of
    a unified account (no coin list, no account probe)."""
    client = ccxt.bybit(
        {
            "apiKey": key,
            "secret": secret,
            "enableRateLimit": False,
            "has": {"fetchCurrencies": False},
            "options": {
                "fetchMarkets": {"types": ["linear"]},
                "enableUnifiedAccount": True,
                "enableUnifiedMargin": False,
                "fetchOrder": {"acknowledged": True},
            },
        }
    )
    client.urls["api"] = rewrite_api_urls(client.urls["api"], base_url)
    assert type(client) is ccxt.bybit
    return client


@pytest.fixture
async def bybit(bybit_sim: SimServer) -> AsyncIterator[Any]:
    client = make_client(bybit_sim.base_url)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


@pytest.fixture
async def hedged(hedge_sim: SimServer) -> AsyncIterator[Any]:
    client = make_client(hedge_sim.base_url)
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()


async def signed(
    sim: SimServer, method: str, path: str, params: dict[str, Any] | None = None, **header: str
) -> tuple[int, dict[str, str], Any]:
    """A signed request as Bybit's docs describe it (raw query or raw body signed): status, headers, body."""
    params = params or {}
    ts = str(int(time.time() * 1000))
    if method == "GET":
        payload = "&".join(f"{k}={v}" for k, v in params.items())
        url, body = f"{sim.base_url}{path}?{payload}", None
    else:
        payload = orjson.dumps(params).decode()
        url, body = f"{sim.base_url}{path}", payload
    sign = hmac.new(TEST_SECRET.encode(), f"{ts}{TEST_KEY}5000{payload}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "X-BAPI-API-KEY": TEST_KEY,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": "5000",
        "X-BAPI-SIGN": sign,
        "Content-Type": "application/json",
        **header,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body, headers=headers) as resp,
    ):
        text = await resp.text()
        try:
            parsed: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            parsed = text
        return resp.status, dict(resp.headers), parsed


# ----- REST through ccxt ------------------------------------------------------------------------------------
async def test_load_markets_reads_precision_and_limits_from_the_instruments(bybit: Any) -> None:
    markets = bybit.markets
    assert set(markets) == {BTC, ETH, "SOL/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT"}
    btc = markets[BTC]
    assert btc["swap"] and btc["linear"] and btc["settle"] == "USDT" and btc["active"]
    assert btc["precision"]["amount"] == 0.001 and btc["precision"]["price"] == 0.1
    assert btc["limits"]["cost"]["min"] == 100.0
    assert bybit.amount_to_precision(BTC, 0.0123456) == "0.012"
    assert bybit.price_to_precision("XRP/USDT:USDT", 0.612345) == "0.6123"


async def test_time_and_balance_are_the_accounts(bybit: Any, bybit_sim: SimServer) -> None:
    assert abs(await bybit.fetch_time() - bybit_sim.clock.now_ms()) < 5_000
    balance = await bybit.fetch_balance()
    assert balance["USDT"]["total"] == 10_000.0 and balance["USDT"]["free"] == 10_000.0
    ticker = await bybit.fetch_ticker(BTC)
    assert ticker["symbol"] == BTC and ticker["markPrice"] == float(bybit_sim.prices.prices["BTCUSDT"])


async def test_market_order_opens_a_position_and_reduce_only_closes_it(
    bybit: Any, bybit_sim: SimServer
) -> None:
    since = bybit_sim.clock.now_ms() - 1
    placed = await bybit.create_order(BTC, "market", "buy", 0.01)
    order = await bybit.fetch_order(placed["id"], BTC)
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["average"] > 0
    assert order["fee"]["currency"] == "USDT" and order["fee"]["cost"] > 0
    positions = await bybit.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"], p["hedged"]) for p in positions] == [
        (BTC, "long", 0.01, False)
    ]
    assert positions[0]["entryPrice"] == order["average"]

    await bybit.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    assert await bybit.fetch_positions() == []
    (row,) = await bybit.fetch_positions([BTC])  # asked by symbol: the flat row too
    assert row["contracts"] == 0
    trades = await bybit.fetch_my_trades(BTC, since=since)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert all(t["fee"]["currency"] == "USDT" and t["fee"]["cost"] > 0 for t in trades)
    balance = await bybit.fetch_balance()
    assert balance["USDT"]["total"] == float(bybit_sim.account.wallet) < 10_000.0


async def test_limit_orders_rest_list_and_cancel(bybit: Any, bybit_sim: SimServer) -> None:
    price = bybit.price_to_precision(ETH, float(bybit_sim.prices.prices["ETHUSDT"]) * 0.9)
    first = await bybit.create_order(ETH, "limit", "buy", 0.1, price, params={"clientOrderId": "cockpit-1"})
    second = await bybit.create_order(ETH, "limit", "buy", 0.1, price)
    open_orders = await bybit.fetch_open_orders(ETH)
    assert {o["id"] for o in open_orders} == {first["id"], second["id"]}
    by_id = {o["id"]: o for o in open_orders}
    assert by_id[first["id"]]["clientOrderId"] == "cockpit-1" and by_id[second["id"]]["clientOrderId"] is None
    assert by_id[first["id"]]["price"] == float(price) and by_id[first["id"]]["status"] == "open"
    assert {o["id"] for o in await bybit.fetch_open_orders()} == {first["id"], second["id"]}

    await bybit.cancel_order(first["id"], ETH)
    assert (await bybit.fetch_order(first["id"], ETH))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await bybit.cancel_order(first["id"], ETH)  # 110001
    with pytest.raises(ccxt.InvalidOrder):
        await bybit.create_order(ETH, "limit", "buy", 0.1, price, params={"clientOrderId": "cockpit-1"})
    await bybit.cancel_all_orders(ETH)
    assert await bybit.fetch_open_orders(ETH) == []
    assert bybit_sim.state()["orders"] == []


async def test_resting_limit_order_fills_when_the_price_crosses(bybit: Any, bybit_sim: SimServer) -> None:
    mark = float(bybit_sim.prices.prices["SOLUSDT"])
    order = await bybit.create_order("SOL/USDT:USDT", "limit", "sell", 1, round(mark * 1.01, 2))
    await bybit_sim.inject({"kind": "price_move", "symbol": "SOLUSDT", "pct": 2.0})
    filled = await bybit.fetch_order(order["id"], "SOL/USDT:USDT")
    assert filled["status"] == "closed" and filled["filled"] == 1.0
    assert filled["average"] == pytest.approx(round(mark * 1.01, 2))


async def test_conditional_order_is_listed_canceled_and_triggered(bybit: Any, bybit_sim: SimServer) -> None:
    mark = float(bybit_sim.prices.prices["BTCUSDT"])
    params = {"triggerPrice": bybit.price_to_precision(BTC, mark * 1.05), "triggerDirection": "above"}
    stop = await bybit.create_order(BTC, "market", "buy", 0.01, params=params)
    (listed,) = await bybit.fetch_open_orders(BTC, params={"trigger": True})
    assert listed["id"] == stop["id"] and listed["status"] == "open"
    assert listed["triggerPrice"] == float(params["triggerPrice"])
    assert listed["info"]["orderStatus"] == "Untriggered" and listed["info"]["triggerDirection"] == 1
    assert [o["id"] for o in await bybit.fetch_open_orders(BTC)] == [stop["id"]]  # no filter: every kind
    assert await bybit.fetch_open_orders(BTC, params={"orderFilter": "Order"}) == []
    await bybit.cancel_order(stop["id"], BTC, params={"trigger": True})
    canceled = await bybit.fetch_order(stop["id"], BTC)
    assert canceled["status"] == "canceled" and canceled["info"]["orderStatus"] == "Deactivated"

    with pytest.raises(ccxt.InvalidOrder):  # 110092: a rising trigger already below the price
        below = bybit.price_to_precision(BTC, mark * 0.95)
        await bybit.create_order(
            BTC, "market", "buy", 0.01, params={"triggerPrice": below, "triggerDirection": "above"}
        )

    trigger = bybit.price_to_precision(BTC, mark * 1.01)
    fired = await bybit.create_order(
        BTC, "market", "buy", 0.01, params={"triggerPrice": trigger, "triggerDirection": "above"}
    )
    await bybit_sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 3.0})
    done = await bybit.fetch_order(fired["id"], BTC)
    assert done["status"] == "closed" and done["filled"] == 0.01 and done["id"] == fired["id"]
    (trade,) = await bybit.fetch_my_trades(BTC)
    assert trade["order"] == fired["id"]


async def test_cancel_all_without_a_filter_cancels_every_kind(bybit: Any, bybit_sim: SimServer) -> None:
    mark = float(bybit_sim.prices.prices["BTCUSDT"])
    await bybit.create_order(BTC, "limit", "buy", 0.01, bybit.price_to_precision(BTC, mark * 0.9))
    await bybit.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        params={"triggerPrice": bybit.price_to_precision(BTC, mark * 0.9), "triggerDirection": "below"},
    )
    assert len(await bybit.fetch_open_orders(BTC)) == 2
    await bybit.cancel_all_orders(BTC, params={"trigger": True})  # StopOrder only
    assert [o["info"]["orderStatus"] for o in await bybit.fetch_open_orders(BTC)] == ["New"]
    await bybit.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        params={"triggerPrice": bybit.price_to_precision(BTC, mark * 0.9), "triggerDirection": "below"},
    )
    canceled = await bybit.cancel_all_orders()
    assert len(canceled) == 2
    assert await bybit.fetch_open_orders() == []


async def test_position_mode_switch_and_hedge_legs(bybit: Any, bybit_sim: SimServer) -> None:
    await bybit.set_position_mode(True)
    assert bybit_sim.account.dual_side
    with pytest.raises(ccxt.NoChange):  # 110025
        await bybit.set_position_mode(True)
    with pytest.raises(ccxt.BadRequest):  # positionIdx 0 in hedge mode
        await bybit.create_order(BTC, "market", "buy", 0.01)
    await bybit.create_order(BTC, "market", "buy", 0.01, params={"hedged": True})
    await bybit.create_order(BTC, "market", "sell", 0.02, params={"positionIdx": 2})
    positions = await bybit.fetch_positions()
    legs = sorted((p["side"], p["contracts"], p["hedged"], p["info"]["positionIdx"]) for p in positions)
    assert legs == [("long", 0.01, True, 1), ("short", 0.02, True, 2)]
    with pytest.raises(ccxt.BadRequest):  # 110024: a position is open
        await bybit.set_position_mode(False)
    # hedged + reduceOnly: ccxt sends a sell on the long leg, which closes it
    await bybit.create_order(BTC, "market", "sell", 0.01, params={"hedged": True, "reduceOnly": True})
    assert [p["side"] for p in await bybit.fetch_positions()] == ["short"]


async def test_hedge_mode_sim_lists_both_rows_of_a_symbol(hedged: Any) -> None:
    rows = await hedged.fetch_positions([BTC])
    assert sorted(r["info"]["positionIdx"] for r in rows) == [1, 2]
    assert all(r["contracts"] == 0 for r in rows)


async def test_leverage_set_and_read(bybit: Any, bybit_sim: SimServer) -> None:
    await bybit.set_leverage(10, BTC)
    assert bybit_sim.account.leverage["BTCUSDT"] == 10
    with pytest.raises(ccxt.BadRequest):  # 110043
        await bybit.set_leverage(10, BTC)
    leverage = await bybit.fetch_leverage(BTC)
    assert leverage["longLeverage"] == 10 and leverage["shortLeverage"] == 10


async def test_errors_map_to_ccxt_classes(bybit: Any, bybit_sim: SimServer) -> None:
    with pytest.raises(ccxt.InsufficientFunds):  # 110007
        await bybit.create_order(BTC, "market", "buy", 100)
    with pytest.raises(ccxt.InvalidOrder):  # 110017: nothing to reduce
        await bybit.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    with pytest.raises(ccxt.InvalidOrder):  # 110094: below the minimum notional
        await bybit.create_order(BTC, "market", "buy", 0.001)

    stranger = make_client(bybit_sim.base_url, key="not-the-key")
    try:
        stranger.markets, stranger.markets_by_id = bybit.markets, bybit.markets_by_id
        with pytest.raises(ccxt.AuthenticationError):  # 10003
            await stranger.fetch_balance()
    finally:
        await stranger.close()
    forger = make_client(bybit_sim.base_url, secret="not-the-secret")
    try:
        with pytest.raises(ccxt.AuthenticationError):  # 10004
            await forger.fetch_balance()
    finally:
        await forger.close()

    await bybit_sim.inject({"kind": "clock_skew", "ms": 60_000})
    with pytest.raises(ccxt.InvalidNonce):  # 10002
        await bybit.fetch_balance()
    bybit_sim.clear_faults()
    await bybit_sim.inject({"kind": "rate_limit", "count": 1})
    with pytest.raises(ccxt.RateLimitExceeded):  # 10006
        await bybit.fetch_balance()
    assert (await bybit.fetch_balance())["USDT"]["total"] == 10_000.0


# ----- the wire itself -----------------------------------------------------------------------------------
async def test_answers_carry_the_envelope_and_the_budget_headers(bybit_sim: SimServer) -> None:
    status, headers, body = await signed(
        bybit_sim, "GET", "/v5/account/wallet-balance", {"accountType": "UNIFIED"}
    )
    assert status == 200 and body["retCode"] == 0 and body["retMsg"] == "OK" and body["retExtInfo"] == {}
    assert isinstance(body["time"], int)
    coin = body["result"]["list"][0]["coin"][0]
    assert coin["walletBalance"] == "10000" and coin["availableToWithdraw"] == ""
    assert headers["X-Bapi-Limit"] == "50" and int(headers["X-Bapi-Limit-Status"]) == 49
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > 0

    bybit_sim.dialect.rest.budgets.per_second["/v5/position/list"] = 2  # type: ignore[union-attr]
    answers = [
        await signed(bybit_sim, "GET", "/v5/position/list", {"category": "linear", "symbol": "BTCUSDT"})
        for _ in range(3)
    ]
    assert [a[2]["retCode"] for a in answers] == [0, 0, 10006]
    assert answers[2][0] == 200 and answers[2][1]["X-Bapi-Limit-Status"] == "0"
    assert int(answers[2][1]["X-Bapi-Limit-Reset-Timestamp"]) > bybit_sim.clock.now_ms() - 1000

    status, _, body = await signed(bybit_sim, "GET", "/v5/no/such/route")
    assert status == 404 and body["retCode"] == 10017
    _, _, body = await signed(
        bybit_sim, "POST", "/v5/order/create", {"category": "linear"}, **{"X-BAPI-SIGN": "0" * 64}
    )
    assert body["retCode"] == 10004
    async with aiohttp.ClientSession() as session, session.get(f"{bybit_sim.base_url}/fapi/v1/time") as resp:
        assert resp.status == 404  # Binance's paths are not served by the Bybit dialect


async def test_order_rows_have_bybit_types(bybit_sim: SimServer) -> None:
    _, _, created = await signed(
        bybit_sim,
        "POST",
        "/v5/order/create",
        {
            "category": "linear",
            "symbol": "BTCUSDT",
            "side": "Buy",
            "orderType": "Limit",
            "qty": "0.01",
            "price": "50000",
        },
    )
    order_id = created["result"]["orderId"]
    assert created["retCode"] == 0 and isinstance(order_id, str) and created["result"]["orderLinkId"] == ""
    _, _, listed = await signed(
        bybit_sim, "GET", "/v5/order/realtime", {"category": "linear", "orderId": order_id}
    )
    (row,) = listed["result"]["list"]
    assert row["price"] == "50000.0" and row["qty"] == "0.010" and row["orderStatus"] == "New"
    assert row["positionIdx"] == 0 and row["reduceOnly"] is False and row["tpslMode"] == ""
    assert row["createdTime"].isdigit() and row["avgPrice"] == "" and row["cumFeeDetail"] == {}


async def test_funding_is_an_execution_row(bybit: Any, bybit_sim: SimServer) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    wallet = bybit_sim.account.wallet
    bybit_sim.settle_funding()
    paid = wallet - bybit_sim.account.wallet
    assert paid > 0  # a long pays a positive rate
    _, _, body = await signed(
        bybit_sim, "GET", "/v5/execution/list", {"category": "linear", "execType": "Funding"}
    )
    (row,) = body["result"]["list"]
    assert row["execType"] == "Funding" and row["symbol"] == "BTCUSDT" and Decimal(row["execFee"]) == paid
    assert row["feeRate"] == "0.0001" and row["execQty"] == "0.010" and row["side"] == "Buy"
    (history,) = await bybit.fetch_funding_history(BTC)
    assert history["amount"] == float(paid)
    assert [t["side"] for t in await bybit.fetch_my_trades(BTC)] == ["buy"]  # trades only


async def test_execution_list_pages_newest_first(bybit: Any, bybit_sim: SimServer) -> None:
    for _ in range(3):
        await bybit.create_order(BTC, "market", "buy", 0.01)
    params = {"category": "linear", "execType": "Trade", "limit": "2"}
    _, _, first = await signed(bybit_sim, "GET", "/v5/execution/list", params)
    cursor = first["result"]["nextPageCursor"]
    assert len(first["result"]["list"]) == 2 and cursor
    _, _, second = await signed(bybit_sim, "GET", "/v5/execution/list", {**params, "cursor": cursor})
    assert len(second["result"]["list"]) == 1 and second["result"]["nextPageCursor"] == ""
    ids = [int(r["execId"]) for r in first["result"]["list"] + second["result"]["list"]]
    assert ids == sorted(ids, reverse=True)
    week = 8 * 24 * 3600 * 1000
    _, _, refused = await signed(
        bybit_sim, "GET", "/v5/execution/list", {"category": "linear", "startTime": "1", "endTime": str(week)}
    )
    assert refused["retCode"] == 10001


# ----- faults -----------------------------------------------------------------------------------------------
async def test_faults_in_bybit_terms(bybit: Any, bybit_sim: SimServer) -> None:
    await bybit_sim.inject({"kind": "maintenance", "seconds": 30})
    with pytest.raises(ccxt.ExchangeNotAvailable):  # HTTP 503
        await bybit.fetch_balance()
    bybit_sim.clear_faults()
    await bybit_sim.inject({"kind": "ban", "seconds": 30})
    with pytest.raises(ccxt.RateLimitExceeded):  # HTTP 403 "access too frequent"
        await bybit.fetch_positions()
    bybit_sim.clear_faults()
    await bybit_sim.inject({"kind": "reject_orders", "code": 110007})
    with pytest.raises(ccxt.InsufficientFunds):
        await bybit.create_order(BTC, "market", "buy", 0.01)
    await bybit_sim.inject({"kind": "apply_then_fail"})
    with pytest.raises(ccxt.RequestTimeout):  # 10016 "Request timeout": placed, answer lost
        await bybit.create_order(BTC, "market", "buy", 0.01)
    assert [p["contracts"] for p in await bybit.fetch_positions()] == [0.01]
    await bybit_sim.inject({"kind": "hostile", "target": "positions", "field": "size", "value": "NaN"})
    _, _, body = await signed(
        bybit_sim, "GET", "/v5/position/list", {"category": "linear", "settleCoin": "USDT"}
    )
    assert body["result"]["list"][0]["size"] == "NaN"
    await bybit_sim.inject({"kind": "ghost_position", "symbol": "ETHUSDT", "side": "short", "qty": "0.5"})
    ghost = [p for p in await bybit.fetch_positions() if p["symbol"] == ETH]
    assert [(p["side"], p["contracts"]) for p in ghost] == [("short", 0.5)]


# ----- websockets -------------------------------------------------------------------------------------------
def ws_url(sim: SimServer, path: str) -> str:
    return sim.base_url.replace("http", "ws", 1) + path


async def recv(ws: Any, where: Any = None, within: float = 5.0) -> dict[str, Any]:
    """The next frame that satisfies `where` (every frame when None)."""
    async with asyncio.timeout(within):
        while True:
            frame = orjson.loads(await ws.recv())
            if where is None or where(frame):
                return frame  # type: ignore[no-any-return]


async def login(ws: Any, expires: int | None = None, secret: str = TEST_SECRET) -> dict[str, Any]:
    expires = expires if expires is not None else int(time.time() * 1000) + 10_000
    sign = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    await ws.send(orjson.dumps({"req_id": "a1", "op": "auth", "args": [TEST_KEY, expires, sign]}).decode())
    return await recv(ws, lambda f: f.get("op") == "auth")


async def test_public_tickers_snapshot_then_mark_delta_and_ping(bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/public/linear")) as ws:
        await ws.send(orjson.dumps({"req_id": "s1", "op": "subscribe", "args": ["tickers.BTCUSDT"]}).decode())
        ack = await recv(ws)
        assert ack["success"] is True and ack["op"] == "subscribe" and ack["req_id"] == "s1"
        snapshot = await recv(ws)
        assert snapshot["topic"] == "tickers.BTCUSDT" and snapshot["type"] == "snapshot"
        assert {"markPrice", "lastPrice", "fundingRate", "bid1Price", "ask1Price"} <= set(snapshot["data"])
        await bybit_sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 1.0})
        moved = bybit_sim.prices.prices["BTCUSDT"]
        delta = await recv(ws, lambda f: f.get("type") == "delta" and "markPrice" in f["data"])
        assert delta["data"]["symbol"] == "BTCUSDT" and "fundingRate" not in delta["data"]
        assert Decimal(delta["data"]["markPrice"]) != Decimal(snapshot["data"]["markPrice"])
        assert abs(Decimal(delta["data"]["markPrice"]) - moved) / moved < Decimal("0.01")

        await ws.send(orjson.dumps({"req_id": "p1", "op": "ping"}).decode())
        pong = await recv(ws, lambda f: f.get("op") == "ping")
        assert pong["success"] is True and pong["ret_msg"] == "pong" and pong["req_id"] == "p1"
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["tickers.NOTACOINUSDT"]}).decode())
        bad = await recv(ws, lambda f: f.get("op") == "subscribe")
        assert bad["success"] is False and "NOTACOINUSDT" in bad["ret_msg"]


async def test_public_orderbook_snapshot_deltas_and_resnapshot(bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/public/linear")) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["orderbook.1.ETHUSDT"]}).decode())
        await recv(ws, lambda f: f.get("op") == "subscribe")
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["data"]["s"] == "ETHUSDT"
        assert len(snapshot["data"]["b"]) == 1 and len(snapshot["data"]["a"]) == 1
        await bybit_sim.inject({"kind": "price_move", "symbol": "ETHUSDT", "pct": 1.0})
        delta = await recv(ws, lambda f: f["type"] == "delta")
        assert delta["data"]["b"] or delta["data"]["a"]
        await bybit_sim.stop_activity()
        bybit_sim.prices.step = lambda: None  # type: ignore[method-assign]  # the book stops moving
        again = await recv(ws, lambda f: f["type"] == "snapshot", within=6.0)
        assert again["data"]["s"] == "ETHUSDT"


async def test_private_auth_and_subscribe_rules(bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/private")) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["order"]}).decode())
        refused = await recv(ws)
        assert refused["success"] is False and refused["op"] == "subscribe"
        expired = await login(ws, expires=int(time.time() * 1000) - 1000)
        assert expired["success"] is False and expired["ret_msg"] == "Params Error"
        forged = await login(ws, secret="wrong")
        assert forged["success"] is False
        good = await login(ws)
        assert good["success"] is True and good["op"] == "auth"
        await ws.send(orjson.dumps({"req_id": "9", "op": "ping"}).decode())
        pong = await recv(ws)
        assert pong["op"] == "pong" and pong["req_id"] == "9" and pong["args"][0].isdigit()


async def test_private_pushes_follow_a_ccxt_order(bybit: Any, bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/private")) as ws:
        await login(ws)
        topics = ["order", "execution", "position", "wallet"]
        await ws.send(orjson.dumps({"op": "subscribe", "args": topics}).decode())
        assert (await recv(ws))["success"] is True
        placed = await bybit.create_order(BTC, "market", "buy", 0.01)
        seen: dict[str, dict[str, Any]] = {}

        def filled(frame: dict[str, Any]) -> bool:
            seen[frame["topic"]] = frame
            return {"order", "execution", "position", "wallet"} <= set(seen) and any(
                r["orderStatus"] == "Filled" for r in seen["order"]["data"]
            )

        await recv(ws, filled)
        order = seen["order"]["data"][0]
        assert order["orderId"] == placed["id"] and order["cumExecQty"] == "0.010"
        assert set(seen["order"]) == {"id", "topic", "creationTime", "data"}
        execution = seen["execution"]["data"][0]
        assert execution["execType"] == "Trade" and execution["orderId"] == placed["id"]
        position = seen["position"]["data"][0]
        assert position["size"] == "0.010" and position["side"] == "Buy" and position["positionIdx"] == 0
        assert "entryPrice" in position and "closedSize" not in position
        wallet = seen["wallet"]["data"][0]
        assert Decimal(wallet["coin"][0]["walletBalance"]) == bybit_sim.account.wallet

        bybit_sim.settle_funding()
        funding = await recv(
            ws, lambda f: f["topic"] == "execution" and f["data"][0]["execType"] == "Funding"
        )
        assert funding["data"][0]["symbol"] == "BTCUSDT"
        pushed = await recv(ws, lambda f: f["topic"] == "wallet")
        assert Decimal(pushed["data"][0]["coin"][0]["walletBalance"]) == bybit_sim.account.wallet


async def test_hedge_legs_are_pushed_with_their_position_idx(hedged: Any, hedge_sim: SimServer) -> None:
    async with websockets.connect(ws_url(hedge_sim, "/v5/private")) as ws:
        await login(ws)
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["position"]}).decode())
        await recv(ws)
        await hedged.create_order(BTC, "market", "buy", 0.01, params={"positionIdx": 1})
        long_leg = await recv(ws, lambda f: f["data"][0]["size"] != "0")
        assert long_leg["data"][0]["positionIdx"] == 1 and long_leg["data"][0]["side"] == "Buy"
        await hedged.create_order(BTC, "market", "sell", 0.01, params={"positionIdx": 2})
        short_leg = await recv(ws, lambda f: f["data"][0]["positionIdx"] == 2 and f["data"][0]["size"] != "0")
        assert short_leg["data"][0]["side"] == "Sell"


async def test_ws_drop_closes_sockets_and_idle_ones_are_cut(bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/public/linear")) as ws:
        await bybit_sim.inject({"kind": "ws_drop", "refuse_s": 0.0})
        with pytest.raises(websockets.ConnectionClosed):
            await recv(ws, within=5.0)
    bybit_sim.dialect.streams.idle_s = 0.3  # type: ignore[union-attr]
    async with websockets.connect(ws_url(bybit_sim, "/v5/private")) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await recv(ws, within=5.0)
    assert bybit_sim.dialect.streams.sockets == set()  # type: ignore[union-attr]


async def test_hostile_values_reach_the_bybit_streams(bybit_sim: SimServer) -> None:
    async with websockets.connect(ws_url(bybit_sim, "/v5/public/linear")) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}).decode())
        await recv(ws, lambda f: f.get("type") == "snapshot")
        fault = {"kind": "hostile", "target": "mark", "field": "data.markPrice", "value": "NaN"}
        await bybit_sim.inject(fault)
        bad = await recv(ws, lambda f: f.get("data", {}).get("markPrice") == "NaN")
        assert bad["topic"] == "tickers.BTCUSDT"
    async with websockets.connect(ws_url(bybit_sim, "/v5/private")) as ws:
        await login(ws)
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["position"]}).decode())
        await recv(ws)
        await bybit_sim.inject(
            {"kind": "hostile", "target": "account", "field": "data.0.size", "value": "1e400"}
        )
        pushed = await recv(ws)
        assert pushed["topic"] == "position" and pushed["data"][0]["size"] == "1e400"


async def test_demo_trader_trades_on_bybits_wire() -> None:
    server = _server(activity=True, trader_pause_s=(0.01, 0.05))
    await server.start()
    try:
        await wait_until(lambda: len(server.account.orders) >= 3, within=10, what="the demo trader's orders")
        assert server.dialect is not None and server.dialect.rest.requests_served >= 3
    finally:
        await server.stop()


def test_cli_offers_the_bybit_dialect() -> None:
    from cockpit.commands.cli import build_parser

    args = build_parser().parse_args(["sim", "--exchange", "bybit"])
    assert args.exchange == "bybit"
    assert build_parser().parse_args(["sim"]).exchange == "binance"
