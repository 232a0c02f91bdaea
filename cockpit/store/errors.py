"""Store errors: cockpit errors that name the session file and the fix."""

from __future__ import annotations

import re
from pathlib import Path

from cockpit.core.errors import CockpitError

_PID = re.compile(r"\(PID (\d+)\)")


class StoreError(CockpitError):
    """The session store cannot do what was asked (write failed for good, store closed, bad call)."""


class EventRefused(StoreError):
    """One event the store will not take (its payload is not JSON, its seq is not the next one): nothing of
    it was written and its seq is still free; the store itself is fine."""


class SessionFileError(StoreError):
    """A session file cannot be used as given (bad input): exit code 2. Nothing was written to it."""

    exit_code = 2


class SessionDamaged(StoreError):
    """A session file that does not verify (damaged blocks, missing, repeated or altered events): its figures
    cannot be trusted. Exit code 1 (a fault of the file, not of the command line)."""


class SessionInUse(SessionFileError):
    """Another process (a running engine) holds the session file; DuckDB lets one process hold a file."""


def lock_holder_pid(message: str) -> int | None:
    """The PID DuckDB names in `Could not set lock on file … (PID n)`, if any."""
    match = _PID.search(message)
    return int(match.group(1)) if match else None


def is_lock_error(message: str) -> bool:
    return "Could not set lock" in message or "Conflicting lock" in message


def in_use_error(path: Path, message: str, *, doing: str, fix: str) -> SessionInUse:
    pid = lock_holder_pid(message)
    holder = f"process {pid}" if pid is not None else "another process"
    return SessionInUse(
        f"session file {path} is in use by {holder}",
        f"cannot {doing}: DuckDB lets one process hold a file; {message.strip()}",
        fix,
    )
