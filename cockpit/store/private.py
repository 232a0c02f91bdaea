"""Owner-only files and folders. A session file holds the account's positions, orders, fills and balances;
its backups, read copies, dead letters and the engine's state files as much: cockpit writes them mode 0600
and the folders it makes 0700, set explicitly whatever the umask (another user must not read a session)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(folder: Path, *, ours: bool = True) -> Path:
    """`folder` (and missing parents) created if needed, mode 0700. `ours`: a folder only cockpit uses
    (backups, read copies, the account's), made 0700 even if it exists; otherwise (a session folder the
    operator may have named) an existing folder keeps its mode. Another user's folder is left as it is."""
    existed = folder.is_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if ours or not existed:
        with contextlib.suppress(PermissionError):
            os.chmod(folder, DIR_MODE)
    return folder


def make_private(*paths: Path) -> None:
    """Each of these files that exists made 0600 (a DuckDB file and its WAL: DuckDB creates them itself)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, FILE_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, mode 0600 (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask, or a stale tmp file's mode
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
