"""An unmodified ccxt binanceusdm, pointed at the simulator, does every call cockpit relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support as ccxt
import pytest

from cockpit.exchange.ccxt_client import rewrite_api_urls
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


@pytest.fixture
async def plain_ccxt(sim: SimServer) -> AsyncIterator[Any]:
    """ccxt exactly as shipped: only the hosts rewritten and ccxt's own two options set."""
    client = ccxt.binanceusdm(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }
    )
    client.urls["api"] = rewrite_api_urls(client.urls["api"], sim.base_url)
    assert type(client) is ccxt.binanceusdm
    try:
        yield client
    finally:
        await client.close()


async def test_load_markets_lists_five_perpetuals_with_exchange_precision(plain_ccxt: Any) -> None:
    markets = await plain_ccxt.load_markets()
    for symbol in (BTC, ETH, "SOL/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT"):
        market = markets[symbol]
        assert market["swap"] and market["linear"] and market["settle"] == "USDT"
    assert markets[BTC]["precision"]["amount"] == 0.001
    assert markets[BTC]["precision"]["price"] == 0.1
    assert markets[BTC]["limits"]["cost"]["min"] == 100.0
    assert markets["XRP/USDT:USDT"]["precision"]["price"] == 0.0001
    assert plain_ccxt.amount_to_precision(BTC, 0.0123456) == "0.012"
    assert plain_ccxt.price_to_precision("XRP/USDT:USDT", 0.612345) == "0.6123"


async def test_fetch_time_balance_and_ticker(plain_ccxt: Any, sim: SimServer) -> None:
    server_time = await plain_ccxt.fetch_time()
    assert abs(server_time - sim.clock.now_ms()) < 5_000
    balance = await plain_ccxt.fetch_balance()
    assert balance["USDT"]["total"] == 10_000.0
    assert balance["USDT"]["free"] == 10_000.0
    ticker = await plain_ccxt.fetch_ticker(BTC)
    assert ticker["symbol"] == BTC and ticker["last"] > 0


async def test_market_order_opens_a_position_and_reduce_only_closes_it(
    plain_ccxt: Any, sim: SimServer
) -> None:
    await plain_ccxt.load_markets()
    order = await plain_ccxt.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["average"] > 0
    positions = await plain_ccxt.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(BTC, "long", 0.01)]
    assert positions[0]["entryPrice"] == order["average"]
    assert [(p["symbol"], p["qty"]) for p in sim.state()["positions"]] == [("BTCUSDT", "0.01")]

    closing = await plain_ccxt.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    assert closing["status"] == "closed" and closing["reduceOnly"] is True
    assert await plain_ccxt.fetch_positions() == []
    trades = await plain_ccxt.fetch_my_trades(BTC)
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert all(t["fee"]["currency"] == "USDT" and t["fee"]["cost"] > 0 for t in trades)
    balance = await plain_ccxt.fetch_balance()
    assert balance["USDT"]["total"] < 10_000.0  # fees were paid


async def test_limit_orders_rest_list_and_cancel(plain_ccxt: Any, sim: SimServer) -> None:
    await plain_ccxt.load_markets()
    price = float(sim.prices.prices["ETHUSDT"]) * 0.9
    first = await plain_ccxt.create_order(ETH, "limit", "buy", 0.1, plain_ccxt.price_to_precision(ETH, price))
    second = await plain_ccxt.create_order(
        ETH, "limit", "buy", 0.1, plain_ccxt.price_to_precision(ETH, price)
    )
    assert first["status"] == "open"
    open_orders = await plain_ccxt.fetch_open_orders(ETH)
    assert {o["id"] for o in open_orders} == {first["id"], second["id"]}
    canceled = await plain_ccxt.cancel_order(first["id"], ETH)
    assert canceled["status"] == "canceled"
    await plain_ccxt.cancel_all_orders(ETH)
    assert await plain_ccxt.fetch_open_orders(ETH) == []
    assert sim.state()["orders"] == []


async def test_order_is_found_by_client_order_id(plain_ccxt: Any) -> None:
    await plain_ccxt.load_markets()
    await plain_ccxt.create_order(BTC, "market", "buy", 0.002, params={"clientOrderId": "cockpit-abc-1"})
    found = await plain_ccxt.fetch_order(None, BTC, params={"origClientOrderId": "cockpit-abc-1"})
    assert found["clientOrderId"] == "cockpit-abc-1" and found["status"] == "closed"


async def test_resting_limit_order_fills_when_price_crosses(plain_ccxt: Any, sim: SimServer) -> None:
    await plain_ccxt.load_markets()
    mark = float(sim.prices.prices["SOLUSDT"])
    order = await plain_ccxt.create_order("SOL/USDT:USDT", "limit", "sell", 1, round(mark * 1.01, 2))
    assert order["status"] == "open"
    await sim.inject({"kind": "price_move", "symbol": "SOLUSDT", "pct": 2.0})
    filled = await plain_ccxt.fetch_order(order["id"], "SOL/USDT:USDT")
    assert filled["status"] == "closed" and filled["filled"] == 1.0
    assert filled["average"] == pytest.approx(round(mark * 1.01, 2))
