"""Consistent, verified copies of a live session file.

The copy is `COPY FROM DATABASE` into a fresh file, run by the writer between two batches, so it holds exactly
the committed batches up to that point. A plain file copy after CHECKPOINT was rejected: reading the live file
from the process that holds it closes a descriptor of that file, which drops DuckDB's POSIX lock (see
files.py), and raw-copying a busy file gave an unopenable copy 2.8 % of the time (notes).

The copy is written as `<dest>.partial`, verified with `verify()` (every column, seq and hash chain), and only
then renamed to `<dest>` and the directory fsynced. An existing `<dest>` is never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from cockpit.store import files
from cockpit.store.errors import SessionFileError, StoreError
from cockpit.store.private import make_private
from cockpit.store.verify import VerifyReport, verify

ALIAS = "cockpit_backup"


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def check_target(dest: Path) -> None:
    if not dest.parent.is_dir():
        raise SessionFileError(
            f"backup directory {dest.parent} does not exist", f"cannot write {dest.name}", "create it first"
        )
    for existing in files.companions(dest):
        if existing.exists():
            raise SessionFileError(
                f"backup target {existing} already exists",
                "a backup never overwrites a file",
                "choose a new backup name (backups are named by time) or move the old one away",
            )
    for stale in files.companions(partial_path(dest)):
        stale.unlink(missing_ok=True)  # an interrupted earlier backup to the same name


def copy_statements(dest: Path, database: str) -> list[str]:
    quoted = str(partial_path(dest)).replace("'", "''")
    return [
        f"ATTACH '{quoted}' AS {ALIAS}",
        f'COPY FROM DATABASE "{database}" TO {ALIAS}',
        f"DETACH {ALIAS}",
    ]


def finish(dest: Path, expect_last_seq: int) -> VerifyReport:
    """Verify `<dest>.partial` and move it into place; StoreError (and the partial removed) if it is bad."""
    partial = partial_path(dest)
    report = verify(partial)
    leftover = [p.name for p in files.companions(partial)[1:] if p.exists()]
    if leftover or not report.ok or report.last_seq != expect_last_seq:
        for stale in files.companions(partial):
            stale.unlink(missing_ok=True)
        problems = "; ".join(f"{k}: {v}" for k, v in report.problems.items())
        if leftover:
            problems = f"DuckDB left {', '.join(leftover)} beside the copy"
        raise StoreError(
            f"backup {dest} failed verification",
            problems or f"it ends at seq {report.last_seq}, the session was at {expect_last_seq}",
            "check the disk holding the backups and run the backup again",
        )
    make_private(partial)
    os.replace(partial, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return VerifyReport(
        path=dest,
        ok=True,
        counts=report.counts,
        problems={},
        problem_counts={},
        schema_version=report.schema_version,
        last_seq=report.last_seq,
        last_hash=report.last_hash,
        elapsed_s=report.elapsed_s,
    )
