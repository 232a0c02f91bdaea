"""Opening a session file read-write: refuse bad input without touching it, create or migrate, read the tail.

An existing file is checked by its magic bytes (plain read) and then through a read-only DuckDB connection,
which does not replay or truncate a WAL, so a foreign or newer file is refused exactly as it was found. Only
then is the read-write connection made (which replays the WAL, as a reopen after a crash must).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from cockpit.store import files, schema
from cockpit.store.errors import SessionFileError, in_use_error, is_lock_error
from cockpit.store.hashing import GENESIS
from cockpit.store.private import make_private

_UNWRITABLE = ("Permission denied", "Read-only file system", "No space left", "Cannot open file")

# DuckDB settings of the read-write session connection (the engine's; other readers make their own). DuckDB's
# automatic checkpoint is off: the writer runs checkpoints itself, every 4 MB of WAL, and trims DuckDB's block
# cache after each (CHECKPOINT_WAL_BYTES, writer.py). Measured with the engine under 10 k ticks/s and the
# automatic one at its default 16 MB: RSS rose by ~18 MB between checkpoints (appended rows wait in memory for
# one) and the cached table blocks they left behind grew by ~9 MB per million ticks, without bound.
SESSION_SETTINGS: dict[str, str] = {"checkpoint_threshold": "1TB"}


@dataclass(slots=True)
class Opened:
    con: duckdb.DuckDBPyConnection
    meta: dict[str, str]
    created: bool
    migrated_from: int | None
    last_seq: int
    last_hash: str


def open_session(path: Path, *, create: bool, meta: Mapping[str, str] | None) -> Opened:
    """Connect read-write to a new or existing session file (the caller has claimed `path`)."""
    last_seq, last_hash = 0, GENESIS
    if path.exists():
        con, from_version, (last_seq, last_hash) = _open_existing(path)
        created = False
    elif create:
        files.check_can_create(path)
        con = _connect(path, new=True)
        created, from_version = True, 1
    else:
        raise SessionFileError(
            f"no session file at {path}", "opening without create", "check the path, or start a new session"
        )
    try:
        cur = con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            if created:
                schema.create_base(cur, _new_meta(meta))
            version = schema.migrate(cur, from_version)
            cur.execute("COMMIT")
            file_meta = schema.read_meta(cur) or {}
        finally:
            cur.close()
    except BaseException:
        con.close()
        if created:
            for extra in files.companions(path):
                extra.unlink(missing_ok=True)  # our own half-made file
        raise
    make_private(*files.companions(path))  # a session is the account's: owner-only, old files too
    return Opened(
        con=con,
        meta=file_meta,
        created=created,
        migrated_from=from_version if version != from_version and not created else None,
        last_seq=last_seq,
        last_hash=last_hash,
    )


def _open_existing(path: Path) -> tuple[duckdb.DuckDBPyConnection, int, tuple[int, str]]:
    if not path.is_file():
        raise SessionFileError(f"{path} is not a file", "a session is a single DuckDB file", "check the path")
    files.check_duckdb_magic(path)
    try:
        probe = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise _open_error(path, exc) from exc
    try:
        version = schema.check_session(path, schema.read_meta(probe))
        tail = _tail(path, probe)
    finally:
        probe.close()
    return _connect(path, new=False), version, tail


def _connect(path: Path, *, new: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), config=dict(SESSION_SETTINGS))
    except duckdb.Error as exc:
        if new and any(text in str(exc) for text in _UNWRITABLE):
            raise files.unwritable_directory(path, str(exc)) from exc
        raise _open_error(path, exc) from exc


def _open_error(path: Path, exc: duckdb.Error) -> SessionFileError:
    text = str(exc)
    if is_lock_error(text):
        return in_use_error(
            path,
            text,
            doing="open it",
            fix="stop the other cockpit using this session, or open a backup or copy of it",
        )
    return SessionFileError(
        f"DuckDB cannot open session file {path}",
        text,
        f"run `cockpit verify {path}` and restore the session from a backup if it is damaged",
    )


def _new_meta(meta: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(meta or {})
    rows = {
        "session_id": given.pop("session_id", "") or uuid.uuid4().hex,
        "created_at": given.pop("created_at", "") or datetime.now(UTC).isoformat(timespec="seconds"),
        "exchange": given.pop("exchange", ""),
        "mode": given.pop("mode", ""),
    }
    given.pop("schema_version", None)
    given.pop("app", None)
    return {**given, **rows}


def _tail(path: Path, cur: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """The last seq and hash on disk, after a cheap check that events are 1..N (the full check is verify)."""
    count, low, high = cur.execute("SELECT count(*), min(seq), max(seq) FROM events").fetchall()[0]
    if count == 0:
        return 0, GENESIS
    if low != 1 or high != count:
        raise SessionFileError(
            f"session file {path} has damaged events",
            f"{count} events but seq runs {low}..{high}: rows are missing or repeated",
            f"run `cockpit verify {path}` for every problem, and restore the session from a backup",
        )
    rows = cur.execute("SELECT hash FROM events WHERE seq = ?", [high]).fetchall()
    return int(high), str(rows[0][0])
