"""No value can lock the account: a peak made by a bad sample is dropped by reconcile or reset by the operator
(recorded first), and the kill switch it engaged can then be released — also after a restart."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any

import pytest

from cockpit.core import events as ev
from cockpit.core.commands import KillSwitch, NotConfirmed, Reconcile, ResetPeak
from cockpit.core.errors import UsageError
from cockpit.core.wire import command_from_json, command_to_json, result_from_json, result_to_json
from cockpit.engine.killswitch import ActionRefused
from cockpit.sim.server import SimServer
from cockpit.store import SessionStore
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.peak import PALETTE_TITLE
from tests.conftest import EngineRun, stop
from tests.test_app import Cockpit
from tests.test_app import cockpit as cockpit  # the Pilot fixture
from tests.test_engine import trade
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"


async def holding(run: EngineRun, sim: SimServer) -> Decimal:
    """A real 0.02 BTC long, reconciled; its mark."""
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in run.engine.state.positions, what="the position")
    await wait_until(lambda: run.engine.state.equity is not None, what="the equity")
    await wait_until(lambda: BTC in run.engine.state.marks, what="its mark")
    return run.engine.state.marks[BTC]


async def test_a_fake_position_from_the_user_stream_leaves_no_peak_once_reconcile_corrects_it(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(reconcile_every_s=3600)
    engine = run.engine
    mark = await holding(run, sim)
    await engine.control(Reconcile(by="test"))  # a clean pass: the peak so far is the account's own
    honest = engine.state.peak_equity
    assert honest is not None and engine.state.peak_checked == honest

    # 12 345 BTC the exchange never held, as a user-stream update would say it
    fake = ev.position_changed(symbol=BTC, qty="12345", entry=str(mark - 100), reason="user stream")
    engine.emit("position.changed", fake, "info", "user_stream")
    assert engine.state.peak_equity is not None and engine.state.peak_equity > 1_000_000

    result = await engine.control(Reconcile(by="test"))
    assert result.ghosts == (BTC,)
    reset = await run.wait_for("drawdown.peak_reset")
    assert reset.payload["by"] == "reconcile" and Decimal(reset.payload["old_peak"]) > 1_000_000
    state = engine.state
    assert state.positions[BTC].qty == Decimal("0.02")
    assert state.peak_equity is not None and state.equity is not None
    assert state.peak_equity <= max(honest, state.equity) and state.drawdown_pct < 1
    await wait_until(lambda: engine.state.drawdown_band == "green", what="green again")
    if engine.state.kill_switch.engaged:  # the risk worker may have seen the 100 % in between
        await engine.control(KillSwitch(on=False, by="test").confirmed())  # the cause is gone: release
    assert not engine.state.kill_switch.engaged


@pytest.mark.parametrize(
    ("ghost", "drops_the_peak"),
    [
        pytest.param({"symbol": "BTCUSDT", "side": "short", "qty": "0.02"}, True, id="exchange-denies-it"),
        pytest.param({"symbol": "BTCUSDT", "side": "short", "qty": "0.03"}, True, id="other-side"),
        pytest.param({"symbol": "BTCUSDT", "side": "short", "qty": "0.01"}, True, id="less-of-it"),
        pytest.param({"symbol": "SOLUSDT", "side": "long", "qty": "0.5"}, False, id="opened-by-hand"),
        pytest.param({"symbol": "BTCUSDT", "side": "long", "qty": "0.01"}, False, id="more-of-the-same"),
    ],
)
async def test_reconcile_drops_the_peak_only_where_cockpit_held_quantity_the_exchange_denies(
    sim: SimServer, start_engine: Any, ghost: dict[str, str], drops_the_peak: bool
) -> None:
    run: EngineRun = await start_engine(reconcile_every_s=3600)
    engine = run.engine
    await holding(run, sim)
    await engine.control(Reconcile(by="test"))  # a clean pass: the peak so far is the account's own
    checked = engine.state.peak_checked
    assert checked is not None
    # a real gain since, then part of it given back: the peak is above both the clean one and the equity
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 5})
    await wait_until(lambda: (engine.state.peak_equity or 0) > checked + 40, what="the gain")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -3})
    await wait_until(
        lambda: (engine.state.equity or 0) < (engine.state.peak_equity or 0) - 20, what="the pullback"
    )
    high = engine.state.peak_equity
    assert high is not None

    await sim.inject({"kind": "ghost_position", **ghost})  # no trade explains it
    result = await engine.control(Reconcile(by="test"))
    assert result.ghosts == (engine.resolve_symbol(ghost["symbol"]),)
    state = engine.state
    assert state.peak_equity is not None and state.equity is not None
    if drops_the_peak:  # cockpit's equity counted quantity the account did not have
        reset = await run.wait_for("drawdown.peak_reset")
        assert reset.payload["by"] == "reconcile" and Decimal(reset.payload["old_peak"]) == high
        assert state.peak_equity == max(checked, state.equity) < high
    else:  # the exchange holds all cockpit held and more: the gain cockpit measured is the account's
        assert not run.of("drawdown.peak_reset")
        assert state.peak_equity >= high
        # and the peak measured so far counts as the account's own: a later reconcile that finds quantity the
        # exchange denies goes back to it, not to the peak before this pass
        assert state.peak_checked is not None and state.peak_checked >= high


async def test_a_poisoned_peak_survives_a_restart_until_reset_peak_then_the_kill_switch_releases(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    engine = run.engine
    mark = await holding(run, sim)
    # one mark a hundred times too high, as a broken feed would give it: a real-looking number
    engine.emit("market.marks", ev.market_marks(marks={BTC: str(mark * 100)}, source="ws"), "info", "feed")
    await run.wait_for("killswitch.engaged")
    assert engine.state.drawdown_pct > 90
    await stop(run)

    again: EngineRun = await start_engine()  # the exchange is clean; the session file keeps the peak
    engine = again.engine
    await again.wait_for("reconcile.done")
    await again.wait_for("market.marks")
    assert engine.state.kill_switch.engaged and engine.state.drawdown_pct > 90
    with pytest.raises(ActionRefused) as refused:
        await engine.control(KillSwitch(on=False, by="test").confirmed())
    assert "drawdown" in (refused.value.detail or "")

    old = engine.state.peak_equity
    with pytest.raises(NotConfirmed):  # a raw request without the word changes nothing
        await engine.control(ResetPeak(by="test"))
    assert engine.state.peak_equity == old
    result = await engine.control(ResetPeak(by="test").confirmed())
    assert result.by == "test" and result.old_peak is not None and Decimal(result.old_peak) == old
    assert result.drawdown_pct == 0 and engine.state.drawdown_pct < 1
    released = await engine.control(KillSwitch(on=False, by="test").confirmed())
    assert not released.engaged

    stored = engine.store.read_events(after_seq=engine.restored_from)
    asked = next(
        i for i, e in enumerate(stored) if e.kind == "operator.action" and e.payload["action"] == "reset_peak"
    )
    done = next(i for i, e in enumerate(stored) if e.kind == "drawdown.peak_reset")
    assert asked < done, "the operator's action is recorded before the reset takes effect"
    payload = stored[done].payload
    assert payload["by"] == "test" and Decimal(payload["old_peak"]) == old
    assert Decimal(payload["new_peak"]) == Decimal(result.new_peak)
    await stop(again)
    with SessionStore.open(engine.session_file, create=False) as store:  # a replay folds to the same peak
        from cockpit.core.state import fold

        assert fold(store.read_events()).peak_equity == Decimal(result.new_peak)


def test_ctl_reset_peak_asks_for_the_typed_word_and_the_socket_carries_it() -> None:
    from cockpit.commands.ctl import ctl_request

    with pytest.raises(UsageError) as unconfirmed:  # stdin is not a terminal here
        ctl_request(argparse.Namespace(ctl_command="reset-peak", yes=False))
    assert "--yes" in unconfirmed.value.fix
    command = ctl_request(argparse.Namespace(ctl_command="reset-peak", yes=True))
    assert command == ResetPeak(by="ctl")
    sent = command_to_json(command.confirmed())  # what ctl_command sends once the operator confirmed
    assert sent["confirm"] == "RESET"
    assert command_from_json(sent) == command.confirmed()
    from cockpit.core.commands import PeakResetResult

    answer = PeakResetResult(old_peak="5E+305", new_peak="10000", drawdown_pct=0.0, by="ctl", message="m")
    assert result_from_json(command, result_to_json(answer)) == answer


async def test_the_palette_resets_the_peak_after_reset_is_typed(cockpit: Cockpit) -> None:
    await cockpit.ready()
    [entry] = [c for c in cockpit.app.get_system_commands(cockpit.app.screen) if c.title == PALETTE_TITLE]
    await entry.callback()  # as choosing it in the palette does
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("R", "enter")  # not the word: nothing happens
    assert isinstance(cockpit.app.screen, ConfirmScreen)
    await cockpit.press(*"RESET", "enter")
    await cockpit.wait_event("drawdown.peak_reset")
    assert "reset_peak" in [
        e.payload.get("action") for e in cockpit.engine.store.read_events() if e.kind == "operator.action"
    ]
