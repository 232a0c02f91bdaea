"""The cockpit app driven by Textual's Pilot, with the real engine against the simulator."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input

from cockpit.config.secrets import Credentials
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.server import SimServer
from cockpit.ui.app import CockpitApp
from cockpit.ui.backend import EngineBackend
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.dialogs import DeadLettersScreen, HelpScreen, ReconcileScreen, RestoreScreen
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET, make_config
from tests.test_engine import trade
from tests.test_orders import open_at_exchange, rest_order
from tests.waiting import wait_until
from widgets.events import EventLog
from widgets.orders import OrdersTable
from widgets.positions import PositionsTable

BTC = "BTC/USDT:USDT"


class Cockpit:
    def __init__(self, app: CockpitApp, pilot: Pilot[int], sim: SimServer) -> None:
        self.app = app
        self.pilot = pilot
        self.sim = sim

    @property
    def engine(self) -> Any:
        assert isinstance(self.app.backend, EngineBackend)
        return self.app.backend.engine

    async def ready(self) -> None:
        await wait_until(
            lambda: self.engine is not None and self.engine.state.last_reconcile is not None,
            within=15,
            what="the engine to start and reconcile",
        )

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)
        await self.pilot.pause()

    async def wait_screen(self, kind: type) -> Any:
        await wait_until(lambda: isinstance(self.app.screen, kind), what=f"{kind.__name__} on screen")
        return self.app.screen

    def kinds(self) -> list[str]:
        return [e.kind for e in self.engine.store.read_events()]

    async def wait_event(self, kind: str, within: float = 10) -> None:
        await self.engine.core.drain()
        await wait_until(lambda: kind in self.kinds(), within, what=f"event {kind}")


def live_app(sim: SimServer, session: Path) -> CockpitApp:
    """The cockpit with its engine on `session`, against the simulator (as `cockpit run` builds it)."""
    spec = RunSpec(
        config=make_config(sim.base_url, session),
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session,
        options=EngineOptions(**{"mode": "live", **FAST_OPTIONS}),
    )
    return CockpitApp(EngineBackend(Runtime(spec), "test"))


@pytest.fixture
async def cockpit(sim: SimServer, tmp_path: Path) -> AsyncIterator[Cockpit]:
    app = live_app(sim, tmp_path / "ui.duckdb")
    async with app.run_test(size=(120, 40)) as pilot:
        c = Cockpit(app, pilot, sim)
        await c.ready()
        yield c
        await app.stop_engine()


async def test_main_screen_shows_every_pane_and_live_positions(cockpit: Cockpit) -> None:
    app = cockpit.app
    titles = {
        str(app.query_one(f"#{i}").border_title)
        for i in ("positions", "health", "ratelimit", "drawdown", "orders", "events")
    }
    assert titles == {"Positions", "Health", "Rate limit", "Drawdown", "Orders", "Events"}
    await trade(cockpit.sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    table = app.query_one("#positions", PositionsTable)
    await wait_until(lambda: BTC in [k.value for k in table.rows], what="the BTC row")
    row = [str(cell) for cell in table.get_row(BTC)]
    assert row[0].strip() == "BTC/USDT" and "LONG" in row[1] and row[2].strip() == "0.01"
    events = app.query_one("#events", EventLog)
    await wait_until(
        lambda: any("order.filled" in line for line in events.shown_lines), what="the fill in Events"
    )


async def test_r_reconciles_and_a_ghost_can_be_adopted(cockpit: Cockpit) -> None:
    await cockpit.sim.inject({"kind": "ghost_position", "symbol": "ETHUSDT", "side": "long", "qty": "0.3"})
    await cockpit.press("r")
    screen = await cockpit.wait_screen(ReconcileScreen)
    assert screen.result.ghosts_open == ("ETH/USDT:USDT",)
    await wait_until(lambda: screen.query("#adopt-0"), what="the Adopt button")
    screen.query_one("#adopt-0", Button).press()
    await wait_until(lambda: not cockpit.engine.state.positions["ETH/USDT:USDT"].ghost, what="adoption")
    assert cockpit.sim.state()["positions"][0]["qty"] == "0.3"  # adopting keeps the position open


async def test_enter_closes_the_reconcile_dialog_and_never_adopts_a_ghost(cockpit: Cockpit) -> None:
    await cockpit.sim.inject({"kind": "ghost_position", "symbol": "ETHUSDT", "side": "long", "qty": "0.3"})
    await cockpit.press("r")
    screen = await cockpit.wait_screen(ReconcileScreen)
    await wait_until(lambda: screen.query("#adopt-0"), what="the Adopt button")
    await cockpit.press("enter")
    await wait_until(lambda: not isinstance(cockpit.app.screen, ReconcileScreen), what="the dialog closed")
    await cockpit.app.workers.wait_for_complete()
    assert cockpit.engine.state.positions["ETH/USDT:USDT"].ghost  # still flagged: the operator decides
    assert "adopt" not in [e.payload.get("action") for e in cockpit.engine.store.read_events()]


async def test_a_ghost_can_be_flattened_from_the_reconcile_dialog(cockpit: Cockpit) -> None:
    await cockpit.sim.inject({"kind": "ghost_position", "symbol": "SOLUSDT", "side": "short", "qty": "4"})
    await cockpit.press("r")
    dialog = await cockpit.wait_screen(ReconcileScreen)
    await wait_until(lambda: dialog.query("#flatten-0"), what="the Flatten button")
    dialog.query_one("#flatten-0", Button).press()
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("f")
    await wait_until(lambda: cockpit.sim.state()["positions"] == [], within=10, what="flat at the exchange")


async def test_f_flattens_the_selected_position_only_after_a_second_press(cockpit: Cockpit) -> None:
    await trade(cockpit.sim, symbol="BTCUSDT", side="SELL", quantity="0.02")
    table = cockpit.app.query_one("#positions", PositionsTable)
    await wait_until(lambda: table.selected_symbol == BTC, what="BTC selected")
    await cockpit.press("f")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("escape")  # cancel: nothing happens
    assert cockpit.sim.state()["positions"] != []
    await cockpit.press("f")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("f")
    await wait_until(lambda: cockpit.sim.state()["positions"] == [], within=10, what="flat")
    await cockpit.wait_event("flatten.done")
    assert cockpit.engine.state.last_flatten_verified is True


async def test_flatten_all_needs_the_typed_word(cockpit: Cockpit) -> None:
    await trade(cockpit.sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await trade(cockpit.sim, symbol="XRPUSDT", side="SELL", quantity="100")
    await wait_until(lambda: len(cockpit.engine.state.positions) == 2)
    await cockpit.press("F")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("F", "F", "enter")  # stray keys do not confirm
    assert isinstance(cockpit.app.screen, ConfirmScreen) and cockpit.sim.state()["positions"] != []
    await cockpit.press(*"FLATTEN", "enter")
    await wait_until(lambda: cockpit.sim.state()["positions"] == [], within=10, what="all flat")


async def test_k_engages_at_once_and_release_needs_release_typed(cockpit: Cockpit) -> None:
    await cockpit.press("k")
    await wait_until(lambda: cockpit.engine.state.kill_switch.engaged, what="kill switch")
    await wait_until(lambda: "KILL SWITCH" in str(cockpit.app.query_one("#banner").render()), what="banner")
    await cockpit.press("k")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("escape")
    assert cockpit.engine.state.kill_switch.engaged
    await cockpit.press("k")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press(*"RELEASE", "enter")
    await wait_until(lambda: not cockpit.engine.state.kill_switch.engaged, what="release")


async def test_b_backs_up_and_R_restores_then_reconciles(cockpit: Cockpit) -> None:
    await cockpit.press("b")
    await cockpit.wait_event("db.backup")
    [backup] = [e for e in cockpit.engine.store.read_events() if e.kind == "db.backup"]
    assert backup.payload["verified"] is True
    await trade(cockpit.sim, symbol="BNBUSDT", side="BUY", quantity="1")  # after the backup
    await wait_until(lambda: "BNB/USDT:USDT" in cockpit.engine.state.positions)
    await cockpit.press("R")
    screen = await cockpit.wait_screen(RestoreScreen)
    table = screen.query_one("#backup-table", DataTable)
    await wait_until(lambda: table.row_count == 1)
    assert "VERIFIED" in [str(c) for c in table.get_row_at(0)]
    await cockpit.press("enter")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press(*"RESTORE", "enter")
    await wait_until(
        lambda: cockpit.engine is not None and "db.restored" in cockpit.kinds(), within=20, what="restored"
    )
    engine = cockpit.engine
    assert engine.restored_from == backup.payload["last_seq"]  # the session is back as the backup had it
    await wait_until(lambda: "BNB/USDT:USDT" in engine.state.positions, what="the fill after the backup")
    kept = list(engine.session_file.parent.glob("ui.duckdb.replaced-*"))
    assert len(kept) == 1  # the file that was replaced is kept aside, never deleted


async def test_d_lists_dead_letters(cockpit: Cockpit) -> None:
    from decimal import Decimal

    from cockpit.engine.orders import submit
    from cockpit.exchange.gateway import OrderIntent

    await cockpit.sim.inject({"kind": "reject_orders", "count": 1, "code": -2019})
    await submit(cockpit.engine, OrderIntent(BTC, "buy", "market", Decimal("0.01")))
    await cockpit.wait_event("dlq.added")
    await cockpit.press("d")
    screen = await cockpit.wait_screen(DeadLettersScreen)
    table = screen.query_one("#dlq-table", DataTable)
    await wait_until(lambda: table.row_count == 1)
    assert "Margin is insufficient." in [str(c) for c in table.get_row_at(0)]
    await cockpit.press("escape")


async def test_slash_filters_events_and_escape_clears(cockpit: Cockpit) -> None:
    await trade(cockpit.sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    events = cockpit.app.query_one("#events", EventLog)
    await wait_until(lambda: any("order.filled" in line for line in events.shown_lines))
    everything = len(events.shown_lines)
    await cockpit.press("slash")
    assert cockpit.app.query_one("#event-filter", Input).has_focus
    await cockpit.press(*"reconcile", "enter")
    assert events.shown_lines and all("reconcile" in line for line in events.shown_lines)
    await cockpit.press("slash", "escape")
    await wait_until(lambda: len(events.shown_lines) >= everything, what="all lines back")


async def test_help_shows_keys_and_runbook_scenarios(cockpit: Cockpit) -> None:
    await cockpit.press("question_mark")
    screen = await cockpit.wait_screen(HelpScreen)
    from rich.console import Console
    from textual.widgets import Static

    shown = screen.query_one("#help-text", Static)
    console = Console(width=shown.content_region.width or 100, record=True, file=io.StringIO())
    console.print(shown.content)
    text = console.export_text()
    assert "flatten ALL positions" in text and "ghost position" in text  # keys and runbook tables, as drawn
    assert "| key |" not in text  # rendered as tables, not Markdown source
    await cockpit.press("escape")
    assert not isinstance(cockpit.app.screen, HelpScreen)
    assert screen is not None


async def test_q_warns_that_positions_stay_open_then_quits(cockpit: Cockpit) -> None:
    await cockpit.press("q")
    screen = await cockpit.wait_screen(ConfirmScreen)
    assert "stay open" in screen.body
    await cockpit.press("escape")
    assert cockpit.app.is_running
    await cockpit.press("q")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press("q")
    await wait_until(lambda: not cockpit.app.is_running, what="the app to exit")


async def test_every_action_is_in_the_command_palette(cockpit: Cockpit) -> None:
    commands = [c.title for c in cockpit.app.get_system_commands(cockpit.app.screen)]
    for title in (
        "Reconcile with the exchange",
        "Flatten the selected position",
        "Flatten all positions",
        "Kill switch: engage / release",
        "Backup the session now",
        "Restore from a backup",
        "Dead-letter queue",
        "Orders: show the open orders (and back)",
        "Cancel the selected order",
        "Cancel every order of the selected order's symbol",
        "Cancel every open order on the account",
        "Filter events",
        "Help: keys and runbook scenarios",
        "Quit cockpit",
        "Theme: cockpit-light",
        "Theme: cockpit-high-contrast",
        "Theme: cockpit-ansi",
    ):
        assert title in commands


async def test_theme_choice_is_remembered(cockpit: Cockpit) -> None:
    from cockpit.ui.themes import saved_theme

    cockpit.app.theme = "cockpit-light"
    await cockpit.pilot.pause()
    assert saved_theme() == "cockpit-light"


async def test_a_shows_the_live_sessions_stats(cockpit: Cockpit) -> None:
    from cockpit.ui.screens.stats import StatsScreen

    await trade(cockpit.sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await wait_until(lambda: BTC in cockpit.engine.state.positions)
    await cockpit.press("a")
    screen = await cockpit.wait_screen(StatsScreen)
    assert screen.report["fills"] == 1
    body = str(screen.query_one("#dialog-body").render())
    assert "realized PnL" in body and "funding 0.00" in body and "net " in body
    session = cockpit.engine.session_file
    assert session.name in str(screen.query_one("#dialog-title").render())  # the live session, not its copy
    await cockpit.press("escape")
    await cockpit.app.workers.wait_for_complete()
    # read from a copy the engine made for it, then deleted: no backup, nothing left, no operator action
    assert not (session.parent / "backups").exists()
    assert list((session.parent / ".reads").glob("*")) == []
    assert [e for e in cockpit.engine.store.read_events() if e.kind in ("db.backup", "operator.action")] == []


async def test_a_websocket_drop_is_one_incident_on_screen_not_a_toast_per_reconnect_attempt(
    cockpit: Cockpit,
) -> None:
    app = cockpit.app
    await cockpit.sim.inject({"kind": "ws_drop", "refuse_s": 1.5})  # several refused reconnect attempts
    await cockpit.wait_event("feed.disconnected")
    await wait_until(
        lambda: "open incident" in str(app.query_one("#events", EventLog).border_subtitle),
        what="the Events pane counting the open incident",
    )
    await wait_until(
        lambda: not app.incidents.open_incidents, within=20, what="the feeds back, the incident resolved"
    )
    await cockpit.pilot.pause()
    attempts = [e for e in cockpit.engine.store.read_events() if e.kind == "feed.disconnected"]
    opened = [n for n in app._notifications if n.title.startswith("incident") and "resolved" not in n.title]
    resolved = [n for n in app._notifications if n.title.endswith("resolved")]
    assert len(attempts) > len(opened) >= 1  # more disconnect events than incident toasts
    feed_incidents = [i for i in app.incidents.incidents if i.cause.startswith("feed:")]
    assert len(opened) == len(feed_incidents) and len(resolved) == len(feed_incidents)
    assert str(app.query_one("#events", EventLog).border_subtitle) == ""


async def test_a_deleted_session_file_turns_the_database_critical_on_screen(cockpit: Cockpit) -> None:
    """What the operator sees when the session file is deleted under the running cockpit: the Database line
    DELETED in the critical colour with the reason, the kill switch engaged, a critical incident toast."""
    from widgets.health import HealthPane

    session = cockpit.engine.session_file
    health = cockpit.app.query_one("#health", HealthPane)
    assert health.line("health-db").status == "-ok"
    session.unlink()
    database = health.line("health-db")
    await wait_until(lambda: "DELETED" in database.text, within=15, what="the Database line saying DELETED")
    assert database.status == "-critical" and session.name in database.text
    await wait_until(lambda: "ENGAGED" in health.line("health-kill").text, what="the kill switch on screen")
    await wait_until(lambda: "db.backup" in cockpit.kinds(), what="the backup of the open file")
    await cockpit.pilot.pause(0.5)  # a repaint after the backup: the line stays DELETED
    assert "DELETED" in database.text
    toasts = [n for n in cockpit.app._notifications if n.title.startswith("incident")]
    assert any("CRITICAL" in n.title and "deleted" in n.message for n in toasts)


async def test_x_cancels_the_order_chosen_in_the_orders_pane_after_a_second_press(cockpit: Cockpit) -> None:
    await rest_order(cockpit.sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-a")
    await rest_order(cockpit.sim, "ETHUSDT", "BUY", "0.5", Decimal("1000"), "strat-b")
    orders = cockpit.app.query_one("#orders", OrdersTable)
    await wait_until(lambda: orders.row_count == 2, what="two orders in the Orders pane")
    assert (
        orders.cell_text("strat-a", "price") == "30000.0" and orders.cell_text("strat-a", "by") == "external"
    )
    await cockpit.press("x")  # the positions have the focus: no order is chosen, nothing opens
    assert not isinstance(cockpit.app.screen, ConfirmScreen)
    await cockpit.press("o")
    assert orders.has_focus and orders.selected_order == "strat-a"
    await cockpit.press("down", "x")
    dialog = await cockpit.wait_screen(ConfirmScreen)
    assert "strat-b" in dialog.title_text
    await cockpit.press("escape")  # not confirmed: nothing sent
    assert await open_at_exchange(cockpit.sim) == {"strat-a", "strat-b"}
    await cockpit.press("x", "x")  # typed ahead: the second x confirms in the dialog the first opened
    await wait_until(lambda: orders.row_count == 1, within=10, what="the order gone from the pane")
    assert await open_at_exchange(cockpit.sim) == {"strat-a"}
    await cockpit.press("X")
    await cockpit.wait_screen(ConfirmScreen)
    await cockpit.press(*"CANCEL", "enter")
    await wait_until(lambda: orders.row_count == 0, within=10, what="no order left in the pane")
    assert await open_at_exchange(cockpit.sim) == set()
    actions = [e.payload for e in cockpit.engine.store.read_events() if e.kind == "operator.action"]
    assert [(a["action"], a.get("order"), a["symbols"]) for a in actions] == [
        ("cancel", "strat-b", ["ETH/USDT:USDT"]),
        ("cancel", None, "all"),
    ]


async def test_in_a_narrow_terminal_o_shows_the_orders_in_the_positions_place(cockpit: Cockpit) -> None:
    await rest_order(cockpit.sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-a")
    app = cockpit.app
    await cockpit.pilot.resize_terminal(80, 24)
    await cockpit.pilot.pause()
    positions, orders = app.query_one("#positions", PositionsTable), app.query_one("#orders", OrdersTable)
    await wait_until(lambda: "o orders: 1 open" in str(positions.border_subtitle), what="the orders hint")
    assert not orders.display or orders.region.height == 0
    await cockpit.press("o")
    assert orders.region.height > 3 and positions.region.height == 0 and orders.has_focus
    await cockpit.press("escape")
    assert positions.region.height > 3 and positions.has_focus


async def test_escape_in_the_event_filter_still_clears_it_after_o(cockpit: Cockpit) -> None:
    app = cockpit.app
    box = app.query_one("#event-filter", Input)
    await cockpit.press("o", "slash", *"zzz")
    assert box.has_focus and box.value == "zzz"
    await cockpit.press("escape")
    assert box.value == "" and not box.display and app.positions_pane.has_focus
    await cockpit.press("o")
    assert app.orders_pane.has_focus
    await cockpit.press("o")  # back
    assert app.positions_pane.has_focus
