"""Restoring a session file from a verified backup: the current file is kept aside, never deleted."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from cockpit.core.errors import CockpitError
from cockpit.store import companions, verify


def check_backup(backup: Path) -> None:
    """Refuse a backup that does not verify (every column read, the hash chain checked)."""
    report = verify(backup)
    if not report.ok:
        raise CockpitError(
            f"backup {backup.name} failed verification",
            "; ".join(report.problems.values()),
            "pick another backup (the list shows which are verified)",
        )


def swap_in_backup(session_file: Path, backup: Path, kept_as: str = "replaced") -> Path | None:
    """Verify `backup`, move the session (and its WAL files) aside as `<file>.<kept_as>-<UTC stamp>`, and put
    a copy of the backup in its place. Returns where the old file went (None if there was none).

    The engine on `session_file` must be stopped first."""
    check_backup(backup)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    staging = session_file.with_name(session_file.name + ".restoring")
    shutil.copyfile(backup, staging)
    with staging.open("rb+") as f:
        os.fsync(f.fileno())
    aside: Path | None = None
    for part in companions(session_file):
        if part.exists():
            target = part.with_name(
                part.name.replace(session_file.name, f"{session_file.name}.{kept_as}-{stamp}", 1)
            )
            part.rename(target)
            if part == session_file:
                aside = target
    staging.rename(session_file)
    fd = os.open(session_file.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return aside
