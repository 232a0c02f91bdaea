"""The session store: one writer thread owns the read-write DuckDB connection of one session file.

Callers on any thread queue work (`append`, `append_critical`, `append_ticks`, `put_snapshot`, dead-letter
changes). Records (events in seq order, snapshots, dead-letter changes) and tick batches wait in two queues;
each turn the writer takes every queued record and writes them in ONE transaction, or, when no record waits,
the tick batches at the head (up to TICK_ROWS_PER_COMMIT rows) in one INSERT. It commits, and only then
resolves that write's futures. A critical event's future therefore resolves when its COMMIT has returned, i.e.
when the WAL is fsynced: it is durable. It waits for at most the one write in progress, never for market
data queued before it.

Each event row carries a running hash chained from GENESIS (see hashing.py) so `verify()` can catch rows that
a damaged WAL silently dropped. The engine's seq must be exactly last_seq + 1 every time; anything else is a
programming error and raises in the caller, before anything is written.

When a batch fails (I/O error, disk full, lock) it is rolled back and retried after `retry_delays` (default
0, 2, 4, 8, 16 s), each failure reported through `on_trouble`; when the last retry fails too, the store is
failed: every pending future fails with StoreError and further writes are refused.

Reads run on the caller's thread through their own `cursor()` of the owned connection (one connection shared
by threads fails with "connection is busy"); they see committed batches only.

What is queued and the shape of a batch are in batches.py, the read queries and the count of readers at
work in reads.py, when the writer checkpoints (and trims DuckDB's cache) in checkpoints.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, TypeVar, cast

import duckdb
import polars as pl

from cockpit.core.domain import Event
from cockpit.core.retry import Backoff
from cockpit.store import archive, backup, dlq, files, reads
from cockpit.store.archive import ArchiveResult
from cockpit.store.batches import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    TICK_SCHEMA,
    Archive,
    ArrowView,
    Backup,
    Barrier,
    BatchItem,
    DlqAdd,
    DlqPurge,
    DlqStatus,
    EventItem,
    Fence,
    MetaSet,
    Prepared,
    Record,
    SnapshotItem,
    Stop,
    TickRow,
    TicksItem,
    prepare,
    tick_batch,
    tick_frame,
)
from cockpit.store.checkpoints import CACHE_TRIM_LIMIT, CHECKPOINT_WAL_BYTES, Checkpoints
from cockpit.store.dlq import DeadLetterRow, NewDeadLetter
from cockpit.store.errors import EventRefused, StoreError
from cockpit.store.hashing import payload_text
from cockpit.store.opening import open_session
from cockpit.store.reads import READ_CHUNK, Readers
from cockpit.store.reports import StoreStats, StoreTrouble
from cockpit.store.schema import set_meta
from cockpit.store.verify import MARK_KEY, VerifyReport, mark_text

log = logging.getLogger(__name__)

__all__ = [  # also the constants and tick helpers that moved to batches, reads and checkpoints
    "CACHE_TRIM_LIMIT",
    "CHECKPOINT_WAL_BYTES",
    "DEFAULT_RETRY_DELAYS",
    "EVENT_SCHEMA",
    "FOLLOW_UP_WAIT_S",
    "READ_CHUNK",
    "TICK_ROWS_PER_COMMIT",
    "TICK_SCHEMA",
    "FaultHook",
    "SessionStore",
    "TickRow",
    "tick_batch",
    "tick_frame",
]

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.0, 2.0, 4.0, 8.0, 16.0)

_EVENTS_BY_FRAME = 64  # above this many events in a batch, insert them as one Arrow frame
# Tick rows written per INSERT at most: bounds how long a critical event can wait behind market data (the
# insert in progress; inserting 10 k rows takes a few ms); more queued rows wait for the next turn.
TICK_ROWS_PER_COMMIT = 10_000
# After resolving a commit, how long the writer waits for the woken caller's next record before it starts
# on queued market data (see _let_waiters_follow_up); a record ends the wait at once.
FOLLOW_UP_WAIT_S = 0.0005

# A hook called with every SQL statement the writer is about to execute; raising from it makes that statement
# fail. It exists for tests only: a full disk or a failing device cannot be produced in the test sandbox (no
# tmpfs to fill, no read-only mount, and chmod does not stop root), so the tests inject the failure here, at
# the SQL boundary, and everything above it (rollback, retries, futures, refusal) runs for real.
FaultHook = Callable[[str], None]

T = TypeVar("T")


def _settle(future: Future[T], result: T | None = None, error: BaseException | None = None) -> None:
    """Resolve a future unless its waiter cancelled it (the write itself still happened, or failed)."""
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(T, result))


class SessionStore:
    """One session file, written by one thread. Create with `SessionStore.open(path)`, then `start()`."""

    def __init__(
        self,
        path: Path,
        con: duckdb.DuckDBPyConnection,
        meta: dict[str, str],
        last_seq: int,
        last_hash: str,
        *,
        retry_delays: Sequence[float],
        fault_hook: FaultHook | None,
    ) -> None:
        self.path = path
        self.meta = meta
        self.last_seq = last_seq  # as on disk when opened
        self.last_hash = last_hash
        self._con = con
        self._wcur = con.cursor()  # the writer's own cursor; readers make theirs
        self._views = {"ticks": ArrowView(TICK_SCHEMA), "events": ArrowView(EVENT_SCHEMA)}
        for table, view in self._views.items():  # here, outside any transaction a rollback would undo
            self._wcur.register(f"{table}_batch", view)
        self._readers = Readers()
        self._checkpoints = Checkpoints(
            self._wcur, files.companions(path)[1], self._readers, threshold=CHECKPOINT_WAL_BYTES
        )
        self._retries = Backoff.of(retry_delays or (0.0,), retries=len(retry_delays))
        self._fault_hook = fault_hook
        self._on_trouble: Callable[[StoreTrouble], None] | None = None
        self._cond = threading.Condition()
        self._records: deque[Record | Fence] = deque()  # events, snapshots, dead letters, barriers
        self._ticks: deque[TicksItem] = deque()
        self._ticks_queued = 0  # tick batches ever queued, so a barrier knows which ones precede it
        self._ticks_taken = 0  # ... and taken by the writer
        self._in_flight = 0
        self._queued_seq = last_seq  # last seq accepted into the queue
        self._written_seq = last_seq  # last seq committed
        self._written_hash = last_hash
        self._failure: StoreError | None = None
        self._closing = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._dlq_next_id = dlq.next_id(self._wcur)
        self._commits = 0
        self._events_written = 0
        self._ticks_written = 0
        self._errors = 0
        self._retrying = False
        self._last_commit_at: float | None = None
        self._last_commit_ms: float | None = None
        # told each commit's latency in seconds, on the writer thread (the /metrics histogram): quick ones
        self.commit_observers: list[Callable[[float], None]] = []

    # ----------------------------------------------------------------------------------------- lifecycle

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = True,
        meta: Mapping[str, str] | None = None,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        fault_hook: FaultHook | None = None,
    ) -> SessionStore:
        """Open (or create) a session file read-write; SessionFileError, with the file untouched, if unusable.

        A new file gets `meta` (session_id, created_at, exchange, mode, any other keys); an existing file
        keeps its own meta. An older schema is migrated in one transaction; a newer one is refused.
        """
        path = Path(path)
        files.claim(path)  # before reading a byte of it (see files.py on POSIX locks)
        try:
            opened = open_session(path, create=create, meta=meta)
        except BaseException:
            files.release(path)
            raise
        return cls(
            path,
            opened.con,
            opened.meta,
            opened.last_seq,
            opened.last_hash,
            retry_delays=retry_delays,
            fault_hook=fault_hook,
        )

    def start(self, on_trouble: Callable[[StoreTrouble], None] | None = None) -> None:
        """Start the writer thread. `on_trouble` is called on that thread: keep it quick and thread-safe."""
        with self._cond:
            if self._thread is not None or self._closed:
                raise StoreError("session store already started or closed", str(self.path))
            self._on_trouble = on_trouble
            self._thread = threading.Thread(
                target=self._run, name=f"store-writer:{self.path.name}", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Write the queue, CHECKPOINT and close the file. Does not raise for a failed store (see stats)."""
        with self._cond:
            if self._closed:
                return
            if self._closing:
                thread = self._thread
            else:
                self._closing = True
                self._records.append(Fence(Stop(), self._ticks_queued))
                self._cond.notify()
                thread = self._thread
        if thread is None:
            self._run()  # never started: drain on this thread, which then owns the connection
        elif thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- writes

    def append(self, event: Event) -> None:
        """Queue an event; it is committed with the next batch. Raises StoreError for a seq out of order."""
        self._enqueue_event(event, None)

    def append_critical(self, event: Event) -> Future[None]:
        """Queue an event; the future resolves only after its batch's COMMIT returned (durable)."""
        future: Future[None] = Future()
        self._enqueue_event(event, future)
        return future

    async def commit(self, event: Event) -> None:
        """From asyncio: append_critical and wait until the event is durable."""
        await asyncio.wrap_future(self.append_critical(event))

    def append_ticks(self, rows: Sequence[TickRow] | pl.DataFrame) -> None:
        """Queue tick rows (ts, symbol, bid, ask, bid_qty, ask_qty), or a Polars frame of those columns.

        The frame is built here, on the caller's thread, so the writer only inserts it. A row or frame of the
        wrong shape raises here (ValueError, or a Polars error for a frame); nothing is queued.
        """
        frame = tick_batch(rows)
        if frame.height == 0:
            return
        with self._cond:
            self._check_writable_locked()
            self._ticks.append(TicksItem(frame))
            self._ticks_queued += 1
            self._cond.notify()

    def put_snapshot(self, seq: int, ts: float, state_json: str) -> None:
        """Queue a snapshot of State as it is after event `seq` (which must already be appended)."""
        with self._cond:
            if not 1 <= seq <= self._queued_seq:
                raise StoreError(
                    "snapshot for an event that was not appended",
                    f"snapshot seq {seq}, last appended seq {self._queued_seq}",
                    "append the event first; a snapshot is taken after the event it follows",
                )
            self._enqueue_locked(SnapshotItem(seq, ts, state_json))

    def add_dead_letter(
        self,
        *,
        op: str,
        params: dict[str, Any],
        error_class: str,
        error_type: str,
        reason: str,
        attempts: int,
        ts: float | None = None,
    ) -> Future[int]:
        """Queue a dead letter (status open); the future resolves to its id once committed."""
        letter = NewDeadLetter(
            ts=time.time() if ts is None else ts,
            op=op,
            params=dlq.params_text(params),
            error_class=error_class,
            error_type=error_type,
            reason=reason,
            attempts=attempts,
        )
        future: Future[int] = Future()
        self._enqueue(DlqAdd(letter, future))
        return future

    def set_dead_letter_status(self, letter_id: int, status: str) -> Future[None]:
        """Queue a status change (open, retried, removed); a future fails with StoreError for unknown ids."""
        future: Future[None] = Future()
        self._enqueue(DlqStatus(letter_id, dlq.check_status(status), future))
        return future

    def delete_dead_letters_older_than(
        self, days: float, *, status: str | None = None, now: float | None = None
    ) -> Future[int]:
        """Queue deleting dead letters older than `days` (optionally of one status): the count."""
        cutoff = (time.time() if now is None else now) - days * 86_400.0
        future: Future[int] = Future()
        self._enqueue(DlqPurge(cutoff, None if status is None else dlq.check_status(status), future))
        return future

    def backup_to(self, dest: Path) -> VerifyReport:
        """A consistent, verified copy of everything committed so far, taken while the engine keeps running.

        Blocks the caller (run it in an executor from asyncio). The writer runs COPY FROM DATABASE into
        `<dest>.partial` between two batches; this thread verifies the copy and renames it to `dest`.
        """
        dest = Path(dest)
        backup.check_target(dest)
        future: Future[int] = Future()
        with self._cond:
            self._enqueue_locked(Fence(Backup(dest, future), self._ticks_queued))
        last_seq = future.result()
        report = backup.finish(dest, last_seq)
        if report.ok and report.last_seq > 0:
            # The copy's whole chain verified, and events are append-only: this file's events up to there are
            # the copy's, so they are marked verified (the next start re-hashes only what comes after).
            marked: Future[None] = Future()
            with contextlib.suppress(StoreError):  # closing meanwhile: the mark is an optimisation
                self._enqueue(MetaSet(MARK_KEY, mark_text(report.last_seq, report.last_hash), marked))
        return report

    def archive_ticks(self, before_ts: float, folder: Path) -> ArchiveResult:
        """Move the ticks before `before_ts` out of the session file into Parquet partitions under `folder`
        (how it stays whole across a crash: cockpit/store/archive.py). Blocks the caller (run it in a thread);
        the writer does the copy and the delete between two batches, after the ticks queued before it."""
        started = time.perf_counter()
        session = self.path.stem
        files_moved = self._settle_pending_archive(folder, session)
        rows = 0
        while True:  # a slice at a time: between two, the writer serves what waits (critical events first)
            future: Future[tuple[int, Path, float]] = Future()
            with self._cond:
                self._enqueue_locked(Fence(Archive(before_ts, folder, session, future), self._ticks_queued))
            moved, staging, cut = future.result()
            if moved:
                files_moved += archive.settle(staging, folder)
                self._set_meta(archive.PENDING_KEY, "")
                rows += moved
            if cut >= before_ts or not moved:
                break
        return ArchiveResult(rows, files_moved, before_ts, folder, time.perf_counter() - started)

    def _settle_pending_archive(self, folder: Path, session: str) -> int:
        """Finish a move a crash interrupted after its delete; drop the staging of one before it."""
        with self._reader() as cur:
            found = cur.execute("SELECT value FROM meta WHERE key = ?", [archive.PENDING_KEY]).fetchall()
        pending = Path(found[0][0]) if found and found[0][0] else None
        moved = 0
        if pending is not None:
            moved = archive.settle(pending, folder)
            self._set_meta(archive.PENDING_KEY, "")
        for leftover in archive.leftovers(folder, session):
            shutil.rmtree(leftover, ignore_errors=True)
        return moved

    def _set_meta(self, key: str, value: str) -> None:
        done: Future[None] = Future()
        self._enqueue(MetaSet(key, value, done))
        done.result()

    # -------------------------------------------------------------------------------------------- reads

    def _reader(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        if self._closed:
            raise StoreError("session store is closed", str(self.path), "open the session file again")
        return self._readers.cursor(self._con)

    def read_events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """Committed events with seq > after_seq, in seq order, READ_CHUNK seqs per query (see reads.py)."""
        with self._reader() as cur:
            return reads.read_events(cur, after_seq, limit, chunk=READ_CHUNK)

    def last_snapshot(self) -> tuple[int, str] | None:
        """(seq, state JSON) of the newest committed snapshot."""
        with self._reader() as cur:
            return reads.last_snapshot(cur)

    def dead_letters(
        self,
        *,
        op: str | None = None,
        reason_contains: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[DeadLetterRow]:
        """Committed dead letters, oldest first, filtered by op, a reason substring (any case) and status."""
        with self._reader() as cur:
            return dlq.select(cur, op=op, reason_contains=reason_contains, status=status, limit=limit)

    def count_dead_letters(
        self, *, op: str | None = None, reason_contains: str | None = None, status: str | None = None
    ) -> int:
        with self._reader() as cur:
            return dlq.count(cur, op=op, reason_contains=reason_contains, status=status)

    def tick_count(self) -> int:
        with self._reader() as cur:
            return reads.tick_count(cur)

    def stats(self) -> StoreStats:
        with self._cond:
            return StoreStats(
                queue_depth=len(self._records) + len(self._ticks) + self._in_flight,
                last_commit_at=self._last_commit_at,
                last_commit_ms=self._last_commit_ms,
                commits=self._commits,
                events_written=self._events_written,
                ticks_written=self._ticks_written,
                errors=self._errors,
                retrying=self._retrying,
                failed=self._failure is not None,
                last_seq=self._written_seq,
            )

    # ---------------------------------------------------------------------------------------- queueing

    def _check_writable_locked(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closing:
            raise StoreError("session store is closed", f"no more writes to {self.path}")

    def _enqueue(self, item: Record) -> None:
        with self._cond:
            self._enqueue_locked(item)

    def _enqueue_locked(self, item: Record | Fence) -> None:
        self._check_writable_locked()
        self._records.append(item)
        self._cond.notify()

    def _enqueue_event(self, event: Event, future: Future[None] | None) -> None:
        try:
            text = payload_text(event.payload)
        except TypeError as exc:
            raise EventRefused(
                f"event {event.kind} seq {event.seq} has a payload that is not JSON",
                str(exc),
                "payloads carry plain JSON values; money as decimal strings",
            ) from exc
        with self._cond:
            self._check_writable_locked()
            expected = self._queued_seq + 1
            if event.seq != expected:
                raise EventRefused(
                    "event out of sequence: refused, nothing written",
                    f"{event.kind} has seq {event.seq}, the next seq of {self.path.name} is {expected}",
                    "a programming error in the engine: seqs are given out once, gap-free, from 1",
                )
            self._queued_seq = event.seq
            self._enqueue_locked(EventItem(event, text, future))

    # ------------------------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._records and not self._ticks:
                    self._cond.wait()
                batch, barrier = self._next_locked()
                self._in_flight = len(batch)
            if batch:
                if self._write_with_retries(batch):
                    self._let_waiters_follow_up()
                if self._failure is None:
                    self._checkpoints.after_write(self._records_waiting)
            elif isinstance(barrier, Backup):
                self._take_backup(barrier)
            elif isinstance(barrier, Archive):
                self._take_archive(barrier)
            elif isinstance(barrier, Stop):
                self._shut_down()
                return

    def _records_waiting(self) -> bool:
        with self._cond:
            return bool(self._records)

    def _let_waiters_follow_up(self) -> None:
        """After resolving futures, wait a moment before starting a tick write unless a record comes first.

        A thread (or coroutine) woken by a commit usually queues its next event at once; if the writer had
        already started on market data, that event would wait for the whole insert, and the woken thread would
        compete with it for the GIL and a core. Records end the wait as soon as they are queued.
        """
        with self._cond:
            if not self._records and self._ticks:
                self._cond.wait(FOLLOW_UP_WAIT_S)

    def _next_locked(self) -> tuple[list[BatchItem], Barrier | None]:
        """The next write: every queued record up to the next barrier, in one transaction; when none waits,
        the tick batches at the head, up to TICK_ROWS_PER_COMMIT rows, in one INSERT; else the barrier.

        Records are always served first, so a critical event waits for the write in progress at most. A
        barrier (backup, stop) is taken only once everything queued before it, records and ticks, is written.
        """
        records: list[BatchItem] = []
        while self._records and not isinstance(self._records[0], Fence):
            records.append(cast(Record, self._records.popleft()))
        if records:
            return records, None
        fence = cast(Fence | None, self._records[0] if self._records else None)
        limit = None if fence is None else fence.ticks_before - self._ticks_taken  # batches before the fence
        ticks: list[BatchItem] = []
        rows = 0
        while self._ticks and rows < TICK_ROWS_PER_COMMIT and (limit is None or len(ticks) < limit):
            item = self._ticks.popleft()
            ticks.append(item)
            rows += item.frame.height
        if ticks:
            self._ticks_taken += len(ticks)
            return ticks, None
        assert fence is not None  # noqa: S101 - the loop waits until something is queued
        self._records.popleft()
        return [], fence.barrier

    def _exec(self, sql: str, params: Sequence[object] | None = None) -> duckdb.DuckDBPyConnection:
        if self._fault_hook is not None:
            self._fault_hook(sql)
        return self._wcur.execute(sql, params)

    def _write(self, prepared: Prepared) -> dict[int, object]:
        """One transaction for the whole batch; the dead-letter results by index in `dlq_ops`."""
        results: dict[int, object] = {}
        next_id = self._dlq_next_id
        sql = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        only_ticks = not (prepared.events or prepared.snapshots or prepared.dlq_ops)
        if prepared.ticks is not None and only_ticks:
            self._insert_frame("ticks", prepared.ticks)  # one statement: its auto-commit is the COMMIT
            return results
        if len(prepared.events) == 1 and not (
            prepared.ticks is not None or prepared.snapshots or prepared.dlq_ops
        ):
            self._exec(sql, prepared.events[0])  # one statement: its auto-commit is the batch's COMMIT
            return results
        self._exec("BEGIN TRANSACTION")
        if len(prepared.events) > _EVENTS_BY_FRAME:
            frame = pl.DataFrame(prepared.events, schema=EVENT_SCHEMA, orient="row")
            self._insert_frame("events", frame)
        elif prepared.events:
            if self._fault_hook is not None:
                self._fault_hook(sql)
            self._wcur.executemany(sql, prepared.events)
        if prepared.ticks is not None:
            self._insert_frame("ticks", prepared.ticks)
        if prepared.snapshots:
            sql = "INSERT INTO snapshots (seq, ts, state) VALUES (?, ?, ?)"
            if self._fault_hook is not None:
                self._fault_hook(sql)
            self._wcur.executemany(sql, prepared.snapshots)
        for index, op in enumerate(prepared.dlq_ops):
            if isinstance(op, DlqAdd):
                dlq.insert(self._hooked_cursor(), next_id, op.letter)
                results[index] = next_id
                next_id += 1
            elif isinstance(op, DlqStatus):
                results[index] = dlq.update_status(self._hooked_cursor(), op.letter_id, op.status)
            elif isinstance(op, MetaSet):
                set_meta(self._wcur, op.key, op.value)
                results[index] = None
            else:
                results[index] = dlq.delete_before(self._hooked_cursor(), op.cutoff_ts, op.status)
        self._exec("COMMIT")
        self._dlq_next_id = next_id
        return results

    def _hooked_cursor(self) -> duckdb.DuckDBPyConnection:
        if self._fault_hook is not None:
            self._fault_hook("dead_letters")
        return self._wcur

    def _insert_frame(self, table: str, frame: pl.DataFrame) -> None:
        view = self._views[table]
        view.frame = frame
        try:
            self._exec(f"INSERT INTO {table} BY NAME SELECT * FROM {table}_batch")
        finally:
            view.frame = None

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._wcur.execute("ROLLBACK")

    def _write_with_retries(self, batch: list[BatchItem]) -> bool:
        """Write one batch (retrying as configured); whether it resolved a waiter's future."""
        try:
            prepared = prepare(batch, self._written_seq, self._written_hash)
        except Exception as exc:  # a bug (or a tick row of the wrong shape): fail loudly, write nothing
            self._fail(batch, f"{type(exc).__name__}: {exc}", 0)
            return False
        failures = 0
        while True:
            started = time.perf_counter()
            try:
                results = self._write(prepared)
            except (duckdb.Error, OSError) as exc:
                self._rollback()
                failures += 1
                text = f"{type(exc).__name__}: {exc}"
                with self._cond:
                    self._errors += 1
                    self._retrying = self._retries.allows(failures)
                if self._retries.allows(failures):
                    delay = self._retries.delay(failures)
                    self._report(StoreTrouble(failures, delay, text))
                    time.sleep(delay)
                    continue
                self._fail(batch, text, failures)
                return False
            except Exception as exc:  # a bug, not the disk: do not retry it
                self._rollback()
                with self._cond:
                    self._errors += 1
                self._fail(batch, f"{type(exc).__name__}: {exc}", failures + 1)
                return False
            break
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        with self._cond:
            if prepared.events:
                self._written_seq = prepared.events[-1][0]
                self._written_hash = prepared.last_hash
            self._commits += 1
            self._events_written += len(prepared.events)
            self._ticks_written += 0 if prepared.ticks is None else prepared.ticks.height
            self._last_commit_at = time.time()
            self._last_commit_ms = elapsed_ms
            self._retrying = False
            self._in_flight = 0
        if failures:
            self._report(StoreTrouble(failures, None, "", recovered=True))
        for item in batch:
            if isinstance(item, EventItem) and item.future is not None:
                _settle(item.future)
        for index, op in enumerate(prepared.dlq_ops):
            self._settle_dlq(op, results[index])
        for observer in self.commit_observers:
            try:
                observer(elapsed_ms / 1000.0)
            except Exception:  # an observer never stops the writer
                log.exception("commit observer failed")
        return bool(prepared.futures)

    def _settle_dlq(self, op: DlqAdd | DlqStatus | DlqPurge | MetaSet, result: object) -> None:
        if isinstance(op, MetaSet):
            _settle(op.future, None)
        elif isinstance(op, DlqAdd):
            _settle(op.future, cast(int, result))
        elif isinstance(op, DlqStatus):
            if result:
                _settle(op.future, None)
            else:
                error = StoreError(
                    f"no dead letter with id {op.letter_id}", str(self.path), "list them to see ids"
                )
                _settle(op.future, error=error)
        else:
            _settle(op.future, cast(int, result))

    def _fail(self, batch: list[BatchItem], text: str, attempts: int) -> None:
        failure = StoreError(
            "session store failed: writes are refused",
            f"a batch write to {self.path} failed {attempts} times; last error: {text}",
            f"check the disk holding {self.path.parent} (space, permissions, health); restart cockpit to "
            "resume from the file: everything acknowledged before this is on disk",
        )
        with self._cond:
            self._failure = failure
            self._retrying = False
            pending = [*batch, *self._records]
            self._records.clear()
            self._ticks_taken += len(self._ticks)
            self._ticks.clear()
            if self._closing:
                self._records.append(Fence(Stop(), self._ticks_queued))
            self._in_flight = 0
        # Reported before the waiters fail: the engine ignores trouble once it has seen the store fail (a
        # waiter's future), so the other order could lose the final, critical db.error under load.
        self._report(StoreTrouble(attempts, None, text, final=True))
        for item in pending:
            future = getattr(item.barrier if isinstance(item, Fence) else item, "future", None)
            if isinstance(future, Future):
                _settle(future, error=failure)

    def _take_backup(self, item: Backup) -> None:
        if self._failure is not None:
            _settle(item.future, error=self._failure)
            return
        try:
            database = str(self._wcur.execute("SELECT current_database()").fetchall()[0][0])
            statements = backup.copy_statements(item.dest, database)
            try:
                for sql in statements[:-1]:
                    self._exec(sql)
            finally:
                with contextlib.suppress(duckdb.Error):
                    self._wcur.execute(statements[-1])
        except duckdb.Error as exc:
            error = StoreError(
                f"backup to {item.dest} failed", str(exc), "check the backup directory and retry"
            )
            _settle(item.future, error=error)
            return
        _settle(item.future, self._written_seq)

    def _take_archive(self, item: Archive) -> None:
        if self._failure is not None:
            _settle(item.future, error=self._failure)
            return
        try:
            moved = archive.move_out(self._wcur, item.before_ts, item.folder, item.session)
        except Exception as exc:  # never out of the writer thread: the caller is told, the writer goes on
            error = StoreError(
                f"moving ticks to {item.folder} failed: nothing was deleted",
                str(exc),
                "check the archive folder (space, permissions); the next move tries again",
            )
            _settle(item.future, error=error)
            return
        _settle(item.future, moved)

    def _shut_down(self) -> None:
        try:
            if self._failure is None:
                with contextlib.suppress(duckdb.Error):
                    self._wcur.execute("CHECKPOINT")
        finally:
            with contextlib.suppress(duckdb.Error):
                self._wcur.close()
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            with self._cond:
                self._closed = True
            files.release(self.path)

    def _report(self, trouble: StoreTrouble) -> None:
        callback = self._on_trouble
        if callback is None:
            return
        with contextlib.suppress(Exception):  # a failing observer must not stop the writer
            callback(trouble)
