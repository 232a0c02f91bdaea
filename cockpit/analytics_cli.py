"""`cockpit sessions`, `cockpit report SESSION --format json|md`, `cockpit export SESSION --parquet DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from cockpit.analytics import export_parquet, list_sessions, render_sessions, report_command, sessions_json
from cockpit.paths import data_dir


def sessions_command(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else data_dir() / "sessions"
    rows = list_sessions(folder)
    if args.json:
        print(orjson.dumps(sessions_json(rows), option=orjson.OPT_INDENT_2).decode())
    elif rows:
        print(render_sessions(rows))
    else:
        print(f"no session files in {folder}")
    return 0


def report_cli(args: argparse.Namespace) -> int:
    print(report_command(Path(args.session), args.format))
    return 0


def export_command(args: argparse.Namespace) -> int:
    counts = export_parquet(Path(args.session), Path(args.parquet))
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows → {Path(args.parquet) / (table + '.parquet')}")
    return 0
