"""The engine: background asyncio workers that turn what the exchange says and what the operator does into
events. The same engine runs headless (`cockpit run --headless`) and inside the Textual app.

    engine = Engine(config, gateway, store, ws_base="ws://127.0.0.1:PORT")
    await engine.start()          # restore, reconcile, start feeds and workers
    await engine.control(Flatten(symbols=None, by="operator").confirmed())
    await engine.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, assert_never, cast

from cockpit.config.settings import Config
from cockpit.core import events
from cockpit.core.commands import (
    Acknowledge,
    Adopt,
    Answer,
    Asks,
    Backup,
    CancelOrders,
    Command,
    DlqCleanup,
    DlqList,
    DlqRemove,
    DlqRetry,
    DlqStats,
    Flatten,
    KillSwitch,
    Orders,
    ReadCopy,
    Reconcile,
    ResetPeak,
    Result,
    Status,
    check_confirmed,
)
from cockpit.core.domain import Event, Severity, Telemetry, key_symbol, position_key
from cockpit.core.incidents import Repeats
from cockpit.core.retry import Backoff
from cockpit.core.snapshot import state_from_json
from cockpit.core.state import State, fold
from cockpit.engine import baddata
from cockpit.engine.account_files import AccountFiles, account_key
from cockpit.engine.core import EventCore, StoreFailed
from cockpit.engine.options import EngineOptions
from cockpit.engine.session_identity import LostFile, identity_of
from cockpit.engine.shared import BadDataTally, GuardEpisode, MarketBuffers, RiskFlags
from cockpit.engine.symbols import SymbolMap
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, GatewayNotice
from cockpit.feeds.budget import ConnectBudget
from cockpit.store import SessionStore, StoreTrouble

log = logging.getLogger(__name__)


USER_STREAM_WAIT_S = 5.0
WORKER_RESTART = Backoff.doubling(1.0, 30.0)  # a crashed worker restarts after 1, 2, 4 … 30 s


class Engine:
    def __init__(
        self,
        config: Config,
        gateway: ExchangeGateway,
        store: SessionStore,
        ws_base: str,
        options: EngineOptions | None = None,
        account: AccountFiles | None = None,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.store = store
        self.ws_base = ws_base.rstrip("/")
        self.options = options or EngineOptions()
        self.session_file = Path(store.path)
        self.kill_flag = self.session_file.parent / "kill_switch.flag"
        self.session_identity = identity_of(self.session_file)  # the file just opened (file_watch.py)
        self.session_lost: LostFile | None = None
        self.account = account or AccountFiles(
            account_key(
                config.exchange.id,
                config.exchange.base_url,
                config.exchange.testnet,
                str(getattr(gateway.client, "apiKey", "") or ""),
            )
        )
        self.symbols = SymbolMap({})
        self.core: EventCore = EventCore(store, State())
        self.restored_from: int = 0
        self.new_session = True
        self.started_at = time.time()
        self.stopped = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.reconcile_lock = asyncio.Lock()
        self.flatten_lock = asyncio.Lock()
        self.reconcile_requests: asyncio.Queue[str] = asyncio.Queue()
        self.feeds: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started = False
        self.risk = RiskFlags()  # what the order path and the risk worker tell each other
        self.connect_budget = ConnectBudget()  # every socket of this engine shares the exchange's limit
        self.critical_streak = 0
        self.critical_ops: set[str] = set()
        self.notice_repeats = Repeats()  # exchange trouble repeated on every retry: one event per ~30 s
        self.guard_tasks: set[asyncio.Task[Any]] = set()
        self.guard_episode: GuardEpisode | None = None  # other clients' trading while the kill switch is on
        # the user stream's position sizes waiting for the fills that explain them: (payload, since)
        self.pending_sizes: dict[str, tuple[events.PositionChanged, float]] = {}
        self.startup_events: list[tuple[str, events.Payload, Severity]] = []  # recorded after session.started
        self.last_backup_at: float | None = None
        self._tick_rate: tuple[float, int] = (time.monotonic(), 0)
        self.market = MarketBuffers()
        self.bad_data = BadDataTally()  # bad exchange data refused at the boundary (engine/baddata.py)
        self.feed_seen: set[str] = set()
        self.stopping = False
        self.rotation_listeners: list[Callable[[Path], None]] = []  # told the new file of a rotation
        self.store_options: dict[str, Any] = {}  # how a rotation opens the next file (SessionStore.open)
        self.acknowledger: Callable[[int | None], list[int]] | None = None  # the notifier's (runtime.py)

    # ----- state and events ------------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self.core.state

    def emit(
        self,
        kind: str,
        payload: events.Payload,
        severity: Severity = "info",
        source: str = "engine",
        immediate: bool = False,
    ) -> Event | None:
        """`EventCore.emit`, or None once the engine stopped or its store failed. The payload comes from its
        kind's builder (cockpit/core/events.py); an unknown kind raises UnknownEventKind, stopped or not."""
        events.check_kind(kind)
        if self.core.store_failed or self.stopped.is_set():  # a late callback after stop: nothing to say
            return None
        return self.core.emit(kind, payload, severity, source, immediate)

    async def record(
        self,
        kind: str,
        payload: events.Payload,
        severity: Severity = "info",
        source: str = "engine",
    ) -> Event:
        return await self.core.record(kind, payload, severity, source)

    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]:
        return self.core.subscribe(subscriber)

    # ----- the session file --------------------------------------------------------------------------
    def open_store(self, path: Path) -> SessionStore:
        """A new session file for this engine (a rotation: cockpit/engine/rotation.py)."""
        store = SessionStore.open(
            path,
            meta={"exchange": self.config.exchange.id, "mode": self.options.mode},
            **self.store_options,
        )
        store.commit_observers = self.store.commit_observers  # the same list: /metrics follows the rotation
        return store

    def switch_session_file(self, store: SessionStore, path: Path) -> None:
        """The engine's file is now `path` (a rotation); the core switched first."""
        self.store = store
        self.session_file = path
        self.session_identity = identity_of(path)
        self.restored_from = 0
        self.new_session = False

    def on_store_trouble(self, trouble: StoreTrouble) -> None:
        self._on_store_trouble(trouble)

    # ----- lifecycle -------------------------------------------------------------------------------
    def restore(self) -> State:
        """State as of the last committed event: the last snapshot plus the fold of the events after it."""
        snapshot = self.store.last_snapshot()
        state = State()
        after = 0
        if snapshot is not None:
            after, text = snapshot
            state = state_from_json(text)
        state = fold(self.store.read_events(after_seq=after), state)
        self.restored_from = state.seq
        self.new_session = state.seq == 0
        return state

    async def start(self) -> None:
        from cockpit.engine import account, killswitch, market, precision, reconcile, startup, workers

        self.loop = asyncio.get_running_loop()
        self.core.load(self.restore())
        self.core.on_store_failure = self._on_store_failure
        self.store.start(on_trouble=self._on_store_trouble)
        self.started = True
        self.core.start()
        self.gateway.add_listener(self._on_gateway_notice)
        self.gateway.add_listener(lambda notice: baddata.on_gateway_notice(self, notice))
        await self.record(
            "session.started",
            events.session_started(
                mode=self.options.mode,
                exchange=self.config.exchange.id,
                session_file=str(self.session_file),
                restored=not self.new_session,
                restored_seq=self.restored_from,
            ),
            source="engine",
        )
        for kind, payload, severity in self.startup_events:
            await self.record(kind, payload, severity, "store")
        await killswitch.carry_over(self)
        asked = time.monotonic()
        try:
            markets = await self.gateway.load_markets()
        except GatewayError as exc:  # retried by the gateway already: say so, and that the run ends
            raise startup.exchange_unreachable(self.config, exc, time.monotonic() - asked) from exc
        unlisted = startup.unlisted_symbols(self.config, markets)
        if unlisted is not None:
            raise unlisted
        self.symbols = SymbolMap.from_markets(markets, self.config.feeds.symbols)  # every market, ids unified
        precision.follow(self, markets)  # market.info: ticks and steps of the followed and held symbols
        self.feeds = [market.build_market_feed(self), account.build_user_feed(self)]
        for feed in self.feeds:
            await feed.start()
        # reconcile once the user stream is live, so no fill falls between the history read and the stream
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(USER_STREAM_WAIT_S):
                await self.feeds[1].wait_connected()
        try:
            await reconcile.reconcile(self, "startup")
            for item in ("exchange", "database"):  # both just answered: the session file took every event
                if not self.state.health_of(item).ok:
                    self.emit(
                        "health.changed", events.health_changed(item=item, status="ok"), "info", "engine"
                    )
        except GatewayError as exc:
            self.emit(
                "alert",
                events.alert(message=f"startup reconcile failed: {exc.title}: {exc.detail}; retrying"),
                "critical",
                "reconcile",
            )
            self.reconcile_requests.put_nowait("startup-retry")
        self.tasks = [
            asyncio.create_task(self._supervise(name, fn), name=name) for name, fn in workers.all(self)
        ]

    async def stop(self) -> None:
        if self.stopping:
            await self.stopped.wait()  # a stop is under way (e.g. after a store failure): let it finish
            return
        self.stopping = True
        if self.guard_episode is not None and self.guard_episode.flush is not None:
            self.guard_episode.flush.cancel()  # its summary would come after the store closed
        self.bad_data.cancel()
        me = asyncio.current_task()  # a stop after a store failure runs as one of the guard tasks
        for task in [*self.tasks, *self.guard_tasks]:
            if task is not me:
                task.cancel()
        if self.tasks:
            _, stuck = await asyncio.wait(self.tasks, timeout=5.0)
            for task in stuck:
                log.error("worker %s did not stop within 5 s of being cancelled", task.get_name())
        for feed in self.feeds:
            with contextlib.suppress(Exception):
                await feed.stop()
        from cockpit.engine import market

        market.flush_ticks(self)
        if self.started and not self.core.store_failed:
            with contextlib.suppress(StoreFailed):
                stopped = events.session_stopped(seq=self.core.state.seq + 1)
                await self.record("session.stopped", stopped, source="engine")
            if self.session_lost is not None:  # the open file vanishes on close: copy it to the last event
                from cockpit.engine.file_watch import last_backup

                await last_backup(self)
        await self.core.stop()
        self.stopped.set()

    async def _supervise(self, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Run a worker for ever; a crash becomes an event and the worker restarts after a pause."""
        failures = 0
        while True:
            try:
                await fn()
                return
            except asyncio.CancelledError:
                raise
            except StoreFailed:
                return
            except GatewayError as exc:  # the exchange said no: already an event; try again later, quietly
                failures += 1
                delay = WORKER_RESTART.delay(failures)
                message = f"{name}: {exc.title}; retrying in {delay:.0f} s"
            except Exception as exc:
                log.exception("worker %s failed", name)
                failures += 1
                delay = WORKER_RESTART.delay(failures)
                message = f"worker {name} failed: {exc!r}; restarting in {delay:.0f} s"
            self.emit("alert", events.alert(message=message), "warning", "engine")
            await asyncio.sleep(delay)

    # ----- operator actions (keys, ctl and the command palette all end here) ------------------------
    async def control(self, command: Asks[Answer]) -> Answer:
        """Run an operator's command (cockpit/core/commands.py) and answer with its result type; each action
        that changes something is recorded as an `operator.action` before it runs. A dangerous command
        without its confirmation word is refused (`check_confirmed`)."""
        if not isinstance(command, Command):
            raise TypeError(f"not a command: {command!r}")
        check_confirmed(command)  # a dangerous command carries its word, from every caller
        return cast(Answer, await self._run(command))

    async def _run(self, command: Command) -> Result:
        from cockpit.engine import actions, dead_letters

        match command:
            case Status():
                return actions.status(self)
            case Reconcile():
                return await actions.reconcile(self, command)
            case Flatten():
                return await actions.flatten(self, command)
            case KillSwitch():
                return await actions.kill_switch(self, command)
            case Backup():
                return await actions.backup(self, command)
            case ReadCopy():
                return await actions.read_copy(self, command)
            case Adopt():
                return await actions.adopt(self, command)
            case ResetPeak():
                return await actions.reset_peak(self, command)
            case Acknowledge():
                return await actions.acknowledge(self, command)
            case Orders():
                return actions.orders(self, command)
            case CancelOrders():
                return await actions.cancel_orders(self, command)
            case DlqList(op=op, reason=reason, status=status):
                return dead_letters.list_letters(self.store, op, reason, status)
            case DlqStats():
                return dead_letters.stats(self.store)
            case DlqRetry():
                return await dead_letters.operator_retry(self, command)
            case DlqRemove(id=letter_id):
                return await dead_letters.remove(self.store, letter_id)
            case DlqCleanup(older_than_days=days):
                return await dead_letters.cleanup(self.store, days)
            case _:
                assert_never(command)

    def telemetry(self) -> Telemetry:
        """Live figures for the UI that are not events (latency, writer queue, ages, tick rate)."""
        now = time.time()
        stats = self.store.stats()
        then, seen = self._tick_rate
        mono = time.monotonic()
        rate = (self.market.ticks_seen - seen) / (mono - then) if mono - then > 0 else 0.0
        if mono - then >= 2.0:
            self._tick_rate = (mono, self.market.ticks_seen)
        p95 = self.gateway.latency.p(95)
        return Telemetry(
            rest_p95_ms=round(p95, 1) if p95 else None,
            last_error=self.gateway.last_error,
            store_queue=stats.queue_depth,
            last_commit_age_s=now - stats.last_commit_at if stats.last_commit_at else None,
            last_backup_age_s=now - self.last_backup_at if self.last_backup_at else None,
            ticks_per_s=round(rate, 1),
            now=now,
        )

    def resolve_symbol(self, text: str) -> str:
        """`BTCUSDT`, `btcusdt` or `BTC/USDT:USDT` → the unified symbol cockpit follows."""
        from cockpit.engine.killswitch import ActionRefused

        candidate = text if "/" in text else self.symbols.unified(text.upper())
        known = set(self.symbols.unified_symbols) | {key_symbol(k) for k in self.state.positions}
        if candidate not in known:
            raise ActionRefused(
                f"unknown symbol {text!r}",
                f"cockpit follows {', '.join(sorted(known))}",
                "use one of those (exchange ids like BTCUSDT work too)",
            )
        return candidate

    def resolve_position(self, text: str) -> str:
        """A position as the operator names it → its key: `BTCUSDT` (the symbol: every leg of it), or one
        hedge leg, `BTCUSDT long` / `BTC/USDT:USDT short`."""
        words = text.split()
        if len(words) == 2 and words[1].lower() in ("long", "short"):
            return position_key(self.resolve_symbol(words[0]), words[1].lower())
        return self.resolve_symbol(text)

    # ----- what the gateway and store report ------------------------------------------------------
    def _on_gateway_notice(self, notice: GatewayNotice) -> None:
        kinds: dict[str, tuple[str, Severity]] = {
            "rate_limited": ("exchange.rate_limited", "warning"),
            "banned": ("exchange.banned", "critical"),
            "maintenance": ("exchange.maintenance", "warning"),
            "auth_failed": ("exchange.auth_failed", "critical"),
            "recovered": ("exchange.recovered", "info"),
            "failed": ("exchange.error", "warning"),
        }
        if notice.kind not in kinds:
            return
        kind, severity = kinds[notice.kind]
        op, message = notice.op, notice.message
        retry_after_s = None if notice.retry_after_s is None else round(notice.retry_after_s, 3)
        error_class = None if notice.error_class is None else notice.error_class.value
        payload: events.Payload
        if notice.kind in ("rate_limited", "banned", "maintenance"):
            facts = None if notice.retry_after_s is None else round(notice.retry_after_s)
            notices = self.notice_repeats.let_through(notice.kind, facts, time.monotonic())
            if notices is None:
                return  # the same trouble, already said: its incident is open
            build = {
                "rate_limited": events.exchange_rate_limited,
                "banned": events.exchange_banned,
                "maintenance": events.exchange_maintenance,
            }[notice.kind]
            payload = build(
                op=op, message=message, notices=notices, retry_after_s=retry_after_s, error_class=error_class
            )
        elif notice.kind == "recovered":
            held = self.notice_repeats.clear()  # the notices held after the last event of each trouble
            payload = events.exchange_recovered(
                op=op,
                message=message,
                held_notices=held,
                retry_after_s=retry_after_s,
                error_class=error_class,
            )
        elif notice.kind == "auth_failed":
            fix = f"check the API key: cockpit keys check {self.config.exchange.id}"
            payload = events.exchange_auth_failed(
                op=op, message=message, fix=fix, retry_after_s=retry_after_s, error_class=error_class
            )
        else:
            payload = events.exchange_error(
                op=op, message=message, retry_after_s=retry_after_s, error_class=error_class
            )
        if (
            notice.kind == "failed"
            and notice.error_class is not None
            and notice.error_class.value == "critical"
        ):
            severity = "critical"
        self.emit(kind, payload, severity, "exchange")
        self._count_critical(notice)

    def _count_critical(self, notice: GatewayNotice) -> None:
        """N consecutive critical exchange errors engage the kill switch (runbook 003 §5). The streak ends
        when an operation that failed critically succeeds again (public calls keep working when a key is
        revoked, so any success is not enough)."""
        critical = notice.error_class is not None and notice.error_class.value == "critical"
        if notice.kind == "recovered" and notice.op in self.critical_ops:
            self.critical_streak = 0
            self.critical_ops.clear()
        elif notice.kind == "failed" and critical:
            self.critical_streak += 1
            self.critical_ops.add(notice.op)
            limit = self.options.critical_errors_to_kill
            if self.critical_streak == limit and self.loop is not None:
                from cockpit.engine.killswitch import engage

                cause = f"{limit} consecutive critical exchange errors (last: {notice.op}: {notice.message})"
                task = self.loop.create_task(engage(self, cause, "risk"))
                self.guard_tasks.add(task)
                task.add_done_callback(self.guard_tasks.discard)

    def _on_store_trouble(self, trouble: StoreTrouble) -> None:
        """Called from the store's writer thread: hop onto the loop."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._store_trouble_on_loop, trouble)

    def _store_trouble_on_loop(self, trouble: StoreTrouble) -> None:
        if self.core.store_failed:
            return
        if trouble.recovered:
            self.emit(
                "health.changed",
                events.health_changed(
                    item="database",
                    status="ok",
                    message=f"database writes recovered after {trouble.attempt} failure(s)",
                ),
                "info",
                "store",
                immediate=True,
            )
            return
        self.emit(
            "db.error",
            events.db_error(
                message=f"database write failed: {trouble.error_text}",
                attempt=trouble.attempt,
                retry_in_s=trouble.next_delay_s,
                final=trouble.final,
            ),
            "critical" if trouble.final else "warning",
            "store",
            immediate=True,
        )

    def _on_store_failure(self, exc: BaseException) -> None:
        """All store retries failed: engage the kill switch in memory, say so loudly, stop safely."""
        log.critical("session store failed: %s — kill switch engaged, engine stopping", exc)
        from cockpit.engine.killswitch import engage_unpersisted

        engage_unpersisted(self, f"database failure: {exc}")
        task = asyncio.get_running_loop().create_task(self.stop())
        self.guard_tasks.add(task)
        task.add_done_callback(self.guard_tasks.discard)
