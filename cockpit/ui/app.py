"""The cockpit: the Textual app a trader runs over SSH in tmux.

The engine runs inside the app's event loop as background workers (the same engine as headless mode). The
panes, their repaint from the latest State on a timer (never per tick), the themes and the palette are the
ones the replay shows too (`PanesApp`, cockpit/ui/panes.py); this app adds what only a live cockpit does: it
starts and stops the engine and turns keys into engine actions. The widgets are views and never touch the
engine.

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
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any, ClassVar

from textual import events, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.message_pump import MessagePump
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from cockpit.core.commands import (
    Acknowledge,
    Adopt,
    Asks,
    Backup,
    CancelOrders,
    Flatten,
    KillSwitch,
    Reconcile,
    ResetPeak,
)
from cockpit.core.commands import Answer as Reply
from cockpit.core.domain import Event
from cockpit.core.errors import CockpitError
from cockpit.core.incidents import IncidentBuilder, IncidentChange
from cockpit.core.state import SESSION_FILE_GONE
from cockpit.engine.runtime import freeze_startup_heap
from cockpit.ui.attached import AttachedBackend
from cockpit.ui.backend import Backend, EngineBackend
from cockpit.ui.panes import PanesApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.dialogs import DeadLettersScreen, ReconcileScreen, RestoreScreen
from cockpit.ui.screens.peak import PALETTE_HELP, PALETTE_TITLE, reset_peak_dialog

PALETTE_TITLES = {
    "reconcile": "Reconcile with the exchange",
    "flatten_selected": "Flatten the selected position",
    "flatten_all": "Flatten all positions",
    "kill_switch": "Kill switch: engage / release",
    "backup": "Backup the session now",
    "restore": "Restore from a backup",
    "dead_letters": "Dead-letter queue",
    "orders": "Orders: show the open orders (and back)",
    "cancel_order": "Cancel the selected order",
    "cancel_symbol_orders": "Cancel every order of the selected order's symbol",
    "cancel_all_orders": "Cancel every open order on the account",
    "filter_events": "Filter events",
    "stats": "Session stats and analytics",
    "help": "Help: keys and runbook scenarios",
    "quit_cockpit": "Quit cockpit",
}
KEY_TRAVEL_LIMIT_S = (
    0.5  # how often a key still travelling is checked on (its marker may be lost with a widget)
)
BY = "ui"  # who the app's commands are by


class CockpitApp(PanesApp):
    """The live cockpit: the shared panes (cockpit/ui/panes.py) plus the actions that reach the engine."""

    TITLE = "cockpit"
    PALETTE_TITLES = PALETTE_TITLES
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reconcile", "Reconcile", id="reconcile"),
        Binding("f", "flatten_selected", "Flat", id="flatten"),
        Binding("F", "flatten_all", "Flat all", id="flatten_all"),
        Binding("k", "kill_switch", "Kill", id="kill_switch"),
        Binding("b", "backup", "Backup", id="backup"),
        Binding("R", "restore", "Restore", id="restore"),
        Binding("d", "dead_letters", "DLQ", id="dead_letters", show=False),  # in help and the palette
        Binding("a", "stats", "Stats", id="stats", show=False),
        Binding("A", "acknowledge", "Ack", id="acknowledge", show=False),  # stops critical reminders
        Binding("o", "orders", "Orders", id="orders", show=False),
        Binding("x", "cancel_order", "Cancel order", id="cancel_order", show=False),
        Binding("ctrl+x", "cancel_symbol_orders", "Cancel symbol's", id="cancel_symbol_orders", show=False),
        Binding("X", "cancel_all_orders", "Cancel all", id="cancel_all_orders", show=False),
        Binding("slash", "filter_events", "Filter", id="filter"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit_cockpit", "Quit", id="quit"),
    ]

    def __init__(self, backend: Backend, kill_pct: float = 15.0, breaker_pct: float = 7.0) -> None:
        super().__init__(backend, kill_pct, breaker_pct)
        self.error: CockpitError | None = None
        self.incidents = IncidentBuilder()  # the live session's incidents, the same definition as the report
        self._typed: deque[events.Key] = deque()  # keys read from the terminal, not routed yet
        self._key_travelling = False  # a typed key is on its way through the widgets up to the app
        self._keys_routed = 0
        self._marker_at: MessagePump | None = None  # where the travelling key's marker is queued now

    # ----- the engine: started with the panes, stopped however the app ends ----------------------------
    def panes_ready(self) -> None:
        if isinstance(self.backend, EngineBackend | AttachedBackend):
            self.backend.on_change = self.repaint_soon
            self._start_engine()

    async def panes_closing(self) -> None:
        await self.stop_engine()

    # ----- type-ahead: every key typed reaches the dialog on top -----------------------------------------
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

    # ----- the engine -----------------------------------------------------------------------------
    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _start_engine(self) -> None:
        backend = self.backend
        assert isinstance(backend, EngineBackend | AttachedBackend)
        self.notify(
            f"attaching to the engine at {backend.path}…"
            if isinstance(backend, AttachedBackend)
            else "starting the engine: restore, reconcile, feeds…",
            timeout=3,
        )
        try:
            await backend.start()
        except CockpitError as exc:
            self.error = exc
            self.exit(exc.exit_code)
            return
        if isinstance(backend, AttachedBackend):  # the engine's own risk figures
            self.kill_pct = backend.kill_pct or self.kill_pct
            self.breaker_pct = backend.breaker_pct or self.breaker_pct
            self._seq_shown = -1
        if not self.is_headless:  # a real terminal: the `cockpit` process itself (not Pilot tests)
            freeze_startup_heap()
        self.refresh_panes()

    def worker_failed(self, worker: Worker[Any]) -> bool:
        """The engine failing to start ends the app with its error (the other failures are notified)."""
        if worker.group != "engine":
            return False
        error = worker.error
        self.error = (
            error
            if isinstance(error, CockpitError)
            else CockpitError("the engine could not start", repr(error), "see the log and retry")
        )
        self.exit(self.error.exit_code)
        return True

    async def stop_engine(self) -> None:
        """Stop the engine in this process; an attached cockpit only detaches (the demo's stops its own)."""
        if isinstance(self.backend, EngineBackend | AttachedBackend):
            await self.backend.stop()

    def new_events(self, events: list[Event]) -> None:
        self._follow_incidents(events)

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
            f"Close {target} with market orders that can only reduce (reduce-only; on a hedge leg, its "
            "closing side) at the exchange's precision, then verify flat"
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

    # ----- orders: cancel the selected one (x again), its symbol's or all (type CANCEL) ----------------
    def _chosen_order(self, key: str) -> tuple[str, str] | None:
        """(client order id, symbol) under the orders pane's cursor, when the orders are on screen and focused
        (an order is never canceled from a row the trader cannot see); else None, said why."""
        pane = self.orders_pane
        chosen = pane.selected_order if pane.has_focus else None
        order = self.backend.state.orders.get(chosen) if chosen is not None else None
        if order is None:
            hint = (
                "no open orders" if not self.backend.state.orders else "press o, pick an order (arrow keys)"
            )
            self.notify(f"{hint}, then press {key}", severity="warning")
            return None
        return order.client_order_id, order.symbol

    def action_cancel_order(self) -> None:
        self._refuse_over_a_dialog()
        chosen = self._chosen_order("x")
        if chosen is None:
            return
        cid, symbol = chosen
        order = self.backend.state.orders[cid]
        what = f"{order.side.upper()} {order.type} {order.amount} {symbol}"
        dialog = ConfirmScreen(f"Cancel order {cid}?", f"Cancel {what} at the exchange.", key="x")
        command = CancelOrders(order=cid, order_id=order.order_id, by=BY)  # refused if it changed meanwhile
        self._cancel_worker(command, self._open(dialog))

    def action_cancel_symbol_orders(self) -> None:
        self._refuse_over_a_dialog()
        chosen = self._chosen_order("ctrl+x")
        if chosen is None:
            return
        symbol = chosen[1]
        body = f"Cancel every open order of {symbol} (conditional orders too), then verify none is left."
        dialog = ConfirmScreen(f"Cancel all {symbol} orders?", body, word="CANCEL")
        self._cancel_worker(CancelOrders(symbols=(symbol,), by=BY).confirmed(), self._open(dialog))

    def action_cancel_all_orders(self) -> None:
        self._refuse_over_a_dialog()
        body = "Cancel EVERY open order on the account (conditional orders too), then verify none is left."
        dialog = ConfirmScreen("Cancel all orders?", body, word="CANCEL")
        self._cancel_worker(CancelOrders(by=BY).confirmed(), self._open(dialog))

    @work(group="actions", exit_on_error=False)
    async def _cancel_worker(self, command: CancelOrders, answer: asyncio.Future[bool | None]) -> None:
        if not await answer:
            self.notify("nothing canceled")
            return
        result = await self._act(command, "cancel")
        if result is not None:
            severity: SeverityLevel = "information" if result.verified and not result.errors else "error"
            detail = "\n".join(result.errors)
            self.notify(f"{result.message}\n{detail}".strip(), title="cancel", severity=severity, timeout=8)

    @work(group="actions", exit_on_error=False)
    async def action_acknowledge(self) -> None:
        """Every open incident acknowledged: the notifications of critical ones stop repeating."""
        result = await self._act(Acknowledge(by=BY), "acknowledge")
        if result is not None:
            self.notify(result.message, title="acknowledge", timeout=5)

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
        if self.backend.state.health_of("database").status in SESSION_FILE_GONE:
            body += (
                " The session file was lost: if you picked a copy taken since, the copy written when the"
                " engine stops (the same file, to its last event) is restored instead."
            )
        if not await self._open_when_free(ConfirmScreen("Restore from backup?", body, word="RESTORE")):
            return
        self.notify(f"restoring from {chosen.name}…", timeout=3)
        try:
            restored = await self.backend.restore(chosen)
        except CockpitError as exc:
            self.notify(f"{exc.title}\n{exc.detail}\n{exc.fix}", title="restore failed", severity="error")
            return
        self._seq_shown = -1
        newer = "" if restored == chosen else " (the lost file's newer copy, taken at stop)"
        self.notify(f"restored from {restored.name}{newer} and reconciled", title="restore done")

    @work(group="actions", exit_on_error=False)
    async def action_dead_letters(self) -> None:
        await self._open_when_free(DeadLettersScreen(await self.backend.dead_letters()))

    def action_quit_cockpit(self) -> None:
        self._refuse_over_a_dialog()
        self._quit_when_confirmed(self._open(ConfirmScreen("Quit cockpit?", self._quit_warning(), key="q")))

    def _quit_warning(self) -> str:
        """What quitting leaves behind: an attached cockpit detaches, the engine keeps watching."""
        positions = len(self.backend.state.positions)
        backend = self.backend
        if isinstance(backend, AttachedBackend) and backend.detaches:
            return (
                f"The engine (pid {backend.engine_pid}) keeps running and keeps watching the {positions} "
                f"position(s): only this cockpit detaches. Attach again with `cockpit attach {backend.path}`."
            )
        if isinstance(backend, AttachedBackend):
            return (
                f"{positions} position(s) stay open at the exchange and this demo's engine (pid "
                f"{backend.engine_pid}) stops with it. An engine you run as a service keeps running when a "
                "cockpit attached to it quits."
            )
        return (
            f"{positions} position(s) stay open at the exchange and the engine stops: nothing will watch "
            "them until you start cockpit again (or `cockpit run --headless`)."
        )

    @work(group="actions", exit_on_error=False)
    async def _quit_when_confirmed(self, answer: asyncio.Future[bool | None]) -> None:
        if await answer:
            await self.stop_engine()
            self.exit(0)

    # ----- command palette: the keys' and themes' (PanesApp), and reset-peak, which has no key -----------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(PALETTE_TITLE, PALETTE_HELP, partial(self.run_action, "reset_peak"))
