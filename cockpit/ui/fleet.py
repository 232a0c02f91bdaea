"""The fleet: one cockpit over several accounts, each with its own engine (`cockpit attach --fleet F`).

`FleetBackend` is the app's backend over one `AttachedBackend` per account. The panes show the selected
account (its State, telemetry, events, link), and every action goes to the selected account's engine, as with
one engine. Each account keeps its recent events and equity history, so switching accounts refills the event
log and the drawdown chart with that account's own; each account's incidents are followed whether it is
selected or not. The fleet-wide emergencies (kill switch on ALL, flatten ALL) go to every engine at once, as
the same typed commands `cockpit ctl` sends (each engine records the action before it acts), and answer with
one verified outcome per account.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from cockpit.core.commands import Answer, Asks, Flatten, KillSwitch
from cockpit.core.domain import ROUTINE_KEPT, ROUTINE_KINDS, Event, Telemetry
from cockpit.core.errors import CockpitError
from cockpit.core.fleet import (
    AccountOutcome,
    AccountView,
    flatten_outcome,
    kill_outcome,
    link_of,
    outcome_of_error,
    unknown,
)
from cockpit.core.incidents import IncidentBuilder, IncidentChange
from cockpit.core.state import State
from cockpit.engine.backups import BackupInfo
from cockpit.store import DeadLetterRow
from cockpit.ui.attached import AttachedBackend
from cockpit.ui.backend import Backend, StatsSource
from widgets.events import MAX_LINES

# events kept per account for its event log, the log's own two bounds (widgets/events.py): the routine
# (marks four times a minute and more) never push out an account's fills, alerts and incidents
RECENT = MAX_LINES
HISTORY = 600  # equity samples kept per account for its drawdown chart (the pane's own bound)
FLATTEN_WAIT_S = 900.0  # a flatten under rate limits can take minutes (as `cockpit ctl flatten`)


@dataclass(eq=False)
class Account:
    """One account of the fleet: its engine's backend and what this cockpit keeps of it while not shown."""

    name: str
    backend: Backend
    act_there: str = ""  # the command to run where its engine is when it cannot be reached
    important: deque[Event] = field(default_factory=lambda: deque(maxlen=RECENT))
    routine: deque[Event] = field(default_factory=lambda: deque(maxlen=ROUTINE_KEPT))
    equity: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    incidents: IncidentBuilder = field(default_factory=IncidentBuilder)
    fresh: list[Event] = field(default_factory=list)  # arrived since the app last took them (selected only)
    _last_equity: Decimal | None = None

    def view(self) -> AccountView:
        backend = self.backend
        attached = not isinstance(backend, AttachedBackend) or backend.attached.is_set()
        received = not isinstance(backend, AttachedBackend) or backend.snapshots > 0
        link = link_of(backend.link_problem(), attached)
        return AccountView(self.name, backend.state, link, len(self.incidents.open_incidents), received)

    @property
    def recent(self) -> list[Event]:
        """Its recent events, in the order they came (as the event log merges them)."""
        return list(heapq.merge(self.important, self.routine, key=lambda e: e.seq))

    def keep(self, events: list[Event]) -> None:
        for event in events:
            (self.routine if event.kind in ROUTINE_KINDS else self.important).append(event)

    def sample_equity(self) -> None:
        equity = self.backend.state.equity
        if equity is not None and equity != self._last_equity:
            self._last_equity = equity
            self.equity.append(float(equity))


async def _attach(backend: AttachedBackend) -> None:
    """Find the engine's socket now (its config may name no running engine yet), then attach."""
    if backend.find_socket is not None:
        backend.path = backend.find_socket()
    await backend.start()


def _not_found(error: Exception) -> CockpitError:
    return CockpitError(
        f"its engine cannot be found ({type(error).__name__})",
        str(error),
        "check that account's config and its session folder's .cockpit-live.json",
    )


# The account an action acts on: the one selected when its key was pressed (set by the app around each
# action; the workers an action starts inherit it), not whichever is selected when its answer is sent.
acting_on: ContextVar[Account | None] = ContextVar("acting_on", default=None)


class FleetBackend:
    """The app's backend over several engines: the selected account's, plus the fleet's rows and actions."""

    read_only = False

    def __init__(self, accounts: list[Account]) -> None:
        if not accounts:
            raise ValueError("a fleet has at least one account")
        self.accounts = accounts
        self.index = 0
        self.label = f"fleet of {len(accounts)}"
        self.switched = False  # the selected account changed: the app refills the log and the chart
        self.incident_changes: list[tuple[str, IncidentChange]] = []  # every account's, for the toasts
        self._on_change: Callable[[], None] | None = None

    # ----- which account -----------------------------------------------------------------------------
    @property
    def selected(self) -> Account:
        return self.accounts[self.index]

    def select(self, index: int) -> Account:
        """Select the account at `index` (wrapping around): every pane follows it at the next repaint."""
        index %= len(self.accounts)
        if index != self.index:
            self.index = index
            self.selected.fresh.clear()  # its recent events refill the log: none shown twice
            self.switched = True
        return self.selected

    def take_switch(self) -> Account | None:
        """The newly selected account, once after each switch (else None)."""
        if not self.switched:
            return None
        self.switched = False
        return self.selected

    def views(self) -> list[AccountView]:
        return [account.view() for account in self.accounts]

    # ----- the link: every engine ---------------------------------------------------------------------
    @property
    def on_change(self) -> Callable[[], None] | None:
        return self._on_change

    @on_change.setter
    def on_change(self, told: Callable[[], None] | None) -> None:
        self._on_change = told
        for account in self.accounts:
            if isinstance(account.backend, AttachedBackend):
                account.backend.on_change = told

    async def start(self) -> None:
        """Attach to every engine at once. One that does not answer is shown UNREACHABLE and tried again
        (the others are watched meanwhile); when none answers, the first's error is raised."""
        attached = [a.backend for a in self.accounts if isinstance(a.backend, AttachedBackend)]
        results = await asyncio.gather(*(_attach(b) for b in attached), return_exceptions=True)
        failures: list[tuple[AttachedBackend, CockpitError]] = []
        for backend, result in zip(attached, results, strict=True):
            if isinstance(result, CockpitError):
                failures.append((backend, result))
            elif isinstance(result, Exception):  # e.g. its pointer file unreadable: that account only
                failures.append((backend, _not_found(result)))
            elif isinstance(result, BaseException):
                raise result
        if attached and len(failures) == len(attached):
            first = failures[0][1]
            raise CockpitError(
                f"no engine of the fleet answers ({len(attached)} tried)",
                f"{first.title}: {first.detail}",
                first.fix,
            )
        for backend, error in failures:
            backend.keep_trying(error)

    async def stop(self) -> None:
        await asyncio.gather(
            *(a.backend.stop() for a in self.accounts if isinstance(a.backend, AttachedBackend)),
            return_exceptions=True,
        )

    # ----- what the app reads: the selected account's -----------------------------------------------------
    @property
    def state(self) -> State:
        return self.selected.backend.state

    def telemetry(self) -> Telemetry:
        return self.selected.backend.telemetry()

    def link_problem(self, now: float | None = None) -> str | None:
        return self.selected.backend.link_problem(now)

    def collect(self) -> None:
        """Take every account's new events: into its recent events and its incidents (selected or not)."""
        for account in self.accounts:
            events = account.backend.take_events()
            account.sample_equity()
            if not events:
                continue
            account.keep(events)
            for event in events:
                self.incident_changes.extend((account.name, c) for c in account.incidents.add(event))
            if account is self.selected:
                account.fresh.extend(events)

    def take_events(self) -> list[Event]:
        self.collect()
        fresh, self.selected.fresh = self.selected.fresh, []
        return fresh

    def take_incident_changes(self) -> list[tuple[str, IncidentChange]]:
        changes, self.incident_changes = self.incident_changes, []
        return changes

    # ----- actions: the selected account's (the one selected when the key was pressed) --------------------
    @property
    def target(self) -> Account:
        return acting_on.get() or self.selected

    async def act(self, command: Asks[Answer]) -> Answer:
        return await self.target.backend.act(command)

    async def backups(self) -> list[BackupInfo]:
        return await self.target.backend.backups()

    async def dead_letters(self) -> list[DeadLetterRow]:
        return await self.target.backend.dead_letters()

    async def restore(self, backup: Path) -> Path:
        return await self.target.backend.restore(backup)

    def stats_source(self) -> AbstractAsyncContextManager[StatsSource]:
        return self.target.backend.stats_source()

    # ----- fleet-wide emergencies: every account at once, one verified outcome each ----------------------
    async def kill_all(self, by: str) -> list[AccountOutcome]:
        cause = "engaged on every account of the fleet from the cockpit"

        async def engage(account: Account) -> AccountOutcome:
            status = await account.backend.act(KillSwitch(on=True, cause=cause, by=by))
            return kill_outcome(account.name, status)

        return await self._every_account(engage, "kill-switch on")

    async def flatten_all(self, by: str) -> list[AccountOutcome]:
        async def flatten(account: Account) -> AccountOutcome:
            command = Flatten(symbols=None, by=by).confirmed()  # confirmed once for the fleet, typed
            backend = account.backend
            if isinstance(backend, AttachedBackend) and backend.attached.is_set():
                result = await backend.ask(command, wait_s=FLATTEN_WAIT_S)
            else:
                result = await backend.act(command)
            return flatten_outcome(account.name, result)

        return await self._every_account(flatten, "flatten --all --yes")

    async def _every_account(
        self, action: Callable[[Account], Awaitable[AccountOutcome]], verb: str
    ) -> list[AccountOutcome]:
        async def one(account: Account) -> AccountOutcome:
            there = f"`cockpit ctl {account.act_there} {verb}`"
            check = f"`cockpit ctl {account.act_there} status`"
            try:
                return await action(account)
            except CockpitError as exc:  # EngineUnreachable: nothing was sent
                return outcome_of_error(account.name, exc, there, check)
            except Exception as exc:  # lost mid-action, an answer unread: its outcome is unknown here
                return unknown(account.name, f"{type(exc).__name__}: {exc}".rstrip(": "), check)

        return list(await asyncio.gather(*(one(account) for account in self.accounts)))
