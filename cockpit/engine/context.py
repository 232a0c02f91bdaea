"""The context every part of the engine is written against, so that no part imports `engine.py`.

`Engine` (engine.py) composes the parts (account, market, reconcile, flatten, orders, kill switch, guard,
clock, precision, backups, dead letters, workers, actions) and is the one object that satisfies this
Protocol. A part reads State, emits or records events (the only way State changes: through the fold),
calls the gateway, and shares working data through the plain objects of `shared.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cockpit.config.settings import Config
from cockpit.core import events
from cockpit.core.domain import Event, Severity
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


class EngineContext(Protocol):
    # what the engine is for: the account, its exchange, its session file
    config: Config
    options: EngineOptions
    gateway: ExchangeGateway
    store: SessionStore
    core: EventCore
    account: AccountFiles
    symbols: SymbolMap
    session_file: Path
    kill_flag: Path
    ws_base: str
    # shared working data (see shared.py) and the parts' own coordination
    risk: RiskFlags
    market: MarketBuffers
    guard_episode: GuardEpisode | None
    bad_data: BadDataTally
    guard_tasks: set[asyncio.Task[Any]]
    pending_sizes: dict[str, tuple[events.PositionChanged, float]]
    connect_budget: ConnectBudget
    feeds: list[Any]
    feed_seen: set[str]
    reconcile_requests: asyncio.Queue[str]
    reconcile_lock: asyncio.Lock
    flatten_lock: asyncio.Lock
    new_session: bool
    started_at: float
    stopping: bool
    last_backup_at: float | None
    session_identity: FileIdentity | None  # the file the engine opened (device, inode)
    session_lost: LostFile | None  # the session path no longer names it: deleted or replaced

    @property
    def state(self) -> State: ...

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

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]: ...

    def resolve_symbol(self, text: str) -> str: ...
