"""Runbook scenarios (../shared/seeds): the fault injected in the simulator, the real engine reacting — on
Binance's wire and on Bybit's (the same scenario, parametrised by exchange)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.core.commands import KillSwitch
from cockpit.engine.orders import submit
from cockpit.exchange.gateway import OrderIntent
from cockpit.sim.server import SimServer
from tests.conftest import EXCHANGES, EngineRun
from tests.test_engine import BTC, ETH, trade
from tests.waiting import wait_until


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_order_rejection_is_recorded_never_retried_and_fill_rate_warns(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await sim.inject({"kind": "reject_orders", "count": 3, "code": -2022})
    rest = sim.dialect.rest if sim.dialect is not None else sim.rest  # type: ignore[attr-defined]
    served = rest.requests_served
    for _ in range(3):
        assert await submit(run.engine, OrderIntent(BTC, "buy", "market", Decimal("0.002"))) is None
    assert rest.requests_served - served == 3  # one request each: no blind retry
    await run.engine.core.drain()
    rejected = run.engine.store.read_events()
    reasons = [e.payload["reason"] for e in rejected if e.kind == "order.rejected"]
    said = "ReduceOnly Order is rejected." if sim.exchange == "binance" else "Reduce-only rule not satisfied"
    assert reasons == [f"{said} after 1 attempt(s)"] * 3, reasons
    for _ in range(2):
        assert await submit(run.engine, OrderIntent(BTC, "buy", "market", Decimal("0.002"))) is not None
    await wait_until(lambda: run.engine.state.counters.orders_filled == 2, what="two fills")
    warning = await run.wait_for("alert", where=lambda e: "fill rate" in e.payload["message"])
    assert warning.severity == "warning" and "40%" in warning.payload["message"]


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_insufficient_balance_blocks_new_orders_and_shows_free_margin(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    assert await submit(run.engine, OrderIntent(BTC, "buy", "market", Decimal("100"))) is None  # -2019
    alert = await run.wait_for("alert", where=lambda e: "INSUFFICIENT MARGIN" in e.payload["message"])
    assert alert.severity == "critical" and alert.payload["available"] == "10000"
    served = sim.rest.requests_served
    assert await submit(run.engine, OrderIntent(ETH, "buy", "market", Decimal("0.1"))) is None
    assert sim.rest.requests_served == served  # blocked before it reached the exchange
    blocked = [e for e in run.engine.store.read_events() if e.kind == "order.rejected"][-1]
    assert "insufficient margin: free 10000 USDT" in blocked.payload["reason"]
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")  # reduce-only still goes
    await wait_until(lambda: BTC in run.engine.state.positions)
    closing = OrderIntent(BTC, "sell", "market", Decimal("0.01"), reduce_only=True)
    assert await submit(run.engine, closing) is not None


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_drawdown_breaker_puts_cockpit_in_reduce_only(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(risk={"breaker_drawdown_pct": 7.0, "kill_drawdown_pct": 50.0})
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="1")
    await wait_until(lambda: BTC in run.engine.state.positions)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -1.5})  # ~ 9.6 % drawdown
    await run.wait_for("drawdown.band", where=lambda e: e.payload["band"] == "red")
    assert await submit(run.engine, OrderIntent(ETH, "buy", "market", Decimal("0.1"))) is None
    refused = [e for e in run.engine.store.read_events() if e.kind == "order.rejected"][-1]
    assert "drawdown breaker" in refused.payload["reason"] and "reduce-only" in refused.payload["reason"]
    assert not run.engine.state.kill_switch.engaged  # the breaker is not the kill switch
    closing = OrderIntent(BTC, "sell", "market", Decimal("0.5"), reduce_only=True)
    assert await submit(run.engine, closing) is not None


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_partial_fill_remainder_is_tracked_then_canceled_after_the_ttl(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(order_ttl_s=1.0)
    await run.wait_for("reconcile.done")
    await sim.inject({"kind": "partial_fill", "count": 1, "ratio": 0.5})
    price = run.engine.gateway.price_to_precision(
        BTC, Decimal(str(sim.prices.prices["BTCUSDT"])) * Decimal("1.01")
    )
    ack = await submit(
        run.engine, OrderIntent(BTC, "buy", "limit", Decimal("0.02"), price, time_in_force="GTC")
    )
    assert ack is not None
    if sim.exchange == "binance":  # Bybit's answer to an order carries its ids only: the fill comes after
        assert ack.filled == Decimal("0.01")
    await wait_until(lambda: any(o.status == "partially_filled" for o in run.engine.state.orders.values()))
    order = next(iter(run.engine.state.orders.values()))
    assert order.remaining == Decimal("0.01")
    canceled = await run.wait_for("order.canceled", within=10)
    assert canceled.payload["client_order_id"] == order.client_order_id
    assert sim.state()["orders"] == [] and sim.state()["positions"][0]["qty"] == "0.01"


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_kill_switch_guard_cancels_and_flags_exposure_from_other_clients(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await run.engine.control(KillSwitch(on=True, by="test"))
    price = str(sim.specs["ETHUSDT"].round_price(sim.prices.prices["ETHUSDT"] * Decimal("0.9")))
    limit = {"type": "LIMIT", "timeInForce": "GTC", "price": price}
    await trade(sim, symbol="ETHUSDT", side="BUY", quantity="0.2", **limit)  # another client's
    cancel = await run.wait_for("killswitch.guard", where=lambda e: e.payload["action"] == "cancel")
    assert cancel.severity == "critical"
    await wait_until(lambda: sim.state()["orders"] == [], what="the other client's order canceled")
    await trade(sim, symbol="SOLUSDT", side="SELL", quantity="3")
    flag = await run.wait_for("killswitch.guard", where=lambda e: e.payload["action"] == "flag")
    assert flag.payload["symbol"] == "SOL/USDT:USDT" and "review it" in flag.payload["message"]


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_dry_run_records_would_be_orders_and_sends_nothing(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(mode="dry-run")
    await run.wait_for("reconcile.done")
    served = sim.rest.requests_served
    assert await submit(run.engine, OrderIntent(BTC, "buy", "market", Decimal("0.01"))) is None
    assert sim.rest.requests_served == served and sim.state()["positions"] == []
    await run.engine.core.drain()
    kinds = [
        (e.kind, e.payload.get("dry_run"))
        for e in run.engine.store.read_events()
        if e.kind.startswith("order.")
    ]
    assert kinds == [("order.submitted", None), ("order.rejected", True)]


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_consecutive_critical_errors_engage_the_kill_switch(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(critical_errors_to_kill=3)
    await run.wait_for("reconcile.done")
    await sim.inject({"kind": "auth_fail", "seconds": 60})  # the key was revoked: every signed call fails
    engaged = await run.wait_for("killswitch.engaged", within=15)
    assert "3 consecutive critical exchange errors" in engaged.payload["cause"]
    assert (
        run.of("exchange.auth_failed") and "cockpit keys" in run.of("exchange.auth_failed")[0].payload["fix"]
    )


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_runbook_kill_switch_fails_closed_when_a_risk_check_breaks(
    sim: SimServer, start_engine: Any, monkeypatch: Any
) -> None:
    from cockpit.engine import workers

    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")

    def broken(engine: Any) -> None:
        raise RuntimeError("equity feed returned garbage")

    monkeypatch.setattr(workers, "check_fill_rate", broken)  # a bug in one check, as a bad release would have
    engaged = await run.wait_for("killswitch.engaged", within=5)
    assert "risk check failed" in engaged.payload["cause"] and "garbage" in engaged.payload["cause"]


def test_runbook_flatten_never_increases_exposure() -> None:
    """Property: for any position, the closing order is reduce-only, opposite side, and at most its size —
    so whatever part of it fills, |position| only shrinks (checked over 20 000 random positions and fills)."""
    import random

    from cockpit.engine.flatten import closing_intent

    rng = random.Random(20261126)
    for _ in range(20_000):
        qty = Decimal(rng.randrange(-(10**6), 10**6)) / Decimal(10 ** rng.randrange(0, 6))
        if qty == 0:
            continue
        intent = closing_intent(BTC, qty)
        assert intent.reduce_only and intent.type == "market"
        assert intent.amount == abs(qty)
        assert (intent.side == "sell") == (qty > 0)
        filled = intent.amount * Decimal(rng.random()).quantize(Decimal("0.0001"))
        after = qty - filled if intent.side == "sell" else qty + filled
        assert abs(after) <= abs(qty) and (after == 0 or (after > 0) == (qty > 0))
