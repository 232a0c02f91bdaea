"""Market ticks older than a retention period leave the session file for Parquet partitions.

An engine that runs for weeks at 10 k ticks/s would otherwise grow its session file by gigabytes a day
(events are a small part of it). The archive is a folder of Hive-style partitions that DuckDB, Polars and
Spark read as one table:

    <archive>/day=2026-12-06/market=BTC-USDT-USDT/<session>-<through ms>-0.parquet

with the columns `ts, symbol, bid, ask, bid_qty, ask_qty` (`symbol` is cockpit's unified symbol; `market` is
it made safe for a folder name). Read it back with e.g.
`SELECT * FROM read_parquet('<archive>/**/*.parquet', hive_partitioning = true)`.

How a move stays whole (the writer thread runs `move_out`; see writer.py `archive_ticks`):
1. the rows older than the cut-off (at most MOVE_SPAN_S of them from the oldest: a backlog goes a slice at a
   time, so the writer is never held long) are written to a staging folder beside the archive, and fsynced;
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
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cockpit.store.schema import set_meta

PENDING_KEY = "archive_pending"
STAGING_DIR = ".ticks-staging"
MOVE_SPAN_S = 120.0  # ticks moved in one go at most (from the oldest): ~1.2 M rows at 10 k/s, ~0.4 s


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


def staging_root(folder: Path) -> Path:
    """Where moves are staged: beside the archive (the same filesystem, so the final move is a rename), not
    in it (a reader of `ticks/**/*.parquet` never sees a move in progress)."""
    return folder.parent / STAGING_DIR


def _literal(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def move_out(
    cur: duckdb.DuckDBPyConnection, before_ts: float, folder: Path, session: str
) -> tuple[int, Path, float]:
    """Steps 1 and 2 on the writer's connection, for at most MOVE_SPAN_S of ticks from the oldest (the writer
    is held while it runs: a backlog is moved a slice at a time): (rows moved, staging folder, the cut-off
    used). Raises duckdb.Error or OSError with nothing deleted when the copy fails."""
    oldest = cur.execute("SELECT min(ts) FROM ticks").fetchall()[0][0]
    if oldest is None or oldest >= before_ts:
        return 0, staging_root(folder) / "none", before_ts
    cut_ts = min(before_ts, float(oldest) + MOVE_SPAN_S)
    stamp = int(cut_ts * 1000)
    staging = staging_root(folder) / f"{session}-{stamp}"
    staging.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    cut = repr(float(cut_ts))  # a float literal: COPY takes no parameters
    pattern = _literal(f"{session}-{stamp}-{{i}}")
    try:
        cur.execute(
            f"""COPY (
                SELECT ts, symbol, bid, ask, bid_qty, ask_qty,
                       strftime(epoch_ms(CAST(floor(ts * 1000) AS BIGINT)), '%Y-%m-%d') AS day,
                       regexp_replace(symbol, '[^A-Za-z0-9_.-]', '-', 'g') AS market
                FROM ticks WHERE ts < {cut} ORDER BY ts
            ) TO {_literal(staging)}
            (FORMAT PARQUET, PARTITION_BY (day, market), FILENAME_PATTERN {pattern})"""
        )
        _fsync_tree(staging)  # on disk before the rows leave the file
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    cur.execute("BEGIN TRANSACTION")
    try:
        rows = int(cur.execute("DELETE FROM ticks WHERE ts < ?", [cut_ts]).fetchall()[0][0])
        set_meta(cur, PENDING_KEY, str(staging))
        cur.execute("COMMIT")
    except BaseException:
        # the staging folder stays: if the commit did happen after all, the mark names it and the next move
        # settles it; if not, it is a leftover (the rows are still in the file) and is dropped
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        raise
    return rows, staging, cut_ts


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        _fsync(path)
    _fsync(root)
    _fsync(root.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def settle(staging: Path, folder: Path) -> int:
    """Step 3: the staging folder's files into the archive (same partitions); the count of files."""
    moved = 0
    if not staging.is_dir():
        return 0
    targets: set[Path] = set()
    for file in sorted(staging.rglob("*.parquet")):
        target = folder / file.relative_to(staging)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(file, target)
        os.chmod(target, 0o600)
        targets.add(target.parent)
        moved += 1
    for target in sorted(targets):  # the renames on disk before the mark is cleared
        _fsync(target)
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def leftovers(folder: Path, session: str) -> list[Path]:
    """This session's staging folders once its mark is settled: moves that stopped before their delete
    committed (their rows are still in the file). Other sessions' are theirs (an exact name match)."""
    root = staging_root(folder)
    if not root.is_dir():
        return []
    mine = re.compile(re.escape(session) + r"-\d+")
    return [p for p in root.iterdir() if mine.fullmatch(p.name)]
