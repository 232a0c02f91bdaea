"""Probe replay on a large session: build N events (marks, balances, fills), then time load, seeks and a fold.

Run: .venv/bin/python bench/replay_probe.py [--events 1000000]
Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench.replay_restore import synthetic_event
from cockpit.core.domain import Event
from cockpit.core.snapshot import state_to_json
from cockpit.core.state import State, apply
from cockpit.replay.session import ReplaySession
from cockpit.store import SessionStore


def synthetic(n: int) -> list[Event]:
    return [synthetic_event(seq) for seq in range(1, n + 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    path = folder / "big.duckdb"
    events = synthetic(args.events)
    started = time.perf_counter()
    state = State()
    with SessionStore.open(path) as store:
        store.start()
        for event in events:
            store.append(event)
            state = apply(state, event)
            if event.seq % 1000 == 0:
                store.put_snapshot(event.seq, event.ts, state_to_json(state))
    print(
        f"built {args.events:,} events in {time.perf_counter() - started:.1f} s "
        f"({path.stat().st_size / 1e6:.0f} MB)"
    )
    del events
    t0 = time.perf_counter()
    session = ReplaySession.open(path)
    t1 = time.perf_counter()
    session.seek(session.total // 2)
    t2 = time.perf_counter()
    session.seek(session.total)
    t3 = time.perf_counter()
    session.seek(1234)
    t4 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"replay load {t1 - t0:.2f} s; seek middle {1000 * (t2 - t1):.0f} ms; "
        f"seek end {1000 * (t3 - t2):.0f} ms; "
        f"seek back {1000 * (t4 - t3):.0f} ms; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
