"""Replay, reports and analytics over session files, read-only (never modifies a file, never fights a lock).

- `open_for_reading(path)`: the checks and the read-only connection every reader uses;
- `list_sessions(folder)` / `render_sessions(rows)` / `sessions_json(rows)`: one row per session file;
- `session_metrics(path)`: equity and drawdown, fills, rejections, latency, outages, kill switch, incidents;
- `build_report(path)` / `render_markdown(report)` / `report_command(path, fmt)`: the session report;
- `export_parquet(path, out_dir)`: every table as a Parquet file.
"""

from __future__ import annotations

from cockpit.analytics.export import export_parquet
from cockpit.analytics.metrics import SessionMetrics, equity_curve, session_metrics
from cockpit.analytics.reading import EmptySessionError, ReadableSession, open_for_reading
from cockpit.analytics.report import build_report, render_markdown, report_command
from cockpit.analytics.sessions import SessionSummary, list_sessions, render_sessions, sessions_json

__all__ = [
    "EmptySessionError",
    "ReadableSession",
    "SessionMetrics",
    "SessionSummary",
    "build_report",
    "equity_curve",
    "export_parquet",
    "list_sessions",
    "open_for_reading",
    "render_markdown",
    "render_sessions",
    "report_command",
    "session_metrics",
    "sessions_json",
]
