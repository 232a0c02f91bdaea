"""Operator actions and risk in the engine: kill switch, flatten, drawdown, clock, and the store failing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.core import events
from cockpit.core.commands import Flatten, KillSwitch
from cockpit.engine.flatten import closing_intent
from cockpit.engine.killswitch import ActionRefused
from cockpit.engine.orders import submit
from cockpit.exchange.gateway import OrderIntent
from cockpit.sim.server import SimServer
from tests.conftest import EXCHANGES, EngineRun, stop
from tests.test_engine import BTC, ETH, trade
from tests.waiting import wait_until


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_kill_switch_blocks_new_exposure_but_allows_reduce_only(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in run.engine.state.positions)
    await run.engine.control(KillSwitch(on=True, by="test"))
    engaged = await run.wait_for("killswitch.engaged")
    assert engaged.severity == "critical" and run.engine.state.kill_switch.engaged
    assert await submit(run.engine, OrderIntent(ETH, "buy", "market", Decimal("0.1"))) is None
    rejected = await run.wait_for("order.rejected")
    assert "kill switch engaged" in rejected.payload["reason"]
    assert [p["symbol"] for p in sim.state()["positions"]] == ["BTCUSDT"]  # nothing new was opened
    ack = await submit(run.engine, closing_intent(BTC, Decimal("0.02")))
    assert ack is not None and ack.reduce_only
    if sim.exchange == "binance":  # Bybit's acknowledgement carries the ids only: its fill comes apart
        assert ack.filled == Decimal("0.02")
    assert sim.state()["positions"] == []
    await wait_until(lambda: BTC not in run.engine.state.positions)


async def test_kill_switch_release_needs_the_cause_cleared(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    run.engine.kill_flag.touch()
    engaged = await run.wait_for("killswitch.engaged", within=2)
    assert "flag file" in engaged.payload["cause"]
    with pytest.raises(ActionRefused) as refused:
        await run.engine.control(KillSwitch(on=False, by="ctl").confirmed())
    assert "remove it first" in refused.value.detail
    run.engine.kill_flag.unlink()
    await run.engine.control(KillSwitch(on=False, by="test").confirmed())
    released = await run.wait_for("killswitch.released")
    assert released.payload["by"] == "test" and not run.engine.state.kill_switch.engaged
    actions = [e.payload["action"] for e in run.of("operator.action")]
    assert actions == ["kill_switch", "kill_switch"]  # each operator action recorded before it ran


async def test_kill_switch_state_and_cause_survive_a_restart(sim: SimServer, start_engine: Any) -> None:
    first: EngineRun = await start_engine()
    await first.engine.control(KillSwitch(on=True, cause="operator says stop", by="ctl"))
    await stop(first)
    second: EngineRun = await start_engine()
    assert second.engine.state.kill_switch.engaged
    assert second.engine.state.kill_switch.cause == "operator says stop"


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_flatten_all_closes_everything_and_verifies_at_the_exchange(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.4")
    await trade(sim, symbol="XRPUSDT", side="BUY", quantity="300.5")
    await wait_until(lambda: len(run.engine.state.positions) == 3)
    result = await run.engine.control(Flatten(symbols=None, by="test").confirmed())
    assert result.verified is True and result.remaining == {}
    assert sim.state()["positions"] == []
    done = await run.wait_for("flatten.done")
    assert done.payload["verified"] is True and done.severity == "info"
    submitted = run.of("order.submitted")
    assert {e.payload["symbol"] for e in submitted} == {BTC, ETH, "XRP/USDT:USDT"}
    assert all(e.payload["reduce_only"] for e in submitted)
    assert {e.payload["amount"] for e in submitted} == {"0.01", "0.4", "300.5"}
    await run.wait_for("killswitch.engaged")  # nothing may re-open the positions
    kinds = run.kinds()
    assert kinds.index("flatten.started") < kinds.index("order.submitted") < kinds.index("flatten.done")


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_flatten_survives_a_partial_fill(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine(flatten_engages_kill_switch=False)
    await trade(sim, symbol="SOLUSDT", side="BUY", quantity="20")
    await wait_until(lambda: "SOL/USDT:USDT" in run.engine.state.positions)
    await sim.inject({"kind": "partial_fill", "count": 1, "ratio": 0.5})
    result = await run.engine.control(Flatten(symbols=("SOLUSDT",), by="ctl").confirmed())
    assert result.verified is True and result.rounds == 2
    assert [e.payload["amount"] for e in run.of("order.submitted")] == ["20", "10"]
    assert sim.state()["positions"] == [] and not run.engine.state.kill_switch.engaged


async def test_flatten_of_an_unknown_symbol_is_refused(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    with pytest.raises(ActionRefused) as refused:
        await run.engine.control(Flatten(symbols=("DOGEUSDT",), by="ctl").confirmed())
    assert "BTC/USDT:USDT" in refused.value.detail


async def test_drawdown_bands_and_the_kill_limit(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine(risk={"kill_drawdown_pct": 15.0})
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="1")
    await wait_until(lambda: BTC in run.engine.state.positions)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -1.0})  # ~ -640 USDT: 6.4 %
    orange = await run.wait_for("drawdown.band", where=lambda e: e.payload["band"] == "orange")
    assert orange.severity == "warning"
    assert not run.engine.state.kill_switch.engaged
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -2.0})  # ~ 19 % in all
    red = await run.wait_for("drawdown.band", where=lambda e: e.payload["band"] == "red")
    assert red.severity == "critical"
    engaged = await run.wait_for("killswitch.engaged")
    assert "drawdown" in engaged.payload["cause"] and engaged.payload["by"] == "risk"
    assert sim.state()["positions"][0]["qty"] == "1"  # the kill switch does not close positions


async def test_clock_drift_warns_then_engages_the_kill_switch(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("clock.checked")
    await sim.inject({"kind": "clock_skew", "ms": 900})
    drift = await run.wait_for("clock.drift", where=lambda e: e.payload["status"] == "drift")
    assert drift.severity == "warning" and 800 < drift.payload["offset_ms"] < 1000
    assert run.engine.state.health_of("clock").status == "drift"
    await sim.inject({"kind": "clock_skew", "ms": -2500})
    await run.wait_for("clock.drift", where=lambda e: e.payload["status"] == "kill")
    engaged = await run.wait_for("killswitch.engaged")
    assert "clock offset" in engaged.payload["cause"]


async def test_database_failure_retries_then_engages_kill_switch_and_stops(
    sim: SimServer, start_engine: Any
) -> None:
    # A full disk cannot be produced in this sandbox: the store's fault hook makes its SQL fail instead.
    failing = {"on": False}

    def hook(sql: str) -> None:
        if failing["on"]:
            raise OSError(28, "No space left on device")

    run: EngineRun = await start_engine(
        store_options={"retry_delays": (0.0, 0.05, 0.1, 0.2, 0.4), "fault_hook": hook}
    )
    await run.wait_for("reconcile.done")
    failing["on"] = True
    run.engine.emit("alert", events.alert(message="a write that will fail"))
    retry = await run.wait_for("db.error")
    assert retry.payload["attempt"] == 1 and retry.severity == "warning"
    assert run.engine.state.health_of("database").status == "retrying"
    final = await run.wait_for("db.error", where=lambda e: e.payload["final"])
    assert final.severity == "critical"
    kill = await run.wait_for("killswitch.engaged")
    assert kill.payload["persisted"] is False and "database failure" in kill.payload["cause"]
    await wait_until(lambda: run.engine.stopped.is_set(), within=10)
    assert run.engine.state.kill_switch.engaged
    retries = [e.payload["retry_in_s"] for e in run.of("db.error") if not e.payload["final"]]
    assert retries == [0.0, 0.05, 0.1, 0.2, 0.4]
