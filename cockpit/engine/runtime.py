"""Wiring: config + credentials → store, gateway, engine, control socket; run until told to stop.

Used by `cockpit run`, `cockpit demo` and (later) the Textual app, so all of them run the same engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import orjson

from cockpit.config.secrets import Credentials
from cockpit.config.settings import Config
from cockpit.core import events
from cockpit.core.domain import ROUTINE_KINDS, Event, Severity
from cockpit.core.errors import CockpitError
from cockpit.core.state import State
from cockpit.engine.account_files import AccountFiles, account_key
from cockpit.engine.broadcast import Broadcast
from cockpit.engine.control import ControlServer, live_pointer, prepare_socket_folder, socket_path_for
from cockpit.engine.engine import Engine
from cockpit.engine.metrics_source import MetricsEndpoint, serve_metrics
from cockpit.engine.options import EngineOptions
from cockpit.engine.session_identity import LostFile
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.dlq import DeadLetter
from cockpit.exchange.gateway import ExchangeGateway, RetryPolicy
from cockpit.exchange.venues import dialect_for
from cockpit.notify.notifier import Notifier
from cockpit.store import SessionStore
from cockpit.store.private import make_private, private_dir

log = logging.getLogger(__name__)


@dataclass
class RunSpec:
    config: Config
    credentials: Credentials
    session_file: Path
    options: EngineOptions = field(default_factory=EngineOptions)
    store_options: dict[str, Any] = field(default_factory=dict)  # e.g. retry_delays for SessionStore.open
    gateway_policy: RetryPolicy | None = None  # the gateway's retries (None: its defaults)
    notify_retry_s: tuple[float, ...] | None = None  # a target's retry delays (None: delivery.py's)
    notify_settle_s: float | None = None  # how long a resolution waits for a relapse (None: MERGE_S)
    notify_stream_hold_s: float | None = None  # how long a stream's incident waits (None: STREAM_HOLD_S)


def ws_base_for(config: Config) -> str:
    """Where the exchange's websockets are (its dialect says: production, testnet or `base_url`'s host)."""
    exchange = config.exchange
    return dialect_for(exchange.id).ws_base(exchange.base_url, exchange.testnet)


def session_file_for(config: Config) -> Path:
    if config.session.path is not None:
        from cockpit.engine.rotation import follow_rotations

        return follow_rotations(config.session.path)  # a rotated session goes on in its newest file
    from datetime import UTC, datetime

    private_dir(config.session.dir, ours=False)  # the default lives under $XDG_DATA_HOME
    return config.session.resolve_session_file(datetime.now(UTC))


class DeadLetterRecorder:
    """The gateway's dead-letter sink: persisted in the session store and announced as `dlq.added`."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.engine: Engine | None = None

    def add(self, letter: DeadLetter) -> None:
        store = self.engine.store if self.engine is not None else self.store  # the file now (rotation)
        store.add_dead_letter(
            op=letter.op,
            params=letter.params,
            error_class=letter.error_class,
            error_type=letter.error_type,
            reason=letter.reason,
            attempts=letter.attempts,
            ts=letter.at,
        )
        if self.engine is not None:
            self.engine.emit(
                "dlq.added",
                events.dlq_added(
                    op=letter.op,
                    error_class=letter.error_class,
                    error_type=letter.error_type,
                    reason=letter.reason,
                    attempts=letter.attempts,
                    message=f"{letter.op} failed for good ({letter.error_type}): {letter.reason}",
                ),
                "warning",
                "exchange",
            )


def account_of(spec: RunSpec) -> AccountFiles:
    exchange = spec.config.exchange
    return AccountFiles(
        account_key(exchange.id, exchange.base_url, exchange.testnet, spec.credentials.api_key)
    )


async def build_engine(spec: RunSpec, account: AccountFiles | None = None) -> Engine:
    client = make_ccxt_client(  # first: an unsupported exchange fails before the session file is opened
        spec.config.exchange.id,
        spec.credentials.api_key,
        spec.credentials.api_secret,
        base_url=spec.config.exchange.base_url,
        testnet=spec.config.exchange.testnet,
    )
    try:
        store = SessionStore.open(
            spec.session_file,
            meta={"exchange": spec.config.exchange.id, "mode": spec.options.mode},
            **spec.store_options,
        )
    except BaseException:
        await client.close()
        raise
    recorder = DeadLetterRecorder(store)
    gateway = ExchangeGateway(client, dead_letters=recorder, policy=spec.gateway_policy)
    engine = Engine(
        spec.config, gateway, store, ws_base_for(spec.config), spec.options, account or account_of(spec)
    )
    engine.store_options = dict(spec.store_options)
    recorder.engine = engine
    return engine


class Runtime:
    """One engine with its control socket, started and stopped as a unit (headless mode and the app)."""

    def __init__(self, spec: RunSpec, printer: Callable[[Event], None] | None = None) -> None:
        self.spec = spec
        self.subscribers: list[Callable[[Event], None]] = [printer] if printer is not None else []
        self.engine: Engine | None = None
        self.control: ControlServer | None = None
        self.broadcast: Broadcast | None = None  # attached cockpits
        self.account = account_of(spec)
        self.lost: LostFile | None = None  # the last engine's session file was deleted or replaced
        self.restored_backup: Path | None = None  # the copy the last restore put in place
        self._tasks: set[asyncio.Task[None]] = set()
        self.notifier: Notifier | None = None  # kept across restores: one for the whole run
        self._last_engine: Engine | None = None
        self.metrics: MetricsEndpoint | None = None  # /metrics ([metrics] listen), kept across a restore

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) /metrics is served on (the port bound for "HOST:0"), or None."""
        return self.metrics.address if self.metrics is not None else None

    def add_subscriber(self, subscriber: Callable[[Event], None]) -> None:
        """Told every event from the first (session.started), across restarts and restores."""
        self.subscribers.append(subscriber)

    async def start(self) -> Engine:
        from cockpit.engine.integrity import check_session_file

        os.umask(0o077)  # what DuckDB creates itself (a WAL, its temp files) is owner-only too
        self.account.claim()  # one engine per account: refused before any file is opened
        try:
            recovery = check_session_file(self.spec.session_file)
            engine = await build_engine(self.spec, self.account)
        except BaseException:
            self.account.release()
            raise
        self.engine = self._last_engine = engine
        if recovery is not None:
            engine.startup_events.extend(recovery.events())
        for subscriber in self.subscribers:
            engine.subscribe(subscriber)
        try:
            if self.notifier is None:
                self.notifier = make_notifier(self.spec, self._notifier_emit, self._notifier_state)
            if self.notifier is not None:
                engine.core.stream(self.notifier.on_event)  # committed events, in order, from session.started
                engine.acknowledger = self.notifier.acknowledge
            # before the engine acts: a socket path too long, or a folder not ours and 0700, is refused
            socket = socket_path_for(engine.session_file)
            prepare_socket_folder(socket)
            risk = self.spec.config.risk
            self.broadcast = Broadcast(engine, risk.kill_drawdown_pct, risk.breaker_drawdown_pct)
            self.control = ControlServer(engine, socket, self.broadcast)
            # bound before the engine acts too: an address in use fails the start at once (exit 2)
            self.metrics = await serve_metrics(self.metrics, self.spec.config, engine, self.notifier)
            await engine.start()
            await self.control.start()
            if self.notifier is not None:
                self.notifier.start()
        except BaseException:
            await self.stop()
            raise
        self.lost = None  # a restore put a verified file back in place
        self._announce(engine.session_file)
        engine.rotation_listeners.append(self._rotated)
        return engine

    def _notifier_emit(self, kind: str, payload: events.Payload, severity: Severity, source: str) -> None:
        if self.engine is not None:
            self.engine.emit(kind, payload, severity, source)

    def _notifier_state(self) -> State:
        engine = self.engine or self._last_engine
        return engine.state if engine is not None else State()

    def _announce(self, session_file: Path) -> None:
        """Where this engine's session and socket are: the account's record, and the session folder's."""
        assert self.control is not None
        self.account.announce(session_file, self.control.path)
        live_pointer(session_file.parent).write_text(
            orjson.dumps(
                {
                    "session": str(session_file),
                    "socket": str(self.control.path),
                    "pid": os.getpid(),
                    "started": time.time(),
                }
            ).decode()
        )
        make_private(live_pointer(session_file.parent))  # an older one may be 0644

    def _rotated(self, session_file: Path) -> None:
        """The engine went on in a new file: a restore restores that one; cockpits get its State afresh; the
        socket moves beside the new file, where every command looks for it."""
        self.spec = replace(self.spec, session_file=session_file)
        if self.broadcast is not None:
            self.broadcast.rotated()
        task = asyncio.get_running_loop().create_task(self._move_socket(session_file))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _move_socket(self, session_file: Path) -> None:
        try:
            if self.control is not None:
                await self.control.move_to(socket_path_for(session_file))
            self._announce(session_file)
        except (CockpitError, OSError) as exc:
            log.error("the control socket could not move beside %s: %s", session_file, exc)

    async def restore(self, backup: Path) -> Engine:
        """Stop, swap the verified backup in (the current file kept aside), start again and reconcile."""
        from cockpit.engine.restore import check_backup, swap_in_backup

        session_file = self.spec.session_file
        check_backup(backup)  # a bad backup is refused while the engine still runs
        await self.stop(keep_account=True)  # no other engine may take the account meanwhile
        backup = self.restored_backup = self._newest_copy_of_a_lost_file(backup, check_backup)
        try:
            aside = swap_in_backup(session_file, backup)
        except BaseException:
            await self.start()  # the session file was not replaced: carry on watching the account
            raise
        engine = await self.start()
        engine.emit(
            "db.restored",
            events.db_restored(
                backup=str(backup),
                kept_aside=str(aside) if aside else None,
                restored_seq=engine.restored_from,
                message=f"session restored from {backup.name} (through event {engine.restored_from}); "
                f"the previous file is kept as {aside.name if aside else '—'}; reconciled with the exchange",
            ),
            "warning",
            "store",
        )
        return engine

    def _newest_copy_of_a_lost_file(self, chosen: Path, check: Callable[[Path], object]) -> Path:
        """A session file deleted or replaced under the engine is copied at once and again at stop (its events
        up to `session.stopped`); the operator chose from a list made before the stop. Chosen among the copies
        written since the loss (the watch's, or one the operator took), the one taken at stop holds everything
        they hold, and more: restore that one."""
        lost = self.lost
        copies = [Path(copy) for copy in lost.backups] if lost is not None else []
        if lost is None or not copies or copies[-1] == chosen:
            return chosen
        if chosen not in copies and not _written_since(chosen, lost.at):  # a copy from before the loss
            return chosen
        newest = copies[-1]
        try:
            check(newest)
        except CockpitError as exc:
            log.warning("the copy taken at stop (%s) is not usable (%s): restoring %s", newest, exc, chosen)
            return chosen
        log.warning(
            "restoring %s, the copy of the lost session file taken at stop (chosen: %s)", newest, chosen
        )
        return newest

    async def stop(self, keep_account: bool = False) -> None:
        """No new connection first; then the engine stops (its last events still reach attached cockpits);
        then the cockpits are told `bye`, and the socket goes."""
        engine, self.engine = self.engine, None
        broadcast, self.broadcast = self.broadcast, None
        if self.control is not None:
            self.control.stop_listening()
        if self.metrics is not None:  # a restore (keep_account) keeps the endpoint for the next engine
            self.metrics.forget()
            if not keep_account:
                await self.metrics.stop()
                self.metrics = None
        try:
            if engine is not None:
                await self._stop_engine(engine, keep_account)
        finally:
            if broadcast is not None:
                await broadcast.close("the engine stopped")
            if self.control is not None:
                await self.control.stop()
                self.control = None
            if self.notifier is not None and not keep_account:  # a restore keeps it: the run goes on
                notifier, self.notifier = self.notifier, None
                await notifier.stop()

    async def _stop_engine(self, engine: Engine, keep_account: bool) -> None:
        pointer = live_pointer(engine.session_file.parent)
        with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError):
            if orjson.loads(pointer.read_bytes()).get("pid") == os.getpid():
                pointer.unlink()
        try:
            await engine.stop()
        finally:
            self.lost = engine.session_lost
            try:
                await engine.gateway.close()
            finally:
                engine.store.close()
                if not keep_account:
                    self.account.release()


def make_notifier(
    spec: RunSpec, emit: Callable[[str, events.Payload, Severity, str], None], state: Callable[[], State]
) -> Notifier | None:
    """The run's notifier, when it has targets or a heartbeat URL. A target without a URL is refused here,
    before the engine acts (exit 2, naming where the URL goes)."""
    from cockpit.config.secrets import HEARTBEAT, load_notify_urls, locate_notify_url
    from cockpit.notify.messages import Composer
    from cockpit.notify.notifier import Notifier

    config = spec.config
    urls = load_notify_urls(list(config.notify.targets))
    heartbeat, _ = locate_notify_url(HEARTBEAT)
    if not urls and heartbeat is None:
        return None
    exchange = config.exchange.id + (" testnet" if config.exchange.testnet else "")
    where = f"{exchange} on {socket.gethostname()}"
    notifier = Notifier(
        config.notify,
        urls,
        Composer(where, config.source),
        emit,
        state,
        heartbeat_url=heartbeat,
        retry_delays_s=spec.notify_retry_s,
    )
    if spec.notify_settle_s is not None:
        notifier.router.settle_s = spec.notify_settle_s
    if spec.notify_stream_hold_s is not None:
        notifier.router.stream_hold_s = spec.notify_stream_hold_s
    return notifier


def _written_since(path: Path, at: float) -> bool:
    try:
        return path.stat().st_mtime >= at
    except OSError:
        return False


def freeze_startup_heap() -> None:
    """Once the engine runs, move what exists now (modules, engine, app: ~300 k objects) out of the cyclic
    collector's sight (`gc.freeze`): its full passes then walk only newer objects. Measured with the UI bench
    at 25 k ticks/s: full-collection pauses of 127–155 ms fell to a median 29 ms, max 82 ms. For processes
    that run cockpit (the CLI), not for libraries or tests: frozen objects are never collected."""
    gc.collect()
    gc.freeze()


async def run(
    spec: RunSpec,
    printer: Callable[[Event], None] | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the engine until SIGINT/SIGTERM, `duration` seconds, `stop`, or a store failure. Raises
    SessionFileLost (exit 3, saying where the backup is) when the session file was deleted or replaced."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(spec, printer)
    engine = await runtime.start()
    freeze_startup_heap()
    try:
        waiters: list[asyncio.Task[Any]] = [
            asyncio.create_task(stop.wait()),
            asyncio.create_task(engine.stopped.wait()),
        ]
        if duration is not None:
            waiters.append(asyncio.create_task(asyncio.sleep(duration)))
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
    finally:
        await runtime.stop()
    if runtime.lost is not None:
        raise runtime.lost.error()
    return 3 if engine.core.store_failed else 0


# ----- printing events (headless mode) ---------------------------------------------------------------------
def json_printer(event: Event) -> None:
    sys.stdout.write(orjson.dumps(event.to_json()).decode() + "\n")
    sys.stdout.flush()


def text_printer(event: Event) -> None:
    """One line per event for a terminal; routine once-a-second kinds are left to --json and the UI. Seq 0
    (news about the store, not in the session file) reads `-`."""
    if event.kind in ROUTINE_KINDS:
        return
    stamp = time.strftime("%H:%M:%S", time.localtime(event.ts)) + f".{int(event.ts * 1000) % 1000:03d}"
    sys.stdout.write(
        f"{stamp} {event.seq or '-':>7} {event.severity:<8} {event.kind:<22} {_summary(event.payload)}\n"
    )
    sys.stdout.flush()


def _summary(payload: dict[str, Any]) -> str:
    if "message" in payload:
        return str(cast(events.Wording, payload)["message"])
    if "last_qty" in payload:  # a fill
        fill = cast(events.OrderFilled | events.OrderPartiallyFilled, payload)
        return (
            f"{fill['symbol']} {fill['side']} {fill['last_qty']} @ {fill['last_price']} "
            f"(filled {fill.get('filled', fill['last_qty'])}/{fill.get('amount')}, "
            f"{fill.get('origin')}, trade {fill.get('trade_id')})"
        )
    if "client_order_id" in payload and "symbol" in payload:  # another order event
        order = cast(events.OrderRejected | events.OrderCanceled, payload)  # between them, every key read
        price = f" @ {order['price']}" if order.get("price") not in (None, "0") else ""
        return (
            f"{order['symbol']} {order.get('side')} {order.get('type')} {order.get('amount')}{price} "
            f"({order.get('origin', 'cockpit')}, {order['client_order_id']})"
            + (f": {order['reason']}" if order.get("reason") else "")
        )
    parts = []
    for key, value in payload.items():
        if isinstance(value, dict | list):
            value = orjson.dumps(value).decode()
            if len(value) > 80:
                value = value[:77] + "..."
        parts.append(f"{key}={value}")
    return " ".join(parts)
