"""Whole-file verification of a session file, read-only.

DuckDB has no integrity pragma: `count(*)` and `PRAGMA database_size` do not notice damaged blocks, and
reading every column of every table is the only way to make it check every block's checksum. On top of that
the events must be seq 1..N without gaps or repeats and their hash chain must recompute (a damaged WAL can
open while silently losing committed transactions), and every snapshot must point at an event that exists.

A file held by another process is not fought for: DuckDB refuses the read-only open and so does `verify()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from cockpit.store import files
from cockpit.store.errors import SessionFileError, in_use_error, is_lock_error
from cockpit.store.hashing import GENESIS, event_hash
from cockpit.store.schema import check_session, read_meta

_FETCH = 10_000


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: Path
    ok: bool
    counts: dict[str, int]  # rows per table that could be read
    problems: dict[
        str, str
    ]  # category -> its first problem: open, blocks, events.seq, events.hash, snapshots
    problem_counts: dict[str, int]
    schema_version: int | None
    last_seq: int  # the last event's seq and hash: compare with a high-water mark kept elsewhere
    last_hash: str
    elapsed_s: float

    def render(self) -> str:
        head = "ok" if self.ok else "DAMAGED"
        lines = [f"{self.path}: {head} ({self.elapsed_s * 1000:.0f} ms)"]
        lines += [f"  {table}: {n} rows" for table, n in sorted(self.counts.items())]
        if self.counts.get("events"):
            lines.append(f"  last event: seq {self.last_seq}, hash {self.last_hash}")
        for category, first in self.problems.items():
            lines.append(f"  problem [{category}] x{self.problem_counts.get(category, 1)}: {first}")
        return "\n".join(lines)


@dataclass
class _Findings:
    counts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    problem_counts: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    last_hash: str = GENESIS

    def add(self, category: str, text: str) -> None:
        self.problems.setdefault(category, text)
        self.problem_counts[category] = self.problem_counts.get(category, 0) + 1


def verify(path: Path) -> VerifyReport:
    """Check a closed (or backup) session file; SessionFileError if it cannot be checked at all."""
    started = time.perf_counter()
    if files.is_open_here(path):
        raise SessionFileError(
            f"session file {path} is open in this process",
            "verifying it here would need a second connection beside the running store",
            "verify a backup (SessionStore.backup_to) instead",
        )
    if not path.is_file():
        raise SessionFileError(f"no session file at {path}", "nothing to verify", "check the path")
    files.check_duckdb_magic(path)
    found = _Findings()
    version: int | None = None
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if is_lock_error(str(exc)):
            raise in_use_error(
                path, str(exc), doing="verify it", fix="verify a backup, or stop the engine and verify again"
            ) from exc
        found.add("open", f"DuckDB cannot open the file: {exc}")
    else:
        try:
            meta = read_meta(con)
        except duckdb.Error as exc:  # the meta block itself is damaged
            found.add("blocks", f"cannot read the session's meta table: {exc}")
            con.close()
            return VerifyReport(
                path=path,
                ok=False,
                counts=found.counts,
                problems=found.problems,
                problem_counts=found.problem_counts,
                schema_version=None,
                last_seq=found.last_seq,
                last_hash=found.last_hash,
                elapsed_s=time.perf_counter() - started,
            )
        try:
            version = check_session(path, meta)
            _read_every_column(con, found)
            if "events" in found.counts:
                _check_events(con, found)
            if "snapshots" in found.counts and "events" in found.counts:
                _check_snapshots(con, found)
        finally:
            con.close()
    return VerifyReport(
        path=path,
        ok=not found.problems,
        counts=found.counts,
        problems=found.problems,
        problem_counts=found.problem_counts,
        schema_version=version,
        last_seq=found.last_seq,
        last_hash=found.last_hash,
        elapsed_s=time.perf_counter() - started,
    )


def _read_every_column(con: duckdb.DuckDBPyConnection, found: _Findings) -> None:
    columns: dict[str, list[str]] = {}
    for table, column in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "ORDER BY table_name, ordinal_position"
    ).fetchall():
        columns.setdefault(str(table), []).append(str(column))
    for table, names in columns.items():
        # hash() needs every value, so every block of every column is read and its checksum checked.
        reads = ", ".join(f'bit_xor(hash("{name}"))' for name in names)
        try:
            rows = con.execute(f'SELECT count(*), {reads} FROM "{table}"').fetchall()
        except duckdb.Error as exc:
            found.add("blocks", f"table {table}: {exc}")
            continue
        found.counts[table] = int(rows[0][0])


def _check_events(con: duckdb.DuckDBPyConnection, found: _Findings) -> None:
    expected = 1
    prev = GENESIS
    try:
        cur = con.execute("SELECT seq, ts, kind, severity, source, payload, hash FROM events ORDER BY seq")
        while batch := cur.fetchmany(_FETCH):
            for seq, ts, kind, severity, source, payload, stored in batch:
                if seq != expected:
                    if seq < expected:
                        found.add("events.seq", f"seq {seq} repeated or out of order (expected {expected})")
                    else:
                        missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                        found.add("events.seq", f"seq {missing} missing (next row has seq {seq})")
                if event_hash(prev, seq, ts, kind, severity, source, payload) != stored:
                    found.add(
                        "events.hash",
                        f"hash chain broken at seq {seq}: the row was altered or the row before it removed",
                    )
                expected = seq + 1
                prev = stored  # resynchronise on the stored chain so one damaged row is one problem
                found.last_seq = int(seq)
                found.last_hash = str(stored)
    except duckdb.Error as exc:
        found.add("blocks", f"table events: {exc}")


def _check_snapshots(con: duckdb.DuckDBPyConnection, found: _Findings) -> None:
    try:
        rows = con.execute(
            "SELECT seq FROM snapshots WHERE seq NOT IN (SELECT seq FROM events) ORDER BY seq"
        ).fetchall()
    except duckdb.Error as exc:
        found.add("blocks", f"table snapshots: {exc}")
        return
    for (seq,) in rows:
        found.add("snapshots", f"snapshot at seq {seq} points at an event that is not in the file")
