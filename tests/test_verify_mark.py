"""Startup verification from the `verified_through` mark: every block is still read and the seq range still
checked, the hash chain is re-hashed only after the last event a full check covered, and the mark moves on
after each start — so opening a long session costs its new events, not its whole history."""

from __future__ import annotations

from pathlib import Path

import duckdb

from cockpit.engine.integrity import check_session_file
from cockpit.store import SessionStore, verify
from cockpit.store.verify import MARK_KEY, parse_mark
from tests.test_store import ev, make_session


def mark_of(path: Path) -> tuple[int, str] | None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = ?", [MARK_KEY]).fetchall()
    finally:
        con.close()
    return parse_mark(rows[0][0]) if rows else None


def started_session(path: Path, events: int = 100) -> Path:
    """A session of `events` events, started once: fully verified, its mark at the last event."""
    make_session(path, events=events)
    assert check_session_file(path) is None
    return path


def edit(path: Path, sql: str) -> None:
    """Change the closed file behind cockpit's back, as damage or a hand edit would."""
    con = duckdb.connect(str(path))
    try:
        con.execute(sql)
    finally:
        con.close()


def append(path: Path, first: int, count: int) -> None:
    with SessionStore.open(path) as store:
        store.start()
        for seq in range(first, first + count):
            store.append(ev(seq, n=seq, price="64000.5"))
        store.close()


def test_a_start_marks_what_it_verified_and_the_next_start_hashes_only_the_new_events(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    make_session(path, events=300)
    assert mark_of(path) is None
    assert check_session_file(path) is None  # verifies, then records the mark
    assert mark_of(path) == (300, verify(path).last_hash)

    append(path, 301, 50)
    report = verify(path, from_mark=True)
    assert report.ok and report.chain_from == 300 and report.last_seq == 350
    assert report.last_hash == verify(path).last_hash  # the same verdict as the whole chain
    assert check_session_file(path) is None
    assert mark_of(path) == (350, report.last_hash)


def test_an_altered_event_after_the_mark_is_caught(tmp_path: Path) -> None:
    path = started_session(tmp_path / "session.duckdb")
    append(path, 101, 20)
    edit(path, """UPDATE events SET payload = '{"n":110,"price":"1"}' WHERE seq = 110""")
    report = verify(path, from_mark=True)
    assert not report.ok and "seq 110" in report.problems["events.hash"]


def test_the_marked_event_altered_or_events_lost_below_the_mark_are_caught(tmp_path: Path) -> None:
    path = started_session(tmp_path / "session.duckdb")
    edit(path, "UPDATE events SET hash = 'x' WHERE seq = 100")
    report = verify(path, from_mark=True)
    assert not report.ok and "event 100, verified before" in report.problems["events.hash"]

    other = started_session(tmp_path / "other.duckdb")
    edit(other, "DELETE FROM events WHERE seq > 90")  # a damaged WAL that lost committed transactions
    report = verify(other, from_mark=True)
    assert not report.ok
    assert "events end at seq 90 but seq 100 was verified before" in report.problems["events.seq"]


def test_a_gap_below_the_mark_falls_back_to_the_whole_chain_and_names_it(tmp_path: Path) -> None:
    path = started_session(tmp_path / "session.duckdb")
    edit(path, "DELETE FROM events WHERE seq = 40")
    report = verify(path, from_mark=True)
    assert not report.ok and report.chain_from == 0
    assert report.problems["events.seq"] == "seq 40 missing (next row has seq 41)"


def test_an_edit_below_the_mark_is_left_to_the_full_check(tmp_path: Path) -> None:
    """What the startup check does not do, said plainly: a row rewritten (not damaged — its blocks checksum)
    before the mark is found by `cockpit doctor` and every backup's full check, not by a start."""
    path = started_session(tmp_path / "session.duckdb")
    edit(path, """UPDATE events SET payload = '{"n":50,"price":"1"}' WHERE seq = 50""")
    assert verify(path, from_mark=True).ok
    assert "seq 50" in verify(path).problems["events.hash"]


def test_a_verified_backup_marks_the_live_file_so_a_restart_skips_what_it_covered(tmp_path: Path) -> None:
    path = tmp_path / "session.duckdb"
    with SessionStore.open(path) as store:
        store.start()
        for seq in range(1, 201):
            store.append(ev(seq, n=seq, price="64000.5"))
        report = store.backup_to(tmp_path / "backup.duckdb")  # the whole chain of the copy is verified
        assert report.ok and report.last_seq == 200
        for seq in range(201, 231):  # the session goes on after the backup
            store.append(ev(seq, n=seq, price="64000.5"))
        store.close()
    assert mark_of(path) == (200, report.last_hash)
    restart = verify(path, from_mark=True)
    assert restart.ok and restart.chain_from == 200 and restart.last_seq == 230
