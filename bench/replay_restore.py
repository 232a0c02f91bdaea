"""Restore (last snapshot + fold of the tail → State) and replay scan, on a large synthetic session."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cockpit.core.domain import Event
from cockpit.core.snapshot import state_from_json, state_to_json
from cockpit.core.state import State, apply, fold
from cockpit.engine.integrity import check_session_file
from cockpit.replay.session import ReplaySession, gc_paused
from cockpit.store import GENESIS, SessionStore, event_hash, payload_text
from cockpit.store.verify import MARK_KEY, mark_text

SIZES = {"tiny": 5_000, "quick": 1_000_000, "full": 1_000_000}  # restore is asked for at >= 1 M
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
SNAPSHOT_EVERY = 1000  # as the engine does


def synthetic_event(seq: int) -> Event:
    ts = 1.79e9 + seq * 0.01
    if seq == 1:
        return Event(1, ts, "balance.updated", "info", "exchange", {"wallet": "10000"})
    if seq % 50 == 0:
        symbol = SYMBOLS[seq % 3]
        return Event(
            seq,
            ts,
            "position.changed",
            "info",
            "user_stream",
            {"symbol": symbol, "qty": str((seq % 7) - 3), "entry": "100.5"},
        )
    if seq % 997 == 0:
        return Event(seq, ts, "feed.stale", "warning", "feed", {"stream": "market", "silent_s": 6.0})
    return Event(
        seq,
        ts,
        "market.marks",
        "info",
        "feed",
        {"marks": {s: f"{100 + (seq % 1000) / 100:.2f}" for s in SYMBOLS}},
    )


def build(path: Path, n: int) -> None:
    """A verifiable session of n events, a snapshot every 1000, written in bulk (not through the writer)."""
    SessionStore.open(path).close()  # schema and meta
    rows: list[tuple[Any, ...]] = []
    snaps: list[tuple[int, float, str]] = []
    prev, state = GENESIS, State()
    for seq in range(1, n + 1):
        e = synthetic_event(seq)
        text = payload_text(e.payload)
        prev = event_hash(prev, e.seq, e.ts, e.kind, e.severity, e.source, text)
        rows.append((e.seq, e.ts, e.kind, e.severity, e.source, text, prev))
        state = apply(state, e)
        if seq % SNAPSHOT_EVERY == 0:
            snaps.append((seq, e.ts, state_to_json(state)))
    events = pl.DataFrame(
        rows, schema=["seq", "ts", "kind", "severity", "source", "payload", "hash"], orient="row"
    )
    snapshots = pl.DataFrame(snaps, schema=["seq", "ts", "state"], orient="row")
    con = duckdb.connect(str(path))
    con.register("events_frame", events)
    con.register("snapshots_frame", snapshots)
    con.execute("INSERT INTO events BY NAME SELECT * FROM events_frame")
    con.execute("INSERT INTO snapshots BY NAME SELECT * FROM snapshots_frame")
    con.close()


def session_file(work: Path, size: str) -> Path:
    path = work / f"big-{size}.duckdb"
    if not path.exists():
        build(path, SIZES[size])
    return path


MARK_LAG = 3_600  # events since the file's verified_through mark: an hour of events at one a second


def restore(work: Path, size: str) -> dict[str, Any]:
    """What the engine does at start, timed from the closed file to State: the integrity check
    (`check_session_file`: every block read, the hash chain re-hashed after the verified_through mark),
    open, last snapshot, fold of the events after it. Timed on a file whose mark is MARK_LAG events behind
    (a session restarted an hour after its last marked check) and on one never checked (its first start:
    the whole chain)."""
    source = session_file(work, size)
    marked, fresh = work / f"restore-marked-{size}.duckdb", work / f"restore-fresh-{size}.duckdb"
    shutil.copyfile(source, marked)
    shutil.copyfile(source, fresh)
    n = SIZES[size]
    at = max(1, n - MARK_LAG)
    con = duckdb.connect(str(marked))
    (hash_,) = con.execute("SELECT hash FROM events WHERE seq = ?", [at]).fetchall()[0]
    con.execute("INSERT INTO meta VALUES (?, ?)", [MARK_KEY, mark_text(at, str(hash_))])
    con.close()
    seconds, state = _start_from(marked)
    first_seconds, _ = _start_from(fresh)
    return {
        "events": n,
        "seconds": round(seconds, 4),
        "restored_seq": state.seq,
        "events_rehashed": n - at,
        "first_start_seconds": round(first_seconds, 4),
    }


def _start_from(path: Path) -> tuple[float, State]:
    started = time.perf_counter()
    if check_session_file(path) is not None:
        raise RuntimeError(f"bench session {path} failed verification")
    with SessionStore.open(path, create=False) as store:
        snapshot = store.last_snapshot()
        state = State()
        after = 0
        if snapshot is not None:
            after, text = snapshot
            state = state_from_json(text)
        state = fold(store.read_events(after_seq=after), state)
    return time.perf_counter() - started, state


ROUNDS = {"tiny": 1, "quick": 3, "full": 5}


def replay(work: Path, size: str) -> dict[str, Any]:
    """Replay scan (read + fold every event, as playing at full speed does: `step` in 10 000-event ranges)
    vs a raw scan of the same rows. Both in alternating rounds, each in a fresh session: the raw scan's own
    speed moves by a third with the process's heap, so a single pair is noise. Reported: the round with the
    median ratio, and every round's ratio."""
    path, n = session_file(work, size), SIZES[size]
    rounds = [(_replay_seconds(path), _raw_scan_seconds(path, n)) for _ in range(ROUNDS[size])]
    rounds.sort(key=lambda r: r[1] / r[0])
    replay_s, raw_s = rounds[len(rounds) // 2]
    return {
        "events_per_s": round(n / replay_s),
        "raw_scan_rows_per_s": round(n / raw_s),
        "events": n,
        "round_ratios": [round(raw / rep, 3) for rep, raw in rounds],
    }


def _replay_seconds(path: Path) -> float:
    session = ReplaySession.open(path)
    try:
        started = time.perf_counter()
        while session.position < session.total:
            session.step(10_000)
        return time.perf_counter() - started
    finally:
        session.close()


def _raw_scan_seconds(path: Path, n: int) -> float:
    """The same rows into Python, in the same 10 000-row ranges, with the collector paused as replay's
    batches are (fair to the raw side: a paused collector makes fetchall itself ~1/3 faster)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        scanned = 0
        started = time.perf_counter()
        with gc_paused():
            for after in range(0, n, 10_000):
                scanned += len(
                    con.execute(
                        "SELECT seq, ts, kind, severity, source, payload FROM events "
                        "WHERE seq > ? AND seq <= ? ORDER BY seq",
                        [after, after + 10_000],
                    ).fetchall()
                )
        seconds = time.perf_counter() - started
    finally:
        con.close()
    if scanned != n:
        raise RuntimeError(f"raw scan of {path} read {scanned} rows, expected {n}")
    return seconds
