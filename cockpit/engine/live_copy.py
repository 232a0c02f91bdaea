"""Reading a session file a running engine holds: ask it for a read copy, read that, delete it.

DuckDB lets one process hold a file, so `cockpit sessions`, `report`, `export` and `replay` cannot open a
session the engine is writing. They ask that engine over its control socket for `read_copy`: a consistent,
verified copy of what it has committed, written to `.reads/` beside the session (not `backups/`: a read is no
restore point). The copy is deleted when the reader is done; the engine removes any a crashed reader left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cockpit.core.commands import ReadCopy
from cockpit.core.errors import CockpitError
from cockpit.engine.control import ask, socket_path_for
from cockpit.store import files


@dataclass(frozen=True)
class LiveCopy:
    """A verified copy the running engine wrote of its session file, as it was committed just now."""

    path: Path
    last_seq: int | None


def discard(path: Path) -> None:
    """Delete a read copy and anything DuckDB left beside it (already gone is fine)."""
    for companion in files.companions(path):
        companion.unlink(missing_ok=True)


def request_copy(session_file: Path, by: str) -> LiveCopy:
    """Ask the engine writing `session_file` for a read copy; the caller deletes it (`discard`)."""
    result = asyncio.run(ask(socket_path_for(session_file), ReadCopy(by=by)))
    path = Path(result.path)
    if not result.verified:
        discard(path)
        raise CockpitError(
            f"the engine's copy of {session_file} failed verification",
            result.message,
            "run `cockpit doctor` and look at the engine's events",
        )
    return LiveCopy(path, result.last_seq)


@contextlib.contextmanager
def live_copy(session_file: Path, by: str) -> Iterator[LiveCopy]:
    """A read copy of the session the engine is writing, deleted when the `with` block ends."""
    copy = request_copy(session_file, by)
    try:
        yield copy
    finally:
        discard(copy.path)
