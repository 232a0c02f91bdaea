"""Conditional orders through the Algo Service: placed, listed, canceled, triggered on the mark or the last
price as the market moves, filled as regular orders, and announced with ALGO_UPDATE — over REST and ccxt."""

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

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as signed:
        yield signed


@pytest.fixture
def seen(sim: SimServer) -> list[dict[str, Any]]:
    """Every user-stream event, in order."""
    events: list[dict[str, Any]] = []
    sim.account.listeners.append(events.append)
    return events


def price(sim: SimServer, ratio: str, symbol: str = "BTCUSDT") -> str:
    return str(sim.specs[symbol].round_price(sim.prices.prices[symbol] * Decimal(ratio)))


async def algo(client: SignedClient, **params: Any) -> Any:
    body = {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", **params}
    return await client.request("POST", "/fapi/v1/algoOrder", body)


async def buy(client: SignedClient, qty: str = "0.02", **params: Any) -> Any:
    return await client.request(
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": qty, **params},
    )


def algo_statuses(seen: list[dict[str, Any]]) -> list[str]:
    return [e["o"]["X"] for e in seen if e["e"] == "ALGO_UPDATE"]


async def test_a_stop_market_waits_then_closes_the_position_when_the_price_falls(
    sim: SimServer, client: SignedClient, seen: list[dict[str, Any]]
) -> None:
    await buy(client)
    stop = await algo(
        client, side="SELL", type="STOP_MARKET", quantity="0.02", triggerPrice=price(sim, "0.99"),
        reduceOnly="true", clientAlgoId="my-stop-1",
    )  # fmt: skip
    assert (stop["algoStatus"], stop["orderType"], stop["algoType"], stop["reduceOnly"]) == (
        "NEW", "STOP_MARKET", "CONDITIONAL", True,
    )  # fmt: skip
    assert (
        isinstance(stop["algoId"], int) and stop["clientAlgoId"] == "my-stop-1" and stop["quantity"] == "0.02"
    )
    assert (await client.request("GET", "/fapi/v1/algoOrder", {"clientAlgoId": "my-stop-1"}))[
        "algoId"
    ] == stop["algoId"]
    assert [a["algoId"] for a in await client.request("GET", "/fapi/v1/openAlgoOrders")] == [stop["algoId"]]
    assert await client.request("GET", "/fapi/v1/openOrders") == []  # not in the matching engine yet

    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -2})
    assert sim.account.positions["BTCUSDT"].qty == 0
    assert algo_statuses(seen) == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    finished = [e for e in seen if e["e"] == "ALGO_UPDATE"][-1]["o"]
    assert (finished["aid"], finished["caid"], finished["at"], finished["o"]) == (
        stop["algoId"], "my-stop-1", "CONDITIONAL", "STOP_MARKET",
    )  # fmt: skip
    assert (finished["aq"], finished["act"], finished["R"], finished["wt"]) == (
        "0.02",
        "MARKET",
        True,
        "CONTRACT_PRICE",
    )
    fill = [e["o"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"][-1]
    assert (fill["o"], fill["ot"], fill["sp"], fill["X"]) == (
        "MARKET",
        "STOP_MARKET",
        stop["triggerPrice"],
        "FILLED",
    )
    assert finished["ai"] == str(fill["i"]) and Decimal(finished["ap"]) == Decimal(fill["ap"])
    done = await client.request("GET", "/fapi/v1/algoOrder", {"algoId": stop["algoId"]})
    assert (done["algoStatus"], done["actualOrderId"]) == ("FINISHED", str(fill["i"]))
    assert done["triggerTime"] > 0
    assert await client.request("GET", "/fapi/v1/openAlgoOrders") == []


async def test_an_order_that_would_trigger_at_once_is_refused(sim: SimServer, client: SignedClient) -> None:
    body = await algo(
        client, side="SELL", type="STOP_MARKET", quantity="0.01", triggerPrice=price(sim, "1.01")
    )
    assert body == {"code": -2021, "msg": "Order would immediately trigger."}
    body = await algo(
        client, side="BUY", type="TAKE_PROFIT_MARKET", quantity="0.01", triggerPrice=price(sim, "1.01")
    )
    assert body["code"] == -2021


async def test_mark_price_and_contract_price_triggers_watch_different_prices(
    sim: SimServer, client: SignedClient
) -> None:
    await buy(client)
    trigger = price(sim, "0.99")
    on_last = await algo(client, side="SELL", type="STOP_MARKET", quantity="0.01", triggerPrice=trigger)
    sim.prices.move("BTCUSDT", -2)  # the mark moves; nothing trades there yet (no await: no market tick)
    sim.account.on_prices()
    [still] = await client.request("GET", "/fapi/v1/openAlgoOrders")
    assert (still["algoId"], still["algoStatus"]) == (on_last["algoId"], "NEW")
    on_mark = await algo(
        client,
        side="SELL",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=trigger,
        workingType="MARK_PRICE",
    )
    assert on_mark["code"] == -2021  # the mark is already past it
    sim.account.last_trade["BTCUSDT"] = sim.prices.prices["BTCUSDT"]  # a trade prints at the new price
    sim.account.on_prices()
    assert await client.request("GET", "/fapi/v1/openAlgoOrders") == []
    assert sim.account.positions["BTCUSDT"].qty == Decimal("0.01")


async def test_a_take_profit_places_a_limit_order_that_rests(
    sim: SimServer, client: SignedClient, seen: list[dict[str, Any]]
) -> None:
    await buy(client)
    limit = price(sim, "1.05")  # far above: rests once triggered
    tp = await algo(
        client, side="SELL", type="TAKE_PROFIT", quantity="0.02", triggerPrice=price(sim, "1.01"),
        price=limit, timeInForce="GTC", reduceOnly="true",
    )  # fmt: skip
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 2})
    assert algo_statuses(seen)[-1] == "TRIGGERED"
    [resting] = await client.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
    assert (resting["type"], resting["origType"], resting["reduceOnly"]) == ("LIMIT", "TAKE_PROFIT", True)
    assert Decimal(resting["price"]) == Decimal(limit)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 5})
    assert algo_statuses(seen)[-1] == "FINISHED"
    assert (await client.request("GET", "/fapi/v1/algoOrder", {"algoId": tp["algoId"]}))[
        "algoStatus"
    ] == "FINISHED"
    assert sim.account.positions["BTCUSDT"].qty == 0


async def test_close_position_closes_whatever_is_held_at_the_trigger(
    sim: SimServer, client: SignedClient
) -> None:
    await buy(client, "0.01")
    stop = await algo(
        client, side="SELL", type="STOP_MARKET", closePosition="true", triggerPrice=price(sim, "0.98")
    )
    assert (stop["closePosition"], stop["quantity"]) == (True, "0")
    await buy(client, "0.03")  # the position grew after the stop was placed
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -3})
    assert sim.account.positions["BTCUSDT"].qty == 0
    both = await algo(
        client,
        side="SELL",
        type="STOP_MARKET",
        closePosition="true",
        quantity="0.01",
        triggerPrice=price(sim, "0.9"),
    )
    assert both["code"] == -4137


async def test_a_trailing_stop_follows_the_high_and_fires_on_the_pullback(
    sim: SimServer, client: SignedClient
) -> None:
    await buy(client)
    trail = await algo(client, side="SELL", type="TRAILING_STOP_MARKET", quantity="0.02", callbackRate="1")
    assert (trail["orderType"], trail["callbackRate"]) == ("TRAILING_STOP_MARKET", "1")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 3})  # a new high
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -0.5})  # less than 1 % off the high
    assert sim.account.positions["BTCUSDT"].qty == Decimal("0.02")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -1})  # now more than 1 % off
    assert sim.account.positions["BTCUSDT"].qty == 0
    assert (await client.request("GET", "/fapi/v1/algoOrder", {"algoId": trail["algoId"]}))[
        "algoStatus"
    ] == "FINISHED"


async def test_a_stop_with_nothing_to_reduce_is_rejected_when_it_triggers(
    sim: SimServer, client: SignedClient, seen: list[dict[str, Any]]
) -> None:
    stop = await algo(
        client,
        side="SELL",
        type="STOP_MARKET",
        quantity="0.01",
        triggerPrice=price(sim, "0.99"),
        reduceOnly="true",
    )
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -2})
    assert algo_statuses(seen) == ["NEW", "TRIGGERING", "REJECTED"]
    rejected = [e["o"] for e in seen if e["e"] == "ALGO_UPDATE"][-1]
    assert rejected["rm"] == "ReduceOnly Order is rejected." and rejected["ai"] == ""
    assert (await client.request("GET", "/fapi/v1/algoOrder", {"algoId": stop["algoId"]}))[
        "algoStatus"
    ] == "REJECTED"


async def test_algo_orders_are_canceled_one_by_one_or_per_symbol(
    sim: SimServer, client: SignedClient, seen: list[dict[str, Any]]
) -> None:
    low, high = price(sim, "0.9"), price(sim, "1.1")
    first = await algo(client, side="SELL", type="STOP_MARKET", quantity="0.01", triggerPrice=low)
    await algo(client, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=high, clientAlgoId="up")
    await algo(
        client,
        symbol="ETHUSDT",
        side="BUY",
        type="STOP_MARKET",
        quantity="0.1",
        triggerPrice=price(sim, "1.1", "ETHUSDT"),
    )
    canceled = await client.request("DELETE", "/fapi/v1/algoOrder", {"algoId": first["algoId"]})
    assert canceled == {
        "algoId": first["algoId"],
        "clientAlgoId": first["clientAlgoId"],
        "code": "200",
        "msg": "success",
    }
    again = await client.request("DELETE", "/fapi/v1/algoOrder", {"algoId": first["algoId"]})
    assert again["code"] == -2011
    assert (await client.request("GET", "/fapi/v1/algoOrder", {"algoId": 1}))["code"] == -2013
    assert (await client.request("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"}))[
        "code"
    ] == -4067
    everything = await client.request("DELETE", "/fapi/v1/algoOpenOrders", {"symbol": "BTCUSDT"})
    assert everything == {"code": 200, "msg": "The operation of cancel all open order is done."}
    [eth] = await client.request("GET", "/fapi/v1/openAlgoOrders")
    assert eth["symbol"] == "ETHUSDT"
    history = await client.request("GET", "/fapi/v1/allAlgoOrders", {"symbol": "BTCUSDT"})
    assert [a["algoStatus"] for a in history] == ["CANCELED", "CANCELED"]
    assert algo_statuses(seen).count("CANCELED") == 2


async def test_hedge_mode_algo_orders_name_their_leg(client: SignedClient, sim: SimServer) -> None:
    await client.request("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
    await client.request(
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01", "positionSide": "SHORT"},
    )
    no_leg = await algo(
        client, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=price(sim, "1.01")
    )
    assert no_leg["code"] == -4061
    stop = await algo(
        client,
        side="BUY",
        type="STOP_MARKET",
        positionSide="SHORT",
        closePosition="true",
        triggerPrice=price(sim, "1.01"),
    )
    assert stop["positionSide"] == "SHORT"
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 2})
    assert sim.account.leg("BTCUSDT", "SHORT").qty == 0


async def test_ccxt_places_lists_fetches_and_cancels_stop_orders_on_the_algo_endpoints(
    sim: SimServer,
) -> None:
    client = ccxt.binanceusdm(
        {
            "apiKey": TEST_KEY,
            "secret": TEST_SECRET,
            "options": {"fetchCurrencies": False, "fetchMargins": False},
        }
    )
    client.urls["api"] = rewrite_api_urls(client.urls["api"], sim.base_url)
    try:
        await client.load_markets()
        await client.create_order(BTC, "market", "buy", 0.02)
        mark = float(sim.prices.prices["BTCUSDT"])
        stop = await client.create_order(
            BTC, "market", "sell", 0.01, params={"stopLossPrice": round(mark * 0.97, 1), "reduceOnly": True}
        )
        assert stop["status"] == "open" and stop["info"]["orderType"] == "STOP_MARKET"
        take = await client.create_order(
            BTC, "market", "sell", 0.01, params={"takeProfitPrice": round(mark * 1.03, 1), "reduceOnly": True}
        )
        opened = await client.fetch_open_orders(BTC, params={"trigger": True})
        assert {o["id"] for o in opened} == {stop["id"], take["id"]}
        fetched = await client.fetch_order(stop["id"], BTC, params={"trigger": True})
        assert fetched["id"] == stop["id"] and fetched["triggerPrice"] == round(mark * 0.97, 1)
        canceled = await client.cancel_order(take["id"], BTC, params={"trigger": True})
        assert canceled["id"] == take["id"]
        await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -4})
        assert sim.account.positions["BTCUSDT"].qty == Decimal("0.01")
        done = await client.fetch_order(stop["id"], BTC, params={"trigger": True})
        assert done["info"]["algoStatus"] == "FINISHED"
        assert await client.fetch_open_orders(BTC, params={"trigger": True}) == []
    finally:
        await client.close()
