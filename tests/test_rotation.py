"""A session that runs for days goes on in a new file (cockpit/engine/rotation.py): State, kill switch and
reconcile point carried over, no gap in what the engine watches, restart and replay from the new file."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import duckdb
import orjson
import pytest

from cockpit.config.secrets import Credentials
from cockpit.core.commands import KillSwitch
from cockpit.engine.options import EngineOptions
from cockpit.engine.rotation import due, follow_rotations, next_file, rotate
from cockpit.engine.runtime import RunSpec, Runtime, session_file_for
from cockpit.replay.session import ReplaySession
from cockpit.sim.server import SimServer
from cockpit.store.verify import verify
from cockpit.ui.attached import AttachedBackend
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET, make_config
from tests.test_engine import BTC, trade
from tests.waiting import wait_until


def spec_for(sim: SimServer, session: Path) -> RunSpec:
    config = make_config(sim.base_url, session)
    return RunSpec(
        config=config,
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session_file_for(config),  # a rotated session: its newest file
        options=EngineOptions(mode="live", **FAST_OPTIONS),  # type: ignore[arg-type]
    )


@pytest.fixture
async def runtimes() -> AsyncIterator[list[Runtime]]:
    started: list[Runtime] = []
    yield started
    for runtime in started:
        await runtime.stop()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_the_session_goes_on_in_a_new_file_with_its_state_carried_over(
    sim: SimServer, tmp_path: Path, runtimes: list[Runtime]
) -> None:
    session = tmp_path / "live.duckdb"
    runtime = Runtime(spec_for(sim, session))
    runtimes.append(runtime)
    engine = await runtime.start()
    assert runtime.control is not None
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.010")
    await wait_until(lambda: BTC in engine.state.positions, 20, "the position")
    await engine.control(KillSwitch(on=True, cause="held across the rotation", by="test"))
    cockpit = AttachedBackend(runtime.control.path)
    await cockpit.start()
    before = engine.state
    old_seq = before.seq

    await wait_until(lambda: engine.store.tick_count() > 0, 10, "ticks in the first file")
    new = await rotate(engine, "daily")

    assert new.parent == session.parent and new.name.startswith("live-") and new != session
    # the first file's last ticks joined the Parquet archive when it closed (no gap in the archive)
    assert rows(session, "SELECT count(*) FROM ticks") == [(0,)]
    assert list((session.parent / "ticks").rglob(f"{session.stem}-*.parquet"))
    assert engine.session_file == new and runtime.spec.session_file == new
    # the old file ends with session.rotated naming the new one; the new one starts with where it came from
    kind, payload = rows(session, "SELECT kind, payload FROM events ORDER BY seq DESC LIMIT 1")[0]
    assert kind == "session.rotated" and orjson.loads(str(payload))["next_file"] == str(new)
    first = engine.store.read_events(0, limit=1)[0]  # the engine holds the new file: read through it
    assert (first.seq, first.kind) == (1, "session.started") and first.payload["continues"] == str(session)
    # the State carried over: positions, the kill switch, balances, the peak; the seqs start again
    state = engine.state
    assert state.seq < old_seq
    assert state.positions == before.positions and state.kill_switch.engaged
    assert state.wallet == before.wallet and state.peak_equity == before.peak_equity

    # the engine goes on in the new file: a fill now is recorded there, and an attached cockpit follows
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.005")
    await wait_until(lambda: str(engine.state.positions[BTC].qty) == "0.015", 20, "the fill after rotation")
    await wait_until(
        lambda: cockpit.state.seq == engine.state.seq and cockpit.state == engine.state,
        20,
        "the attached cockpit at the engine's State in the new file",
    )
    assert cockpit.session_file == new
    await cockpit.stop()

    # a restart follows the chain to the new file and restores what was carried over and added since
    await runtime.stop()
    runtimes.remove(runtime)
    assert follow_rotations(session) == new
    assert verify(session).ok and verify(new).ok
    replay = ReplaySession.open(new)
    try:
        replay.seek(1)
        assert BTC in replay.state.positions and replay.state.kill_switch.engaged, "replay starts carried"
    finally:
        replay.close()
    again = Runtime(spec_for(sim, session))
    runtimes.append(again)
    restarted = await again.start()
    assert restarted.session_file == new
    assert str(restarted.state.positions[BTC].qty) == "0.015" and restarted.state.kill_switch.engaged


def test_when_a_session_is_due_a_new_file(tmp_path: Path) -> None:
    class Engine:  # what `due` reads
        def __init__(self, rotate: str, rotate_mb: int) -> None:
            from cockpit.config.settings import default_config

            config = default_config()
            self.config = replace(config, session=replace(config.session, rotate=rotate, rotate_mb=rotate_mb))
            self.session_file = tmp_path / "s.duckdb"

    midnight = 1_765_065_600.0  # 2025-12-07 00:00 UTC
    daily = Engine("daily", 0)
    assert due(daily, midnight - 60, midnight - 1) is None  # type: ignore[arg-type]
    assert due(daily, midnight - 60, midnight + 1) == "daily"  # type: ignore[arg-type]
    assert due(Engine("never", 0), midnight - 60, midnight + 1) is None  # type: ignore[arg-type]
    sized = Engine("never", 1)
    sized.session_file.write_bytes(b"x" * 900_000)
    assert due(sized, midnight, midnight) is None  # type: ignore[arg-type]
    sized.session_file.with_name("s.duckdb.wal").write_bytes(b"x" * 200_000)
    assert due(sized, midnight, midnight) == "size"  # type: ignore[arg-type]


def test_rotated_files_are_named_by_the_time_beside_the_first(tmp_path: Path) -> None:
    at = time.mktime((2026, 12, 6, 0, 0, 5, 0, 0, 0)) - time.timezone
    assert next_file(tmp_path / "live.duckdb", at).name == "live-20261206-000005.duckdb"
    assert next_file(tmp_path / "live-20261205-000001.duckdb", at).name == "live-20261206-000005.duckdb"
    dir_session = tmp_path / "session-20261205-101010.duckdb"
    assert next_file(dir_session, at).name == "session-20261206-000005.duckdb"
    (tmp_path / "live-20261206-000005.duckdb").touch()
    assert next_file(tmp_path / "live.duckdb", at).name == "live-20261206-000005-1.duckdb"


async def test_a_new_file_that_cannot_be_opened_leaves_the_session_where_it_is(
    sim: SimServer, tmp_path: Path, runtimes: list[Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from cockpit.engine import rotation
    from cockpit.store.errors import SessionFileError

    session = tmp_path / "live.duckdb"
    spec = spec_for(sim, session)
    runtime = Runtime(replace(spec, options=replace(spec.options, rotation_check_s=0.05)))
    runtimes.append(runtime)
    engine = await runtime.start()

    def cannot_open(path: Path) -> object:
        raise SessionFileError(f"cannot create {path}", "disk full", "free some space")

    monkeypatch.setattr(engine, "open_store", cannot_open)
    monkeypatch.setattr(rotation, "due", lambda *_: "daily")
    seq_before = engine.state.seq  # the engine's own rotation worker checks every 0.05 s
    await wait_until(
        lambda: any("could not go on in a new file" in a.message for a in engine.state.alerts),
        10,
        "the failed rotation said",
    )
    await asyncio.sleep(0.3)  # several more failing checks
    assert engine.session_file == session and engine.state.seq > seq_before, "the session stays where it is"
    assert runtime.spec.session_file == session
    said = [a for a in engine.state.alerts if "could not go on in a new file" in a.message]
    assert len(said) == 1, "said once, not at every check"


async def test_after_a_rotation_nothing_looks_lost(
    sim: SimServer, tmp_path: Path, runtimes: list[Runtime]
) -> None:
    """A rotation is not a lost session file (no incident, no kill switch), the commands find the engine
    beside its new file, the open dead letters come along, and reconcile's trade history still starts where
    the session began (a fill missed just before the rotation is recovered)."""
    import asyncio

    from cockpit.engine.control import engine_running
    from cockpit.engine.reconcile import session_began, state_start_ms

    session = tmp_path / "live.duckdb"
    spec = spec_for(sim, session)
    runtime = Runtime(replace(spec, options=replace(spec.options, session_file_check_s=0.05)))
    runtimes.append(runtime)
    engine = await runtime.start()
    await asyncio.wrap_future(
        engine.store.add_dead_letter(
            op="cancel_order",
            params={"symbol": "BTCUSDT"},
            error_class="permanent",
            error_type="OrderNotFound",
            reason="failed for good",
            attempts=3,
        )
    )
    began = session_began(engine.store)

    new = await rotate(engine, "daily")
    await asyncio.sleep(0.3)  # several checks of the file watch

    assert engine.session_lost is None and engine.state.health_of("database").ok
    assert not engine.state.kill_switch.engaged
    assert [d.op for d in engine.store.dead_letters(status="open")] == ["cancel_order"]
    assert state_start_ms(engine) == began * 1000, "trade history is read from where the session began"
    await wait_until(lambda: runtime.control is not None and runtime.control.path.parent.exists(), 5, "moved")
    assert await asyncio.to_thread(engine_running, new), "`cockpit ctl/backup/restore` find the engine"


def _chain_file(path: Path, continues: Path | None, next_file: Path | None, snapshot: bool = True) -> None:
    from cockpit.core import events as ev
    from cockpit.core.domain import Event
    from cockpit.store import SessionStore

    with SessionStore.open(path) as store:
        store.start()
        started = ev.session_started(
            mode="live",
            exchange="binanceusdm",
            session_file=str(path),
            restored=continues is not None,
            restored_seq=0,
            continues=str(continues) if continues else None,
        )
        store.append_critical(Event(1, 1.0, "session.started", "info", "engine", dict(started))).result()
        if snapshot:
            from cockpit.core.snapshot import state_to_json
            from cockpit.core.state import State

            store.put_snapshot(1, 1.0, state_to_json(State(seq=1)))
        if next_file is not None:
            rotated = ev.session_rotated(next_file=str(next_file), reason="daily", last_seq=2, message="m")
            store.append_critical(Event(2, 2.0, "session.rotated", "info", "engine", dict(rotated))).result()


def test_the_chain_is_followed_by_name_and_only_into_a_file_that_continues_it(tmp_path: Path) -> None:
    first = tmp_path / "a" / "live.duckdb"
    first.parent.mkdir()
    second, third = (
        first.with_name("live-20261207-000000.duckdb"),
        first.with_name("live-20261208-000000.duckdb"),
    )
    _chain_file(first, None, second)
    _chain_file(second, first, third)
    _chain_file(third, second, None)
    assert follow_rotations(first) == third
    moved = tmp_path / "b"
    first.parent.rename(moved)  # a session folder moved whole: followed by name, not by the old paths
    assert follow_rotations(moved / "live.duckdb") == moved / third.name
    # a successor a crash left without its first transaction (no carried State): not followed
    for part in (moved / third.name, moved / f"{third.name}.wal"):
        part.unlink(missing_ok=True)
    _chain_file(moved / third.name, second, None, snapshot=False)
    assert follow_rotations(moved / "live.duckdb") == moved / second.name
