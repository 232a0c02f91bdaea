"""What the live cockpit and the replay share, and nothing more: the panes, State → panes, themes, palette.

`PanesApp` composes the panes (header, alert banner, positions, health, rate limit, drawdown, events, the
event filter, the footer), repaints them from its backend's latest State on a timer, keeps them readable at
80×24, registers and remembers the themes, and builds the command palette from the app's own keys. It holds
no action that touches an exchange or the session file: the live app (`cockpit/ui/app.py`) adds those
(reconcile, flatten, kill switch, backup, restore, dead letters, quit with its dialog), the replay
(`cockpit/ui/replay_app.py`) adds its controls. What both may do from here is read: filter the events, open
the help and the session's stats.

Each app names its own keys (`BINDINGS`); this class has none, so a key or palette command exists in an app
only if that app declares it. Textual runs every class's `on_mount`/`on_unmount`, so the apps do not define
them: they override `panes_ready` and `panes_closing` instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar, TypeVar

from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from cockpit.core.domain import Event
from cockpit.core.errors import CockpitError
from cockpit.ui.backend import Backend
from cockpit.ui.screens.dialogs import HelpScreen
from cockpit.ui.themes import DEFAULT_THEME, save_theme, saved_theme, themes_dir
from widgets.banner import AlertBanner
from widgets.drawdown import DrawdownPane
from widgets.events import EventLog
from widgets.header import CockpitHeader
from widgets.health import HealthPane
from widgets.orders import OrdersTable, orders_summary
from widgets.positions import PositionsTable
from widgets.ratelimit import RateLimitPane
from widgets.theme_data import load_themes

REFRESH_S = 0.2  # panes repaint 5 times a second from the latest State (clocks, ages, marks)...
SOON_S = 0.02  # ...and soon after new events arrive (`repaint_soon`), at most this often
COMPACT_WIDTH = 110
COMPACT_HEIGHT = 32
PANE_TITLES = {
    "positions": "Positions",
    "health": "Health",
    "ratelimit": "Rate limit",
    "drawdown": "Drawdown",
    "orders": "Orders",
    "events": "Events",
}
Answer = TypeVar("Answer")


class PanesApp(App[int]):
    """The cockpit's screen over a backend: the panes and their repaint, themes, palette; no live action."""

    CSS_PATH = [themes_dir() / "cockpit.tcss", themes_dir() / "screens.tcss"]
    ENABLE_COMMAND_PALETTE = True
    PALETTE_TITLES: ClassVar[dict[str, str]] = {  # action -> its palette title (else the key's description)
        "filter_events": "Filter events",
        "stats": "Session stats and analytics",
        "help": "Help: keys and runbook scenarios",
    }

    def __init__(self, backend: Backend, kill_pct: float = 15.0, breaker_pct: float = 7.0) -> None:
        super().__init__()
        self.backend = backend
        self.kill_pct = kill_pct
        self.breaker_pct = breaker_pct
        self._seq_shown = -1
        self._repaint_due = False  # a repaint soon is scheduled
        self._repainted_at = 0.0  # monotonic
        self._no_dialog = asyncio.Event()  # set while the main screen is on top
        self._no_dialog.set()
        for theme in load_themes((themes_dir() / "themes.toml").read_text(encoding="utf-8")):
            self.register_theme(theme)
        wanted = saved_theme() or DEFAULT_THEME
        if wanted not in self.available_themes:
            wanted = DEFAULT_THEME
        self.theme = wanted

    # ----- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield CockpitHeader(id="header")
        yield AlertBanner(id="banner")
        yield from self.compose_above_panes()
        with Container(id="panes"):
            yield PositionsTable(id="positions")
            yield HealthPane(id="health")
            yield RateLimitPane(id="ratelimit")
            yield DrawdownPane(id="drawdown")
            yield OrdersTable(id="orders")
            yield EventLog(id="events")
        yield Input(placeholder="filter events (Enter applies, Escape clears)", id="event-filter")
        yield Footer()

    def compose_above_panes(self) -> ComposeResult:
        """What an app shows between the banner and the panes (a fleet: its accounts); nothing here."""
        yield from ()

    def on_mount(self) -> None:
        # the panes live on the main screen; keep them, so repaints work while a dialog is on top
        self.header_pane = self.query_one("#header", CockpitHeader)
        self.banner_pane = self.query_one("#banner", AlertBanner)
        self.positions_pane = self.query_one("#positions", PositionsTable)
        self.health_pane = self.query_one("#health", HealthPane)
        self.ratelimit_pane = self.query_one("#ratelimit", RateLimitPane)
        self.drawdown_pane = self.query_one("#drawdown", DrawdownPane)
        self.orders_pane = self.query_one("#orders", OrdersTable)
        self.events_pane = self.query_one("#events", EventLog)
        self.filter_box = self.query_one("#event-filter", Input)
        for pane_id, title in PANE_TITLES.items():
            self.query_one(f"#{pane_id}").border_title = title
        self.filter_box.display = False
        self.screen_change_signal.subscribe(self, self._screen_changed, immediate=True)
        self._apply_compact(self.size.width, self.size.height)
        self.positions_pane.focus()
        self.panes_ready()
        self.refresh_timer = self.set_interval(REFRESH_S, self.refresh_panes)
        self.refresh_panes()

    def panes_ready(self) -> None:
        """The panes are mounted (before the first repaint): the live app starts its engine here."""

    async def on_unmount(self) -> None:
        self.refresh_timer.stop()  # the panes are being torn down: nothing repaints them any more
        await self.panes_closing()

    async def panes_closing(self) -> None:
        """The app is ending, however it ends: the live app stops its engine, the replay closes its file."""

    def on_resize(self, event: events.Resize) -> None:
        self._apply_compact(event.size.width, event.size.height)

    def _apply_compact(self, width: int, height: int) -> None:
        compact = width < COMPACT_WIDTH or height < COMPACT_HEIGHT
        self.screen.set_class(compact, "-compact")
        footer = self.query_one(Footer)
        if footer.compact != compact:  # every key still fits on one line at 80 columns
            footer.compact = compact
            footer.show_command_palette = not compact
            footer.refresh(recompose=True)

    # ----- the orders: a pane of their own, or (narrow terminals) in the positions' place ----------------
    def action_orders(self) -> None:
        """`o`: to the orders and back. Wide, it moves the focus; compact, the orders take the positions'
        place until `o` again (or Escape)."""
        self._refuse_over_a_dialog()
        showing = self.orders_pane.has_focus
        self.screen.set_class(not showing, "-orders")
        (self.positions_pane if showing else self.orders_pane).focus()
        self.refresh_panes()

    def watch_theme(self, theme: str) -> None:
        save_theme(theme)

    # ----- dialogs: one at a time ------------------------------------------------------------------
    def _screen_changed(self, screen: Screen[Any]) -> None:
        if len(self.screen_stack) > 1:
            self._no_dialog.clear()
        else:
            self._no_dialog.set()

    def _dialog_open(self) -> bool:
        return len(self.screen_stack) > 1

    def _open(self, dialog: Screen[Answer]) -> asyncio.Future[Answer | None]:
        """Push `dialog` now (synchronously, so the keys typed next reach it) and return its answer-to-be."""
        answer: asyncio.Future[Answer | None] = asyncio.get_running_loop().create_future()

        def settle(result: Answer | None) -> None:
            if not answer.done():
                answer.set_result(result)

        self.push_screen(dialog, callback=settle)
        return answer

    async def _open_when_free(self, dialog: Screen[Answer]) -> Answer | None:
        """For dialogs that appear after async work: wait until no other dialog is open, never stack."""
        while self._dialog_open():
            self._no_dialog.clear()
            await self._no_dialog.wait()
        return await self._open(dialog)  # no await between the check and the push

    def _refuse_over_a_dialog(self) -> None:
        """A key pressed while another dialog is on top belongs to that dialog (q closes help)."""
        if self._dialog_open():
            raise SkipAction()

    # ----- workers ----------------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land: never swallowed, always shown."""
        if event.state != WorkerState.ERROR or self.worker_failed(event.worker):
            return
        error = event.worker.error
        self.notify(f"{type(error).__name__}: {error}", title="action failed", severity="error", timeout=10)

    def worker_failed(self, worker: Worker[Any]) -> bool:
        """True when the app has handled this failed worker itself (the live app: its engine)."""
        return False

    # ----- State → panes ------------------------------------------------------------------------------
    def refresh_panes(self) -> None:
        self._repainted_at = time.monotonic()
        try:
            self._repaint()
        except NoMatches:  # a pane is being torn down (the app is closing): nothing to paint
            return

    def repaint_soon(self) -> None:
        """New events: repaint now rather than at the next tick of the timer (an incident shows within a
        frame, not within 200 ms), coalesced: at most one repaint every SOON_S whatever the event rate."""
        if self._repaint_due or not self.is_running:
            return
        self._repaint_due = True
        wait = self._repainted_at + SOON_S - time.monotonic()
        # not `set_timer`: a Textual timer whose moment has passed when it starts is skipped (never fires)
        if wait <= 0:
            self.call_later(self._repaint_soon_now)
        else:
            asyncio.get_running_loop().call_later(wait, self.call_later, self._repaint_soon_now)

    def _repaint_soon_now(self) -> None:
        self._repaint_due = False
        self.refresh_panes()

    def _repaint(self) -> None:
        """Repaint from the latest State: the one place panes are updated (bounded, coalesced)."""
        if not self.header_pane.is_attached:  # shutting down: the panes are gone
            return
        state = self.backend.state
        telemetry = self.backend.telemetry()
        now = telemetry.now or time.time()
        events = self.backend.take_events()
        with self.batch_update():
            if events:
                self.events_pane.add(events)
                self.new_events(events)
            self.header_pane.show(state, now)
            self.health_pane.show(state, telemetry)
            self.ratelimit_pane.show(state.rate_limit, now)
            # on every repaint, not only on new events: a mark goes STALE precisely when nothing arrives
            self.banner_pane.show(state, self.breaker_pct, now, self.backend.link_problem())
            self.positions_pane.show(state, now)
            self.orders_pane.show(state, now)
            compact = self.screen.has_class("-compact") and not self.screen.has_class("-orders")
            self.positions_pane.set_hint(f"o orders: {orders_summary(state)}" if compact else "")
            if state.seq != self._seq_shown:
                self._seq_shown = state.seq
                self.drawdown_pane.show(state, self.kill_pct, self.breaker_pct)

    def new_events(self, events: list[Event]) -> None:
        """Events just added to the Events pane (the live app follows its incidents from them)."""

    # ----- reading: the same in both apps ------------------------------------------------------------
    @work(group="actions", exit_on_error=False)
    async def action_stats(self) -> None:
        from cockpit.ui.screens.stats import StatsScreen, session_stats

        self.notify("computing the session's stats…", timeout=2)
        try:
            async with self.backend.stats_source() as source:
                report, equity = await asyncio.to_thread(session_stats, source.path)
        except CockpitError as exc:
            self.notify(f"{exc.title}\n{exc.detail}", title="stats", severity="error")
            return
        await self._open_when_free(StatsScreen(report, equity, source.name))

    def action_filter_events(self) -> None:
        self._refuse_over_a_dialog()
        box = self.filter_box
        box.display = True
        self.screen.set_focus(box)  # now, not later: the keys typed after / are the filter's

    @on(Input.Submitted, "#event-filter")
    def _filter(self, event: Input.Submitted) -> None:
        self.events_pane.set_filter(event.value)
        event.input.display = bool(event.value)
        self.positions_pane.focus()

    def on_key(self, event: events.Key) -> None:
        box = self.filter_box
        orders_shown = self.orders_pane.has_focus or self.screen.has_class("-orders")
        if event.key == "escape" and not box.has_focus and orders_shown:
            self.screen.remove_class("-orders")
            self.positions_pane.focus()
            event.stop()
            return
        if event.key == "escape" and box.has_focus:
            box.value = ""
            box.display = False
            self.events_pane.set_filter("")
            self.positions_pane.focus()
            event.stop()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # ----- command palette: this app's keys, and the themes -------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            title = self.PALETTE_TITLES.get(binding.action, binding.description)
            yield SystemCommand(
                title,
                f"{title} (key {binding.key_display or binding.key})",
                partial(self.run_action, binding.action),  # as the key does: refused over a dialog
            )
        for name in sorted(self.available_themes):
            if name.startswith("cockpit-"):
                yield SystemCommand(
                    f"Theme: {name}",
                    f"switch to the {name} theme (remembered)",
                    lambda name=name: setattr(self, "theme", name),
                )
