"""Store figures: tick rows/s and critical-commit p99, each beside raw DuckDB in the same shape."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cockpit.domain import Event
from cockpit.store import SessionStore, TickRow
from cockpit.store.writer import tick_frame

SIZES = {"tiny": (20_000, 50), "quick": (1_000_000, 500), "full": (4_000_000, 2000)}
BATCH = 10_000
TICKS_WHILE_COMMITTING = 20_000  # rows/s flowing while commits are timed


def ticks(n: int, offset: int = 0) -> list[TickRow]:
    return [(1.79e9 + (offset + i) / 1e3, f"SYM{i % 20}", 100.0 + i, 100.5 + i, 1.0, 2.0) for i in range(n)]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def run(work: Path, size: str) -> dict[str, Any]:
    rows, commits = SIZES[size]
    batch = ticks(BATCH)
    # cockpit: append_ticks through the writer thread
    with SessionStore.open(work / "store-ticks.duckdb") as s:
        s.start()
        started = time.perf_counter()
        for _ in range(rows // BATCH):
            s.append_ticks(batch)
        s.close()
        tick_rate = rows / (time.perf_counter() - started)
    # raw: the same DuckDB table, one Polars batch per commit, no queue, no thread
    con = duckdb.connect(str(work / "raw-ticks.duckdb"))
    con.execute(
        "CREATE TABLE ticks (ts DOUBLE, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_qty DOUBLE, "
        "ask_qty DOUBLE)"
    )
    frame = tick_frame(batch)
    cur = con.cursor()
    cur.register("frame", frame)
    started = time.perf_counter()
    for _ in range(rows // BATCH):
        cur.execute("INSERT INTO ticks BY NAME SELECT * FROM frame")
    raw_rate = rows / (time.perf_counter() - started)
    con.close()
    return {
        "tick_rows_per_s": round(tick_rate),
        "raw_rows_per_s": round(raw_rate),
        "critical_commit_p99_ms": round(_cockpit_commits(work, commits), 3),
        "raw_commit_p99_ms": round(_raw_commits(work, commits), 3),
        "rows": rows,
        "commits": commits,
    }


def _cockpit_commits(work: Path, n: int) -> float:
    async def timed() -> list[float]:
        out: list[float] = []
        with SessionStore.open(work / "store-commits.duckdb") as s:
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

    return p99(asyncio.run(timed()))


def _raw_commits(work: Path, n: int) -> float:
    con = duckdb.connect(str(work / "raw-commits.duckdb"))
    con.execute("CREATE TABLE events (seq BIGINT, ts DOUBLE, kind VARCHAR, payload VARCHAR)")
    con.execute(
        "CREATE TABLE ticks (ts DOUBLE, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_qty DOUBLE, "
        "ask_qty DOUBLE)"
    )
    lock = threading.Lock()
    tick_cur = con.cursor()

    def insert(rows: list[TickRow]) -> None:
        frame = pl.DataFrame(rows, schema=["ts", "symbol", "bid", "ask", "bid_qty", "ask_qty"], orient="row")
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
    return p99(out)


def _feed(sink: Any, stop: threading.Event) -> None:
    """Ticks at TICKS_WHILE_COMMITTING rows/s in 1 000-row batches until told to stop."""
    offset = 0
    every = 1000 / TICKS_WHILE_COMMITTING
    while not stop.is_set():
        sink(ticks(1000, offset))
        offset += 1000
        stop.wait(every)
