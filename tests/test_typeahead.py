"""Type-ahead: a trader in a hurry types the emergency keys and their confirmation in one go.

Pilot on the real app, with the real engine against the simulator. Each scenario is typed two ways: with
`pilot.press` (all keys in one call, no waits of ours in between) and as a terminal delivers a burst
(every key already queued before the app handles the first), which is the harshest case.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

import cockpit.ui.app
from cockpit.sim.server import SimServer
from cockpit.ui.app import CockpitApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.dialogs import ReconcileScreen
from tests.test_app import Cockpit, live_app
from tests.test_engine import trade
from tests.waiting import wait_until
from widgets.positions import PositionsTable

BTC = "BTC/USDT:USDT"
XRP = "XRP/USDT:USDT"
CHARACTERS = {"enter": "\r", "escape": "\x1b", "slash": "/", "backspace": "\x7f"}


class Desk(Cockpit):
    """The cockpit, plus: keys typed ahead, and the most dialogs ever open at once."""

    def __init__(self, app: CockpitApp, pilot: Any, sim: SimServer) -> None:
        super().__init__(app, pilot, sim)
        self.most_dialogs = 0
        app.screen_change_signal.subscribe(app, self._count_dialogs, immediate=True)

    def _count_dialogs(self, _screen: Screen[Any]) -> None:
        open_now = sum(isinstance(s, ModalScreen) for s in self.app.screen_stack)
        self.most_dialogs = max(self.most_dialogs, open_now)

    async def type_ahead(self, how: str, *keys: str) -> None:
        if how == "pilot":
            await self.pilot.press(*keys)
            return
        for key in keys:  # a terminal's burst: all queued before the app handles the first
            event = events.Key(key, CHARACTERS.get(key, key))
            event.set_sender(self.app)
            self.app.post_message(event)

    def operator_flattens(self) -> list[Any]:
        return [
            e.payload
            for e in self.engine.store.read_events()
            if e.kind == "operator.action" and e.payload["action"] == "flatten"
        ]

    def count(self, kind: str) -> int:
        return self.kinds().count(kind)

    async def actions_finished(self) -> None:
        """Every key's action has run to its end (none left waiting on a dialog)."""
        workers = [w for w in self.app.workers if w.group == "actions"]
        await asyncio.wait_for(self.app.workers.wait_for_complete(workers), timeout=15)
        await self.engine.core.drain()

    def main_screen_on_top(self) -> bool:
        return len(self.app.screen_stack) == 1


@pytest.fixture
async def desk(sim: SimServer, tmp_path: Path) -> AsyncIterator[Desk]:
    app = live_app(sim, tmp_path / "typeahead.duckdb")
    async with app.run_test(size=(120, 40)) as pilot:
        d = Desk(app, pilot, sim)
        await d.ready()
        yield d
        await app.stop_engine()


async def two_positions(desk: Desk) -> None:
    await trade(desk.sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await trade(desk.sim, symbol="XRPUSDT", side="SELL", quantity="100")
    table = desk.app.query_one("#positions", PositionsTable)
    await wait_until(lambda: {BTC, XRP} <= {k.value for k in table.rows}, what="both positions shown")


TYPING = pytest.mark.parametrize("how", ["pilot", "burst"])


@TYPING
async def test_F_FLATTEN_enter_typed_in_one_go_flattens_all_exactly_once(desk: Desk, how: str) -> None:
    await two_positions(desk)
    await desk.type_ahead(how, "F", *"FLATTEN", "enter")
    await desk.wait_event("flatten.done")
    await wait_until(lambda: desk.sim.state()["positions"] == [], within=10, what="all flat at the exchange")
    assert desk.main_screen_on_top()
    await desk.actions_finished()
    assert [p["symbols"] for p in desk.operator_flattens()] == ["all"]
    assert desk.count("flatten.done") == 1
    assert desk.most_dialogs == 1


@TYPING
async def test_f_f_typed_in_one_go_flattens_the_selected_position_once(desk: Desk, how: str) -> None:
    await two_positions(desk)
    selected = desk.app.query_one("#positions", PositionsTable).selected_symbol
    assert selected in (BTC, XRP)
    await desk.type_ahead(how, "f", "f")
    await desk.wait_event("flatten.done")
    assert desk.main_screen_on_top()
    await desk.actions_finished()
    assert [p["symbols"] for p in desk.operator_flattens()] == [[selected]]
    assert desk.count("flatten.done") == 1
    assert desk.most_dialogs == 1  # the second f confirmed; it did not open a second dialog
    still_open = {p["symbol"] for p in desk.sim.state()["positions"]}
    assert still_open == {"BTCUSDT", "XRPUSDT"} - {selected.split("/")[0] + "USDT"}


@TYPING
async def test_down_f_f_typed_in_one_go_flattens_the_position_moved_to(desk: Desk, how: str) -> None:
    await two_positions(desk)
    table = desk.app.query_one("#positions", PositionsTable)
    await wait_until(lambda: table.selected_symbol == BTC, what="BTC selected (rows sorted by symbol)")
    await desk.type_ahead(how, "down", "f", "f")  # the f acts on the row the cursor moved to first
    await desk.wait_event("flatten.done")
    await desk.actions_finished()
    assert [p["symbols"] for p in desk.operator_flattens()] == [[XRP]]
    assert [p["symbol"] for p in desk.sim.state()["positions"]] == ["BTCUSDT"]


@TYPING
async def test_a_key_handled_slowly_is_waited_for_before_the_next_key(
    desk: Desk, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget busy with a key for longer than the app checks on it: the next keys wait their turn."""
    await two_positions(desk)
    table = desk.app.query_one("#positions", PositionsTable)
    await wait_until(lambda: table.selected_symbol == BTC, what="BTC selected (rows sorted by symbol)")
    monkeypatch.setattr(cockpit.ui.app, "KEY_TRAVEL_LIMIT_S", 0.01)

    async def slow_down_key(self: PositionsTable, event: events.Key) -> None:  # in the widget's own queue
        event.stop()  # the widget handles it: it does not bubble up to the bindings
        await asyncio.sleep(0.5)  # fifty checks go by while the key is still being handled
        self.action_cursor_down()

    monkeypatch.setattr(PositionsTable, "key_down", slow_down_key, raising=False)
    await desk.type_ahead(how, "down", "f", "f")
    await desk.wait_event("flatten.done")
    await desk.actions_finished()
    assert [p["symbols"] for p in desk.operator_flattens()] == [[XRP]]


@TYPING
async def test_q_q_typed_in_one_go_quits_once(desk: Desk, how: str) -> None:
    await desk.type_ahead(how, "q", "q")
    await wait_until(lambda: not desk.app.is_running, within=10, what="the app to exit")
    assert desk.app.return_code == 0
    assert desk.most_dialogs == 1


@TYPING
async def test_k_engages_and_k_RELEASE_enter_typed_ahead_releases(desk: Desk, how: str) -> None:
    await desk.type_ahead(how, "k")
    await wait_until(lambda: desk.engine.state.kill_switch.engaged, what="the kill switch engaged")
    await desk.type_ahead(how, "k", *"RELEASE", "enter")
    await wait_until(lambda: not desk.engine.state.kill_switch.engaged, what="the kill switch released")
    assert desk.main_screen_on_top()
    assert desk.most_dialogs == 1


@TYPING
async def test_k_typed_right_behind_other_keys_still_engages(desk: Desk, how: str) -> None:
    await desk.type_ahead(how, "down", "k", "up")  # arrow keys on an empty positions table, too
    await wait_until(lambda: desk.engine.state.kill_switch.engaged, what="the kill switch engaged")
    assert desk.main_screen_on_top()


@TYPING
async def test_a_wrong_word_typed_ahead_does_not_flatten(desk: Desk, how: str) -> None:
    await two_positions(desk)
    await desk.type_ahead(how, "F", *"FLATTNE", "enter", *"flatten", "enter")
    dialog = await desk.wait_screen(ConfirmScreen)
    await wait_until(lambda: dialog.is_mounted, what="the dialog drawn")
    error = dialog.query_one("#dialog-error", Static)
    await wait_until(lambda: "Not confirmed" in str(error.render()), what="the refusal shown")
    assert dialog.query_one("#confirm-input", Input).value == ""
    await desk.type_ahead(how, "escape")
    await wait_until(desk.main_screen_on_top, what="the dialog closed")
    await desk.actions_finished()
    assert desk.operator_flattens() == []
    assert len(desk.sim.state()["positions"]) == 2


@TYPING
async def test_keys_typed_after_a_dialog_closes_reach_the_main_screen(desk: Desk, how: str) -> None:
    await two_positions(desk)
    await desk.type_ahead(how, "F", "escape", "slash", *"fill")
    box = desk.app.query_one("#event-filter", Input)
    await wait_until(lambda: box.value == "fill", what="the filter typed")
    assert box.has_focus and desk.main_screen_on_top()
    await desk.actions_finished()
    assert desk.operator_flattens() == []  # the f of "fill" typed into the filter, it did not flatten
    assert desk.most_dialogs == 1


@TYPING
async def test_keys_typed_after_help_closes_reach_the_filter(desk: Desk, how: str) -> None:
    """Escape closes help and the widgets the key travelled through with it: the keys behind move on."""
    await desk.type_ahead(how, "question_mark", "escape", "slash", *"fill")
    box = desk.app.query_one("#event-filter", Input)
    await wait_until(lambda: box.value == "fill", what="the filter typed")
    assert box.has_focus and desk.main_screen_on_top()
    await desk.actions_finished()
    assert desk.operator_flattens() == []


async def test_a_reconcile_result_waits_for_the_open_dialog_instead_of_stacking(desk: Desk) -> None:
    done: list[Any] = []
    desk.engine.subscribe(
        lambda e: (
            done.append(e) if e.kind == "reconcile.done" and "operator" in e.payload["trigger"] else None
        )
    )
    await desk.type_ahead("burst", "r", "F")  # the result arrives while the flatten-all dialog is open
    await desk.wait_screen(ConfirmScreen)
    await wait_until(lambda: done, within=10, what="the operator's reconcile done")
    await desk.pilot.pause()  # the app has handled what followed the result
    assert isinstance(desk.app.screen, ConfirmScreen) and desk.most_dialogs == 1
    await desk.type_ahead("burst", "escape")
    await desk.wait_screen(ReconcileScreen)  # shown once the flatten dialog is closed
    assert desk.most_dialogs == 1
    await desk.type_ahead("burst", "escape")
    await wait_until(desk.main_screen_on_top, what="the reconcile result closed")
    assert desk.operator_flattens() == []


@TYPING
@pytest.mark.parametrize("opens", ["question_mark", "a", "d"])
async def test_k_engages_the_kill_switch_over_an_open_dialog(desk: Desk, how: str, opens: str) -> None:
    """Help, stats and the dead-letter list are read-only views: `k` over them engages at once."""
    await desk.type_ahead(how, opens)
    await wait_until(lambda: not desk.main_screen_on_top(), within=10, what="the dialog open")
    await desk.type_ahead(how, "k")
    await wait_until(lambda: desk.engine.state.kill_switch.engaged, what="the kill switch engaged")
    assert desk.most_dialogs == 1
