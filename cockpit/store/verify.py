"""Whole-file verification of a session file, read-only.

DuckDB has no integrity pragma: `count(*)` and `PRAGMA database_size` do not notice damaged blocks, and
reading every column of every table is the only way to make it check every block's checksum. On top of that
the events must be seq 1..N without gaps or repeats and their hash chain must recompute (a damaged WAL can
open while silently losing committed transactions), and every snapshot must point at an event that exists.

A file held by another process is not fought for: DuckDB refuses the read-only open and so does `verify()`.

`verify(path, from_mark=True)` is the engine's startup check: every block is still read (damage anywhere is
found), the seq range is checked in SQL, but the hash chain is recomputed only after the file's
`verified_through` mark — the last event a full chain check already covered (written after startup checks and
verified backups) — after checking that event still carries the recorded hash. What that skips is re-hashing
rows whose blocks checksum and whose chain was verified before: it would find deliberate edits, not damage.
`cockpit doctor` and backups always check the whole chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from cockpit.store import files
from cockpit.store.errors import SessionDamaged, SessionFileError, in_use_error, is_lock_error
from cockpit.store.hashing import GENESIS, event_hash
from cockpit.store.schema import check_session, read_meta, set_meta

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
    chain_from: int = 0  # the hash chain was recomputed for events after this seq (0: all of them)

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


def verify(path: Path, *, from_mark: bool = False) -> VerifyReport:
    """Check a closed (or backup) session file; SessionFileError if it cannot be checked at all. With
    `from_mark`, the hash chain is recomputed only after the file's `verified_through` mark (see above)."""
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
    chain_from = 0
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
            try:
                meta = read_meta(con)
            except duckdb.Error as exc:  # the meta block itself is damaged
                found.add("blocks", f"cannot read the session's meta table: {exc}")
            else:
                version = check_session(path, meta)
                _read_every_column(con, found)
                if "events" in found.counts:
                    recorded = parse_mark(meta.get(MARK_KEY)) if meta is not None else None
                    mark = recorded if from_mark else None
                    if mark is not None and _check_mark(con, found, mark):
                        chain_from = mark[0]
                    else:
                        mark = None
                    _check_events(con, found, mark)
                    if recorded is not None and mark is None:
                        _check_mark_still_holds(con, found, recorded)
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
        chain_from=chain_from,
    )


MARK_KEY = "verified_through"
Mark = tuple[int, str]  # (seq, hash) of the last event a full hash-chain check covered


def mark_text(seq: int, hash_: str) -> str:
    return f"{seq} {hash_}"


def parse_mark(text: str | None) -> Mark | None:
    """The `verified_through` meta value; None when absent or unreadable (then the whole chain is checked)."""
    parts = (text or "").split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
        return None
    return int(parts[0]), parts[1]


def record_mark(path: Path, report: VerifyReport) -> None:
    """Write the report's last event as the file's `verified_through` mark (the file must be closed)."""
    if not report.ok or report.last_seq < 1:
        return
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        set_meta(con, MARK_KEY, mark_text(report.last_seq, report.last_hash))
        con.execute("COMMIT")
    finally:
        con.close()


def _check_mark(con: duckdb.DuckDBPyConnection, found: _Findings, mark: Mark) -> bool:
    """True when the events up to the mark can be trusted without re-hashing: seq 1..N with no gap or
    repeat (checked in SQL over the whole table), N at least the mark, and the marked event unchanged."""
    seq, hash_ = mark
    try:
        count, low, high, distinct = con.execute(
            "SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM events"
        ).fetchall()[0]
        rows = con.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchall()
    except duckdb.Error as exc:
        found.add("blocks", f"table events: {exc}")
        return False
    if high is None or high < seq:
        found.add(
            "events.seq",
            f"events end at seq {high or 0} but seq {seq} was verified before: committed events are lost",
        )
        return False
    if not (low == 1 and count == high and distinct == count):
        return False  # the full check names the gap or the repeat
    if [r[0] for r in rows] != [hash_]:
        found.add("events.hash", f"event {seq}, verified before, no longer carries its recorded hash")
        return False
    return True


def _check_mark_still_holds(con: duckdb.DuckDBPyConnection, found: _Findings, mark: Mark) -> None:
    """After a full chain check: the events a past check covered are all still there, the marked one with
    its recorded hash. The chain alone misses the last rows deleted, or every row after an edit re-hashed."""
    if "events.seq" in found.problems or "events.hash" in found.problems or "blocks" in found.problems:
        return  # already damaged; one finding is enough
    seq, hash_ = mark
    if found.last_seq < seq:
        found.add(
            "events.seq",
            f"events end at seq {found.last_seq} but seq {seq} was verified before: the last "
            f"{seq - found.last_seq} committed event(s) were deleted",
        )
        return
    try:
        rows = con.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchall()
    except duckdb.Error as exc:
        found.add("blocks", f"table events: {exc}")
        return
    if [r[0] for r in rows] != [hash_]:
        found.add(
            "events.hash",
            f"event {seq}, verified before, no longer carries its recorded hash: the rows were rewritten",
        )


RESTORE_FIX = (
    "restore a verified backup (`cockpit restore --config F --list`, then `cockpit restore --config F "
    "--latest`); `cockpit doctor --config F` checks the rest"
)
DAMAGED_FIX = "its figures cannot be trusted: `cockpit verify {path}` lists every problem; " + RESTORE_FIX


def damaged_error(path: Path, report: VerifyReport) -> SessionDamaged:
    """The error a reader raises for a file that does not verify: what is wrong, and the way out."""
    detail = "; ".join(f"[{category}] {first}" for category, first in report.problems.items())
    return SessionDamaged(
        f"damaged: session file {path} does not verify", detail, DAMAGED_FIX.format(path=path)
    )


def require_sound(path: Path) -> VerifyReport:
    """The same whole-file check as `cockpit verify`, for a reader about to show figures: SessionDamaged if
    the file does not verify (SessionFileError/SessionInUse as `verify` raises them)."""
    report = verify(path)
    if not report.ok:
        raise damaged_error(path, report)
    return report


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


def _check_events(con: duckdb.DuckDBPyConnection, found: _Findings, mark: Mark | None = None) -> None:
    expected, prev = (mark[0] + 1, mark[1]) if mark is not None else (1, GENESIS)
    if mark is not None:
        found.last_seq, found.last_hash = mark
    try:
        cur = con.execute(
            "SELECT seq, ts, kind, severity, source, payload, hash FROM events WHERE seq >= ? ORDER BY seq",
            [expected],
        )
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
