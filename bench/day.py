"""What a day of an always-on engine costs at 10 k ticks/s: session file size, archive size and time, start
(restore) time, verify time. Simulated time: a sample of the day is written through the real store at full
speed, with the timestamps it would have had, and the day's figures are that sample scaled to 24 h.

The sample. bookTicker-shaped rows over 5 symbols (prices a random walk in steps of 0.01, sizes random at a
0.001 step, so they compress as real ones do rather than better), ts 0.1 ms apart (10 k/s), written with
`append_ticks` in 10 000-row batches as the engine flushes them; alongside, the events a day of a busy session
holds, at their rates: one `market.marks` a second (5 symbols), a `ratelimit.updated` a second, a
`clock.checked` every 5 s (~190 k events a day) — with a snapshot every 1 000 events as the engine takes
them. Sizes are measured after the writer's close (CHECKPOINT): file bytes per tick and per
event, then scaled to 864 M ticks and ~190 k events.

The archive. The same file's ticks are moved to Parquet (`SessionStore.archive_ticks`): bytes per tick in
Parquet, seconds per million ticks moved, and the session file's size after the move and a day's worth more
of the sample written again (DuckDB reuses the space the move freed, so the file does not grow by the ticks
again). A day's session file with the default 24 h retention holds a day of ticks; with 1 h, an hour.

Start and verify. `restore` (last snapshot + the fold after it) and `verify` (every column, the hash chain) on
a file of one day of events (~190 k, the sample's mix) plus `RETAINED_TICKS` ticks, scaled by the tick
count where the figure grows with it. RSS after a long run is `bench/memory.py`'s figure (a fresh engine
process at 10 k ticks/s for 30 s or 600 s).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from cockpit.core import events as ev
from cockpit.core.domain import Event
from cockpit.core.snapshot import state_to_json
from cockpit.core.state import State, apply
from cockpit.store import SessionStore
from cockpit.store.archive import archive_folder
from cockpit.store.verify import verify

SIZES = {"tiny": 50_000, "quick": 2_000_000, "full": 10_000_000}  # ticks in the sample
RATE = 10_000  # ticks/s
DAY_S = 86_400
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT")
T0 = 1_796_000_000.0
BATCH = 10_000


def _events_for(seconds: float, start_seq: int, start_ts: float) -> list[Event]:
    """A day's mix of events over `seconds` of simulated time."""
    out: list[Event] = []
    seq = start_seq
    for s in range(int(seconds)):
        ts = start_ts + s
        marks = {sym: f"{100 + (s % 97) * 0.1 + i:.2f}" for i, sym in enumerate(SYMBOLS)}
        batch: list[tuple[str, Any]] = [
            ("market.marks", ev.market_marks(marks=marks, source="mark_stream")),
            (
                "ratelimit.updated",
                ev.ratelimit_updated(
                    used=120 + s % 50,
                    limit=2400,
                    queued=0,
                    rejected_recent=0,
                    cooldown_until=None,
                    banned_until=None,
                ),
            ),
        ]
        if s % 5 == 0:
            batch.append(
                (
                    "clock.checked",
                    ev.clock_checked(
                        offset_ms=3.2,
                        status="ok",
                        rtt_ms=41.0,
                        error_ms=20.5,
                        warn_ms=500.0,
                        kill_ms=2000.0,
                        samples=4,
                        discarded=0,
                        filtered=False,
                        method="rest",
                    ),
                )
            )
        for kind, payload in batch:
            seq += 1
            out.append(Event(seq, ts, kind, "info", "feed", dict(payload)))
    return out


def _write(path: Path, ticks: int) -> tuple[int, float]:
    """The sample: ticks at 10 k/s of simulated time, events at their rates. (events, seconds)."""
    store = SessionStore.open(path, meta={"exchange": "binanceusdm", "mode": "bench"})
    store.start()
    seconds = ticks / RATE
    events = _events_for(seconds, 0, T0)
    state = State()
    walk = random.Random(1)
    prices = [90_000.0, 3_000.0, 150.0, 2.5, 600.0]
    started = time.perf_counter()
    e = 0
    for b in range(0, ticks, BATCH):
        ts0 = T0 + b / RATE
        rows = []
        for i in range(min(BATCH, ticks - b)):  # a random walk per symbol, in ticks of 0.01
            k = i % 5
            prices[k] = round(prices[k] + walk.choice((-0.01, 0.0, 0.0, 0.01)), 2)
            ask = round(prices[k] + 0.01, 2)
            rows.append((ts0 + i / RATE, SYMBOLS[k], prices[k], ask, round(walk.random() * 5, 3), 0.5))
        store.append_ticks(rows)
        while e < len(events) and events[e].ts < ts0 + BATCH / RATE:
            store.append(events[e])
            state = apply(state, events[e])
            if events[e].seq % 1000 == 0:
                store.put_snapshot(events[e].seq, events[e].ts, state_to_json(state))
            e += 1
    for rest in events[e:]:
        store.append(rest)
    store.close()
    return len(events), time.perf_counter() - started


def run(work: Path, size: str) -> dict[str, Any]:
    ticks = SIZES[size]
    path = work / "day.duckdb"
    events, write_s = _write(path, ticks)
    file_bytes = path.stat().st_size
    sample_s = ticks / RATE
    events_per_day = events * DAY_S / sample_s
    # events alone, to tell the two apart
    events_only = work / "day-events.duckdb"
    _write_events_only(events_only, events_per_day if size != "tiny" else events)
    event_file = events_only.stat().st_size
    bytes_per_event = event_file / (events_per_day if size != "tiny" else events)
    bytes_per_tick = max(0.0, file_bytes - bytes_per_event * events) / ticks

    started = time.perf_counter()
    store = SessionStore.open(path, create=False)
    store.start()
    moved = store.archive_ticks(T0 + sample_s + 1, archive_folder(path))
    store.close()
    archive_s = time.perf_counter() - started
    parquet = sum(p.stat().st_size for p in archive_folder(path).rglob("*.parquet"))
    after_archive = path.stat().st_size

    started = time.perf_counter()
    restored = _restore(events_only)
    restore_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify(events_only)
    verify_events_s = time.perf_counter() - started
    started = time.perf_counter()
    verify(path)
    verify_sample_s = time.perf_counter() - started
    return {
        "sample_ticks": ticks,
        "sample_simulated_s": sample_s,
        "sample_events": events,
        "write_seconds": round(write_s, 2),
        "bytes_per_tick_in_file": round(bytes_per_tick, 2),
        "bytes_per_event_in_file": round(bytes_per_event, 1),
        "events_per_day": round(events_per_day),
        "session_file_gb_per_day_all_ticks": round((bytes_per_tick * RATE * DAY_S + event_file) / 1e9, 2),
        "session_file_mb_per_day_events_only": round(event_file / 1e6, 1),
        "archive_ticks_moved": moved.rows,
        "archive_seconds_per_m_ticks": round(archive_s / max(moved.rows, 1) * 1e6, 2),
        "parquet_bytes_per_tick": round(parquet / max(moved.rows, 1), 2),
        "parquet_gb_per_day": round(parquet / max(moved.rows, 1) * RATE * DAY_S / 1e9, 2),
        "session_file_mb_after_archive": round(after_archive / 1e6, 1),
        "restore_seconds_day_of_events": round(restore_s, 3),
        "restored_seq": restored,
        "verify_seconds_day_of_events": round(verify_events_s, 2),
        "verify_ok": report.ok,
        "verify_seconds_per_m_ticks": round(verify_sample_s / ticks * 1e6, 3),
    }


def _write_events_only(path: Path, count: float) -> None:
    store = SessionStore.open(path, meta={"exchange": "binanceusdm", "mode": "bench"})
    store.start()
    state = State()
    for event in _events_for(count / 2.2, 0, T0):  # ~2.2 events a simulated second
        store.append(event)
        state = apply(state, event)
        if event.seq % 1000 == 0:
            store.put_snapshot(event.seq, event.ts, state_to_json(state))
    store.close()


def _restore(path: Path) -> int:
    from cockpit.core.snapshot import state_from_json
    from cockpit.core.state import fold

    store = SessionStore.open(path, create=False)
    try:
        snapshot = store.last_snapshot()
        state, after = (state_from_json(snapshot[1]), snapshot[0]) if snapshot else (State(), 0)
        return fold(store.read_events(after_seq=after), state).seq
    finally:
        store.close()
