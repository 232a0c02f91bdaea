"""The cockpit: the Textual app a trader runs over SSH in tmux.

The engine runs inside the app's event loop as background workers (the same engine as headless mode). The app
repaints its panes from the latest State on a timer (never per tick) and turns keys into engine actions; the
widgets are views and never touch the engine.

Type-ahead: a trader in a hurry types `F FLATTEN⏎`, `down f f` or `q q` in one go, and a terminal hands the
whole burst over at once. Textual routes each key to the widget focused *when the key is read* and runs a
binding only once the key has bubbled back up to the app, so the keys after `F` used to go to the main screen
before the dialog existed (and a second `f` opened a second dialog). Here the app lets one typed key travel
at a time (`on_event`): the next is routed only once the previous one has been handled all the way up, so
each key meets the screen and focus the keys before it left, as if typed slowly. Dialogs that confirm are
pushed synchronously by their action, and the confirm dialog on top takes every key itself
(`ConfirmScreen.take_key`), even before it has mounted. Dialogs that appear after async work (reconcile
result, restore, dead letters, stats) wait until no other dialog is open: two never stack.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar, TypeVar

from textual import events, on, work
from textual.actions import SkipAction
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.css.query import NoMatches
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from cockpit.core.commands import Adopt, Asks, Backup, Flatten, KillSwitch, Reconcile, ResetPeak
from cockpit.core.commands import Answer as Reply
from cockpit.core.errors import CockpitError
from cockpit.core.incidents import IncidentBuilder, IncidentChange
from cockpit.engine.runtime import freeze_startup_heap
from cockpit.ui.backend import Backend, EngineBackend
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.dialogs import DeadLettersScreen, HelpScreen, ReconcileScreen, RestoreScreen
from cockpit.ui.screens.peak import PALETTE_HELP, PALETTE_TITLE, reset_peak_dialog
from cockpit.ui.themes import DEFAULT_THEME, save_theme, saved_theme, themes_dir
from widgets.banner import AlertBanner
from widgets.drawdown import DrawdownPane
from widgets.events import EventLog
from widgets.header import CockpitHeader
from widgets.health import HealthPane
from widgets.positions import PositionsTable
from widgets.ratelimit import RateLimitPane
from widgets.theme_data import load_themes

PALETTE_TITLES = {
    "reconcile": "Reconcile with the exchange",
    "flatten_selected": "Flatten the selected position",
    "flatten_all": "Flatten all positions",
    "kill_switch": "Kill switch: engage / release",
    "backup": "Backup the session now",
    "restore": "Restore from a backup",
    "dead_letters": "Dead-letter queue",
    "filter_events": "Filter events",
    "stats": "Session stats and analytics",
    "help": "Help: keys and runbook scenarios",
    "quit_cockpit": "Quit cockpit",
}
REFRESH_S = 0.2  # panes repaint at most 5 times a second, from the latest State
COMPACT_WIDTH = 110
COMPACT_HEIGHT = 32
KEY_TRAVEL_LIMIT_S = (
    0.5  # how often a key still travelling is checked on (its marker may be lost with a widget)
)
Answer = TypeVar("Answer")
BY = "ui"  # who the app's commands are by


class CockpitApp(App[int]):
    TITLE = "cockpit"
    CSS_PATH = [themes_dir() / "cockpit.tcss", themes_dir() / "screens.tcss"]
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reconcile", "Reconcile", id="reconcile"),
        Binding("f", "flatten_selected", "Flat", id="flatten"),
        Binding("F", "flatten_all", "Flat all", id="flatten_all"),
        Binding("k", "kill_switch", "Kill", id="kill_switch"),
        Binding("b", "backup", "Backup", id="backup"),
        Binding("R", "restore", "Restore", id="restore"),
        Binding("d", "dead_letters", "DLQ", id="dead_letters", show=False),  # in help and the palette
        Binding("a", "stats", "Stats", id="stats", show=False),
        Binding("slash", "filter_events", "Filter", id="filter"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit_cockpit", "Quit", id="quit"),
    ]

    def __init__(self, backend: Backend, kill_pct: float = 15.0, breaker_pct: float = 7.0) -> None:
        super().__init__()
        self.backend = backend
        self.kill_pct = kill_pct
        self.breaker_pct = breaker_pct
        self.error: CockpitError | None = None
        self._seq_shown = -1
        self.incidents = IncidentBuilder()  # the live session's incidents, the same definition as the report
        self._no_dialog = asyncio.Event()  # set while the main screen is on top
        self._no_dialog.set()
        self._typed: deque[events.Key] = deque()  # keys read from the terminal, not routed yet
        self._key_travelling = False  # a typed key is on its way through the widgets up to the app
        self._keys_routed = 0
        self._marker_at: MessagePump | None = None  # where the travelling key's marker is queued now
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
        with Container(id="panes"):
            yield PositionsTable(id="positions")
            yield HealthPane(id="health")
            yield RateLimitPane(id="ratelimit")
            yield DrawdownPane(id="drawdown")
            yield EventLog(id="events")
        yield Input(placeholder="filter events (Enter applies, Escape clears)", id="event-filter")
        yield Footer()

    def on_mount(self) -> None:
        # the panes live on the main screen; keep them, so repaints work while a dialog is on top
        self.header_pane = self.query_one("#header", CockpitHeader)
        self.banner_pane = self.query_one("#banner", AlertBanner)
        self.positions_pane = self.query_one("#positions", PositionsTable)
        self.health_pane = self.query_one("#health", HealthPane)
        self.ratelimit_pane = self.query_one("#ratelimit", RateLimitPane)
        self.drawdown_pane = self.query_one("#drawdown", DrawdownPane)
        self.events_pane = self.query_one("#events", EventLog)
        self.filter_box = self.query_one("#event-filter", Input)
        titles = {
            "positions": "Positions",
            "health": "Health",
            "ratelimit": "Rate limit",
            "drawdown": "Drawdown",
            "events": "Events",
        }
        for pane_id, title in titles.items():
            self.query_one(f"#{pane_id}").border_title = title
        self.filter_box.display = False
        self.screen_change_signal.subscribe(self, self._screen_changed, immediate=True)
        self._apply_compact(self.size.width, self.size.height)
        self.positions_pane.focus()
        if isinstance(self.backend, EngineBackend):
            self._start_engine()
        self.refresh_timer = self.set_interval(REFRESH_S, self.refresh_panes)
        self.refresh_panes()

    # ----- dialogs: one at a time, and every key typed reaches the one on top ----------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:  # straight from the terminal
            self._typed.append(event)
            if not self._key_travelling:
                await self._route_typed_keys()
            return
        if isinstance(event, events.Paste) and not event.is_forwarded:
            dialog = self.screen_stack[-1] if self.screen_stack else None
            if isinstance(dialog, ConfirmScreen):
                dialog.take_paste(event.text)
                return
        await super().on_event(event)

    async def _route_typed_keys(self) -> None:
        """Route typed keys one at a time, in order: each after the previous one has been fully handled."""
        while self._typed and not self._key_travelling:
            key = self._typed.popleft()
            dialog = self.screen_stack[-1] if self.screen_stack else None
            if isinstance(dialog, ConfirmScreen) and dialog.take_key(key):
                continue  # the confirm dialog's, even before it has mounted
            first_stop: MessagePump = self.focused or self.screen
            self._key_travelling = True
            self._keys_routed += 1
            number = self._keys_routed
            await super().on_event(key)  # priority bindings, else on to the focused widget
            self._follow_key(first_stop, number)
            self.set_timer(KEY_TRAVEL_LIMIT_S, partial(self._check_marker, number))

    def _follow_key(self, node: MessagePump | None, number: int) -> None:
        """Send a marker up the path the key bubbles along, each hop queued behind the key. At the app it
        waits one more turn of the queue, behind whatever the key's action queued (a focus change)."""
        if number != self._keys_routed:
            return  # an earlier key's marker, overtaken when its widget closed
        if node is None or node is self or not node.call_later(self._follow_key, node._parent, number):
            self._marker_at = self
            self.call_later(self.call_later, self._key_arrived, number)
        else:
            self._marker_at = node

    def _check_marker(self, number: int) -> None:
        """Never stuck, never early: a key still being handled (its marker queued on a live widget) is
        waited for however long it takes; the next keys move on only when the marker was lost with a
        widget that closed."""
        if number != self._keys_routed or not self._key_travelling:
            return
        node = self._marker_at
        if node is not None and (node._closing or node._closed):
            self.call_later(self._key_arrived, number)
        else:
            self.set_timer(KEY_TRAVEL_LIMIT_S, partial(self._check_marker, number))

    async def _key_arrived(self, number: int) -> None:
        if number != self._keys_routed or not self._key_travelling:
            return  # an earlier key's marker: that key has long been handled
        self._key_travelling = False
        await self._route_typed_keys()

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

    def watch_theme(self, theme: str) -> None:
        save_theme(theme)

    async def on_unmount(self) -> None:
        self.refresh_timer.stop()  # the panes are being torn down: nothing repaints them any more
        await self.stop_engine()  # however the app ends, the engine stops cleanly

    # ----- the engine -----------------------------------------------------------------------------
    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        assert isinstance(self.backend, EngineBackend)
        self.notify("starting the engine: restore, reconcile, feeds…", timeout=3)
        try:
            await self.backend.start()
        except CockpitError as exc:
            self.error = exc
            self.exit(exc.exit_code)
            return
        if not self.is_headless:  # a real terminal: the `cockpit` process itself (not Pilot tests)
            freeze_startup_heap()
        self.refresh_panes()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land: never swallowed, always shown."""
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "engine":
            self.error = (
                error
                if isinstance(error, CockpitError)
                else CockpitError("the engine could not start", repr(error), "see the log and retry")
            )
            self.exit(self.error.exit_code)
            return
        self.notify(f"{type(error).__name__}: {error}", title="action failed", severity="error", timeout=10)

    async def stop_engine(self) -> None:
        if isinstance(self.backend, EngineBackend):
            await self.backend.stop()

    def refresh_panes(self) -> None:
        try:
            self._repaint()
        except NoMatches:  # a pane is being torn down (the app is closing): nothing to paint
            return

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
                if self.LIVE_INCIDENTS:
                    self._follow_incidents(events)
            self.header_pane.show(state, now)
            self.health_pane.show(state, telemetry)
            self.ratelimit_pane.show(state.rate_limit, now)
            # on every repaint, not only on new events: a mark goes STALE precisely when nothing arrives
            self.banner_pane.show(state, self.breaker_pct, now)
            self.positions_pane.show(state, now)
            if state.seq != self._seq_shown:
                self._seq_shown = state.seq
                self.drawdown_pane.show(state, self.kill_pct, self.breaker_pct)

    LIVE_INCIDENTS: ClassVar[bool] = True  # replay jumps between the stored session's incidents instead

    def _follow_incidents(self, events: Iterable[Any]) -> None:
        """One toast when an incident opens and one when it resolves, however many events it groups; the
        Events pane says how many are open."""
        for event in events:
            for change in self.incidents.add(event):
                self._toast_incident(change)
        still_open = len(self.incidents.open_incidents)
        self.events_pane.border_subtitle = (
            f"{still_open} open incident{'s' if still_open != 1 else ''}" if still_open else ""
        )

    def _toast_incident(self, change: IncidentChange) -> None:
        incident = change.incident
        if change.change == "opened":
            self.notify(
                incident.title,
                title=f"incident #{incident.number} {incident.severity.upper()}",
                severity="error" if incident.severity == "critical" else "warning",
                timeout=10,
            )
        elif change.change == "resolved" and incident.end is not None:
            self.notify(
                f"{incident.title} — resolved after {incident.end - incident.start:.0f} s",
                title=f"incident #{incident.number} resolved",
                timeout=5,
            )

    # ----- actions: every one ends in the backend's act(), as `cockpit ctl` does ----------------------
    async def _act(self, command: Asks[Reply], doing: str) -> Reply | None:
        """The backend's answer to `command`, or None when it is refused (said in a notification)."""
        try:
            return await self.backend.act(command)
        except CockpitError as exc:
            self.notify(
                f"{exc.title}\n{exc.detail}\n{exc.fix}".strip(),
                title=f"{doing} refused",
                severity="error",
                timeout=8,
            )
            return None

    @work(group="actions", exit_on_error=False)
    async def action_reconcile(self) -> None:
        self.notify("reconciling with the exchange…", timeout=2)
        result = await self._act(Reconcile(by=BY), "reconcile")
        if result is None:
            return
        choice = await self._open_when_free(ReconcileScreen(result))
        if choice is None:
            return
        action, symbol = choice
        if action == "adopt":
            if await self._act(Adopt(symbol=symbol, by=BY).confirmed(), "adopt") is not None:
                self.notify(f"{symbol} adopted: no longer flagged as a ghost")
        elif action == "flatten":
            confirmed = await self._open_when_free(self._flatten_dialog([symbol]))
            await self._flatten([symbol], confirmed)

    def action_flatten_selected(self) -> None:
        self._refuse_over_a_dialog()
        symbol = self.positions_pane.selected_symbol
        if symbol is None:
            self.notify("select a position first (arrow keys), then press f", severity="warning")
            return
        self._flatten_worker([symbol], self._open(self._flatten_dialog([symbol])))

    def action_flatten_all(self) -> None:
        self._refuse_over_a_dialog()
        self._flatten_worker(None, self._open(self._flatten_dialog(None)))

    @staticmethod
    def _flatten_dialog(symbols: list[str] | None) -> ConfirmScreen:
        """One position: press f again. All of them: type FLATTEN."""
        target = ", ".join(symbols) if symbols else "ALL positions"
        body = (
            f"Close {target} with reduce-only market orders at the exchange's precision, then verify flat"
            + (" (the kill switch stays as it is)." if symbols else " and engage the kill switch.")
        )
        if symbols:
            return ConfirmScreen(f"Flatten {target}?", body, key="f")
        return ConfirmScreen(f"Flatten {target}?", body, word="FLATTEN")

    @work(group="actions", exit_on_error=False)
    async def _flatten_worker(self, symbols: list[str] | None, answer: asyncio.Future[bool | None]) -> None:
        await self._flatten(symbols, await answer)

    async def _flatten(self, symbols: list[str] | None, confirmed: bool | None) -> None:
        target = ", ".join(symbols) if symbols else "ALL positions"
        if not confirmed:
            self.notify("flatten cancelled")
            return
        self.notify(f"flattening {target}…", timeout=3)
        command = Flatten(symbols=None if symbols is None else tuple(symbols), by=BY).confirmed()
        result = await self._act(command, "flatten")
        if result is None:
            return
        if result.verified:
            self.notify(f"flat, verified at the exchange ({target})", title="flatten done")
        else:
            self.notify(result.message, title="flatten NOT verified", severity="error", timeout=15)

    def action_kill_switch(self) -> None:
        """Engage at once, from any screen; release (a dialog) only from the main screen."""
        if not self.backend.state.kill_switch.engaged:
            self._engage_kill_switch()
            return
        self._refuse_over_a_dialog()
        body = (
            "New risk becomes possible again. The cause must be cleared first "
            f"(now: {self.backend.state.kill_switch.cause})."
        )
        self._release_kill_switch(self._open(ConfirmScreen("Release the kill switch?", body, word="RELEASE")))

    def action_reset_peak(self) -> None:  # the palette's (no key): typed RESET, see screens/peak.py
        self._refuse_over_a_dialog()
        self._reset_peak(self._open(reset_peak_dialog(self.backend.state)))

    @work(group="actions", exit_on_error=False)
    async def _reset_peak(self, answer: asyncio.Future[bool | None]) -> None:
        command = ResetPeak(by=BY).confirmed()
        if await answer and (result := await self._act(command, "reset peak")) is not None:
            self.notify(result.message, title="peak reset")

    @work(group="actions", exit_on_error=False)
    async def _engage_kill_switch(self) -> None:
        await self._act(KillSwitch(on=True, cause="engaged from the cockpit (k)", by=BY), "kill switch")

    @work(group="actions", exit_on_error=False)
    async def _release_kill_switch(self, answer: asyncio.Future[bool | None]) -> None:
        if not await answer:
            return
        if await self._act(KillSwitch(on=False, by=BY).confirmed(), "release") is not None:
            self.notify("kill switch released")

    @work(group="actions", exit_on_error=False)
    async def action_backup(self) -> None:
        self.notify("backing up the session file…", timeout=2)
        result = await self._act(Backup(by=BY), "backup")
        if result is not None:
            self.notify(
                result.message, title="backup", severity="information" if result.verified else "error"
            )

    @work(group="actions", exit_on_error=False)
    async def action_restore(self) -> None:
        if self.backend.read_only:
            self.notify("restore needs a live engine", severity="warning")
            return
        backups = await self.backend.backups()
        chosen = await self._open_when_free(RestoreScreen(backups))
        if chosen is None:
            return
        body = (
            f"Stop the engine, keep the current session file aside, restore {chosen.name}, restart and "
            "reconcile with the exchange to recover what happened after the backup."
        )
        if not await self._open_when_free(ConfirmScreen("Restore from backup?", body, word="RESTORE")):
            return
        self.notify(f"restoring from {chosen.name}…", timeout=3)
        try:
            await self.backend.restore(chosen)
        except CockpitError as exc:
            self.notify(f"{exc.title}\n{exc.detail}\n{exc.fix}", title="restore failed", severity="error")
            return
        self._seq_shown = -1
        self.notify(f"restored from {chosen.name} and reconciled", title="restore done")

    @work(group="actions", exit_on_error=False)
    async def action_dead_letters(self) -> None:
        await self._open_when_free(DeadLettersScreen(await self.backend.dead_letters()))

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
        if event.key == "escape" and box.has_focus:
            box.value = ""
            box.display = False
            self.events_pane.set_filter("")
            self.positions_pane.focus()
            event.stop()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_quit_cockpit(self) -> None:
        self._refuse_over_a_dialog()
        positions = len(self.backend.state.positions)
        body = (
            f"{positions} position(s) stay open at the exchange and the engine stops: nothing will watch "
            "them until you start cockpit again (or `cockpit run --headless`)."
        )
        self._quit_when_confirmed(self._open(ConfirmScreen("Quit cockpit?", body, key="q")))

    @work(group="actions", exit_on_error=False)
    async def _quit_when_confirmed(self, answer: asyncio.Future[bool | None]) -> None:
        if await answer:
            await self.stop_engine()
            self.exit(0)

    # ----- command palette ------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            title = PALETTE_TITLES.get(binding.action, binding.description)
            yield SystemCommand(
                title,
                f"{title} (key {binding.key_display or binding.key})",
                partial(self.run_action, binding.action),  # as the key does: refused over a dialog
            )
        yield SystemCommand(PALETTE_TITLE, PALETTE_HELP, partial(self.run_action, "reset_peak"))
        for name in sorted(self.available_themes):
            if name.startswith("cockpit-"):
                yield SystemCommand(
                    f"Theme: {name}",
                    f"switch to the {name} theme (remembered)",
                    lambda name=name: setattr(self, "theme", name),
                )
