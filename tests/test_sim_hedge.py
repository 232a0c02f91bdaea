"""Hedge mode (dual-side positions): a LONG and a SHORT leg per symbol at once, each opened and closed on its
own side, reported with its positionSide on REST and on the user stream; Binance's refusals where the order's
side does not fit the mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import orjson
import pytest

from cockpit.exchange.ccxt_client import rewrite_api_urls
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def hedge() -> AsyncIterator[SimServer]:
    server = SimServer(
        api_key=TEST_KEY, api_secret=TEST_SECRET, seed=7, activity=False, tick_interval=0.05, dual_side=True
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(hedge: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(hedge.base_url, TEST_KEY, TEST_SECRET) as signed:
        yield signed


async def order(client: SignedClient, **params: Any) -> Any:
    return await client.request("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "type": "MARKET", **params})


async def test_long_and_short_legs_are_held_at_once(hedge: SimServer, client: SignedClient) -> None:
    long = await order(client, side="BUY", positionSide="LONG", quantity="0.01")
    short = await order(client, side="SELL", positionSide="SHORT", quantity="0.02")
    assert (long["positionSide"], short["positionSide"]) == ("LONG", "SHORT")
    assert hedge.account.leg("BTCUSDT", "LONG").qty == Decimal("0.01")
    assert hedge.account.leg("BTCUSDT", "SHORT").qty == Decimal("-0.02")
    v3 = await client.request("GET", "/fapi/v3/positionRisk")
    assert [(r["symbol"], r["positionSide"], r["positionAmt"]) for r in v3] == [
        ("BTCUSDT", "LONG", "0.01"),
        ("BTCUSDT", "SHORT", "-0.02"),
    ]
    v2 = await client.request("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert [(r["positionSide"], r["positionAmt"]) for r in v2] == [("LONG", "0.01"), ("SHORT", "-0.02")]
    assert all(Decimal(r["liquidationPrice"]) >= 0 for r in v2)
    account = await client.request("GET", "/fapi/v2/account")
    assert {p["positionSide"] for p in account["positions"]} == {"LONG", "SHORT"}  # no BOTH in hedge mode
    assert len(account["positions"]) == 2 * len(hedge.specs)
    assert [(p["side"], p["qty"]) for p in hedge.state()["positions"]] == [
        ("LONG", "0.01"),
        ("SHORT", "-0.02"),
    ]


async def test_closing_is_a_sell_on_the_long_leg_and_a_buy_on_the_short_leg(
    hedge: SimServer, client: SignedClient
) -> None:
    await order(client, side="BUY", positionSide="LONG", quantity="0.02")
    await order(client, side="SELL", positionSide="SHORT", quantity="0.01")
    await hedge.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 1})
    closed = await order(client, side="SELL", positionSide="LONG", quantity="0.05")  # more than held: capped
    assert (closed["status"], closed["executedQty"], closed["reduceOnly"]) == ("FILLED", "0.02", False)
    trades = await client.request("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert [t["positionSide"] for t in trades] == ["LONG", "SHORT", "LONG"]
    assert Decimal(trades[-1]["realizedPnl"]) > 0  # the long gained 1 %
    assert hedge.account.leg("BTCUSDT", "LONG").qty == 0
    assert hedge.account.leg("BTCUSDT", "SHORT").qty == Decimal("-0.01")  # the other leg is untouched
    nothing = await order(client, side="SELL", positionSide="LONG", quantity="0.01")
    assert nothing["code"] == -2022
    await order(client, side="BUY", positionSide="SHORT", quantity="0.01")
    assert hedge.account.open_legs() == []


@pytest.mark.parametrize(
    ("extra", "code", "msg"),
    [
        ({}, -4061, "Order's position side does not match user's setting."),
        ({"positionSide": "BOTH"}, -4061, "Order's position side does not match user's setting."),
        (
            {"positionSide": "LONG", "reduceOnly": "true"},
            -1106,
            "Parameter 'reduceonly' sent when not required.",
        ),
        (
            {"positionSide": "LONG", "reduceOnly": "false"},
            -1106,
            "Parameter 'reduceonly' sent when not required.",
        ),
    ],
)
async def test_hedge_mode_refuses_orders_that_do_not_name_a_leg(
    client: SignedClient, extra: dict[str, str], code: int, msg: str
) -> None:
    assert await order(client, side="BUY", quantity="0.01", **extra) == {"code": code, "msg": msg}


async def test_stream_events_name_the_leg(hedge: SimServer, client: SignedClient) -> None:
    key = (await client.request("POST", "/fapi/v1/listenKey", signed=False))["listenKey"]
    ws_base = hedge.base_url.replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/ws/{key}") as ws:
        await order(client, side="SELL", positionSide="SHORT", quantity="0.01")
        events: list[Any] = []
        async with asyncio.timeout(5):
            while len(events) < 3:
                events.append(orjson.loads((await ws.receive()).data))
    new, account, fill = events
    assert (new["o"]["ps"], fill["o"]["ps"], fill["o"]["X"]) == ("SHORT", "SHORT", "FILLED")
    [leg] = account["a"]["P"]
    assert (leg["ps"], leg["pa"], leg["mt"]) == ("SHORT", "-0.01", "cross")


async def test_hedge_mode_is_set_through_the_control_api_or_binance_endpoint(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.base_url + "/_sim/settings", json={"dual_side": True}) as resp:
            assert resp.status == 200 and (await resp.json())["dual_side"] is True
        async with http.get(sim.base_url + "/_sim/settings") as resp:
            assert (await resp.json())["dual_side"] is True
    assert sim.account.dual_side and sim.state()["dual_side"] is True
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as signed:
        assert await signed.request("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": True}
        await signed.request("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})
    assert not sim.account.dual_side


async def test_ccxt_trades_both_legs_in_hedge_mode(hedge: SimServer) -> None:
    client = ccxt.binanceusdm(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }
    )
    client.urls["api"] = rewrite_api_urls(client.urls["api"], hedge.base_url)
    try:
        await client.load_markets()
        mode = await client.fetch_position_mode(BTC)
        assert mode["hedged"] is True
        await client.create_order(BTC, "market", "buy", 0.01, params={"positionSide": "LONG"})
        await client.create_order(BTC, "market", "sell", 0.01, params={"positionSide": "SHORT"})
        positions = await client.fetch_positions([BTC])
        assert sorted((p["side"], p["contracts"], p["hedged"]) for p in positions) == [
            ("long", 0.01, True),
            ("short", 0.01, True),
        ]
        closing = await client.create_order(
            BTC, "market", "sell", 0.01, params={"hedged": True, "reduceOnly": True}
        )
        assert closing["status"] == "closed"  # ccxt's hedged close: SELL on the LONG leg, no reduceOnly sent
        assert hedge.account.leg("BTCUSDT", "LONG").qty == 0
    finally:
        await client.close()


async def test_the_demo_trader_trades_both_legs_in_hedge_mode() -> None:
    sim = SimServer(
        api_key=TEST_KEY, api_secret=TEST_SECRET, seed=3, activity=True, tick_interval=0.05,
        trader_pause_s=(0.01, 0.03), dual_side=True,
    )  # fmt: skip
    await sim.start()
    try:
        await wait_until(lambda: len(sim.account.trades) >= 8, within=15, what="the demo trader's fills")
    finally:
        await sim.stop()
    assert {t.position_side for t in sim.account.trades} <= {"LONG", "SHORT"}
    assert all(leg.side != "BOTH" for leg in sim.account.open_legs())
