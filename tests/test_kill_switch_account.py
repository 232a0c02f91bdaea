"""The kill switch belongs to the account, not to a session file: it survives new session files, strategies
can read it, one engine trades an account, flatten one does not engage it, and another client's trading while
it is engaged is one episode, not an alarm per order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from cockpit.core import events
from cockpit.core.commands import Flatten, KillSwitch, Status
from cockpit.engine import guard
from cockpit.sim.server import SimServer
from tests.conftest import EXCHANGES, EngineRun, stop
from tests.test_cli_engine import HeadlessEngine, cli_env, cockpit
from tests.test_engine import trade
from tests.waiting import wait_until


async def test_kill_switch_survives_a_restart_with_a_new_session_file(
    sim: SimServer, start_engine: Any, tmp_path: Path
) -> None:
    first: EngineRun = await start_engine(session=tmp_path / "monday.duckdb")
    await first.wait_for("reconcile.done")
    await first.engine.control(KillSwitch(on=True, cause="operator says stop", by="test"))
    state_file = first.engine.account.kill_switch_file
    written = orjson.loads(state_file.read_bytes())
    assert written["engaged"] is True and written["cause"] == "operator says stop"
    assert state_file.stat().st_mode & 0o777 == 0o600
    status = await first.engine.control(Status(by="ctl"))
    assert status.kill_switch_file == str(state_file)  # where a strategy reads it
    since = first.engine.state.kill_switch.since
    await stop(first)

    second: EngineRun = await start_engine(session=tmp_path / "tuesday.duckdb")  # a brand-new file
    assert second.engine.state.kill_switch.engaged
    assert second.engine.state.kill_switch.cause == "operator says stop"
    assert second.engine.state.kill_switch.since == since  # engaged since Monday, not since this start
    carried = await second.wait_for("killswitch.engaged")
    assert carried.payload["carried_over"] is True and "still engaged" in carried.payload["message"]

    await second.engine.control(KillSwitch(on=False, by="test").confirmed())
    assert orjson.loads(state_file.read_bytes())["engaged"] is False
    await stop(second)
    third: EngineRun = await start_engine(session=tmp_path / "monday.duckdb")  # Monday's file said engaged
    assert not third.engine.state.kill_switch.engaged  # …but the account was released after it
    released = await third.wait_for("killswitch.released")
    assert released.payload["carried_over"] is True


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_flatten_one_position_leaves_the_kill_switch_off(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.4")
    await wait_until(lambda: len(run.engine.state.positions) == 2)
    result = await run.engine.control(Flatten(symbols=("BTCUSDT",), by="test").confirmed())
    assert result.verified is True
    assert [p["symbol"] for p in sim.state()["positions"]] == ["ETHUSDT"]
    await run.engine.core.drain()
    assert not run.engine.state.kill_switch.engaged and run.of("killswitch.engaged") == []
    await run.engine.control(Flatten(symbols=None, by="test").confirmed())  # flatten ALL still does
    engaged = await run.wait_for("killswitch.engaged")
    assert "flatten all" in engaged.payload["cause"]


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_another_clients_orders_under_the_kill_switch_are_one_episode_not_an_alarm_each(
    sim: SimServer, start_engine: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(guard, "REPORT_EVERY_S", 1.0)
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await run.engine.control(KillSwitch(on=True, by="test"))
    for _ in range(6):  # a strategy that ignores the kill switch: market orders, filled at once
        await trade(sim, symbol="SOLUSDT", side="BUY", quantity="1")
    summary = await run.wait_for(
        "killswitch.guard",
        within=15,
        where=lambda e: e.payload["action"] == "summary" and e.payload["flagged"] == 6,
    )
    assert summary.severity == "warning"
    assert summary.payload["canceled"] + summary.payload["already_filled"] == 6
    guards = run.of("killswitch.guard")
    critical = [e for e in guards if e.severity == "critical"]
    assert [e.payload["action"] for e in critical] == ["cancel", "flag"]  # the first of each, at once
    assert len(guards) <= 5  # not one (or two) per order
    letters = run.engine.store.dead_letters()
    assert [letter for letter in letters if letter["op"] == "cancel_order"] == []  # filled first: an outcome
    assert run.of("dlq.added") == []


async def test_a_second_engine_on_the_same_account_is_refused_and_ctl_still_finds_the_first(
    sim: SimServer, tmp_path: Path
) -> None:
    config = tmp_path / "cockpit.toml"
    sessions = tmp_path / "s"  # a new session file per run: the two engines would not share one
    config.write_text(
        f'[exchange]\nid = "binanceusdm"\nbase_url = "{sim.base_url}"\n\n[session]\ndir = "{sessions}"\n'
    )
    first = await HeadlessEngine.start(config, tmp_path)
    try:
        await first.wait_for("reconcile.done")
        code, out, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--json")
        assert code == 2, err
        assert "another engine is already trading this account" in err
        assert f"pid {first.proc.pid}" in err and ".sock" in err
        assert sorted(p.name for p in sessions.glob("*.duckdb")) == [
            Path(first.events[0]["payload"]["session_file"]).name
        ]  # the refused engine opened no session file
        code, out, err = await cockpit(tmp_path, "ctl", "--config", str(config), "status", "--json")
        assert code == 0, err
        assert orjson.loads(out)["kill_switch"]["engaged"] is False
    finally:
        assert await first.finish() == 0, await first.errors()
    assert cli_env(tmp_path)["XDG_DATA_HOME"]  # the account folder lived under the test's data home


async def test_an_unreadable_kill_switch_file_starts_engaged_and_a_late_event_changes_nothing(
    sim: SimServer, start_engine: Any, tmp_path: Path
) -> None:
    first: EngineRun = await start_engine(session=tmp_path / "a.duckdb")
    state_file = first.engine.account.kill_switch_file
    await stop(first)
    assert first.engine.emit("alert", events.alert(message="a guard summary after the stop")) is None
    assert orjson.loads(state_file.read_bytes())["engaged"] is False  # not a "database failure"

    state_file.write_text('{"engaged": tru')  # half a file, a disk error, an editor
    second: EngineRun = await start_engine(session=tmp_path / "b.duckdb")
    kill_switch = second.engine.state.kill_switch
    assert kill_switch.engaged and "could not be read" in kill_switch.cause  # not knowing: no new risk
    assert orjson.loads(state_file.read_bytes())["engaged"] is True
