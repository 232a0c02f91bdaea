"""Funding and the income history: positions pay or receive notional at the mark times the rate at each
funding time (every 8 h, or a short `funding_interval_s`), the wallet moves, GET /fapi/v1/income lists the
payments next to each trade's realized PnL and commission, and the user stream pushes ACCOUNT_UPDATE
(FUNDING_FEE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from cockpit.exchange.ccxt_client import rewrite_api_urls
from cockpit.sim.account import fmt
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

INCOME_FIELDS = {"symbol", "incomeType", "income", "asset", "info", "time", "tranId", "tradeId"}


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as signed:
        yield signed


async def market(client: SignedClient, side: str, qty: str, symbol: str = "BTCUSDT") -> Any:
    return await client.request(
        "POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}
    )


async def test_a_long_pays_and_a_short_receives_at_a_positive_rate(
    sim: SimServer, client: SignedClient
) -> None:
    await market(client, "BUY", "0.1")
    await market(client, "SELL", "1", symbol="ETHUSDT")
    seen: list[dict[str, Any]] = []
    sim.account.listeners.append(seen.append)
    wallet = sim.account.wallet
    btc_mark, eth_mark = sim.prices.prices["BTCUSDT"], sim.prices.prices["ETHUSDT"]
    sim.settle_funding()
    btc_fee = -(Decimal("0.1") * btc_mark * Decimal("0.0001"))
    eth_fee = Decimal(1) * eth_mark * Decimal("0.0001")
    assert sim.account.wallet == wallet + btc_fee + eth_fee
    funding = await client.request("GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE"})
    assert [(f["symbol"], Decimal(f["income"])) for f in funding] == [
        ("BTCUSDT", btc_fee),
        ("ETHUSDT", eth_fee),
    ]
    assert all(set(f) == INCOME_FIELDS and f["tradeId"] == "" and f["asset"] == "USDT" for f in funding)
    assert all(isinstance(f["tranId"], int) and isinstance(f["time"], int) for f in funding)
    updates = [e for e in seen if e["e"] == "ACCOUNT_UPDATE"]
    assert [u["a"]["m"] for u in updates] == ["FUNDING_FEE", "FUNDING_FEE"]
    assert all(u["a"]["P"] == [] for u in updates)  # cross positions: the balance only
    wallet_text = fmt(sim.account.wallet)
    assert updates[-1]["a"]["B"] == [{"a": "USDT", "wb": wallet_text, "cw": wallet_text, "bc": fmt(eth_fee)}]


async def test_a_negative_rate_makes_shorts_pay(sim: SimServer, client: SignedClient) -> None:
    await market(client, "SELL", "0.1")
    sim.set_funding_rate("BTCUSDT", Decimal("-0.0005"))
    premium = await client.request("GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"})
    assert premium["lastFundingRate"] == "-0.00050000"
    wallet = sim.account.wallet
    sim.settle_funding()
    assert sim.account.wallet < wallet


async def test_funding_is_paid_every_interval_and_premium_index_says_when() -> None:
    sim = SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, activity=False, funding_interval_s=0.4)
    await sim.start()
    try:
        async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as fast:
            first = await fast.request("GET", "/fapi/v1/premiumIndex", {"symbol": "ETHUSDT"})
            assert 0 < first["nextFundingTime"] - sim.clock.now_ms() <= 400
            assert first["lastFundingRate"] == "0.00010000"
            await market(fast, "BUY", "1", symbol="ETHUSDT")
            await wait_until(
                lambda: len(sim.account.income.of("FUNDING_FEE")) >= 2, within=5, what="two funding times"
            )
            later = await fast.request("GET", "/fapi/v1/premiumIndex", {"symbol": "ETHUSDT"})
            assert later["nextFundingTime"] > first["nextFundingTime"]
    finally:
        await sim.stop()


def test_binances_funding_times_are_8_hours_apart_on_the_utc_grid(sim: SimServer) -> None:
    assert sim.funding.next_time % (8 * 3600 * 1000) == 0
    assert 0 < sim.funding.next_time - sim.clock.now_ms() <= 8 * 3600 * 1000


async def test_income_lists_realized_pnl_and_commission_per_trade(
    sim: SimServer, client: SignedClient
) -> None:
    opened = await market(client, "BUY", "0.02")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 1})
    await market(client, "SELL", "0.02")
    income = await client.request("GET", "/fapi/v1/income", {"symbol": "BTCUSDT"})
    assert [i["incomeType"] for i in income] == ["COMMISSION", "REALIZED_PNL", "COMMISSION"]
    trades = await client.request("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert [i["tradeId"] for i in income] == [
        str(trades[0]["id"]),
        str(trades[1]["id"]),
        str(trades[1]["id"]),
    ]
    assert Decimal(income[0]["income"]) == -Decimal(trades[0]["commission"])
    assert Decimal(income[1]["income"]) == Decimal(trades[1]["realizedPnl"]) > 0
    assert opened["orderId"] == trades[0]["orderId"]
    total = sum((Decimal(i["income"]) for i in income), Decimal(0))
    assert sim.account.wallet == Decimal(10_000) + total
    only_pnl = await client.request("GET", "/fapi/v1/income", {"incomeType": "REALIZED_PNL"})
    assert len(only_pnl) == 1
    page_2 = await client.request("GET", "/fapi/v1/income", {"limit": 2, "page": 2})
    assert [i["tranId"] for i in page_2] == [income[2]["tranId"]]
    after = await client.request("GET", "/fapi/v1/income", {"startTime": sim.clock.now_ms() + 1000})
    assert after == []


async def test_funding_is_set_through_the_control_api(sim: SimServer, client: SignedClient) -> None:
    await market(client, "BUY", "0.1")
    async with aiohttp.ClientSession() as http:
        body = {"funding_interval_s": 3600, "funding_rate": {"BTCUSDT": "0.001"}}
        async with http.post(sim.base_url + "/_sim/settings", json=body) as resp:
            settings = await resp.json()
        assert settings["funding_interval_s"] == 3600 and settings["funding_rate"]["BTCUSDT"] == "0.00100000"
        async with http.post(sim.base_url + "/_sim/funding") as resp:
            assert (await resp.json())["ok"] is True
    [fee] = sim.account.income.of("FUNDING_FEE")
    assert fee.income == -(Decimal("0.1") * sim.prices.prices["BTCUSDT"] * Decimal("0.001")).quantize(
        Decimal("0.00000001")
    )


async def test_ccxt_reads_funding_rate_and_funding_history(sim: SimServer, client: SignedClient) -> None:
    await market(client, "BUY", "0.1")
    sim.settle_funding()
    exchange = ccxt.binanceusdm(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }
    )
    exchange.urls["api"] = rewrite_api_urls(exchange.urls["api"], sim.base_url)
    try:
        await exchange.load_markets()
        rate = await exchange.fetch_funding_rate("BTC/USDT:USDT")
        assert rate["fundingRate"] == 0.0001 and rate["fundingTimestamp"] == sim.funding.next_time
        [paid] = await exchange.fetch_funding_history("BTC/USDT:USDT")
        assert paid["amount"] < 0 and paid["code"] == "USDT"
    finally:
        await exchange.close()
