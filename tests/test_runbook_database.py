"""Runbook 000 §7 / 002: database corruption, backups and restore — against the simulator, real files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from cockpit.config.secrets import Credentials
from cockpit.core.commands import Backup, ReadCopy
from cockpit.core.errors import CockpitError
from cockpit.engine.backups import (
    READ_COPY_MAX_AGE_S,
    backup_path,
    list_backups,
    prune,
    read_copy_path,
    reads_dir,
)
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.server import SimServer
from cockpit.store import SessionStore, verify
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET, EngineRun, make_config, stop
from tests.test_cli_engine import HeadlessEngine, cockpit, write_config
from tests.test_engine import trade
from tests.waiting import wait_until


def spec_for(sim: SimServer, session: Path, **options: Any) -> RunSpec:
    return RunSpec(
        config=make_config(sim.base_url, session),
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session,
        options=EngineOptions(**{"mode": "live", **FAST_OPTIONS, **options}),
    )


def damage(path: Path) -> bytes:
    """Overwrite the second half of a closed DuckDB file with garbage, as a failing disk would."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(size - size // 2))
    return path.read_bytes()


async def test_runbook_database_corruption_restores_the_latest_verified_backup_and_reconciles(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "live.duckdb"
    runtime = Runtime(spec_for(sim, session))
    engine = await runtime.start()
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: "BTC/USDT:USDT" in engine.state.positions)
    backup = await engine.control(Backup(by="test"))
    assert backup.verified is True
    await runtime.stop()

    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.5")  # after the backup, while cockpit is down
    damaged = damage(session)
    assert not verify(session).ok

    events: list[Any] = []
    runtime = Runtime(spec_for(sim, session))
    runtime.add_subscriber(events.append)
    engine = await runtime.start()
    await engine.core.drain()
    try:
        kinds = [e.kind for e in events] + [
            e.kind for e in engine.store.read_events(after_seq=engine.restored_from)
        ]
        assert "db.corrupt" in kinds and "db.restored" in kinds
        corrupt = next(e for e in engine.store.read_events() if e.kind == "db.corrupt")
        assert corrupt.severity == "critical"
        kept = Path(corrupt.payload["kept_aside"])
        assert (
            kept.name.startswith("live.duckdb.corrupted-") and kept.read_bytes() == damaged
        )  # never deleted
        assert engine.restored_from == backup.last_seq
        done = next(
            e for e in engine.store.read_events(after_seq=engine.restored_from) if e.kind == "reconcile.done"
        )
        assert done.payload["trigger"] == "startup"
        assert done.payload["recovered_fills"] == 1 and done.payload["ghosts"] == []
        positions = {s: str(p.qty) for s, p in engine.state.positions.items()}
        assert positions == {"BTC/USDT:USDT": "0.02", "ETH/USDT:USDT": "-0.5"}
    finally:
        await runtime.stop()
    assert verify(session).ok


async def test_runbook_database_corruption_without_a_backup_refuses_to_trade(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "lonely.duckdb"
    runtime = Runtime(spec_for(sim, session))
    await runtime.start()
    await runtime.stop()
    damaged = damage(session)
    with pytest.raises(CockpitError) as refused:
        await Runtime(spec_for(sim, session)).start()
    assert "no verified backup" in refused.value.title and "cockpit restore" in refused.value.fix
    assert session.read_bytes() == damaged  # untouched


async def test_scheduled_backups_are_verified_and_old_ones_pruned(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine(backup_every_s=0.3)
    await wait_until(lambda: len(run.of("db.backup")) >= 2, within=10, what="two scheduled backups")
    assert all(e.payload["verified"] and e.payload["by"] == "schedule" for e in run.of("db.backup"))
    session = run.engine.session_file
    old = backup_path(session, time.time() - 40 * 86400)
    old.write_bytes(b"an old backup")
    os.utime(old, (time.time() - 40 * 86400, time.time() - 40 * 86400))
    removed = prune(session, 30, time.time())
    assert removed == [old.name] and not old.exists()
    assert all(b.path.exists() for b in list_backups(session))


def aged(path: Path, age_s: float, text: bytes = b"a file") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)
    os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


async def test_a_read_copy_is_no_backup_and_stale_ones_are_removed_while_backups_stay(
    sim: SimServer, start_engine: Any
) -> None:
    """`read_copy`: a verified copy in `.reads/`, not a restore point, nothing recorded; copies a crashed
    reader left are removed once over the age limit (at a read request and on the backup schedule), and only
    those."""
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")  # long after the backup loop's first pass (below) ran at start
    session = run.engine.session_file
    stale_age = READ_COPY_MAX_AGE_S + 600
    then = time.time() - stale_age
    operator_backup = aged(backup_path(session, then), stale_age)  # as old as the stale copies: kept
    stale = aged(read_copy_path(session, then), stale_age)
    stale_partial = aged(Path(f"{read_copy_path(session, then)}.partial"), stale_age)
    recent = aged(read_copy_path(session, time.time() - 600), 600)  # a reader still reading: kept
    other = aged(read_copy_path(session.with_name("other.duckdb"), then), stale_age)  # another session's
    stranger = aged(reads_dir(session) / "notes.txt", stale_age)  # not a read copy at all
    backups_before = list_backups(session)

    result = await run.engine.control(ReadCopy(by="test"))
    copy = Path(result.path)
    assert result.verified is True and result.by == "test" and result.last_seq >= 1
    assert copy.parent == reads_dir(session) and verify(copy).ok
    assert not stale.exists() and not stale_partial.exists()
    assert recent.exists() and other.exists() and stranger.exists() and operator_backup.exists()
    assert list_backups(session) == backups_before  # not a restore point
    assert run.engine.last_backup_at is None  # nor the last backup the status line counts from
    assert "db.backup" not in run.kinds() and "operator.action" not in run.kinds()  # nothing recorded
    await stop(run)

    # The schedule removes them too (and its first pass runs at start, before any backup is due).
    stale = aged(read_copy_path(session, then), stale_age)
    run = await start_engine(backup_every_s=3600)
    await wait_until(lambda: not stale.exists(), within=10, what="the stale read copy removed at start")
    assert copy.exists() and recent.exists() and other.exists() and operator_backup.exists()
    assert [b.path for b in list_backups(session)] == [operator_backup]


async def test_backup_and_restore_commands(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "cli.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    await engine.wait_for("reconcile.done")
    code, out, _ = await cockpit(tmp_path, "backup", "--config", str(config))  # through the running engine
    assert code == 0 and "verified" in out
    await engine.wait_for("db.backup")
    code, _, err = await cockpit(tmp_path, "restore", "--config", str(config), "--latest", "--yes")
    assert code == 1 and "engine is running" in err and "press R" in err
    assert await engine.finish() == 0

    code, out, _ = await cockpit(tmp_path, "backup", "--config", str(config))  # no engine: directly
    assert code == 0 and "verified" in out
    code, out, _ = await cockpit(tmp_path, "restore", "--config", str(config), "--list")
    assert code == 0 and out.count("VERIFIED") == 2
    code, _, err = await cockpit(tmp_path, "restore", "--config", str(config), "--latest")
    assert code == 2 and "--yes" in err  # no terminal, no confirmation
    code, out, _ = await cockpit(tmp_path, "restore", "--config", str(config), "--latest", "--yes")
    assert code == 0 and "restored" in out and "kept as cli.duckdb.replaced-" in out
    assert verify(session).ok
    with SessionStore.open(session, create=False) as store:
        assert store.read_events()[-1].kind == "db.restored"
    assert len(list(tmp_path.glob("cli.duckdb.replaced-*"))) == 1
    await asyncio.sleep(0)


# ----- the session file deleted or replaced while the engine runs ------------------------------------------
@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_session_file_deleted_or_replaced_while_the_engine_runs_is_a_critical_incident(
    sim: SimServer, tmp_path: Path, how: str
) -> None:
    """`rm live.duckdb` (or `mv other live.duckdb`) under a running engine: noticed within seconds, database
    health CRITICAL with the reason, kill switch engaged, the open file backed up at once; SIGTERM then exits
    3 and names a verified backup holding every event, the fill and the stop included."""
    import re

    import duckdb
    import orjson

    session = tmp_path / "live.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    theirs = b""

    def printed(kind: str, where: Any = lambda p: True) -> list[dict[str, Any]]:
        return [e for e in engine.events if e["kind"] == kind and where(e["payload"])]

    def database_trouble(payload: dict[str, Any]) -> bool:
        return bool(payload["item"] == "database" and payload["status"] != "ok")

    try:
        await engine.wait_for("reconcile.done")
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
        fill = await engine.wait_for("order.filled")
        assert not printed("health.changed", database_trouble)
        if how == "deleted":
            session.unlink()
        else:
            other = tmp_path / "other.duckdb"
            duckdb.connect(str(other)).close()  # someone's own DuckDB file, moved over the session
            os.replace(other, session)
            theirs = session.read_bytes()
        await wait_until(
            lambda: printed("db.backup", lambda p: p["by"] == "session-file-watch"), 15, "the backup"
        )
        [health] = printed("health.changed", database_trouble)
        assert health["severity"] == "critical" and health["payload"]["status"] == how
        assert str(session) in health["payload"]["message"] and how in health["payload"]["message"]
        assert health["payload"]["detail"].startswith(session.name)
        [kill] = printed("killswitch.engaged")
        assert kill["payload"]["by"] == "store" and kill["payload"]["cause"].startswith("database failure")
        [urgent] = printed("db.backup")
        assert urgent["payload"]["verified"] is True and Path(urgent["payload"]["path"]).is_file()

        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "status", "--json")
        status = orjson.loads(out)
        assert code == 0 and status["health"]["database"] == how  # a backup does not make it ok
        assert status["kill_switch"]["engaged"] is True
        code, _, err = await cockpit(tmp_path, "ctl", "--config", str(config), "kill-switch", "off", "--yes")
        assert code != 0 and "cockpit restore" in err  # not released while the file is gone
    finally:
        code = await engine.finish()
    err = await engine.errors()
    assert code == 3, err
    assert "Traceback" not in err and "cockpit restore --config F --latest" in err
    named = re.search(r"verified backup (\S+)", err)
    assert named is not None, err
    last = Path(named.group(1))
    assert last.parent == tmp_path / "backups" and verify(last).ok
    with SessionStore.open(last, create=False) as store:
        kept = [(e.kind, e.payload) for e in store.read_events()]
    assert kept[-1][0] == "session.stopped" and kept[-1][1]["seq"] == engine.events[-1]["seq"]
    assert len(kept) == len(engine.events)  # every event printed is in the last backup
    assert any(k == "order.filled" and p["trade_id"] == fill["payload"]["trade_id"] for k, p in kept)
    if how == "replaced":
        assert session.read_bytes() == theirs  # the file now at the path is never touched
    else:
        assert not session.exists()


def test_the_session_file_keeps_its_identity_through_writes_checkpoints_and_backups(tmp_path: Path) -> None:
    """No false alarm: what the engine itself does to its file (commits, checkpoints, backups, closing) never
    changes the identity the watch compares; an editor's save-as-new-file over it does."""
    from cockpit.engine.session_identity import change_of, identity_of
    from tests.test_store import ev

    session = tmp_path / "live.duckdb"
    store = SessionStore.open(session)
    store.start()
    opened = identity_of(session)
    assert opened is not None
    for seq in range(1, 3001):
        store.append(ev(seq, n=seq, text="x" * 200))
    store.append_critical(ev(3001)).result(10)
    assert store.backup_to(tmp_path / "copy.duckdb").ok
    assert change_of(session, opened) is None
    store.close()  # the last checkpoint
    assert change_of(session, opened) is None
    saved = tmp_path / "live.duckdb.new"
    saved.write_bytes(session.read_bytes())
    os.replace(saved, session)  # the same bytes, but another file
    assert change_of(session, opened) == ("replaced", identity_of(session))
    session.unlink()
    assert change_of(session, opened) == ("deleted", None)


@pytest.mark.parametrize("taken_by", ["watch", "operator"])
async def test_restoring_a_lost_session_file_from_its_first_copy_uses_the_copy_taken_at_stop(
    sim: SimServer, tmp_path: Path, taken_by: str
) -> None:
    """The operator picks a copy taken since the file vanished (the watch's, or one they took with `b`) from
    a list made before the stop; the fill after it is in the copy taken at stop, and that one comes back."""
    session = tmp_path / "live.duckdb"
    runtime = Runtime(spec_for(sim, session, session_file_check_s=0.2))
    engine = await runtime.start()
    try:
        await wait_until(lambda: any(e.kind == "reconcile.done" for e in engine.store.read_events()), 10)
        session.unlink()
        await wait_until(lambda: engine.session_lost is not None and engine.session_lost.backups, 15, "copy")
        assert engine.session_lost is not None
        first = Path(engine.session_lost.backups[0])
        if taken_by == "operator":
            made = await engine.control(Backup(by="test"))
            assert made.verified
            first = Path(made.path)
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")  # after the first copy
        await wait_until(lambda: "BTC/USDT:USDT" in engine.state.positions, 10, "the fill")
        filled = engine.state.positions["BTC/USDT:USDT"]
        engine = await runtime.restore(first)
        await engine.core.drain()
        assert runtime.restored_backup is not None and runtime.restored_backup != first
        assert session.is_file() and engine.session_lost is None
        kept = list(engine.store.read_events())
        before = [e for e in kept if e.seq <= engine.restored_from]
        assert before[-1].kind == "session.stopped"  # the lost engine's events, to its very last
        assert any(e.kind == "order.filled" for e in before), [e.kind for e in before]
        assert engine.state.positions["BTC/USDT:USDT"].qty == filled.qty
        restored = [e for e in kept if e.kind == "db.restored"]
        assert restored and restored[-1].payload["backup"] == str(runtime.restored_backup)
    finally:
        await runtime.stop()
