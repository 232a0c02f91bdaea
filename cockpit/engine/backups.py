"""Backups of the session file: verified copies in `<session dir>/backups/`, taken while the engine runs.

Read copies are the same verified copy written for a reader (`cockpit sessions`, `report`, `export`, `replay`
on a session the engine holds) into `<session dir>/.reads/`: not a restore point, not listed with the backups,
not recorded as an event. The reader deletes its copy when done; the engine removes any older than
`READ_COPY_MAX_AGE_S` (a reader that crashed), at each read request and on the backup schedule.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import BackupResult
from cockpit.store import SessionFileError, VerifyReport, verify
from cockpit.store.private import private_dir

if TYPE_CHECKING:
    from cockpit.engine.context import BackupContext, SessionFile

log = logging.getLogger(__name__)
READ_COPY_MAX_AGE_S = 86_400.0  # a read copy older than this was left by a reader that crashed (a replay
# may stay open for hours: its stats screen reopens the copy by name)


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created: float  # file modification time
    size_bytes: int
    verified: bool | None  # None: not checked (see `check`)
    last_seq: int | None = None
    problem: str = ""


_STAMPED = r"-\d{8}-\d{6}-\d{3}\.duckdb"  # a backup's name: <session stem>-<UTC time>-<ms>.duckdb


def backups_dir(session_file: Path) -> Path:
    return session_file.parent / "backups"


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"


def backup_path(session_file: Path, now: float) -> Path:
    return backups_dir(session_file) / f"{session_file.stem}-{_stamp(now)}.duckdb"


def reads_dir(session_file: Path) -> Path:
    return session_file.parent / ".reads"


def read_copy_path(session_file: Path, now: float) -> Path:
    """A new name for a read copy: time-stamped like a backup, plus a random part (two readers may ask in
    the same millisecond)."""
    return reads_dir(session_file) / f"{session_file.stem}-{_stamp(now)}-{secrets.token_hex(3)}.duckdb"


def _read_copy_pattern(session_file: Path) -> re.Pattern[str]:
    """This session's read copies and what goes with them (`.partial`, `.wal`): never another session's."""
    return re.compile(re.escape(session_file.stem) + r"-\d{8}-\d{6}-\d{3}-[0-9a-f]{6}\.duckdb(\.|$)")


def remove_stale_reads(session_file: Path, now: float, max_age_s: float = READ_COPY_MAX_AGE_S) -> list[str]:
    """Delete this session's read copies (and their partials) older than `max_age_s`; only in `.reads/`.
    Never raises for a file it cannot remove (logged): housekeeping must not stop a backup or a read."""
    folder = reads_dir(session_file)
    pattern = _read_copy_pattern(session_file)
    removed: list[str] = []
    try:
        names = [path for path in folder.iterdir() if pattern.match(path.name)] if folder.is_dir() else []
    except OSError as exc:
        log.warning("cannot list %s: %s", folder, exc)
        return []
    for path in names:
        try:
            if now - path.lstat().st_mtime <= max_age_s:
                continue
            path.unlink()
        except FileNotFoundError:  # its reader deleted it meanwhile
            continue
        except OSError as exc:
            log.warning("cannot remove the stale read copy %s: %s", path, exc)
            continue
        removed.append(path.name)
    if removed:
        log.info("removed %d stale read copies of %s: %s", len(removed), session_file.name, removed)
    return sorted(removed)


def list_backups(session_file: Path, check: bool = False) -> list[BackupInfo]:
    """Backups of this session, newest first; with `check`, each is verified (reads every column)."""
    folder = backups_dir(session_file)
    if not folder.is_dir():
        return []
    found: list[BackupInfo] = []
    mine = re.compile(re.escape(session_file.stem) + _STAMPED)  # not a rotated file's (live-2026…-…)
    for path in folder.glob(f"{session_file.stem}-*.duckdb"):
        if not mine.fullmatch(path.name):
            continue
        stat = path.stat()
        info = BackupInfo(path, stat.st_mtime, stat.st_size, None)
        if check:
            try:
                report = verify(path)
                problem = "" if report.ok else "; ".join(report.problems.values())
                info = BackupInfo(path, stat.st_mtime, stat.st_size, report.ok, report.last_seq, problem)
            except SessionFileError as exc:
                info = BackupInfo(path, stat.st_mtime, stat.st_size, False, None, exc.title)
        found.append(info)
    return sorted(found, key=lambda b: b.created, reverse=True)


def prune(session_file: Path, retention_days: float, now: float) -> list[str]:
    """Delete the backups in this session's folder older than the retention, never the newest of a session
    file: this file's, and those of the files a rotation left behind (cockpit/engine/rotation.py)."""
    folder = backups_dir(session_file)
    stems = {
        match.group(1)
        for path in (folder.glob("*.duckdb") if folder.is_dir() else [])
        if (match := re.fullmatch(r"(.+)" + _STAMPED, path.name))
    }
    removed: list[str] = []
    for stem in sorted(stems):
        found = list_backups(session_file.with_name(f"{stem}{session_file.suffix}"))
        old = [b for b in found[1:] if now - b.created > retention_days * 86400]
        for info in old:
            info.path.unlink(missing_ok=True)
        removed += [b.path.name for b in old]
    return removed


async def backup_loop(engine: BackupContext) -> None:
    """A verified backup every `backup_every_s` (hourly by default), then retention (30 days by default)."""
    while True:
        await asyncio.to_thread(remove_stale_reads, engine.session_file, time.time())
        await asyncio.sleep(engine.options.backup_every_s)
        result = await backup(engine, "schedule")
        pruned = prune(engine.session_file, engine.options.backup_retention_days, time.time())
        if pruned:
            engine.emit(
                "alert",
                events.alert(
                    message=f"backup retention: removed {len(pruned)} backup(s) older than "
                    f"{engine.options.backup_retention_days:g} days",
                    removed=pruned,
                    after=result.path,
                ),
                "info",
                "store",
            )


def copy_result(
    dest: Path, report: VerifyReport, size: int, seconds: float, by: str, what: str
) -> BackupResult:
    """What a verified copy at `dest` is: where, how big, whether it verified, through which event."""
    return BackupResult(
        path=str(dest),
        size_bytes=size,
        verified=report.ok,
        last_seq=report.last_seq,
        seconds=round(seconds, 3),
        by=by,
        message=f"{what} {dest.name}: {'verified' if report.ok else 'FAILED verification'}, "
        f"{size / 1e6:.1f} MB, through event {report.last_seq}",
    )


def backup_payload(result: BackupResult) -> events.DbBackup:
    """The `db.backup` event of a backup."""
    return events.db_backup(
        path=result.path,
        size_bytes=result.size_bytes,
        verified=result.verified,
        last_seq=result.last_seq,
        seconds=result.seconds,
        by=result.by,
        message=result.message,
    )


async def _copy(engine: SessionFile, dest: Path, by: str, what: str) -> BackupResult:
    """A verified copy of the session as it is committed now, at `dest`; the engine keeps running."""
    started = time.monotonic()

    def write() -> tuple[VerifyReport, int]:
        private_dir(dest.parent)
        report = engine.store.backup_to(dest)
        return report, dest.stat().st_size

    report, size = await asyncio.to_thread(write)
    return copy_result(dest, report, size, time.monotonic() - started, by, what)


async def backup(engine: BackupContext, by: str) -> BackupResult:
    """An operator's (or the schedule's) backup: a restore point in `backups/`, recorded as db.backup."""
    result = await _copy(engine, backup_path(engine.session_file, time.time()), by, "backup")
    engine.last_backup_at = time.time()
    engine.emit("db.backup", backup_payload(result), "info" if result.verified else "critical", "store")
    return result


async def read_copy(engine: SessionFile, by: str) -> BackupResult:
    """A verified copy for a reader, in `.reads/`: the same copy as a backup, but no restore point — not
    listed by `list_backups`, not counted as the last backup, no event (a read changes nothing). The reader
    deletes it when done; stale ones are removed first."""
    now = time.time()
    await asyncio.to_thread(remove_stale_reads, engine.session_file, now)
    result = await _copy(engine, read_copy_path(engine.session_file, now), by, "read copy")
    log.info("%s (for %s)", result.message, by)
    return result


async def backup_unrecorded(engine: BackupContext, by: str) -> BackupResult:
    """A restore point in `backups/` that no event records: the last copy of a session whose file was
    deleted or replaced, taken at stop after `session.stopped` (nothing can be recorded after it), so the
    copy holds every event the engine wrote (cockpit/engine/file_watch.py)."""
    result = await _copy(engine, backup_path(engine.session_file, time.time()), by, "last backup")
    engine.last_backup_at = time.time()
    log.info("%s (by %s)", result.message, by)
    return result
