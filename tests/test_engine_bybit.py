"""The engine on Bybit, against the simulator's Bybit v5 wire over real sockets: what only Bybit's message
order and shapes exercise (the tests shared with Binance are parametrised by EXCHANGES in test_engine.py,
test_engine_actions.py, test_kill_switch_account.py and test_funding.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from cockpit.core.commands import KillSwitch
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET, EngineRun
from tests.test_engine import BTC, ETH, trade
from tests.waiting import wait_until

BYBIT = pytest.mark.parametrize("sim", ["bybit"], indirect=True)


@pytest.fixture
async def other(sim: SimServer) -> AsyncIterator[Any]:
    """Another client on the same account: ccxt's bybit, unmodified but for its URLs."""
    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url)
    await client.load_markets()
    try:
        yield client
    finally:
        await client.close()


def at(sim: SimServer, symbol: str, ratio: str) -> float:
    return float((sim.account.mark(symbol) * Decimal(ratio)).quantize(Decimal("0.1")))


async def open_orders(client: Any) -> list[Any]:
    plain = await client.fetch_open_orders(None, None, None, {"orderFilter": "Order", "settleCoin": "USDT"})
    stops = await client.fetch_open_orders(
        None, None, None, {"orderFilter": "StopOrder", "settleCoin": "USDT"}
    )
    return [*plain, *stops]


def exchange_positions(sim: SimServer) -> dict[str, Decimal]:
    return {
        f"{p['symbol'][:-4]}/USDT:USDT": Decimal(p["qty"])
        for p in sim.state()["positions"]
        if Decimal(p["qty"])
    }


@BYBIT
async def test_resting_and_conditional_orders_are_followed_and_a_fill_is_exact(
    sim: SimServer, start_engine: Any, other: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    resting = await other.create_order(BTC, "limit", "buy", 0.01, at(sim, "BTCUSDT", "0.9"))
    stop = await other.create_order(
        ETH,
        "market",
        "sell",
        0.2,
        None,
        {"triggerPrice": at(sim, "ETHUSDT", "0.8"), "triggerDirection": "below"},
    )
    accepted = await run.wait_for("order.accepted", where=lambda e: e.payload["order_id"] == resting["id"])
    assert accepted.payload["origin"] == "external" and accepted.payload["amount"] == "0.01"
    conditional = await run.wait_for("order.accepted", where=lambda e: e.payload["order_id"] == stop["id"])
    assert conditional.payload["conditional"] is True and conditional.payload["trigger"]
    await other.cancel_order(resting["id"], BTC)
    await run.wait_for("order.canceled", where=lambda e: e.payload["order_id"] == resting["id"])
    await other.cancel_order(stop["id"], ETH, {"orderFilter": "StopOrder"})
    await run.wait_for("order.canceled", where=lambda e: e.payload["order_id"] == stop["id"])
    await wait_until(lambda: not run.engine.state.orders or all(
        o.status not in ("open",) for o in run.engine.state.orders.values()
    ), 10, "no order left open")  # fmt: skip

    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.37", newClientOrderId="strat-7")
    fill = await run.wait_for("order.filled", where=lambda e: e.payload["client_order_id"] == "strat-7")
    assert fill.payload["last_qty"] == "0.37" and fill.payload["side"] == "sell"
    await wait_until(lambda: ETH in run.engine.state.positions, 10, "the ETH position")
    position = run.engine.state.positions[ETH]
    assert position.qty == Decimal("-0.37") == exchange_positions(sim)[ETH]
    assert position.entry == Decimal(fill.payload["last_price"]) == sim.account.leg("ETHUSDT").entry
    await run.engine.core.drain()
    assert run.of("position.ghost") == [] and run.of("data.rejected") == []


@BYBIT
async def test_the_kill_switch_guard_cancels_another_clients_adding_orders_at_the_exchange(
    sim: SimServer, start_engine: Any, other: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await run.engine.control(KillSwitch(on=True, by="test"))
    await run.wait_for("killswitch.engaged")
    limit = await other.create_order(BTC, "limit", "buy", 0.01, at(sim, "BTCUSDT", "0.9"))
    guard = await run.wait_for("killswitch.guard", within=10)
    assert guard.severity == "critical" and guard.payload["action"] == "cancel"
    stop = await other.create_order(
        BTC,
        "market",
        "buy",
        0.01,
        None,
        {"triggerPrice": at(sim, "BTCUSDT", "1.2"), "triggerDirection": "above"},
    )
    for order in (limit, stop):  # the exchange's own pushes say each is canceled
        await run.wait_for(
            "order.canceled", within=10, where=lambda e, o=order: e.payload["order_id"] == o["id"]
        )
    assert await open_orders(other) == []  # …and so does its order list
    assert run.of("dlq.added") == [] and run.of("order.filled") == []


@BYBIT
async def test_a_conditional_order_that_triggers_under_its_own_id_fills_without_a_false_alarm(
    sim: SimServer, start_engine: Any, other: Any
) -> None:
    """Bybit keeps a conditional order's id when it triggers (Untriggered → Triggered → Filled): cockpit
    records the trigger and the fill, and the position pushed with it is neither held nor a ghost."""
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    stop = await other.create_order(
        BTC,
        "market",
        "buy",
        0.02,
        None,
        {"triggerPrice": at(sim, "BTCUSDT", "1.01"), "triggerDirection": "above"},
    )
    await run.wait_for("order.accepted", where=lambda e: e.payload["order_id"] == stop["id"])
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 3})
    fill = await run.wait_for("order.filled", within=15, where=lambda e: e.payload["order_id"] == stop["id"])
    assert fill.source == "user_stream" and fill.payload["last_qty"] == "0.02"
    await run.wait_for("order.triggered", where=lambda e: e.payload["order_id"] == stop["id"])
    await wait_until(lambda: BTC in run.engine.state.positions, 10, "the BTC position")
    assert run.engine.state.positions[BTC].qty == Decimal("0.02") == sim.account.leg("BTCUSDT").qty
    await run.engine.core.drain()
    assert run.of("position.ghost") == []
    assert [e for e in run.of("reconcile.started") if e.payload["trigger"] == "stream-mismatch"] == []


@pytest.mark.parametrize("sim", [{"exchange": "bybit", "activity": True}], indirect=True)
async def test_the_demo_trader_on_bybit_makes_fills_and_positions_exact_and_no_ghost(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: len(run.of("order.filled")) >= 12, 60, "a dozen of the trader's fills")
    await wait_until(lambda: len(run.of("reconcile.done")) >= 3, 30, "reconciles while it trades")

    def same_positions() -> bool:
        ours = {key: p.qty for key, p in run.engine.state.positions.items() if p.qty}
        return ours == exchange_positions(sim)

    await wait_until(same_positions, 15, "cockpit's positions the exchange's")
    await run.engine.core.drain()
    assert run.of("position.ghost") == [], [e.payload for e in run.of("position.ghost")]
    assert run.of("data.rejected") == []
    assert all(e.source == "user_stream" for e in run.of("order.filled"))  # none missed, none recovered
