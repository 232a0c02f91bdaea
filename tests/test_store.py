"""The session store against real DuckDB files, real threads and real processes.

The only stand-in is the write-fault hook: a full disk cannot be produced in this sandbox (no tmpfs to fill,
no read-only mount, and chmod does not stop root), so those tests make the SQL boundary fail and let
everything above it (rollback, retries, futures, refusal) run for real.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cockpit.core.domain import Event
from cockpit.store import (
    DEFAULT_RETRY_DELAYS,
    GENESIS,
    SessionFileError,
    SessionStore,
    StoreError,
    StoreTrouble,
    event_hash,
    verify,
)
from cockpit.store import schema as store_schema
from cockpit.store import writer as writer_module

TIMEOUT = 10.0


def ev(seq: int, kind: str = "alert", **payload: object) -> Event:
    return Event(
        seq=seq, ts=1_700_000_000.0 + seq / 10, kind=kind, severity="info", source="engine", payload=payload
    )


def wait_for(condition: Callable[[], bool], what: str, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.005)


def file_hashes(path: Path) -> dict[str, str]:
    """sha256 of the file and its companions (only ever called while no store in this process holds it)."""
    out: dict[str, str] = {}
    for p in (path, Path(f"{path}.wal"), Path(f"{path}.wal.checkpoint")):
        if p.exists():
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_python(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_session(path: Path, events: int = 0, ticks: int = 0) -> None:
    store = SessionStore.open(path, meta={"exchange": "binanceusdm", "mode": "sim"})
    store.start()
    for seq in range(1, events + 1):
        store.append(ev(seq, n=seq, price="64000.5"))
    for start in range(0, ticks, 10_000):
        n = min(10_000, ticks - start)
        store.append_ticks(
            [
                (1_700_000_000.0 + i / 1000, f"SYM{i % 13}", 100.0 + i, 100.5 + i, 1.0, 2.0)
                for i in range(start, start + n)
            ]
        )
    store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore.open(tmp_path / "session.duckdb", meta={"exchange": "binanceusdm", "mode": "sim"})
    s.start()
    yield s
    s.close()


# ------------------------------------------------------------------------------------------ durability


def test_critical_event_is_on_disk_when_commit_returns(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    child = run_python(
        """
        import asyncio, os, sys
        from pathlib import Path
        from cockpit.core.domain import Event
        from cockpit.store import SessionStore

        store = SessionStore.open(Path(sys.argv[1]))
        store.start()

        async def main():
            for seq in (1, 2, 3):
                event = Event(seq, 1.0 + seq, "order.submitted", "critical", "engine", {"qty": "0.1"})
                await store.commit(event)
                print(seq, flush=True)

        asyncio.run(main())
        os._exit(0)  # no close, no checkpoint: only what COMMIT made durable is there
        """,
        str(path),
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["1", "2", "3"]
    assert Path(f"{path}.wal").exists(), "the child died before any checkpoint: the events are in the WAL"

    reopened = SessionStore.open(path, create=False)
    try:
        assert [e.seq for e in reopened.read_events()] == [1, 2, 3]
        assert reopened.read_events()[0].payload == {"qty": "0.1"}
        assert reopened.last_seq == 3
    finally:
        reopened.close()
    assert verify(path).ok


def test_events_get_gap_free_seq_and_a_verifiable_hash_chain(store: SessionStore) -> None:
    futures: list[Future[None]] = []
    for seq in range(1, 301):
        if seq % 50 == 0:
            futures.append(store.append_critical(ev(seq, "order.filled", qty="0.5", px=64000.25)))
        else:
            store.append(ev(seq, n=seq, nested={"b": [1, 2.5, None], "a": True}))
    for f in futures:
        f.result(TIMEOUT)
    path = store.path
    store.close()

    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute(
        "SELECT seq, ts, kind, severity, source, payload, hash FROM events ORDER BY seq"
    ).fetchall()
    con.close()
    assert [r[0] for r in rows] == list(range(1, 301))
    prev = GENESIS
    for seq, ts, kind, severity, source, payload, stored in rows:
        prev_expected = event_hash(prev, seq, ts, kind, severity, source, payload)
        assert stored == prev_expected
        prev = stored

    report = verify(path)
    assert report.ok, report.render()
    assert report.counts["events"] == 300
    assert (report.last_seq, report.last_hash) == (300, prev)

    again = SessionStore.open(path, create=False)
    assert (again.last_seq, again.last_hash) == (300, prev)
    again.start()
    again.append_critical(ev(301)).result(TIMEOUT)
    again.close()
    assert verify(path).ok


def test_events_are_read_in_chunks(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "READ_CHUNK", 7)  # a range of seqs per query, so sorts stay small
    for seq in range(1, 24):
        store.append(ev(seq, n=seq))
    store.append_critical(ev(24)).result(TIMEOUT)
    assert [e.seq for e in store.read_events()] == list(range(1, 25))
    assert [e.seq for e in store.read_events(after_seq=5)] == list(range(6, 25))
    assert [e.seq for e in store.read_events(after_seq=5, limit=9)] == list(range(6, 15))
    assert [e.seq for e in store.read_events(limit=1)] == [1]
    assert store.read_events(after_seq=24) == [] and store.read_events(limit=0) == []
    assert store.read_events(after_seq=20)[0].payload == {"n": 21}


def test_a_long_queue_of_events_is_written_as_one_frame(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path / "session.duckdb")
    for seq in range(1, 201):  # queued before the writer starts: one batch, well over _EVENTS_BY_FRAME
        store.append(ev(seq, n=seq))
    store.start()
    store.close()
    reopened = SessionStore.open(tmp_path / "session.duckdb", create=False)
    try:
        assert [e.payload["n"] for e in reopened.read_events()] == list(range(1, 201))
    finally:
        reopened.close()
    assert verify(tmp_path / "session.duckdb").ok


def test_seq_gap_is_refused(store: SessionStore) -> None:
    store.append(ev(1))
    with pytest.raises(StoreError, match="out of sequence"):
        store.append(ev(3))
    with pytest.raises(StoreError, match="out of sequence"):
        store.append_critical(ev(1))  # a repeat
    store.append_critical(ev(2)).result(TIMEOUT)
    assert [e.seq for e in store.read_events()] == [1, 2]
    with pytest.raises(StoreError, match="not JSON"):
        store.append(Event(3, 1.0, "alert", "info", "engine", {"bad": object()}))
    store.append_critical(ev(3)).result(TIMEOUT)  # the refused ones used no seq
    assert store.stats().last_seq == 3


def test_ticks_are_appended_in_batches(tmp_path: Path) -> None:
    store = SessionStore.open(tmp_path / "session.duckdb")  # started once all is queued: nothing is timing
    for batch in range(5):  # 10 k-row batches from a fast feed
        store.append_ticks(
            [
                (1_700_000_000.0 + batch + i / 1e4, "BTCUSDT", 64000.0 + i, 64000.5 + i, 1.5, 2)
                for i in range(10_000)
            ]
        )
    for _ in range(200):  # and many small ones from a slow one
        store.append_ticks([(1.0, "ETHUSDT", 3000.0, 3000.5, 10.0, 20.0)] * 5)
    committed = store.append_critical(ev(1))
    store.start()
    committed.result(TIMEOUT)
    wait_for(lambda: store.stats().ticks_written == 51_000, "all ticks written")
    # the event, the five 10 k-row batches, then the 200 small ones together (10 k rows at most per insert)
    assert store.stats().commits == 7, "queued tick batches are written together, not one commit per call"
    path = store.path
    store.close()
    con = duckdb.connect(str(path), read_only=True)
    count, symbols, bid_sum, qty = con.execute(
        "SELECT count(*), count(DISTINCT symbol), sum(bid), max(ask_qty) FROM ticks"
    ).fetchall()[0]
    con.close()
    assert (count, symbols, qty) == (51_000, 2, 20.0)
    assert bid_sum == pytest.approx(5 * sum(64000.0 + i for i in range(10_000)) + 1000 * 3000.0)


def test_a_commit_does_not_wait_for_tick_batches_queued_before_it(tmp_path: Path) -> None:
    statements: list[str] = []
    store = SessionStore.open(tmp_path / "session.duckdb", fault_hook=statements.append)
    for batch in range(3):  # queued before the writer runs, so all of it is waiting when it starts
        store.append_ticks([(float(batch), "BTCUSDT", 1.0, 2.0, 3.0, 4.0)] * 1_000)
    committed = store.append_critical(ev(1))
    store.append(ev(2))
    store.start()
    committed.result(TIMEOUT)
    store.close()  # writes the ticks still queued
    inserts = [sql.split()[2] for sql in statements if sql.startswith("INSERT")]
    assert inserts[0] == "events", f"the events went first, not behind the ticks: {inserts}"
    assert inserts.count("events") == 1, "both events in one transaction"
    reopened = SessionStore.open(tmp_path / "session.duckdb", create=False)
    try:
        assert reopened.tick_count() == 3_000
        assert [e.seq for e in reopened.read_events()] == [1, 2]
    finally:
        reopened.close()


def test_tick_rows_are_checked_when_queued(store: SessionStore) -> None:
    with pytest.raises(ValueError, match="6 fields"):
        store.append_ticks([(1.0, "BTCUSDT", 1.0, 2.0, 3.0, 4.0), (1.0, "BTCUSDT", 1.0, 2.0, 3.0)])
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        store.append_ticks(pl.DataFrame({"ts": [1.0], "symbol": ["BTCUSDT"]}))
    # an int is a float here; a frame may have its columns in any order and more of them
    store.append_ticks([(1, "BTCUSDT", 64000, 64000.5, 1, 2)])
    store.append_ticks(
        pl.DataFrame(
            {
                "ask_qty": [4],
                "bid_qty": [3.0],
                "ask": [2.0],
                "bid": [1.0],
                "symbol": ["ETHUSDT"],
                "ts": [2.0],
                "note": ["ignored"],
            }
        )
    )
    store.append_critical(ev(1)).result(TIMEOUT)
    wait_for(lambda: store.stats().ticks_written == 2, "the two good rows")
    assert not store.stats().failed, "a refused batch never reaches the writer"
    path = store.path
    store.close()
    con = duckdb.connect(str(path), read_only=True)
    rows = con.execute("SELECT * FROM ticks ORDER BY ts").fetchall()
    con.close()
    assert rows == [(1.0, "BTCUSDT", 64000.0, 64000.5, 1.0, 2.0), (2.0, "ETHUSDT", 1.0, 2.0, 3.0, 4.0)]


def test_the_writer_checkpoints_every_few_mb_of_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "CHECKPOINT_WAL_BYTES", 256 << 10)
    path = tmp_path / "session.duckdb"
    store = SessionStore.open(path)
    store.start()
    wal = Path(f"{path}.wal")
    sizes = []
    for n in range(40):  # ~40 kB of WAL each
        store.append_ticks([(float(n), "BTCUSDT", 64000.0 + i, 64000.5, 1.0, 2.0) for i in range(1_000)])
        wait_for(lambda n=n: store.stats().ticks_written == (n + 1) * 1_000, "the batch")
        sizes.append(wal.stat().st_size if wal.exists() else 0)
    store.append_critical(ev(1)).result(TIMEOUT)
    limit = store._con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    store.close()
    assert max(sizes) < 1 << 20, f"DuckDB's own checkpoint (16 MB) is off, the writer's ran: {sizes}"
    assert sizes.count(0) + sum(b < a for a, b in zip(sizes, sizes[1:], strict=False)) >= 3
    assert not limit.endswith("KiB"), f"the memory limit is back after each trim: {limit}"
    assert verify(path).ok and verify(path).counts["ticks"] == 40_000


def test_snapshot_round_trip(store: SessionStore) -> None:
    assert store.last_snapshot() is None
    with pytest.raises(StoreError, match="not appended"):
        store.put_snapshot(1, 1.0, "{}")
    state = '{"positions":{"BTCUSDT":{"qty":"0.5"}},"equity":"10000.25"}'
    store.append(ev(1))
    store.put_snapshot(1, 2.0, '{"old":true}')
    store.append(ev(2))
    store.put_snapshot(2, 3.0, state)
    store.append_critical(ev(3)).result(TIMEOUT)
    assert store.last_snapshot() == (2, state)
    path = store.path
    store.close()
    again = SessionStore.open(path, create=False)
    assert again.last_snapshot() == (2, state)
    assert [e.seq for e in again.read_events(after_seq=2)] == [3]
    again.close()


def test_dead_letters_are_listed_filtered_marked_and_purged(store: SessionStore) -> None:
    now = time.time()
    ids = [
        store.add_dead_letter(
            op="create_order",
            params={"symbol": "BTCUSDT", "qty": "0.1"},
            error_class="permanent",
            error_type="InvalidOrder",
            reason="Margin is insufficient",
            attempts=1,
            ts=now - 10 * 86_400,
        ).result(TIMEOUT),
        store.add_dead_letter(
            op="cancel_order",
            params={"id": "x1"},
            error_class="permanent",
            error_type="OrderNotFound",
            reason="Unknown order sent",
            attempts=3,
            ts=now,
        ).result(TIMEOUT),
    ]
    assert ids == [1, 2]
    assert store.count_dead_letters() == 2
    assert [d.id for d in store.dead_letters(op="cancel_order")] == [2]
    [margin] = store.dead_letters(reason_contains="MARGIN")
    assert margin.params == {"qty": "0.1", "symbol": "BTCUSDT"} and margin.status == "open"
    store.set_dead_letter_status(1, "retried").result(TIMEOUT)
    assert store.count_dead_letters(status="open") == 1
    with pytest.raises(StoreError, match="no dead letter with id 99"):
        store.set_dead_letter_status(99, "removed").result(TIMEOUT)
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_dead_letter_status(1, "gone")
    assert store.delete_dead_letters_older_than(7).result(TIMEOUT) == 1
    assert [d.id for d in store.dead_letters()] == [2]
    assert (
        store.add_dead_letter(
            op="x", params={}, error_class="c", error_type="t", reason="r", attempts=1
        ).result(TIMEOUT)
        == 3
    )


# ------------------------------------------------------------------------------------------ integrity


def test_verify_catches_a_deleted_event(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=20)
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM events WHERE seq = 7")
    con.close()
    report = verify(path)
    assert not report.ok
    assert report.problems["events.seq"] == "seq 7 missing (next row has seq 8)"
    assert "seq 8" in report.problems["events.hash"]
    assert report.problem_counts["events.hash"] == 1
    with pytest.raises(SessionFileError, match="damaged events"):
        SessionStore.open(path)


def test_verify_catches_an_altered_payload(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=20)
    con = duckdb.connect(str(path))
    con.execute("""UPDATE events SET payload = '{"n":12,"price":"99999"}' WHERE seq = 12""")
    con.close()
    report = verify(path)
    assert not report.ok
    assert set(report.problems) == {"events.hash"}
    assert "seq 12" in report.problems["events.hash"]
    assert "12" in report.render()


def test_verify_catches_a_snapshot_without_its_event(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=5)
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO snapshots VALUES (9, 1.0, '{}')")
    con.close()
    report = verify(path)
    assert report.problems == {"snapshots": "snapshot at seq 9 points at an event that is not in the file"}


def test_verify_catches_damaged_blocks(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=2_000, ticks=300_000)
    assert verify(path).ok
    con = duckdb.connect(str(path), read_only=True)
    block_size = int(con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0])
    blocks = [
        int(row[0])
        for row in con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('ticks') "
            "WHERE column_name = 'bid' AND block_id >= 0"
        ).fetchall()
    ]
    con.close()
    assert len(blocks) >= 2 and path.stat().st_size > 4 * block_size
    # Blocks follow the 3 x 4 KiB file headers; each starts with its own 8-byte checksum. Damage the data of a
    # block holding tick prices in the middle of the file: the file still opens and count(*) still answers.
    offset = 3 * 4096 + sorted(blocks)[len(blocks) // 2] * block_size + 8 + 1000
    with path.open("r+b") as f:
        f.seek(offset)
        chunk = f.read(64)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM ticks").fetchall() == [(300_000,)]
    con.close()

    report = verify(path)
    assert not report.ok
    assert "Corrupt database file" in report.problems["blocks"], report.render()
    assert report.problems["blocks"].startswith("table ticks:")
    assert report.counts["events"] == 2_000, "the other tables were still read and counted"


# ------------------------------------------------------------------------------------------ bad input


def test_foreign_duckdb_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    child = run_python(
        """
        import duckdb, os, sys
        con = duckdb.connect(sys.argv[1])
        con.execute("CREATE TABLE prices (x INTEGER)")
        con.execute("CHECKPOINT")
        con.execute("INSERT INTO prices SELECT range FROM range(1000)")
        os._exit(0)  # leaves a WAL a careless open would replay into the file
        """,
        str(path),
    )
    assert child.returncode == 0, child.stderr
    before = file_hashes(path)
    assert f"{path.name}.wal" in before
    with pytest.raises(SessionFileError) as caught:
        SessionStore.open(path)
    assert "not a cockpit session" in caught.value.title
    assert str(path) in caught.value.title
    assert caught.value.exit_code == 2
    with pytest.raises(SessionFileError, match="not a cockpit session"):
        verify(path)
    assert file_hashes(path) == before


def test_not_a_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("positions: none\n" * 100)
    before = file_hashes(path)
    with pytest.raises(SessionFileError) as caught:
        SessionStore.open(path)
    assert caught.value.title == f"{path} is not a DuckDB file"
    assert caught.value.fix
    with pytest.raises(SessionFileError, match="not a DuckDB file"):
        verify(path)
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    with pytest.raises(SessionFileError, match="is empty"):
        SessionStore.open(empty)
    assert file_hashes(path) == before
    assert empty.stat().st_size == 0
    assert not Path(f"{path}.wal").exists()


def test_wal_without_its_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    Path(f"{path}.wal").write_bytes(b"x" * 100)
    with pytest.raises(SessionFileError, match="exists without its database"):
        SessionStore.open(path)
    assert not path.exists()
    with pytest.raises(SessionFileError, match="no session file"):
        SessionStore.open(tmp_path / "other.duckdb", create=False)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=3)
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = file_hashes(path)
    with pytest.raises(SessionFileError) as caught:
        SessionStore.open(path)
    assert "written by a newer cockpit" in caught.value.title
    assert "upgrade cockpit" in caught.value.fix
    assert "99" in caught.value.detail
    assert file_hashes(path) == before


def test_older_schema_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    store_schema.create_base(con, {"session_id": "old", "exchange": "binanceusdm", "mode": "live"})
    con.execute("COMMIT")
    con.close()
    store = SessionStore.open(path)
    assert store.meta["schema_version"] == str(store_schema.SCHEMA_VERSION) == "2"
    assert store.meta["session_id"] == "old"
    store.start()
    store.add_dead_letter(op="x", params={}, error_class="c", error_type="t", reason="r", attempts=1).result(
        TIMEOUT
    )
    store.close()
    assert verify(path).ok


def test_unwritable_directory_is_named(tmp_path: Path) -> None:
    # /sys refuses new files even to root: a real unwritable directory in this sandbox.
    with pytest.raises(SessionFileError) as caught:
        SessionStore.open(Path("/sys/cockpit-session.duckdb"))
    assert caught.value.title == "cannot write in directory /sys"
    assert "Permission denied" in caught.value.detail
    with pytest.raises(SessionFileError, match="does not exist") as missing:
        SessionStore.open(tmp_path / "no" / "such" / "session.duckdb")
    assert "mkdir -p" in missing.value.fix
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    with pytest.raises(SessionFileError, match="is not a directory"):
        SessionStore.open(a_file / "session.duckdb")


def test_second_process_is_told_the_file_is_in_use(store: SessionStore) -> None:
    store.append_critical(ev(1)).result(TIMEOUT)
    child = run_python(
        """
        import sys
        from pathlib import Path
        from cockpit.store import SessionStore, SessionFileError, verify
        for attempt in (lambda p: SessionStore.open(p), verify):
            try:
                attempt(Path(sys.argv[1]))
            except SessionFileError as exc:
                print(exc.title, "|", exc.fix, "|", exc.exit_code)
        """,
        str(store.path),
    )
    assert child.returncode == 0, child.stderr
    opening, verifying = child.stdout.strip().splitlines()
    assert f"is in use by process {os.getpid()}" in opening
    assert f"is in use by process {os.getpid()}" in verifying
    assert "verify a backup, or stop the engine" in verifying
    with pytest.raises(SessionFileError, match="already open in this process"):
        SessionStore.open(store.path)
    with pytest.raises(SessionFileError, match="open in this process"):
        verify(store.path)
    store.append_critical(ev(2)).result(TIMEOUT)  # the refusals did not disturb the owner


# ------------------------------------------------------------------------------------------ backup


def test_backup_while_writing_is_consistent_and_verifies(store: SessionStore, tmp_path: Path) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def engine() -> None:
        seq = 0
        try:
            while not stop.is_set():
                seq += 1
                if seq % 10 == 0:
                    store.append_critical(ev(seq, "order.filled", qty="1")).result(TIMEOUT)
                else:
                    store.append(ev(seq, n=seq))
                if seq % 20 == 0:
                    store.put_snapshot(seq, float(seq), f'{{"seq":{seq}}}')
                store.append_ticks([(float(seq), "BTCUSDT", 1.0, 2.0, 3.0, 4.0)] * 200)
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=engine)
    writer.start()
    reports = []
    try:
        for n in range(3):
            time.sleep(0.15)
            reports.append(store.backup_to(tmp_path / f"backup-{n}.duckdb"))
    finally:
        stop.set()
        writer.join(TIMEOUT)
    assert not errors
    with pytest.raises(SessionFileError, match="already exists"):
        store.backup_to(tmp_path / "backup-0.duckdb")
    path = store.path
    store.close()

    final = verify(path)
    assert final.ok
    con = duckdb.connect(str(path), read_only=True)
    hashes = dict(con.execute("SELECT seq, hash FROM events").fetchall())
    con.close()
    seqs = [r.last_seq for r in reports]
    assert seqs == sorted(seqs) and seqs[0] > 0
    for report in reports:
        assert report.ok
        assert verify(report.path).ok
        assert hashes[report.last_seq] == report.last_hash, "the backup is a prefix of the session"
        assert not Path(f"{report.path}.partial").exists()
    reopened = SessionStore.open(reports[-1].path, create=False)
    assert reopened.last_seq == reports[-1].last_seq
    reopened.close()


# ------------------------------------------------------------------------------------------ write failures


class FailingDisk:
    """Makes the writer's SQL fail like a full disk while `failing` is set (see the module docstring)."""

    def __init__(self) -> None:
        self.failing = False
        self.fail_next = 0
        self.calls = 0

    def __call__(self, sql: str) -> None:
        self.calls += 1
        if self.fail_next > 0 and sql.startswith("INSERT"):
            self.fail_next -= 1
            raise duckdb.IOException(
                'IO Error: Could not write file "session.duckdb.wal": No space left on device'
            )
        if self.failing and sql.startswith("INSERT"):
            raise duckdb.IOException(
                'IO Error: Could not write file "session.duckdb.wal": No space left on device'
            )


def test_write_failure_retries_then_fails_every_pending_commit(tmp_path: Path) -> None:
    assert DEFAULT_RETRY_DELAYS == (0, 2, 4, 8, 16)
    disk = FailingDisk()
    delays = (0.0, 0.01, 0.02, 0.04, 0.08)
    store = SessionStore.open(tmp_path / "session.duckdb", retry_delays=delays, fault_hook=disk)
    troubles: list[StoreTrouble] = []
    store.start(troubles.append)
    store.append_critical(ev(1)).result(TIMEOUT)

    disk.failing = True
    pending = [store.append_critical(ev(seq)) for seq in (2, 3, 4)]
    store.append(ev(5))
    for future in pending:
        with pytest.raises(StoreError, match="session store failed") as caught:
            future.result(TIMEOUT)
    assert "No space left on device" in caught.value.detail
    assert [(t.attempt, t.next_delay_s, t.final) for t in troubles] == [
        (1, 0.0, False),
        (2, 0.01, False),
        (3, 0.02, False),
        (4, 0.04, False),
        (5, 0.08, False),
        (6, None, True),
    ]
    assert all("No space left on device" in t.error_text for t in troubles)
    stats = store.stats()
    assert stats.failed and not stats.retrying and stats.errors == 6 and stats.last_seq == 1
    with pytest.raises(StoreError, match="session store failed"):
        store.append(ev(6))
    with pytest.raises(StoreError, match="session store failed"):
        store.append_ticks([(1.0, "X", 1.0, 1.0, 1.0, 1.0)])
    store.close()

    disk.failing = False
    report = verify(tmp_path / "session.duckdb")
    assert report.ok and report.last_seq == 1, "nothing of the failed batch was written, the rest is intact"


def test_write_failure_that_clears_is_retried_and_committed(tmp_path: Path) -> None:
    disk = FailingDisk()
    disk.fail_next = 2
    store = SessionStore.open(tmp_path / "session.duckdb", retry_delays=(0.0, 0.05, 5.0), fault_hook=disk)
    troubles: list[StoreTrouble] = []
    store.start(troubles.append)
    store.append_ticks([(1.0, "BTCUSDT", 1.0, 2.0, 3.0, 4.0)] * 10)
    store.append_critical(ev(1)).result(TIMEOUT)
    wait_for(lambda: store.stats().ticks_written == 10, "the ticks")
    assert [(t.attempt, t.next_delay_s, t.final, t.recovered) for t in troubles] == [
        (1, 0.0, False, False),
        (2, 0.05, False, False),
        (2, None, False, True),
    ]
    stats = store.stats()
    assert not stats.failed and stats.errors == 2 and stats.ticks_written == 10
    store.close()
    assert verify(tmp_path / "session.duckdb").counts == {
        "dead_letters": 0,
        "events": 1,
        "meta": 6,
        "snapshots": 0,
        "ticks": 10,
    }


# ------------------------------------------------------------------------------------------ kill -9

KILL_CHILD = """
import sys
from pathlib import Path
from cockpit.core.domain import Event
from cockpit.store import SessionStore

store = SessionStore.open(Path(sys.argv[1]))
store.start()
seq = store.last_seq
print("ready", seq, flush=True)
ticks = [(1.0, "BTCUSDT", 64000.0, 64000.5, 1.0, 2.0)] * 2_000
while True:
    seq += 1
    store.append_ticks(ticks)
    if seq % 3:
        store.append(Event(seq, float(seq), "alert", "info", "engine", {"n": seq}))
    else:
        event = Event(seq, float(seq), "order.filled", "critical", "engine", {"n": seq})
        store.append_critical(event).result()
        print(seq, flush=True)
"""


def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    rng = random.Random(9)
    acknowledged = 0
    for _ in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", KILL_CHILD, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        ready = child.stdout.readline().split()
        assert ready[:1] == ["ready"], child.stderr.read() if child.stderr else ""
        assert int(ready[1]) >= acknowledged, "reopen after kill -9 lost acknowledged events"
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        out, _err = child.communicate(timeout=TIMEOUT)
        printed = [int(line) for line in out.split() if line.isdigit()]
        assert printed, "the child committed nothing before it was killed"
        acknowledged = max(printed)

        report = verify(path)
        assert report.ok, report.render()
        assert report.last_seq >= acknowledged
        assert report.counts["events"] == report.last_seq
    store = SessionStore.open(path, create=False)
    try:
        seqs = {e.seq for e in store.read_events()}
        assert seqs == set(range(1, store.last_seq + 1))
    finally:
        store.close()
