"""The session file's schema, its version, and the migrations between versions.

`meta` is a key/value table so that any cockpit, old or new, can read `schema_version` and `app` whatever the
other tables look like. A new file is built as version 1 and then migrated, so every migration runs on every
new session (they cannot rot). `MIGRATIONS[n - 1]` takes a file from version n to n + 1.

`events` has no PRIMARY KEY on purpose (the index slows appends): the writer enforces the gap-free order and
`verify()` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from cockpit.store.errors import SessionFileError

APP = "cockpit"

BASE_DDL: tuple[str, ...] = (
    "CREATE TABLE meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL)",
    "CREATE TABLE events (seq BIGINT NOT NULL, ts DOUBLE NOT NULL, kind VARCHAR NOT NULL, "
    "severity VARCHAR NOT NULL, source VARCHAR NOT NULL, payload VARCHAR NOT NULL, hash VARCHAR NOT NULL)",
    "CREATE TABLE ticks (ts DOUBLE, symbol VARCHAR, bid DOUBLE, ask DOUBLE, bid_qty DOUBLE, ask_qty DOUBLE)",
    "CREATE TABLE snapshots (seq BIGINT NOT NULL, ts DOUBLE NOT NULL, state VARCHAR NOT NULL)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1 -> 2: the dead-letter queue moves into the session file.
    (
        "CREATE TABLE dead_letters (id BIGINT NOT NULL, ts DOUBLE NOT NULL, op VARCHAR NOT NULL, "
        "params VARCHAR NOT NULL, error_class VARCHAR NOT NULL, error_type VARCHAR NOT NULL, "
        "reason VARCHAR NOT NULL, attempts INTEGER NOT NULL, status VARCHAR NOT NULL)",
    ),
)

SCHEMA_VERSION = 1 + len(MIGRATIONS)
META_KEYS = ("schema_version", "app", "session_id", "created_at", "exchange", "mode")


def create_base(cur: duckdb.DuckDBPyConnection, meta: Mapping[str, str]) -> None:
    """Version 1 of the schema with its meta rows (inside the caller's transaction)."""
    for sql in BASE_DDL:
        cur.execute(sql)
    rows = {**meta, "schema_version": "1", "app": APP}
    cur.executemany("INSERT INTO meta VALUES (?, ?)", sorted(rows.items()))


def migrate(cur: duckdb.DuckDBPyConnection, from_version: int) -> int:
    """Apply every migration after `from_version` (inside the caller's transaction); the new version."""
    version = from_version
    for steps in MIGRATIONS[from_version - 1 :]:
        for sql in steps:
            cur.execute(sql)
        version += 1
    if version != from_version:
        cur.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    return version


def set_meta(cur: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set one meta row (inside the caller's transaction)."""
    cur.execute("DELETE FROM meta WHERE key = ?", [key])
    cur.execute("INSERT INTO meta VALUES (?, ?)", [key, value])


def read_meta(cur: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """The meta rows, or None when the file has no `meta` table."""
    found = cur.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta' AND table_schema = 'main'"
    ).fetchall()
    if found[0][0] == 0:
        return None
    return {str(k): str(v) for k, v in cur.execute("SELECT key, value FROM meta").fetchall()}


def check_session(path: Path, meta: dict[str, str] | None) -> int:
    """The file's schema version; SessionFileError if it is not a cockpit session or is from a newer one."""
    if meta is None or meta.get("app") != APP:
        what = "it has no meta table" if meta is None else f"its meta says app={meta.get('app')!r}"
        raise SessionFileError(
            f"{path} is a DuckDB file but not a cockpit session",
            f"{what}; nothing was written to it",
            "pass a session file written by cockpit, or move this file out of the way",
        )
    raw = meta.get("schema_version", "")
    try:
        version = int(raw)
    except ValueError:
        raise SessionFileError(
            f"session file {path} has an unreadable schema version",
            f"meta schema_version={raw!r}",
            "restore the session from a backup",
        ) from None
    if version > SCHEMA_VERSION:
        raise SessionFileError(
            f"session file {path} was written by a newer cockpit",
            f"its schema version is {version}; this cockpit knows versions up to {SCHEMA_VERSION}",
            "upgrade cockpit to open it (the file was not changed)",
        )
    if version < 1:
        raise SessionFileError(
            f"session file {path} has an invalid schema version",
            f"meta schema_version={version}",
            "restore the session from a backup",
        )
    return version
