"""Store figures: tick rows/s and critical-commit p99, each beside raw DuckDB in the same shape.

Other work on the machine (two shared cores) moves every figure, so both sides are measured in alternating
rounds: a throughput is the best of its rounds (the least disturbed one) and a p99 is taken over the pooled
latencies of every round, so both sides saw the same mix of disturbance.

Raw DuckDB runs with its default settings, as it comes. cockpit's session differs in one way that costs
throughput: the writer checkpoints every 4 MB of WAL (DuckDB's automatic checkpoint, at 16 MB, is off), which
keeps the engine's memory flat. So raw is also shown checkpointing as often (`*_same_checkpoints`), to tell
that cost apart from the rest of cockpit's path.

The raw tick ceiling (`raw_rows_per_s`) inserts one prebuilt Polars frame again and again: it never converts
the rows it was given, while cockpit's figure includes turning the same 10 000 tuples into columns. That makes
it a strict ceiling, and the target is measured against it. `raw_rows_per_s_converting` is shown beside it:
raw DuckDB given the same tuples, converting each batch with the same code as cockpit (`tick_frame`) before
inserting it, on one thread, with no queue.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from cockpit.core.domain import Event
from cockpit.store import SessionStore, TickRow
from cockpit.store.writer import tick_frame

# rows of ticks, critical commits (over all rounds), rounds
SIZES = {"tiny": (20_000, 50, 1), "quick": (1_000_000, 1_000, 3), "full": (4_000_000, 2_000, 5)}
BATCH = 10_000
TICKS_WHILE_COMMITTING = 20_000  # rows/s flowing while commits are timed
SAME_CHECKPOINTS = {"checkpoint_threshold": "4MB"}  # as often as cockpit's writer (CHECKPOINT_WAL_BYTES)
TICKS_DDL = (
    "CREATE TABLE ticks (ts DOUBLE, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_qty DOUBLE, ask_qty DOUBLE)"
)


def ticks(n: int, offset: int = 0) -> list[TickRow]:
    return [(1.79e9 + (offset + i) / 1e3, f"SYM{i % 20}", 100.0 + i, 100.5 + i, 1.0, 2.0) for i in range(n)]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def run(work: Path, size: str) -> dict[str, Any]:
    rows, commits, rounds = SIZES[size]
    batch = ticks(BATCH)
    ours: list[float] = []
    raw: list[float] = []
    raw_converting: list[float] = []
    raw_same: list[float] = []
    for n in range(rounds):
        ours.append(_cockpit_ticks(work / f"store-ticks-{n}.duckdb", batch, rows))
        raw.append(_raw_ticks(work / f"raw-ticks-{n}.duckdb", batch, rows))
        raw_converting.append(_raw_ticks(work / f"raw-ticks-conv-{n}.duckdb", batch, rows, convert=True))
        raw_same.append(
            _raw_ticks(work / f"raw-ticks-ckpt-{n}.duckdb", batch, rows, settings=SAME_CHECKPOINTS)
        )
    ours_ms: list[float] = []
    raw_ms: list[float] = []
    raw_same_ms: list[float] = []
    for n in range(rounds):
        ours_ms += _cockpit_commits(work / f"store-commits-{n}.duckdb", commits // rounds)
        raw_ms += _raw_commits(work / f"raw-commits-{n}.duckdb", commits // rounds)
        raw_same_ms += _raw_commits(
            work / f"raw-commits-ckpt-{n}.duckdb", commits // rounds, settings=SAME_CHECKPOINTS
        )
    return {
        "tick_rows_per_s": round(max(ours)),
        "raw_rows_per_s": round(max(raw)),
        "raw_rows_per_s_converting": round(max(raw_converting)),
        "raw_rows_per_s_same_checkpoints": round(max(raw_same)),
        "critical_commit_p99_ms": round(p99(ours_ms), 3),
        "raw_commit_p99_ms": round(p99(raw_ms), 3),
        "raw_commit_p99_ms_same_checkpoints": round(p99(raw_same_ms), 3),
        "critical_commit_p50_ms": round(statistics.median(ours_ms), 3),
        "raw_commit_p50_ms": round(statistics.median(raw_ms), 3),
        "rows": rows,
        "commits": len(ours_ms),
        "rounds": rounds,
    }


def _connect(path: Path, settings: dict[str, str] | None) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), config=dict(settings or {}))


def _cockpit_ticks(path: Path, batch: list[TickRow], rows: int) -> float:
    """append_ticks through the writer thread, until close() has written (and checkpointed) every row."""
    with SessionStore.open(path) as s:
        s.start()
        started = time.perf_counter()
        for _ in range(rows // BATCH):
            s.append_ticks(batch)
        s.close()
        return rows / (time.perf_counter() - started)


def _raw_ticks(
    path: Path,
    batch: list[TickRow],
    rows: int,
    *,
    convert: bool = False,
    settings: dict[str, str] | None = None,
) -> float:
    """The same DuckDB table, one 10 000-row batch per statement (its own commit), no queue, no thread."""
    con = _connect(path, settings)
    con.execute(TICKS_DDL)
    cur = con.cursor()
    frame = tick_frame(batch)
    cur.register("frame", frame)
    started = time.perf_counter()
    for _ in range(rows // BATCH):
        if convert:
            cur.register("frame", tick_frame(batch))
        cur.execute("INSERT INTO ticks BY NAME SELECT * FROM frame")
    rate = rows / (time.perf_counter() - started)
    con.close()
    return rate


def _cockpit_commits(path: Path, n: int) -> list[float]:
    async def timed() -> list[float]:
        out: list[float] = []
        with SessionStore.open(path) as s:
            s.start()
            stop = threading.Event()
            feeder = threading.Thread(target=_feed, args=(s.append_ticks, stop), daemon=True)
            feeder.start()
            for seq in range(1, n + 1):
                event = Event(seq, time.time(), "order.filled", "info", "bench", {"trade_id": str(seq)})
                started = time.perf_counter()
                await s.commit(event)
                out.append((time.perf_counter() - started) * 1000)
            stop.set()
            feeder.join()
        return out

    return asyncio.run(timed())


def _raw_commits(path: Path, n: int, *, settings: dict[str, str] | None = None) -> list[float]:
    con = _connect(path, settings)
    con.execute("CREATE TABLE events (seq BIGINT, ts DOUBLE, kind VARCHAR, payload VARCHAR)")
    con.execute(TICKS_DDL)
    lock = threading.Lock()
    tick_cur = con.cursor()

    def insert(rows: list[TickRow]) -> None:
        frame = tick_frame(rows)  # converted as cockpit converts them, outside the lock
        with lock:
            tick_cur.register("frame", frame)
            tick_cur.execute("INSERT INTO ticks BY NAME SELECT * FROM frame")

    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(insert, stop), daemon=True)
    feeder.start()
    out: list[float] = []
    cur = con.cursor()
    for seq in range(1, n + 1):
        started = time.perf_counter()
        with lock:
            cur.execute("INSERT INTO events VALUES (?, ?, 'order.filled', '{}')", [seq, time.time()])
        out.append((time.perf_counter() - started) * 1000)
    stop.set()
    feeder.join()
    con.close()
    return out


def _feed(sink: Any, stop: threading.Event) -> None:
    """Ticks at TICKS_WHILE_COMMITTING rows/s in 1 000-row batches until told to stop."""
    offset = 0
    every = 1000 / TICKS_WHILE_COMMITTING
    while not stop.is_set():
        sink(ticks(1000, offset))
        offset += 1000
        stop.wait(every)
