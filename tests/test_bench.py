"""The benchmark harness runs (tiny sizes) and writes every figure the issue names. Not a speed test."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.__main__ import main

KEYS = {
    "ingest": {"ticks_per_s", "raw_ws_msgs_per_s", "bybit_ticks_per_s", "bybit_raw_ws_msgs_per_s"},
    "store": {"tick_rows_per_s", "raw_rows_per_s", "critical_commit_p99_ms", "raw_commit_p99_ms"},
    "restore": {"events", "seconds"},
    "replay": {"events_per_s", "raw_scan_rows_per_s"},
    "flatten": {"positions", "seconds_to_verified_flat"},
    "ui": {"key_to_render_p99_ms", "ticks_per_s_during"},
    "memory": {"rss_mb_peak"},
    "day": {
        "bytes_per_tick_in_file",
        "session_file_gb_per_day_all_ticks",
        "parquet_gb_per_day",
        "archive_seconds_per_m_ticks",
        "restore_seconds_day_of_events",
        "verify_seconds_day_of_events",
    },
    "attach": {
        "key_to_render_p99_ms",
        "idle_key_to_render_p99_ms",
        "key_to_render_p99_ratio",
        "ticks_per_s_during",
        "event_to_render_p50_ms",
        "event_to_render_p90_ms",
        "event_to_render_p99_ms",
        "event_to_fold_p99_ms",
        "events_ticks_per_s_during",
        "ingest_ratio_0",
        "ingest_ratio_3",
        "ingest_ratio_3_vs_0",
    },
}


def test_bench_harness_runs_on_tiny_inputs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    assert main(["--tiny", "--out", str(out)]) == 0
    results = orjson.loads(out.read_bytes())
    for section, keys in KEYS.items():
        assert keys <= set(results[section]), section
    assert results["store"]["tick_rows_per_s"] > 0 and results["store"]["raw_rows_per_s"] > 0
    assert results["restore"]["restored_seq"] == results["restore"]["events"]
    assert results["flatten"]["verified"] is True
    assert results["day"]["verify_ok"] is True and results["day"]["archive_ticks_moved"] > 0
    attach = results["attach"]
    assert attach["events_marked"] > 0 and attach["ingest_cockpit_attaches"] == 3 * attach["ingest_rounds"]
