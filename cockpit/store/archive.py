"""Market ticks older than a retention period leave the session file for Parquet partitions.

An engine that runs for weeks at 10 k ticks/s would otherwise grow its session file by gigabytes a day
(events are a small part of it). The archive is a folder of Hive-style partitions that DuckDB, Polars and
Spark read as one table:

    <archive>/day=2026-12-06/market=BTC-USDT-USDT/<session>-<through ms>-0.parquet

with the columns `ts, symbol, bid, ask, bid_qty, ask_qty` (`symbol` is cockpit's unified symbol; `market` is
it made safe for a folder name). Read it back with e.g.
`SELECT * FROM read_parquet('<archive>/**/*.parquet', hive_partitioning = true)`.

How a move stays whole (the writer thread runs `move_out`; see writer.py `archive_ticks`):
1. the rows older than the cut-off are written to a staging folder beside the archive;
2. one transaction deletes them from the session file and records the staging folder in `meta`
   (`archive_pending`); DuckDB reuses the freed space, so the file stops growing;
3. the staging folder's files are moved into the archive, and the `meta` mark is cleared.
A crash before 2 leaves rows in the file and a staging folder no mark names: the folder is deleted and the
rows are moved again next time. A crash after 2 leaves the mark: the next move (or start) finishes step 3.
Nothing is lost or written twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cockpit.store.schema import set_meta

PENDING_KEY = "archive_pending"
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class ArchiveResult:
    rows: int  # ticks moved out of the session file
    files: int  # Parquet files written
    through_ts: float  # ticks before this time are in the archive
    folder: Path
    seconds: float


def archive_folder(session_file: Path) -> Path:
    """Where a session's ticks are archived: `ticks/` beside the session file (shared by the sessions of a
    folder: file names carry the session's name)."""
    return session_file.parent / "ticks"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def move_out(
    cur: duckdb.DuckDBPyConnection, before_ts: float, folder: Path, session: str
) -> tuple[int, Path]:
    """Steps 1 and 2 on the writer's connection: (rows moved, staging folder). Raises duckdb.Error with
    nothing deleted when the copy fails."""
    rows = int(cur.execute("SELECT count(*) FROM ticks WHERE ts < ?", [before_ts]).fetchall()[0][0])
    staging = folder / f"{STAGING_PREFIX}{session}-{int(before_ts * 1000)}"
    if rows == 0:
        return 0, staging
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    cut = repr(float(before_ts))  # a float literal: COPY takes no parameters
    cur.execute(
        f"""COPY (
            SELECT ts, symbol, bid, ask, bid_qty, ask_qty,
                   strftime(epoch_ms(CAST(floor(ts * 1000) AS BIGINT)), '%Y-%m-%d') AS day,
                   regexp_replace(symbol, '[^A-Za-z0-9_.-]', '-', 'g') AS market
            FROM ticks WHERE ts < {cut} ORDER BY ts
        ) TO {_literal(staging)} (FORMAT PARQUET, PARTITION_BY (day, market),
            FILENAME_PATTERN '{session}-{int(before_ts * 1000)}-{{i}}')"""
    )
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute("DELETE FROM ticks WHERE ts < ?", [before_ts])
        set_meta(cur, PENDING_KEY, str(staging))
        cur.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return rows, staging


def settle(staging: Path, folder: Path) -> int:
    """Step 3: the staging folder's files into the archive (same partitions); the count of files."""
    moved = 0
    if not staging.is_dir():
        return 0
    for file in sorted(staging.rglob("*.parquet")):
        target = folder / file.relative_to(staging)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(file, target)
        os.chmod(target, 0o600)
        moved += 1
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def leftovers(folder: Path, session: str) -> list[Path]:
    """This session's staging folders once its mark is settled: moves that crashed before their delete
    (their rows are still in the file). Other sessions' folders are theirs."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(f"{STAGING_PREFIX}{session}-")]
