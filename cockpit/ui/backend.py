"""What the app shows and drives, behind one interface: a live engine, or fixed data (snapshots, and replay).

The Textual app never reaches past this: it reads `state`, `telemetry()` and `take_events()`, and acts with
typed commands (cockpit/core/commands.py), which all end in the engine's `control()` — the same function
`cockpit ctl` reaches through the control socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from cockpit.core.commands import Answer, Asks, ReadCopy
from cockpit.core.domain import Event, Telemetry
from cockpit.core.errors import CockpitError
from cockpit.core.state import State
from cockpit.engine.backups import BackupInfo, list_backups
from cockpit.engine.live_copy import discard
from cockpit.replay.session import ReplaySession
from cockpit.store import DeadLetterRow


@dataclass(frozen=True)
class StatsSource:
    """The session file the stats screen reads (`path`), under the name the operator knows it by."""

    path: Path
    name: str


class ReadOnly(CockpitError):
    """An action on a backend that cannot act (a replay, a fixed snapshot)."""


class Backend(Protocol):
    label: str  # shown in the header: what this is connected to
    read_only: bool

    @property
    def state(self) -> State: ...

    def telemetry(self) -> Telemetry: ...

    def take_events(self) -> list[Event]: ...

    def link_problem(self, now: float | None = None) -> str | None: ...  # the engine out of reach (attach)

    async def act(self, command: Asks[Answer]) -> Answer: ...

    async def backups(self) -> list[BackupInfo]: ...

    async def dead_letters(self) -> list[DeadLetterRow]: ...

    async def restore(self, backup: Path) -> Path: ...  # the copy restored

    def stats_source(self) -> AbstractAsyncContextManager[StatsSource]: ...


class EngineRuntime(Protocol):
    def add_subscriber(self, subscriber: Callable[[Event], None]) -> None: ...

    async def start(self) -> Any: ...

    async def stop(self) -> None: ...

    async def restore(self, backup: Path) -> Any: ...

    @property
    def restored_backup(self) -> Path | None: ...  # the copy the last restore used (a newer one may stand in)


class EngineBackend:
    """The live engine, started, stopped and restored by the app through its runtime."""

    read_only = False

    def __init__(self, runtime: EngineRuntime, label: str = "") -> None:
        self.runtime = runtime
        self.label = label
        self.engine: Any = None
        self._events: list[Event] = []
        self.on_change: Callable[[], None] | None = None  # told when events arrive (the app repaints soon)
        runtime.add_subscriber(self._collect)  # from session.started on, across restores

    def _collect(self, event: Event) -> None:
        self._events.append(event)
        if self.on_change is not None:
            self.on_change()

    async def start(self) -> None:
        self.engine = await self.runtime.start()

    async def stop(self) -> None:
        self.engine = None
        await self.runtime.stop()

    async def restore(self, backup: Path) -> Path:
        self.engine = None
        self.engine = await self.runtime.restore(backup)
        return self.runtime.restored_backup or backup

    @property
    def state(self) -> State:
        return self.engine.state if self.engine is not None else State()

    def telemetry(self) -> Telemetry:
        if self.engine is None:
            return Telemetry()
        result: Telemetry = self.engine.telemetry()
        return result

    def link_problem(self, now: float | None = None) -> str | None:
        return None  # the engine is in this process, or there is none

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    async def act(self, command: Asks[Answer]) -> Answer:
        if self.engine is None:
            raise CockpitError("the engine is not running", fix="wait for it to start, or restart cockpit")
        result: Answer = await self.engine.control(command)
        return result

    async def backups(self) -> list[BackupInfo]:
        if self.engine is None:
            return []
        return await asyncio.to_thread(list_backups, self.engine.session_file, True)

    @asynccontextmanager
    async def stats_source(self) -> AsyncIterator[StatsSource]:
        """A read copy of the live session to analyse (no backup: nothing is left behind), deleted after."""
        result = await self.act(ReadCopy(by="ui"))
        copy = Path(result.path)
        name = self.engine.session_file.name if self.engine is not None else copy.name
        try:
            yield StatsSource(copy, name)
        finally:
            await asyncio.to_thread(discard, copy)

    async def dead_letters(self) -> list[DeadLetterRow]:
        if self.engine is None:
            return []
        rows: list[DeadLetterRow] = await asyncio.to_thread(self.engine.store.dead_letters, status="open")
        return rows


@dataclass
class FixedBackend:
    """A State and events that do not move: for snapshot tests and screenshots."""

    fixed_state: State
    events: list[Event]
    fixed_telemetry: Telemetry
    label: str = "fixed"
    read_only: bool = True

    @property
    def state(self) -> State:
        return self.fixed_state

    def telemetry(self) -> Telemetry:
        return self.fixed_telemetry

    def link_problem(self, now: float | None = None) -> str | None:
        return None  # the engine is in this process, or there is none

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    async def act(self, command: Asks[Answer]) -> Answer:
        raise ReadOnly("this view is read-only", f"{command.cmd} needs a live engine")

    async def backups(self) -> list[BackupInfo]:
        return []

    async def dead_letters(self) -> list[DeadLetterRow]:
        return []

    async def restore(self, backup: Path) -> Path:
        raise ReadOnly("this view is read-only", "restore needs a live engine")

    @asynccontextmanager
    async def stats_source(self) -> AsyncIterator[StatsSource]:
        raise ReadOnly("this view has no session file", "stats need a live engine or a replay")
        yield  # an async generator, for the context manager


class ReplayBackend:
    """A replay as the app's backend: the state at the replay's position; no action reaches an exchange."""

    read_only = True

    def __init__(self, session: ReplaySession) -> None:
        self.session = session
        self.label = f"REPLAY {session.path.name}"
        self._pending: list[Event] = []
        self.reset = False  # set after a seek: the app clears its event log

    @property
    def state(self) -> State:
        return replace(self.session.state, mode="replay")  # what is shown is marked REPLAY everywhere

    def telemetry(self) -> Telemetry:
        return Telemetry(now=self.session.current_ts)

    def link_problem(self, now: float | None = None) -> str | None:
        return None  # the engine is in this process, or there is none

    def take_events(self) -> list[Event]:
        events, self._pending = self._pending, []
        return events

    def advance(self, count: int) -> None:
        self._pending.extend(self.session.step(count))

    def seek(self, position: int) -> None:
        self.session.seek(position)
        position = self.session.position
        self._pending = self.session.events_between(max(0, position - 200), position)
        self.reset = True

    async def act(self, command: Asks[Answer]) -> Answer:
        raise ReadOnly("REPLAY: actions are disabled", f"{command.cmd} would touch an exchange")

    async def backups(self) -> list[BackupInfo]:
        return []

    @asynccontextmanager
    async def stats_source(self) -> AsyncIterator[StatsSource]:
        yield StatsSource(self.session.path, self.session.path.name)

    async def dead_letters(self) -> list[DeadLetterRow]:
        return []

    async def restore(self, backup: Path) -> Path:
        raise ReadOnly("REPLAY: actions are disabled", "restore needs a live engine")
