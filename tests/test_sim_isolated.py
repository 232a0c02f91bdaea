"""Isolated margin: a symbol's margin type changes only when it has no position and no open order; an
isolated position holds its margin in its own wallet, which sets its liquidation price; margin can be added
or taken back; positionRisk, the account and the user stream say so."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from cockpit.exchange.ccxt_client import rewrite_api_urls
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as signed:
        yield signed


async def margin_type(client: SignedClient, kind: str, symbol: str = "BTCUSDT") -> Any:
    return await client.request("POST", "/fapi/v1/marginType", {"symbol": symbol, "marginType": kind})


async def market(client: SignedClient, side: str, qty: str, symbol: str = "BTCUSDT") -> Any:
    return await client.request(
        "POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}
    )


async def test_margin_type_changes_only_without_positions_or_open_orders(
    sim: SimServer, client: SignedClient
) -> None:
    assert await margin_type(client, "CROSSED") == {"code": -4046, "msg": "No need to change margin type."}
    assert await margin_type(client, "ISOLATED") == {"code": 200, "msg": "success"}
    assert (await margin_type(client, "ISOLATED"))["code"] == -4046
    assert (await margin_type(client, "HALF"))["code"] == -1102
    price = str(sim.specs["BTCUSDT"].round_price(sim.prices.prices["BTCUSDT"] * Decimal("0.9")))
    resting = await client.request(
        "POST",
        "/fapi/v1/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": price,
        },
    )
    assert (await margin_type(client, "CROSSED"))["code"] == -4047
    await client.request("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    await market(client, "BUY", "0.01")
    assert await margin_type(client, "CROSSED") == {
        "code": -4048,
        "msg": "Margin type cannot be changed if there exists position.",
    }
    [config] = await client.request("GET", "/fapi/v1/symbolConfig", {"symbol": "BTCUSDT"})
    assert config["marginType"] == "ISOLATED"


async def test_an_isolated_position_holds_its_margin_and_is_liquidated_sooner(
    sim: SimServer, client: SignedClient
) -> None:
    await margin_type(client, "ISOLATED")
    await market(client, "BUY", "0.1")
    await market(client, "BUY", "0.1", symbol="ETHUSDT")  # the same size of ETH on cross, for comparison
    entry = sim.account.positions["BTCUSDT"].entry
    held = Decimal("0.1") * entry / 20
    [v2] = await client.request("GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    assert (v2["marginType"], Decimal(v2["isolatedWallet"])) == ("isolated", held)
    assert Decimal(v2["isolatedMargin"]) == held + Decimal(v2["unRealizedProfit"])
    liquidation = Decimal(v2["liquidationPrice"])
    assert entry * Decimal("0.94") < liquidation < entry * Decimal("0.96")  # 20x: about 5 % below entry
    [eth] = await client.request("GET", "/fapi/v2/positionRisk", {"symbol": "ETHUSDT"})
    assert eth["marginType"] == "cross" and eth["isolatedWallet"] == "0" and eth["liquidationPrice"] == "0"
    v3 = {row["symbol"]: row for row in await client.request("GET", "/fapi/v3/positionRisk")}
    assert Decimal(v3["BTCUSDT"]["isolatedWallet"]) == held and v3["ETHUSDT"]["isolatedWallet"] == "0"
    account = await client.request("GET", "/fapi/v2/account")
    flags = {p["symbol"]: p["isolated"] for p in account["positions"]}
    assert flags["BTCUSDT"] is True and flags["ETHUSDT"] is False
    assert Decimal(account["totalCrossWalletBalance"]) == Decimal(account["totalWalletBalance"]) - held
    state = {p["symbol"]: p for p in sim.state()["positions"]}
    assert state["BTCUSDT"]["margin_type"] == "isolated"


async def test_adding_margin_moves_the_liquidation_price_away(sim: SimServer, client: SignedClient) -> None:
    await margin_type(client, "ISOLATED")
    await market(client, "SELL", "0.1")
    before = sim.account.liquidation_price("BTCUSDT")
    seen: list[dict[str, Any]] = []
    sim.account.listeners.append(seen.append)
    added = await client.request(
        "POST", "/fapi/v1/positionMargin", {"symbol": "BTCUSDT", "amount": "100", "type": 1}
    )
    assert added == {"amount": 100.0, "code": 200, "msg": "Successfully modify position margin.", "type": 1}
    assert sim.account.liquidation_price("BTCUSDT") > before  # a short: liquidated higher up now
    [update] = seen
    assert update["a"]["m"] == "MARGIN_TRANSFER"
    [leg] = update["a"]["P"]
    assert (leg["mt"], leg["ps"], Decimal(leg["iw"])) == (
        "isolated",
        "BOTH",
        sim.account.positions["BTCUSDT"].isolated_wallet,
    )
    too_much = await client.request(
        "POST", "/fapi/v1/positionMargin", {"symbol": "BTCUSDT", "amount": "1000", "type": 2}
    )
    assert too_much["code"] == -4051
    taken = await client.request(
        "POST", "/fapi/v1/positionMargin", {"symbol": "BTCUSDT", "amount": "50", "type": 2}
    )
    assert taken["type"] == 2
    cross = await client.request(
        "POST", "/fapi/v1/positionMargin", {"symbol": "ETHUSDT", "amount": "10", "type": 1}
    )
    assert cross["code"] == -4049


async def test_closing_an_isolated_position_returns_its_margin(sim: SimServer, client: SignedClient) -> None:
    await margin_type(client, "ISOLATED")
    await market(client, "BUY", "0.1")
    await market(client, "SELL", "0.05")
    half = sim.account.positions["BTCUSDT"]
    assert half.isolated_wallet == Decimal("0.05") * half.entry / 20
    await market(client, "SELL", "0.05")
    assert sim.account.positions["BTCUSDT"].isolated_wallet == 0
    assert sim.account.cross_wallet() == sim.account.wallet


async def test_funding_on_an_isolated_position_pushes_the_position_too(
    sim: SimServer, client: SignedClient
) -> None:
    await margin_type(client, "ISOLATED")
    await market(client, "BUY", "0.1")
    wallet_before = sim.account.positions["BTCUSDT"].isolated_wallet
    seen: list[dict[str, Any]] = []
    sim.account.listeners.append(seen.append)
    sim.settle_funding()
    [update] = seen
    assert update["a"]["m"] == "FUNDING_FEE"
    [leg] = update["a"]["P"]
    assert (leg["s"], leg["mt"]) == ("BTCUSDT", "isolated")
    assert Decimal(leg["iw"]) == sim.account.positions["BTCUSDT"].isolated_wallet < wallet_before


async def test_ccxt_sets_the_margin_mode_and_reads_it_back(sim: SimServer) -> None:
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
        await exchange.set_margin_mode("isolated", "BTC/USDT:USDT")
        await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
        [position] = await exchange.fetch_positions(["BTC/USDT:USDT"])
        assert position["marginMode"] == "isolated" and position["collateral"] > 0
    finally:
        await exchange.close()
