"""Backups of the session file: verified copies in `<session dir>/backups/`, taken while the engine runs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.store import SessionFileError, verify

if TYPE_CHECKING:
    from cockpit.engine.engine import Engine


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    created: float  # file modification time
    size_bytes: int
    verified: bool | None  # None: not checked (see `check`)
    last_seq: int | None = None
    problem: str = ""


def backups_dir(session_file: Path) -> Path:
    return session_file.parent / "backups"


def backup_path(session_file: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return backups_dir(session_file) / f"{session_file.stem}-{stamp}.duckdb"


def list_backups(session_file: Path, check: bool = False) -> list[BackupInfo]:
    """Backups of this session, newest first; with `check`, each is verified (reads every column)."""
    folder = backups_dir(session_file)
    if not folder.is_dir():
        return []
    found: list[BackupInfo] = []
    for path in folder.glob(f"{session_file.stem}-*.duckdb"):
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
    """Delete this session's backups older than the retention (never the newest one)."""
    found = list_backups(session_file)
    old = [b for b in found[1:] if now - b.created > retention_days * 86400]
    for info in old:
        info.path.unlink(missing_ok=True)
    return [b.path.name for b in old]


async def backup_loop(engine: Engine) -> None:
    """A verified backup every `backup_every_s` (hourly by default), then retention (30 days by default)."""
    while True:
        await asyncio.sleep(engine.options.backup_every_s)
        result = await backup(engine, "schedule")
        pruned = prune(engine.session_file, engine.options.backup_retention_days, time.time())
        if pruned:
            engine.emit(
                "alert",
                {
                    "message": f"backup retention: removed {len(pruned)} backup(s) older than "
                    f"{engine.options.backup_retention_days:g} days",
                    "removed": pruned,
                    "after": result["path"],
                },
                "info",
                "store",
            )


async def backup(engine: Engine, by: str) -> dict[str, Any]:
    """Write a verified copy of the session as it is committed now; the engine keeps running."""
    started = time.monotonic()
    dest = backup_path(engine.session_file, time.time())
    dest.parent.mkdir(parents=True, exist_ok=True)
    report = await asyncio.to_thread(engine.store.backup_to, dest)
    engine.last_backup_at = time.time()
    result: dict[str, Any] = {
        "path": str(dest),
        "size_bytes": dest.stat().st_size,
        "verified": report.ok,
        "last_seq": report.last_seq,
        "seconds": round(time.monotonic() - started, 3),
        "by": by,
        "message": f"backup {dest.name}: {'verified' if report.ok else 'FAILED verification'}, "
        f"{dest.stat().st_size / 1e6:.1f} MB, through event {report.last_seq}",
    }
    engine.emit("db.backup", result, "info" if report.ok else "critical", "store")
    return result
