"""Which file the session path names (device and inode), and what the engine tells when it stopped after its
session file was deleted or replaced. Plain data and one `stat`: the watch itself is file_watch.py."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cockpit.core.errors import CockpitError


@dataclass(frozen=True)
class FileIdentity:
    """Which file a path names: the same device and inode is the same file, whatever it is called."""

    device: int
    inode: int

    def __str__(self) -> str:
        return f"device {self.device}, inode {self.inode}"


def identity_of(path: Path) -> FileIdentity | None:
    """The identity of the file at `path` (symlinks followed), None when nothing is there."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return FileIdentity(st.st_dev, st.st_ino)


def change_of(path: Path, opened: FileIdentity) -> tuple[str, FileIdentity | None] | None:
    """`("deleted", None)`, `("replaced", what is there now)`, or None: the path still names the open file."""
    now = identity_of(path)
    if now is None:
        return "deleted", None
    if now != opened:
        return "replaced", now
    return None


class SessionFileLost(CockpitError):
    """The engine stopped after its session file was deleted or replaced: exit 3, as a database failure."""

    exit_code = 3


@dataclass
class LostFile:
    """What the watch found, and the verified backups taken of the open file since."""

    path: Path
    change: str  # deleted | replaced
    opened: FileIdentity
    found: FileIdentity | None
    backups: list[str] = field(default_factory=list)  # verified copies, oldest first
    at: float = field(default_factory=time.time)  # when the watch found it (wall clock, as file times are)

    @property
    def short(self) -> str:
        """The reason in a pane's width: the file's name first."""
        what = "deleted or moved away" if self.change == "deleted" else "replaced by another file"
        return f"{self.path.name} {what} while the engine ran"

    @property
    def reason(self) -> str:
        if self.change == "deleted":
            return (
                f"session file {self.path} was deleted (or moved away) while the engine ran "
                f"(the engine's open file: {self.opened})"
            )
        return (
            f"session file {self.path} was replaced by another file ({self.found}) while the engine ran "
            f"(the engine's open file: {self.opened})"
        )

    def error(self) -> SessionFileLost:
        restore = "restore it: `cockpit restore --config F --latest`"
        if self.change == "replaced":
            restore += f" (the file now at {self.path.name} is kept aside, not deleted)"
        if self.backups:
            return SessionFileLost(
                self.reason,
                f"everything the engine recorded is in the verified backup {self.backups[-1]}",
                f"{restore}, then start cockpit (it reconciles) and release the kill switch",
            )
        return SessionFileLost(
            self.reason,
            f"no verified backup of the open file could be written to {self.path.parent / 'backups'}: the "
            "events since the last backup are lost",
            f"check that disk (space, permissions); {restore} to go back to the last backup",
        )
