"""The contexts the engine's parts are written against, so that no part imports `engine.py`.

`Engine` (engine.py) composes the parts and is the one object that satisfies them all. Each part takes the
narrowest context its functions need: a few small bricks (one concern each) and, per part, the bricks it
combines plus the working data only it touches. A context needing several bricks inherits them (a Protocol
inheriting Protocols asks for everything each asks for), so what a part may touch is written in one place:

    Reads            State, read only
    Events           + emit and record: the only way State changes (through the fold)
    Settings         the config file and the engine's options
    Exchange         the gateway and the symbol map
    SessionFile      the store, the session file's path and whether that path still names it
    Risk             the risk flags (`shared.RiskFlags`) the order path and the risk worker share
    ReconcileQueue   where any part asks for a reconcile
    Running          set once the engine stops: late callbacks say nothing
    Trading          Events + Settings + Exchange: a part that talks to the exchange

`EngineContext` is their union plus what only the market feed and the engine itself use (market buffers,
feeds, the connect budget): the context of `market.py` and of the code that wires it in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cockpit.config.settings import Config
from cockpit.core import events
from cockpit.core.domain import Event, Severity, Telemetry
from cockpit.core.state import State
from cockpit.engine.account_files import AccountFiles
from cockpit.engine.core import EventCore
from cockpit.engine.options import EngineOptions
from cockpit.engine.session_identity import FileIdentity, LostFile
from cockpit.engine.shared import BadDataTally, GuardEpisode, MarketBuffers, RiskFlags
from cockpit.engine.symbols import SymbolMap
from cockpit.exchange.gateway import ExchangeGateway
from cockpit.feeds.budget import ConnectBudget
from cockpit.store import SessionStore
from cockpit.store.reports import StoreTrouble

# ----- the bricks: one concern each -----------------------------------------------------------------------


class Reads(Protocol):
    @property
    def state(self) -> State: ...


class Events(Reads, Protocol):
    def emit(
        self,
        kind: str,
        payload: events.Payload,
        severity: Severity = "info",
        source: str = "engine",
        immediate: bool = False,
    ) -> Event | None: ...

    async def record(
        self,
        kind: str,
        payload: events.Payload,
        severity: Severity = "info",
        source: str = "engine",
    ) -> Event: ...


class Settings(Protocol):
    config: Config
    options: EngineOptions


class Exchange(Protocol):
    gateway: ExchangeGateway
    symbols: SymbolMap


class SessionFile(Protocol):
    store: SessionStore
    session_file: Path
    session_lost: LostFile | None  # the session path no longer names the file opened: deleted or replaced


class Risk(Protocol):
    risk: RiskFlags


class ReconcileQueue(Protocol):
    reconcile_requests: asyncio.Queue[str]


class Running(Protocol):
    stopping: bool


class Trading(Events, Settings, Exchange, Protocol):
    """State, events, the settings and the exchange: what a part that talks to the exchange needs."""


# ----- what each part takes -------------------------------------------------------------------------------


class BadDataContext(Events, Running, Protocol):  # baddata.py
    bad_data: BadDataTally


class GuardContext(Events, Exchange, Protocol):  # guard.py
    guard_episode: GuardEpisode | None
    guard_tasks: set[asyncio.Task[Any]]


class OrderContext(Risk, Trading, Protocol):  # orders.py
    pass


class KillSwitchContext(Events, Settings, SessionFile, Protocol):  # killswitch.py
    account: AccountFiles
    core: EventCore
    kill_flag: Path


class BackupContext(Events, Settings, SessionFile, Protocol):  # backups.py
    last_backup_at: float | None


class DeadLetterContext(OrderContext, SessionFile, Protocol):  # dead_letters.py
    pass


class FlattenContext(OrderContext, KillSwitchContext, ReconcileQueue, Protocol):  # flatten.py
    flatten_lock: asyncio.Lock


class ReconcileContext(Trading, SessionFile, ReconcileQueue, Protocol):  # reconcile.py
    reconcile_lock: asyncio.Lock
    new_session: bool
    started_at: float


class AccountContext(Trading, GuardContext, ReconcileQueue, Protocol):  # account.py (the stream's handlers)
    pending_sizes: dict[str, tuple[events.PositionChanged, float]]


class FileWatchContext(KillSwitchContext, BackupContext, Protocol):  # file_watch.py
    session_identity: FileIdentity | None  # the file the engine opened (device, inode)


class PrecisionContext(Events, Settings, Running, Protocol):  # precision.py
    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]: ...


class ArchiveContext(Events, Settings, SessionFile, Protocol):  # archive.py
    pass


class TickContext(SessionFile, Protocol):  # market.py flush_ticks
    core: EventCore
    market: MarketBuffers


class RotationContext(Events, Settings, TickContext, Running, Protocol):  # rotation.py
    rotation_listeners: list[Callable[[Path], None]]

    def open_store(self, path: Path) -> SessionStore: ...

    def switch_session_file(self, store: SessionStore, path: Path) -> None: ...

    def on_store_trouble(self, trouble: StoreTrouble) -> None: ...


class BroadcastContext(Reads, SessionFile, Protocol):  # broadcast.py: the attached cockpits' feed
    core: EventCore

    def telemetry(self) -> Telemetry: ...


class ClockContext(Trading, KillSwitchContext, Protocol):  # clock.py
    pass


class RiskContext(Risk, KillSwitchContext, Protocol):  # workers.py: drawdown, margin, fill rate
    pass


class ActionContext(ReconcileContext, FlattenContext, BackupContext, Protocol):  # actions.py
    # the notifier's: stops the reminders of incident N (None: all open); the numbers it stopped
    acknowledger: Callable[[int | None], list[int]] | None

    def resolve_symbol(self, text: str) -> str: ...

    def resolve_position(self, text: str) -> str: ...


class FeedContext(Trading, Running, Protocol):  # exchange_feeds.py: an exchange's user stream, built
    ws_base: str
    connect_budget: ConnectBudget


class MetricsContext(Reads, Settings, Exchange, SessionFile, Protocol):  # metrics_source.py (read at scrapes)
    core: EventCore
    market: MarketBuffers
    feeds: list[Any]
    started_at: float
    loop: asyncio.AbstractEventLoop | None

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]: ...


# ----- the union --------------------------------------------------------------------------------------------


class EngineContext(
    ActionContext,
    AccountContext,
    FileWatchContext,
    ClockContext,
    RiskContext,
    DeadLetterContext,
    PrecisionContext,
    BadDataContext,
    ArchiveContext,
    RotationContext,
    BroadcastContext,
    MetricsContext,
    Protocol,
):
    """Everything above, plus what only the market feed (market.py) and the engine's wiring use."""

    ws_base: str
    market: MarketBuffers
    connect_budget: ConnectBudget
    feeds: list[Any]
    feed_seen: set[str]
