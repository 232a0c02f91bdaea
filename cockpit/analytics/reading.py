"""Opening a session file for reading: verified first (the engine's startup check: every block read, the
events' seq and hash chain), connected read-only, never modified. A file that does not verify is refused as
damaged (`SessionDamaged`), so no reader shows figures from it.

DuckDB lets one process hold a file, and a read-only connection is refused while the engine holds it. Readers
do not fight the lock and do not copy the live file (a raw copy of a busy file + WAL fails to open now and
then): they ask the engine for a verified backup (`cockpit backup --config F`) and read that instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import polars as pl

from cockpit.store import SessionFileError
from cockpit.store import files as store_files
from cockpit.store.errors import SessionDamaged, SessionInUse, in_use_error, is_lock_error
from cockpit.store.schema import check_session, read_meta
from cockpit.store.verify import DAMAGED_FIX, require_sound

TABLES = ("events", "ticks", "snapshots", "dead_letters", "meta")
BACKUP_FIX = (
    "the engine is still writing this session: ask it for a consistent copy with "
    "`cockpit backup --config F` (F: the engine's config) and open the backup it prints"
)


def damaged(path: Path, exc: duckdb.Error) -> SessionDamaged:
    """A read that failed on a file that verified a moment ago (damaged since, or a block the check could
    not reach): named as damage, with the way out, never as a traceback."""
    return SessionDamaged(
        f"damaged: cannot read session file {path}", str(exc).strip(), DAMAGED_FIX.format(path=path)
    )


class EmptySessionError(SessionFileError):
    """A cockpit session with no events: nothing to analyse."""


@dataclass
class ReadableSession:
    """A session file connected read-only. Close it (or use `with`) to release the file."""

    path: Path
    con: duckdb.DuckDBPyConnection
    meta: dict[str, str]
    schema_version: int
    event_count: int
    tables: tuple[str, ...]  # the tables of TABLES this file has (an older schema lacks dead_letters)

    def frame(self, sql: str) -> pl.DataFrame:
        """A query's result as a Polars frame, through its own cursor (no unfinished result left behind)."""
        cur = self.con.cursor()
        try:
            frame: pl.DataFrame = cur.sql(sql).pl()
            return frame
        except duckdb.Error as exc:
            raise damaged(self.path, exc) from exc
        finally:
            cur.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.con.cursor()
        try:
            return cur.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise damaged(self.path, exc) from exc
        finally:
            cur.close()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> ReadableSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_for_reading(path: Path, *, allow_empty: bool = False) -> ReadableSession:
    """Check `path` and connect to it read-only; SessionFileError (a CockpitError) for anything unusable.

    Not a DuckDB file, not a cockpit session, a newer schema, held by another process (the engine), or, unless
    `allow_empty`, a session with no events: each is refused with the file named and the fix.
    """
    path = Path(path)
    if store_files.is_open_here(path):
        raise SessionFileError(
            f"session file {path} is open in this process",
            "a second connection would share (and could release) the running store's lock",
            "read a backup of it (SessionStore.backup_to) instead",
        )
    if not path.exists():
        raise SessionFileError(f"no session file at {path}", "nothing to read", "check the path")
    if not path.is_file():
        raise SessionFileError(f"{path} is not a file", "a session is a single DuckDB file", "check the path")
    store_files.check_duckdb_magic(path)
    try:
        require_sound(path)  # the startup check: no figures from a damaged file
    except SessionInUse as exc:
        raise SessionInUse(exc.title, exc.detail, BACKUP_FIX) from exc
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if is_lock_error(str(exc)):
            raise in_use_error(path, str(exc), doing="read it", fix=BACKUP_FIX) from exc
        raise damaged(path, exc) from exc
    try:
        return _checked(path, con, allow_empty)
    except BaseException:
        con.close()
        raise


def _checked(path: Path, con: duckdb.DuckDBPyConnection, allow_empty: bool) -> ReadableSession:
    try:
        meta = read_meta(con)
        version = check_session(path, meta)
        present = {
            str(name)
            for (name,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        }
        if "events" not in present:
            raise SessionFileError(
                f"session file {path} has no events table",
                "its meta says cockpit, but the events table is missing",
                "restore the session from a backup",
            )
        count = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
    except duckdb.Error as exc:
        raise damaged(path, exc) from exc
    if count == 0 and not allow_empty:
        raise EmptySessionError(
            f"session has no events: {path}",
            "the file is a cockpit session but no event was ever written to it (the engine never ran on it)",
            "pass a session the engine has run on",
        )
    return ReadableSession(
        path=path,
        con=con,
        meta=meta or {},
        schema_version=version,
        event_count=count,
        tables=tuple(t for t in TABLES if t in present),
    )
