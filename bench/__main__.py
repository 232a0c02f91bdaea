"""`python -m bench [--quick]`: cockpit's figures beside the raw ceiling measured in the same run.

Writes bench/results/latest.json and prints a short table. Not a test: CI runs only a smoke test of it.
Sections not measured yet are written as null with a reason, never as made-up numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import attach, day, flatten, ingest, memory, replay_restore, store, ui

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes at most")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny sizes: checks the harness runs (smoke test)"
    )
    parser.add_argument("--out", default=str(RESULTS / "latest.json"), help="where to write the JSON")
    args = parser.parse_args(argv)
    size = "tiny" if args.tiny else "quick" if args.quick else "full"
    work = Path(tempfile.mkdtemp(prefix="cockpit-bench-"))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "size": size},
        "store": store.run(work, size),
        "restore": replay_restore.restore(work, size),
        "replay": replay_restore.replay(work, size),
        "flatten": asyncio.run(flatten.run(work, size)),
        "ingest": ingest.run(work, size),
        "ui": ui.run(work, size),
        "attach": attach.run(work, size),
        "memory": memory.run(work, size),
        "day": day.run(work, size),
    }
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(table(results))
    print(f"\nwritten {out} ({results['seconds']} s)")
    return 0


def table(results: dict[str, Any]) -> str:
    s, r, p, f = results["store"], results["restore"], results["replay"], results["flatten"]
    i, u, m, a = results["ingest"], results["ui"], results["memory"], results["attach"]
    rows = [
        (
            "ingest",
            f"{i['ticks_per_s']:,.0f} ticks/s",
            f"raw {i['raw_ws_msgs_per_s']:,.0f} msg/s",
            f"{i['ticks_per_s'] / i['raw_ws_msgs_per_s']:.2f}× (target ≥ 0.5×)",
        ),
        (
            "ingest, Bybit",
            f"{i['bybit_ticks_per_s']:,.0f} ticks/s",
            f"raw {i['bybit_raw_ws_msgs_per_s']:,.0f} msg/s",
            f"{i['bybit_ticks_per_s'] / i['bybit_raw_ws_msgs_per_s']:.2f}× (target ≥ 0.5×)",
        ),
        (
            "tick persistence",
            f"{s['tick_rows_per_s']:,.0f} rows/s",
            f"raw {s['raw_rows_per_s']:,.0f}",
            f"{s['tick_rows_per_s'] / s['raw_rows_per_s']:.2f}× (target ≥ 0.5×)",
        ),
        (
            "critical commit p99",
            f"{s['critical_commit_p99_ms']:.2f} ms",
            f"raw {s['raw_commit_p99_ms']:.2f} ms",
            f"{s['critical_commit_p99_ms'] / s['raw_commit_p99_ms']:.2f}× (target ≤ 2×)",
        ),
        ("restore", f"{r['seconds']:.3f} s", f"{r['events']:,} events", "target ≤ 1 s for 1 M"),
        (
            "replay scan",
            f"{p['events_per_s']:,.0f} ev/s",
            f"raw {p['raw_scan_rows_per_s']:,.0f} rows/s",
            f"{p['events_per_s'] / p['raw_scan_rows_per_s']:.2f}× (target ≥ 0.2×)",
        ),
        ("flatten", f"{f['seconds_to_verified_flat']:.3f} s", f"{f['positions']} positions", "target ≤ 1 s"),
        (
            "key to render p99",
            f"{u['key_to_render_p99_ms']:.1f} ms",
            f"{u['ticks_per_s_during']:,.0f} ticks/s during",
            "target ≤ 100 ms at ≥ 20 k ticks/s",
        ),
        (
            "attached key to render p99",
            f"{a['key_to_render_p99_ms']:.1f} ms at {a['ticks_per_s_during']:,.0f} ticks/s",
            f"no ticks {a['idle_key_to_render_p99_ms']:.1f} ms",
            f"{a['key_to_render_p99_ratio']:.2f}× (target ≤ 1.5×)",
        ),
        (
            "attached event to render p99",
            f"{a['event_to_render_p99_ms']:.1f} ms at {a['events_ticks_per_s_during']:,.0f} ticks/s",
            f"folded {a['event_to_fold_p99_ms']:.1f} ms",
            "target ≤ 50 ms",
        ),
        (
            "ingest, 3 cockpits attached",
            f"{a['ingest_ratio_3']:.2f}× of raw",
            f"none attached {a['ingest_ratio_0']:.2f}×",
            f"{a['ingest_ratio_3_vs_0']:.2f}× (target ≥ 0.9×)",
        ),
        (
            "memory peak RSS",
            f"{m['rss_mb_peak']:.0f} MB",
            f"{m['seconds']:.0f} s at {m['ticks_per_s']:,} ticks/s",
            f"slope {m['growth_mb_per_hour']:+.0f} MB/h (target ≤ 250 MB)",
        ),
    ]
    d = results["day"]
    rows += [
        (
            "a day at 10 k ticks/s",
            f"file {d['session_file_gb_per_day_all_ticks']:.1f} GB with every tick",
            f"Parquet {d['parquet_gb_per_day']:.1f} GB/day, {d['archive_seconds_per_m_ticks']:.1f} s/M moved",
            f"events alone {d['session_file_mb_per_day_events_only']:.0f} MB/day",
        ),
        (
            "a day's events: start, verify",
            f"restore {d['restore_seconds_day_of_events']:.2f} s",
            f"verify {d['verify_seconds_day_of_events']:.1f} s"
            f" (+{d['verify_seconds_per_m_ticks']:.2f} s/M ticks)",
            f"{d['events_per_day']:,} events/day",
        ),
    ]
    width = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)) for row in rows)


if __name__ == "__main__":
    raise SystemExit(main())
