"""Open orders: the engine sees every open order on the account (cockpit's and another client's), lists them,
and cancels one, every order of a symbol, or all of them, recorded before it is sent and verified at the
exchange afterwards. Against the simulator over real sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.core.commands import CancelOrders, NotConfirmed, Orders
from cockpit.engine.killswitch import ActionRefused
from cockpit.engine.status import render_orders
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET, EngineRun
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


async def rest_order(sim: SimServer, symbol: str, side: str, qty: str, price: Decimal, cid: str) -> Any:
    """Another client on the account (a strategy) leaves a limit order resting far from the market."""
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        body = await client.request(
            "POST",
            "/fapi/v1/order",
            {
                "symbol": symbol,
                "side": side,
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": qty,
                "price": str(price),
                "newClientOrderId": cid,
            },
        )
    assert "code" not in body, body
    return body


async def open_at_exchange(sim: SimServer) -> set[str]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        rows = await client.request("GET", "/fapi/v1/openOrders", {})
    return {row["clientOrderId"] for row in rows}


async def three_resting_orders(sim: SimServer, run: EngineRun) -> None:
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await rest_order(sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-btc-1")
    await rest_order(sim, "BTCUSDT", "BUY", "0.02", Decimal("31000"), "strat-btc-2")
    await rest_order(sim, "ETHUSDT", "BUY", "0.5", Decimal("1000"), "strat-eth-1")
    await wait_until(lambda: len(run.engine.state.orders) == 3, 10, "three open orders in State")


async def test_open_orders_are_listed_and_one_is_canceled_recorded_first_and_verified(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    report = await run.engine.control(Orders(by="test"))
    assert [o.client_order_id for o in report.orders] == ["strat-btc-1", "strat-btc-2", "strat-eth-1"]
    first = report.orders[0]
    assert (first.symbol, first.side, first.type, first.origin) == (BTC, "buy", "limit", "external")
    assert first.amount == "0.01" and first.price is not None and Decimal(first.price) == 30000
    assert first.order_id is not None and first.status == "open"
    text = render_orders(report)
    assert "3 open orders" in text and "strat-eth-1" in text and "@ 30000.0" in text

    result = await run.engine.control(CancelOrders(order="strat-btc-2", by="test"))
    assert result.verified and result.canceled == ("strat-btc-2",) and result.remaining == ()
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-eth-1"}
    action = await run.wait_for("operator.action", where=lambda e: e.payload["action"] == "cancel")
    assert action.payload["order"] == "strat-btc-2" and action.payload["symbols"] == [BTC]
    canceled = await run.wait_for("order.canceled")
    assert canceled.payload["client_order_id"] == "strat-btc-2"
    assert action.seq < canceled.seq  # recorded before it was sent
    await wait_until(lambda: set(run.engine.state.orders) == {"strat-btc-1", "strat-eth-1"}, 10, "State")

    # by the exchange's order id too
    by_id = run.engine.state.orders["strat-eth-1"].order_id
    assert by_id is not None
    assert (await run.engine.control(CancelOrders(order=by_id, by="test"))).canceled == ("strat-eth-1",)


async def test_every_order_of_a_symbol_then_of_the_account_needs_the_word_and_leaves_none(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    with pytest.raises(NotConfirmed):
        await run.engine.control(CancelOrders(symbols=("BTCUSDT",), by="test"))
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-btc-2", "strat-eth-1"}  # nothing sent

    result = await run.engine.control(CancelOrders(symbols=("BTCUSDT",), by="test").confirmed())
    assert result.verified and set(result.canceled) == {"strat-btc-1", "strat-btc-2"}
    assert result.scope == BTC
    assert await open_at_exchange(sim) == {"strat-eth-1"}
    await wait_until(lambda: set(run.engine.state.orders) == {"strat-eth-1"}, 10, "BTC's orders gone")

    result = await run.engine.control(CancelOrders(by="test").confirmed())
    assert result.verified and result.canceled == ("strat-eth-1",) and result.scope == "all"
    assert await open_at_exchange(sim) == set()
    await wait_until(lambda: not run.engine.state.orders, 10, "no open order in State")
    again = await run.engine.control(CancelOrders(by="test").confirmed())
    assert again.verified and again.canceled == () and "no open order" in again.message


async def test_an_unknown_order_is_refused_naming_the_fix_and_nothing_is_recorded(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    with pytest.raises(ActionRefused) as refused:
        await run.engine.control(CancelOrders(order="nope-1", by="test"))
    assert "no open order 'nope-1'" in refused.value.title and "cockpit ctl orders" in refused.value.fix
    with pytest.raises(ActionRefused):
        await run.engine.control(CancelOrders(symbols=("DOGEUSDT",), by="test").confirmed())
    assert not run.of("operator.action")
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-btc-2", "strat-eth-1"}
