"""Reading a session file while its writer runs: the queries, and the count of readers at work.

Reads run on the caller's thread, each through its own `cursor()` of the writer's connection (one connection
shared by threads fails with "connection is busy"), and see committed batches only. The queries here take
that cursor; dead letters are read with dlq.py's `select` and `count`. `Readers` counts the readers at work,
so the writer lowers DuckDB's memory limit (see checkpoints.py) only while none is.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import cast

import duckdb
import orjson

from cockpit.core.domain import Event, Severity
from cockpit.store.batches import EVENT_COLUMNS

READ_CHUNK = 50_000  # seqs per query in read_events


class Readers:
    """The readers at work on one connection; the writer's cache trim waits for none (`when_idle`)."""

    __slots__ = ("_count", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while the memory limit is lowered, and to count readers
        self._count = 0

    @contextlib.contextmanager
    def cursor(self, con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of `con` for one read, counted from before it opens until after it closes."""
        with self._lock:  # not while the writer has lowered the memory limit (when_idle)
            self._count += 1
        try:
            cur = con.cursor()
            try:
                yield cur
            finally:
                cur.close()
        finally:
            with self._lock:
                self._count -= 1

    def when_idle(self, action: Callable[[], None]) -> None:
        """Run `action` if no reader is at work; no reader starts until it returns."""
        with self._lock:
            if self._count:
                return
            action()


def read_events(
    cur: duckdb.DuckDBPyConnection, after_seq: int = 0, limit: int | None = None, *, chunk: int = READ_CHUNK
) -> list[Event]:
    """Committed events with seq > after_seq, in seq order (as of one snapshot of the file).

    Read by ranges of at most `chunk` seqs, so DuckDB sorts a chunk at a time: one ORDER BY over a million
    events (even with a LIMIT) takes ~100 MB, a chunk a few MB.
    """
    sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? AND seq <= ? ORDER BY seq"
    out: list[Event] = []
    cur.execute("BEGIN TRANSACTION")
    try:
        last = cur.execute("SELECT max(seq) FROM events").fetchall()[0][0] or 0
        low = after_seq
        while low < last and (limit is None or len(out) < limit):
            span = chunk if limit is None else min(chunk, limit - len(out))  # seqs are 1..N
            high = min(low + span, last)
            rows = cur.execute(sql, [low, high]).fetchall()
            out.extend(
                Event(
                    seq=int(seq),
                    ts=float(ts),
                    kind=str(kind),
                    severity=cast(Severity, severity),
                    source=str(source),
                    payload=orjson.loads(payload),
                )
                for seq, ts, kind, severity, source, payload, _hash in rows
            )
            low = high
    finally:
        cur.execute("COMMIT")
    return out if limit is None else out[: max(0, limit)]


def last_snapshot(cur: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """(seq, state JSON) of the newest committed snapshot."""
    rows = cur.execute("SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1").fetchall()
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def tick_count(cur: duckdb.DuckDBPyConnection) -> int:
    return int(cur.execute("SELECT count(*) FROM ticks").fetchall()[0][0])
