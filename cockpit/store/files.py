"""File-level facts about a session file, checked before DuckDB is allowed to touch it.

A session is `<db>` plus `<db>.wal` and `<db>.wal.checkpoint` (commits go to the latter during a checkpoint):
file-level operations treat the three together.

Two traps this module exists for:
- DuckDB replays a WAL it finds next to a file when it opens it read-write. So an existing file's magic bytes
  are read with plain `open()` before any `duckdb.connect`, and a WAL without its database is refused.
- DuckDB's file lock is a POSIX `fcntl` lock, and closing *any* descriptor of that file in the same process
  drops it (measured: after `open(db).read(); close()`, a second process could open the live file). So a
  process must never read the bytes of a file it holds open through DuckDB: `claim()` keeps a registry of the
  files this process has open, and `open()` / `verify()` consult it before reading a byte.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cockpit.store.errors import SessionFileError

DUCKDB_MAGIC = b"DUCK"
_MAGIC_OFFSET = 8  # the first 8 bytes of the main header are its checksum

_open_here: set[Path] = set()
_open_lock = threading.Lock()


def companions(path: Path) -> tuple[Path, Path, Path]:
    """`<db>`, `<db>.wal`, `<db>.wal.checkpoint`."""
    return path, Path(f"{path}.wal"), Path(f"{path}.wal.checkpoint")


def key(path: Path) -> Path:
    return path.expanduser().resolve()


def claim(path: Path) -> None:
    """Record that this process now owns `path` through DuckDB; refuse a second owner in the same process."""
    with _open_lock:
        resolved = key(path)
        if resolved in _open_here:
            raise open_in_this_process(path)
        _open_here.add(resolved)


def release(path: Path) -> None:
    with _open_lock:
        _open_here.discard(key(path))


def is_open_here(path: Path) -> bool:
    with _open_lock:
        return key(path) in _open_here


def open_in_this_process(path: Path) -> SessionFileError:
    return SessionFileError(
        f"session file {path} is already open in this process",
        "a second connection would share (and could release) the running store's lock",
        "use the running store (its reads, backup_to) instead of opening the file again",
    )


def check_duckdb_magic(path: Path) -> None:
    """Refuse a file that is not a DuckDB database, by its magic bytes, without modifying it."""
    try:
        with path.open("rb") as f:
            head = f.read(_MAGIC_OFFSET + len(DUCKDB_MAGIC))
    except OSError as exc:
        raise SessionFileError(
            f"cannot read session file {path}", f"{exc.strerror or exc}", "check the path and its permissions"
        ) from exc
    if len(head) == 0:
        raise SessionFileError(
            f"{path} is empty, not a cockpit session",
            "the file has no DuckDB header (0 bytes)",
            "pass the right session file, or delete this empty file if it is a leftover",
        )
    if head[_MAGIC_OFFSET:] != DUCKDB_MAGIC:
        raise SessionFileError(
            f"{path} is not a DuckDB file",
            "its header does not carry DuckDB's magic bytes; nothing was written to it",
            "pass a cockpit session file (*.duckdb), or move this file out of the way",
        )


def check_can_create(path: Path) -> None:
    """A new session file needs an existing, writable directory and no stray WAL of an earlier file."""
    parent = path.parent
    if not parent.exists():
        raise SessionFileError(
            f"directory {parent} does not exist",
            f"cannot create session file {path.name} there",
            f"create the directory (mkdir -p {parent}) or choose another session path",
        )
    if not parent.is_dir():
        raise SessionFileError(
            f"{parent} is not a directory",
            f"cannot create session file {path.name} inside a file",
            "choose a session path inside a directory",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise unwritable_directory(path, "permission denied")
    for extra in companions(path)[1:]:
        if extra.exists():
            raise SessionFileError(
                f"{extra} exists without its database {path.name}",
                "DuckDB would replay this write-ahead log into a new, empty file",
                f"move {extra.name} aside (it belongs to a session file that is gone) or restore that file",
            )


def unwritable_directory(path: Path, reason: str) -> SessionFileError:
    return SessionFileError(
        f"cannot write in directory {path.parent}",
        f"creating session file {path.name} failed: {reason}",
        "choose a session path in a writable directory (check permissions, mount options and free space)",
    )
