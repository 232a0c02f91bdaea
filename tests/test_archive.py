"""Ticks older than the retention leave the session file for Parquet partitions (cockpit/store/archive.py,
cockpit/engine/archive.py): every row once, exactly, across crashes at any step."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cockpit.core.domain import Event
from cockpit.store import SessionStore, archive
from cockpit.store.archive import archive_folder
from cockpit.store.verify import verify
from tests.conftest import EngineRun

DAY = 86_400.0
T0 = 1_764_979_200.0  # 2025-12-06 00:00 UTC


def ticks(
    start: float, count: int, symbols: tuple[str, ...] = ("BTC/USDT:USDT", "ETH/USDT:USDT")
) -> list[Any]:
    return [
        (start + i * 60.0, symbols[i % len(symbols)], 100.0 + i * 0.01, 100.5 + i * 0.01, 1.0 + i, 2.0)
        for i in range(count)
    ]


@pytest.fixture(autouse=True)
def _whole_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    """A move takes everything due at once here (these ticks are a minute apart, not 0.1 ms): slices have
    their own test."""
    monkeypatch.setattr(archive, "MOVE_SPAN_S", 30 * DAY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    s = SessionStore.open(tmp_path / "live.duckdb", meta={"exchange": "binanceusdm", "mode": "sim"})
    s.start()
    s.append_critical(Event(1, T0, "alert", "info", "test", {"message": "one event"})).result()
    try:
        yield s
    finally:
        s.close()


def archived(folder: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(
        f"SELECT ts, symbol, bid, ask, bid_qty, ask_qty, day, market "
        f"FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true) ORDER BY ts"
    ).fetchall()


def in_file(store: SessionStore) -> list[tuple[Any, ...]]:
    with store._reader() as cur:
        return cur.execute("SELECT * FROM ticks ORDER BY ts").fetchall()


def test_old_ticks_move_to_parquet_partitions_exactly_once(store: SessionStore) -> None:
    rows = ticks(T0, 3000)  # 50 hours of a tick a minute, over three UTC days
    store.append_ticks(rows)
    folder = archive_folder(store.path)
    cut = T0 + 2 * DAY

    result = store.archive_ticks(cut, folder)

    moved = [r for r in rows if r[0] < cut]
    assert result.rows == len(moved) == 2880 and result.files >= 4  # two days × two markets
    kept = in_file(store)
    assert [r[0] for r in kept] == [r[0] for r in rows if r[0] >= cut], "only the newer ticks stay"
    back = archived(folder)
    assert [r[:6] for r in back] == moved, "every moved tick, exact, once"
    assert {(str(r[6]), r[7]) for r in back} == {  # days in UTC
        (day, market) for day in ("2025-12-06", "2025-12-07") for market in ("BTC-USDT-USDT", "ETH-USDT-USDT")
    }
    assert (folder / "day=2025-12-06" / "market=BTC-USDT-USDT").is_dir()
    assert store.archive_ticks(cut, folder).rows == 0  # nothing older left: nothing written again
    assert len(archived(folder)) == 2880
    store.close()
    assert verify(store.path).ok, "the session file still verifies"


def test_a_move_cut_off_after_its_delete_is_finished_by_the_next(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = ticks(T0, 600)
    store.append_ticks(rows)
    folder = archive_folder(store.path)
    real_settle = archive.settle

    def crash(staging: Path, into: Path) -> int:
        raise OSError("the process died here")

    monkeypatch.setattr(archive, "settle", crash)
    with pytest.raises(OSError):  # the first slice left the file; its Parquet files are still staged
        store.archive_ticks(T0 + 300 * 60, folder)
    staged = [r for r in rows[:300] if r not in in_file(store)]
    assert staged and len(in_file(store)) == 600 - len(staged)
    assert not folder.exists() or not archived(folder), "nothing in the archive yet"
    monkeypatch.setattr(archive, "settle", real_settle)

    result = store.archive_ticks(T0 + 300 * 60, folder)  # the next move (or the next start's) finishes it

    assert result.rows == 300 - len(staged) and result.files >= 2
    assert [r[:6] for r in archived(folder)] == rows[:300], "every row once: the staged slice, then the rest"
    assert in_file(store) == sorted(rows[300:])
    assert not list(archive.staging_root(folder).iterdir())


def test_a_move_cut_off_before_its_delete_is_dropped_and_done_again(store: SessionStore) -> None:
    rows = ticks(T0, 600)
    store.append_ticks(rows)
    folder = archive_folder(store.path)
    # what a crash between the Parquet copy and the delete leaves: a staging folder no mark names
    stale = archive.staging_root(folder) / f"{store.path.stem}-1"
    (stale / "day=2025-12-06" / "market=BTC-USDT-USDT").mkdir(parents=True)
    duckdb.sql(
        f"COPY (SELECT 1.0 AS ts) TO '{stale}/day=2025-12-06/market=BTC-USDT-USDT/x.parquet' (FORMAT PARQUET)"
    )

    result = store.archive_ticks(T0 + 300 * 60, folder)

    assert result.rows == 300
    assert [r[:6] for r in archived(folder)] == rows[:300], "no row twice, none from the dropped copy"
    assert not stale.exists()


def test_another_sessions_staging_is_left_alone(store: SessionStore) -> None:
    """Sessions of a folder share the archive: one never drops another's move in progress, even one whose
    name starts with its own (a rotated file's, `live-20261207-000000`)."""
    folder = archive_folder(store.path)
    root = archive.staging_root(folder)
    theirs = [root / "other-session-1", root / f"{store.path.stem}-20261207-000000-1765000000000"]
    for staged in theirs:
        staged.mkdir(parents=True)
    store.append_ticks(ticks(T0, 10))
    store.archive_ticks(T0 + DAY, folder)
    assert all(staged.exists() for staged in theirs)


def test_a_backlog_moves_a_slice_at_a_time(store: SessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hours of ticks waiting (a retention lowered, the archive turned on for an old file) never hold the
    writer for the whole backlog: each slice is its own turn of the writer."""
    monkeypatch.setattr(archive, "MOVE_SPAN_S", 3600.0)
    rows = ticks(T0, 600)  # 10 hours, a tick a minute: ten slices of an hour
    store.append_ticks(rows)
    folder = archive_folder(store.path)
    result = store.archive_ticks(T0 + DAY, folder)
    assert result.rows == 600 and result.files == 20  # ten slices × two markets
    assert [r[:6] for r in archived(folder)] == rows


async def test_the_engine_moves_old_ticks_out_as_it_runs(start_engine: Any) -> None:
    from dataclasses import replace

    run: EngineRun = await start_engine(archive_every_s=0.3)
    engine = run.engine
    # a short retention, as if the engine had run for a day: every tick older than a second moves out
    engine.config = replace(engine.config, session=replace(engine.config.session, tick_retention_h=1 / 3600))
    from cockpit.engine.archive import archive_loop

    task = asyncio.create_task(archive_loop(engine))
    try:
        done = await run.wait_for("db.archived", within=30)
    finally:
        task.cancel()
    payload = done.payload
    assert payload["rows"] > 0 and payload["files"] > 0
    folder = Path(payload["folder"])
    assert folder == engine.session_file.parent / "ticks"
    assert len(archived(folder)) >= payload["rows"]
    assert "moved to" in payload["message"]
