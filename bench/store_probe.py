"""Probe the session store: tick ingest rows/s and commit() latency with and without ticks flowing.

Run: .venv/bin/python bench/store_probe.py [--rows 2000000] [--commits 1000]
Prints a small table; figures are indicative (one run, this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from cockpit.core.domain import Event
from cockpit.store import SessionStore, TickRow


def ticks(n: int) -> list[TickRow]:
    return [(1_700_000_000.0 + i / 1e3, f"SYM{i % 20}", 100.0 + i, 100.5 + i, 1.0, 2.0) for i in range(n)]


def ingest(path: Path, rows: int) -> float:
    batch = ticks(10_000)
    store = SessionStore.open(path)
    store.start()
    started = time.perf_counter()
    for _ in range(rows // 10_000):
        store.append_ticks(batch)
    while store.stats().ticks_written < rows:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    store.close()
    return rows / elapsed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def commit_latency(path: Path, commits: int, tick_rate: float | None) -> tuple[float, float, float, float]:
    """commit() latency with ticks fed flat out (0), at tick_rate rows/s in 1 k batches, or none (None)."""
    with_ticks = tick_rate is not None
    store = SessionStore.open(path)
    store.start()
    stop = threading.Event()
    fed = [0]

    def feed() -> None:
        batch = ticks(1_000 if tick_rate else 10_000)
        while not stop.is_set():
            if tick_rate:
                store.append_ticks(batch)
                fed[0] += len(batch)
                time.sleep(len(batch) / tick_rate)
            elif store.stats().queue_depth < 4:
                store.append_ticks(batch)
                fed[0] += len(batch)
            else:
                time.sleep(0.0005)

    feeder = threading.Thread(target=feed)
    if with_ticks:
        feeder.start()

    async def run() -> list[float]:
        out = []
        for seq in range(1, commits + 1):
            t = time.perf_counter()
            await store.commit(Event(seq, time.time(), "order.filled", "critical", "bench", {"qty": "0.1"}))
            out.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.001)
        return out

    started = time.perf_counter()
    lat = asyncio.run(run())
    elapsed = time.perf_counter() - started
    stop.set()
    if with_ticks:
        feeder.join()
    store.close()
    return pct(lat, 50), pct(lat, 99), max(lat), fed[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--commits", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate = ingest(Path(tmp) / "ingest.duckdb", args.rows)
        print(f"tick ingest, append_ticks 10k-row batches: {rate / 1e6:.2f} M rows/s ({args.rows} rows)")
        for n, rate_wanted in enumerate((None, 20_000.0, 0.0)):
            p50, p99, worst, tick_rate = commit_latency(Path(tmp) / f"c{n}.duckdb", args.commits, rate_wanted)
            label = "idle" if rate_wanted is None else f"while ticks flow ({tick_rate / 1e3:.0f} k rows/s)"
            print(f"commit() {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {worst:.2f} ms")


if __name__ == "__main__":
    main()
