"""The cockpit over a fleet: the same cockpit (every pane, key and dialog, on the selected account), plus the
fleet pane, the keys that select an account and the two fleet-wide emergencies.

`[` and `]` select the previous and next account: every pane is brought to that account's State, its event
log and drawdown chart are refilled from what this cockpit kept of it. Every action acts on the account that
was selected when its key was pressed (a reconcile result that comes back after a switch still belongs to its
own account). `K` engages the kill switch on ALL accounts (type KILL ALL) and `ctrl+f` flattens ALL accounts
(type FLATTEN ALL): sent to every engine at once, and a dialog gives each account's verified outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen

from cockpit.core.errors import CockpitError
from cockpit.core.fleet import AccountOutcome
from cockpit.core.incidents import IncidentChange
from cockpit.ui.app import BY, PALETTE_TITLES, CockpitApp
from cockpit.ui.attached import AttachedBackend
from cockpit.ui.fleet import Account, FleetBackend, acting_on
from cockpit.ui.panes import Answer
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.fleet import FleetOutcomeScreen
from cockpit.ui.screens.view import ViewScreen
from widgets.fleet import FleetTable

FOOTER_MAKES_ROOM = ("backup", "restore", "filter_events")
# keys whose dialogs and toasts are about the fleet or the cockpit, not the selected account
NO_ACCOUNT_ACTIONS = frozenset(
    {"previous_account", "next_account", "kill_all_accounts", "flatten_all_accounts", "quit_cockpit", "help"}
)
KILL_ALL_WORD = "KILL ALL"
FLATTEN_ALL_WORD = "FLATTEN ALL"
FLEET_PALETTE_TITLES = {
    "previous_account": "Fleet: select the previous account",
    "next_account": "Fleet: select the next account",
    "kill_all_accounts": "Fleet: kill switch on ALL accounts",
    "flatten_all_accounts": "Fleet: flatten ALL accounts",
}


class FleetApp(CockpitApp):
    """The live cockpit over several engines (`FleetBackend`): the selected account's panes, the fleet's."""

    PALETTE_TITLES = {**PALETTE_TITLES, **FLEET_PALETTE_TITLES}
    # the footer at 80 columns: the fleet's keys take the place of backup, restore (refused when attached)
    # and the filter, which stay in help and the palette
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            replace(b, show=False) if b.action in FOOTER_MAKES_ROOM else b
            for b in CockpitApp.BINDINGS
            if isinstance(b, Binding) and b.action not in ("help", "quit_cockpit")
        ),
        Binding("left_square_bracket", "previous_account", "Prev", key_display="[", show=False),
        Binding("right_square_bracket", "next_account", "Acct", key_display="]", id="next_account"),
        Binding("K", "kill_all_accounts", "Kill ALL", id="kill_all_accounts"),
        Binding("ctrl+f", "flatten_all_accounts", "Flat ALL", id="flatten_all_accounts"),
        *(b for b in CockpitApp.BINDINGS if isinstance(b, Binding) and b.action in ("help", "quit_cockpit")),
    ]

    def __init__(self, fleet: FleetBackend) -> None:
        super().__init__(fleet)
        self.fleet = fleet
        self.last_fleet_outcomes: list[AccountOutcome] = []
        self.default_limits = (self.kill_pct, self.breaker_pct)  # an engine that names none: these
        fleet.switched = True  # the first repaint shows the first account as selected

    # ----- layout and repaint --------------------------------------------------------------------------
    def compose_above_panes(self) -> ComposeResult:
        yield FleetTable(id="fleet")

    def panes_ready(self) -> None:
        self.fleet_pane = self.query_one("#fleet", FleetTable)
        self.fleet_pane.border_title = "Fleet · [ ] account · K kill ALL · ctrl+f flatten ALL"
        self.fleet.on_change = self.repaint_soon
        self._start_fleet()

    def _repaint(self) -> None:
        if not self.header_pane.is_attached:
            return
        account = self.fleet.take_switch()
        if account is not None:
            self._show_account(account)
        self._apply_limits(self.fleet.selected)
        super()._repaint()
        compact = self.screen.has_class("-compact")
        self.fleet_pane.show(self.fleet.views(), self.fleet.index, compact)
        token = acting_on.set(None)  # each toast names its own account
        try:
            for name, change in self.fleet.take_incident_changes():
                self._toast_account_incident(name, change)
        finally:
            acting_on.reset(token)
        self._show_incident_count()

    def _show_account(self, account: Account) -> None:
        """Every pane to the newly selected account: its log and chart refilled from what was kept of it."""
        account.fresh.clear()  # they are in its recent events, shown below
        self.events_pane.reset(account.recent)
        self.drawdown_pane.reset_history(list(account.equity))
        self._apply_limits(account)
        self._seq_shown = -1
        total = len(self.fleet.accounts)
        self.header_pane.show_account(f"{account.name} ({self.fleet.index + 1}/{total})")

    def _apply_limits(self, account: Account) -> None:
        """The selected account's engine's own risk limits (its hello names them, at its first attach and at
        each re-attach), else the defaults: never another account's."""
        kill, breaker = self.default_limits
        backend = account.backend
        if isinstance(backend, AttachedBackend):
            kill = backend.kill_pct if backend.kill_pct is not None else kill
            breaker = backend.breaker_pct if backend.breaker_pct is not None else breaker
        if (kill, breaker) != (self.kill_pct, self.breaker_pct):
            self.kill_pct, self.breaker_pct = kill, breaker
            self._seq_shown = -1  # every pane again, with these limits

    def new_events(self, events: list[Any]) -> None:
        """Incidents are followed per account by the fleet (`_repaint`), selected or not."""

    def _show_incident_count(self) -> None:
        still_open = len(self.fleet.selected.incidents.open_incidents)
        self.events_pane.border_subtitle = (
            f"{still_open} open incident{'s' if still_open != 1 else ''}" if still_open else ""
        )

    def _toast_account_incident(self, account: str, change: IncidentChange) -> None:
        incident = change.incident
        if change.change == "opened":
            self.notify(
                incident.title,
                title=f"{account}: incident #{incident.number} {incident.severity.upper()}",
                severity="error" if incident.severity == "critical" else "warning",
                timeout=10,
            )
        elif change.change == "resolved" and incident.end is not None:
            self.notify(
                f"{incident.title} — resolved after {incident.end - incident.start:.0f} s",
                title=f"{account}: incident #{incident.number} resolved",
                timeout=5,
            )

    # ----- the engines ---------------------------------------------------------------------------------
    def _start_fleet(self) -> None:
        self.run_worker(self._attach_fleet(), group="engine", exclusive=True, exit_on_error=False)

    async def _attach_fleet(self) -> None:
        self.notify(f"attaching to {len(self.fleet.accounts)} engines…", timeout=3)
        try:
            await self.fleet.start()
        except CockpitError as exc:
            self.error = exc
            self.exit(exc.exit_code)
            return
        self.refresh_panes()

    async def stop_engine(self) -> None:
        """Detach from every engine: they keep running."""
        await self.fleet.stop()

    def _quit_warning(self) -> str:
        engines = len(self.fleet.accounts)
        positions = sum(len(a.backend.state.positions) for a in self.fleet.accounts)
        return (
            f"The {engines} engines keep running and keep watching their {positions} position(s): only this "
            "cockpit detaches. Attach again with the same `cockpit attach` command."
        )

    # ----- actions: on the account selected when the key was pressed ----------------------------------------
    async def run_action(
        self,
        action: str | tuple[str, str, tuple[object, ...]],
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        name = action[1] if isinstance(action, tuple) else action.split("(")[0].rsplit(".", 1)[-1]
        # the workers this action starts inherit it (the fleet's own and the cockpit's act on no one account)
        token = acting_on.set(None if name in NO_ACCOUNT_ACTIONS else self.fleet.selected)
        try:
            return await super().run_action(action, default_namespace, namespaces)
        finally:
            acting_on.reset(token)

    def _open(self, dialog: Screen[Answer]) -> asyncio.Future[Answer | None]:
        """A dialog about one account names it: "[alpha] Flatten BTC/USDT:USDT?", "[alpha] Reconcile: …",
        "[alpha] Dead-letter queue: 2 open" (what it shows or acts on is that account's, never the one
        selected since)."""
        account = acting_on.get()
        if account is not None and isinstance(dialog, ConfirmScreen):
            dialog.title_text = f"[{account.name}] {dialog.title_text}"
        elif account is not None and isinstance(dialog, ViewScreen):
            dialog.account = account.name
        return super()._open(dialog)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast of an action on one account names it in its title; messages are shown as written (an
        account's name or an engine's words may hold brackets: never read as markup)."""
        account = acting_on.get()
        if account is not None and not title.startswith(f"[{account.name}]"):
            title = f"[{account.name}] {title}".strip()
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_previous_account(self) -> None:
        self._refuse_over_a_dialog()
        self.fleet.select(self.fleet.index - 1)
        self.refresh_panes()

    def action_next_account(self) -> None:
        self._refuse_over_a_dialog()
        self.fleet.select(self.fleet.index + 1)
        self.refresh_panes()

    def _every_account(self) -> str:
        return ", ".join(a.name for a in self.fleet.accounts)

    def action_kill_all_accounts(self) -> None:
        self._refuse_over_a_dialog()
        body = (
            f"Engage the kill switch on EVERY account of the fleet ({self._every_account()}), at once: no "
            "new risk anywhere; positions stay open. Each engine records it, then answers whether it is "
            "engaged; an engine out of reach is named, to act there."
        )
        dialog = ConfirmScreen("Kill switch on ALL accounts?", body, word=KILL_ALL_WORD)
        self._fleet_worker("kill", self._open(dialog))

    def action_flatten_all_accounts(self) -> None:
        self._refuse_over_a_dialog()
        body = (
            f"Close EVERY position on EVERY account ({self._every_account()}) with reduce-only market "
            "orders, at once, and engage each account's kill switch; then each engine verifies flat at its "
            "exchange. An engine out of reach is named, to act there."
        )
        dialog = ConfirmScreen("Flatten ALL accounts?", body, word=FLATTEN_ALL_WORD)
        self._fleet_worker("flatten", self._open(dialog))

    def _fleet_worker(self, what: str, answer: asyncio.Future[bool | None]) -> None:
        self.run_worker(self._fleet_action(what, answer), group="actions", exit_on_error=False)

    async def _fleet_action(self, what: str, answer: asyncio.Future[bool | None]) -> None:
        if not await answer:
            self.notify("nothing done on the fleet")
            return
        outcomes: list[AccountOutcome]
        if what == "kill":
            self.notify("engaging the kill switch on every account…", timeout=3)
            outcomes = await self.fleet.kill_all(BY)
            action = "kill switch on ALL accounts"
        else:
            self.notify("flattening every account…", timeout=3)
            outcomes = await self.fleet.flatten_all(BY)
            action = "flatten ALL accounts"
        self.last_fleet_outcomes = outcomes
        await self._open_when_free(FleetOutcomeScreen(action, outcomes))
