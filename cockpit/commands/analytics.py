"""`cockpit sessions`, `cockpit report SESSION --format json|md`, `cockpit export SESSION --parquet DIR`.

A session file the engine is still writing is held by it (DuckDB lets one process hold a file). These commands
do what `cockpit replay` does: ask that engine, over its control socket, for a consistent, verified read copy
(in `.reads/` beside the session, not a backup: see cockpit.engine.live_copy), read it and delete it. The
output names the live file and says it is live; stderr says which copy was read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from cockpit.commands.parsing import DEFAULT_CONFIG, Commands
from cockpit.config.location import default_config_if_present
from cockpit.config.paths import data_dir
from cockpit.core.errors import CockpitError

if TYPE_CHECKING:
    from cockpit.analytics.sessions import SessionSummary
    from cockpit.engine.live_copy import LiveCopy
    from cockpit.store.errors import SessionInUse

T = TypeVar("T")


def register(commands: Commands) -> None:
    sessions = commands.add_parser("sessions", help="the session files in the data directory, summarised")
    sessions.add_argument(
        "--dir", default=None, help="folder of session files (default: the config's session folder)"
    )
    sessions.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"list the session folder of this config (default: {DEFAULT_CONFIG} if it exists, "
        "else the data directory's sessions/)",
    )
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    sessions.set_defaults(handler=sessions_command)

    report = commands.add_parser("report", help="incident report and analytics of a session file")
    report.add_argument("session", metavar="SESSION.duckdb")
    report.add_argument("--format", choices=["md", "json"], default="md", help="markdown (default) or json")
    report.set_defaults(handler=report_cli)

    export = commands.add_parser(
        "export", help="a session as Parquet files (readable by DuckDB, Polars, Spark)"
    )
    export.add_argument("session", metavar="SESSION.duckdb")
    export.add_argument("--parquet", required=True, metavar="DIR", help="folder for the .parquet files")
    export.set_defaults(handler=export_command)


def _copy_for(path: Path, in_use: SessionInUse, by: str) -> LiveCopy:
    """The engine's read copy of a file it holds (the caller deletes it); SessionInUse (naming what was
    tried) if none answers."""
    from cockpit.engine.live_copy import request_copy
    from cockpit.store.errors import SessionInUse

    try:
        copy = request_copy(path, by)
    except CockpitError as exc:
        raise SessionInUse(
            in_use.title,
            f"{in_use.detail}; asking its engine for a consistent copy failed: {exc.title}"
            + (f" ({exc.detail})" if exc.detail else ""),
            in_use.fix,
        ) from exc
    through = f" through event {copy.last_seq}" if copy.last_seq is not None else ""
    print(
        f"{path.name} is live (the engine is writing it): read a verified copy{through}, {copy.path} "
        "(deleted after reading)",
        file=sys.stderr,
    )
    return copy


def read_live(path: Path, read: Callable[[Path], T], by: str) -> tuple[T, LiveCopy | None]:
    """`read(path)`, or, if a running engine holds the file, `read` of the copy it writes for us (deleted
    once read)."""
    from cockpit.engine.live_copy import discard
    from cockpit.store.errors import SessionInUse

    try:
        return read(path), None
    except SessionInUse as in_use:
        copy = _copy_for(path, in_use, by)
    try:
        return read(copy.path), copy
    finally:
        discard(copy.path)


# ----- cockpit sessions ----------------------------------------------------------------------------------


def sessions_folder(args: argparse.Namespace) -> tuple[Path, str]:
    """`--dir`, else the session folder of `--config` or of the default config file, else the data
    directory's `sessions/` (where a config without [session] keeps them); and where that choice came from."""
    if args.dir:
        return Path(args.dir), "--dir"
    config_file = Path(args.config) if args.config else default_config_if_present()
    if config_file is None:
        return data_dir() / "sessions", "the default; no config file"
    from cockpit.config.settings import load_config

    session = load_config(config_file).session
    if session.path is not None:
        return session.path.parent, f"the folder of session.path in {config_file}"
    return session.dir, f"session.dir in {config_file}"


def _live_summary(row: SessionSummary) -> tuple[SessionSummary, LiveCopy | None]:
    """A row as listed; one a running engine holds (unreadable here, its socket beside it) is summarised
    from the fresh read copy that engine writes (deleted once summarised), under the live file's name."""
    from cockpit.analytics.sessions import summarize
    from cockpit.engine.control import socket_path_for
    from cockpit.engine.live_copy import discard, request_copy

    if row.readable or not socket_path_for(row.path).exists():
        return row, None
    try:
        copy = request_copy(row.path, "sessions")
    except CockpitError as exc:
        return replace(row, error=f"{row.error}; asking its engine for a copy failed: {exc.title}"), None
    try:
        return replace(summarize(copy.path), path=row.path), copy
    finally:
        discard(copy.path)


def _marked_live(path: Path) -> Path:
    return path.with_name(f"{path.name} (live)")


def sessions_command(args: argparse.Namespace) -> int:
    import orjson

    from cockpit.analytics import render_sessions
    from cockpit.analytics.sessions import list_sessions

    folder, source = sessions_folder(args)
    if not folder.exists() and not args.dir:  # nothing recorded yet where the config says sessions go
        print("[]" if args.json else f"no session files in {folder} ({source}): no such folder yet")
        return 0
    rows = [_live_summary(row) for row in list_sessions(folder)]
    if args.json:
        listing = [
            {**row.to_json(), "live": copy is not None, "read_from": str(copy.path) if copy else None}
            for row, copy in rows
        ]
        print(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode())
    elif rows:
        shown = [replace(row, path=_marked_live(row.path)) if copy else row for row, copy in rows]
        print(f"session files in {folder} ({source}):")
        print(render_sessions(shown))
    else:
        print(f"no session files in {folder} ({source})")
    return 0


# ----- cockpit report, cockpit export -------------------------------------------------------------------


def report_cli(args: argparse.Namespace) -> int:
    import orjson

    from cockpit.analytics import build_report, render_markdown

    path = Path(args.session)
    report, copy = read_live(path, build_report, "report")
    report["live"] = copy is not None
    if copy is not None:  # the report is of the live session, as far as the copy goes
        report.update(file=str(path), read_from=str(copy.path))
    if args.format == "json":
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_markdown(report))
    return 0


def export_command(args: argparse.Namespace) -> int:
    from cockpit.analytics import export_parquet

    out = Path(args.parquet)
    counts, _ = read_live(Path(args.session), lambda p: export_parquet(p, out), "export")
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows → {out / (table + '.parquet')}")
    return 0
