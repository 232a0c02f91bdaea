"""`cockpit doctor` as an operator runs it before resuming: a subprocess against the simulator, real session
files and real backups."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from cockpit.core.domain import Event
from cockpit.engine.backups import backup_path
from cockpit.sim.server import SimServer
from cockpit.store import SessionStore
from tests.conftest import CCXT_ID, EXCHANGES, TEST_SECRET
from tests.test_cli_engine import HeadlessEngine, cli_env, cockpit, write_config

CHECKS = [
    "config",
    "secrets",
    "exchange",
    "key permissions",
    "position mode",
    "clock",
    "session file",
    "backups",
    "disk space",
    "kill switch",
]


async def doctor(tmp_path: Path, config: Path, *extra: str, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", "doctor", "--config", str(config), *extra,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**cli_env(tmp_path), **env},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    assert TEST_SECRET not in out.decode() + err.decode()
    return proc.returncode, out.decode(), err.decode()


async def doctor_json(tmp_path: Path, config: Path, **env: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code, out, err = await doctor(tmp_path, config, "--json", **env)
    report = orjson.loads(out)
    assert [c["name"] for c in report["checks"]] == CHECKS, err
    assert report["ok"] is all(c["ok"] for c in report["checks"])
    return code, {c["name"]: c for c in report["checks"]}


def build_session(path: Path, events: int = 200, backup: bool = True) -> None:
    """A real session file with `events` events, closed; with `backup`, a verified backup taken now."""
    store = SessionStore.open(path, meta={"exchange": "binanceusdm", "mode": "live"})
    store.start()
    try:
        for seq in range(1, events + 1):
            payload = {"n": seq, "message": f"event {seq} " + "x" * 40}
            store.append(Event(seq, time.time(), "alert", "info", "engine", payload))
        if backup:
            dest = backup_path(path, time.time())
            dest.parent.mkdir(parents=True, exist_ok=True)
            assert store.backup_to(dest).ok
    finally:
        store.close()


def damage_events(path: Path) -> None:
    """Flip bytes inside a data block of the events table, in the middle of the file."""
    con = duckdb.connect(str(path), read_only=True)
    block_size = int(con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0])
    blocks = sorted(
        int(row[0])
        for row in con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('events') "
            "WHERE column_name = 'payload' AND block_id >= 0"
        ).fetchall()
    )
    con.close()
    assert len(blocks) >= 2, "the events must span several blocks"
    offset = 3 * 4096 + blocks[len(blocks) // 2] * block_size + 8 + 1000
    with path.open("r+b") as f:
        f.seek(offset)
        chunk = f.read(64)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_doctor_passes_every_check_on_a_healthy_setup(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "healthy.duckdb"
    build_session(session)
    config = write_config(tmp_path, sim.base_url, session, CCXT_ID[sim.exchange])

    code, out, _ = await doctor(tmp_path, config)
    assert code == 0, out
    lines = out.splitlines()
    assert [line[:4] for line in lines[:10]] == ["OK  "] * 10
    assert lines[-1] == "all 10 checks ok"

    code, checks = await doctor_json(tmp_path, config)
    assert code == 0
    assert all(c["ok"] and c["status"] == "ok" and c["fix"] is None for c in checks.values())
    assert "COCKPIT_API_KEY" in checks["secrets"]["detail"] and "<redacted>" in checks["secrets"]["detail"]
    assert "REST latency" in checks["exchange"]["detail"]
    assert "verified, 200 events" in checks["session file"]["detail"]
    assert "no engine running" in checks["kill switch"]["detail"]


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_doctor_names_cockpit_keys_when_the_exchange_refuses_the_key(
    sim: SimServer, tmp_path: Path
) -> None:
    exchange = CCXT_ID[sim.exchange]
    config = write_config(tmp_path, sim.base_url, tmp_path / "s.duckdb", exchange)
    code, out, _ = await doctor(tmp_path, config, COCKPIT_API_SECRET="not-the-secret-at-all-0001")
    assert code == 1
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1 and "key permissions" in failing[0]
    assert f"fix: store a valid key with `cockpit keys set {exchange}`" in out
    assert "IP whitelist" in out and "not-the-secret" not in out


async def test_doctor_fails_the_clock_check_on_a_skewed_exchange_clock(
    sim: SimServer, tmp_path: Path
) -> None:
    await sim.inject({"kind": "clock_skew", "ms": 3000})
    config = write_config(tmp_path, sim.base_url, tmp_path / "s.duckdb")
    code, checks = await doctor_json(tmp_path, config)
    assert code == 1
    clock = checks["clock"]
    assert clock["status"] == "fail" and "beyond the kill switch limit" in clock["detail"]
    offset = int(clock["detail"].split()[1])  # "offset +2999 ms from the exchange …"
    assert 2900 <= offset <= 3100 and "clock" in clock["fix"]
    assert [name for name, c in checks.items() if not c["ok"]] == ["clock"]


async def test_doctor_exits_2_on_an_invalid_config_and_skips_the_rest(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[risk]\nkill_drawdown_pct = 150\n")
    code, out, _ = await doctor(tmp_path, config)
    assert code == 2
    assert out.splitlines()[0].startswith("FAIL  config") and "kill_drawdown_pct = 150" in out
    assert sum(line.startswith("SKIP") for line in out.splitlines()) == 9

    code, checks = await doctor_json(tmp_path, config)
    assert code == 2 and checks["config"]["status"] == "fail"
    assert {c["status"] for name, c in checks.items() if name != "config"} == {"skip"}


async def test_doctor_fails_a_damaged_session_file_and_names_it(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "damaged.duckdb"
    build_session(session, events=30_000)
    damage_events(session)
    config = write_config(tmp_path, sim.base_url, session)
    code, checks = await doctor_json(tmp_path, config)
    assert code == 1
    check = checks["session file"]
    assert check["status"] == "fail" and str(session) in check["detail"] and "DAMAGED" in check["detail"]
    assert "cockpit restore" in check["fix"]


async def test_doctor_fails_a_file_that_is_not_a_session(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "notes.duckdb"
    session.write_bytes(b"this is not a database\n" * 100)
    config = write_config(tmp_path, sim.base_url, session)
    code, checks = await doctor_json(tmp_path, config)
    assert code == 1
    check = checks["session file"]
    assert check["status"] == "fail" and str(session) in check["detail"]


async def test_doctor_fails_backups_when_there_are_none(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "unsaved.duckdb"
    build_session(session, backup=False)
    config = write_config(tmp_path, sim.base_url, session)
    code, out, _ = await doctor(tmp_path, config)
    assert code == 1
    assert [line.split()[0] for line in out.splitlines() if line.startswith("FAIL")] == ["FAIL"]
    assert "FAIL  backups" in out and f"fix: take one now: `cockpit backup --config {config}`" in out


async def test_doctor_with_a_running_engine_skips_verify_and_reports_the_kill_switch(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "live.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        (tmp_path / "kill_switch.flag").touch()
        await engine.wait_for("killswitch.engaged")
        code, checks = await doctor_json(tmp_path, config)
    finally:
        assert await engine.finish() == 0
    assert code == 1
    assert checks["session file"]["ok"] and "in use by the running engine" in checks["session file"]["detail"]
    kill = checks["kill switch"]
    assert kill["status"] == "fail" and "kill_switch.flag exists" in kill["detail"]
    assert "ENGAGED in the running engine" in kill["detail"] and "kill-switch off" in kill["fix"]


async def test_doctor_says_the_account_kill_switch_is_engaged_when_no_engine_runs(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "friday.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        code, out, err = await cockpit(tmp_path, "ctl", "--config", str(config), "kill-switch", "on")
        assert code == 0, err
        await engine.wait_for("killswitch.engaged")
    finally:
        assert await engine.finish() == 0
    session.unlink()  # a new session file next time: the account still remembers
    code, checks = await doctor_json(tmp_path, config)
    kill = checks["kill switch"]
    assert kill["status"] == "fail" and "ENGAGED on this account since" in kill["detail"]
    assert "the next engine starts with it engaged" in kill["detail"] and "kill-switch off" in kill["fix"]


async def test_doctor_reports_the_accounts_position_mode_one_way_or_hedge(
    sim: SimServer, tmp_path: Path
) -> None:
    from cockpit.sim.client import SignedClient
    from tests.conftest import TEST_KEY

    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        answer = await client.request("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "true"})
    assert answer.get("code") == 200, answer
    config = write_config(tmp_path, sim.base_url, tmp_path / "hedge.duckdb")
    code, checks = await doctor_json(tmp_path, config)
    mode = checks["position mode"]
    assert mode["status"] == "ok" and "hedge" in mode["detail"] and "supported" in mode["detail"], mode

    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        await client.request("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"})
    code, checks = await doctor_json(tmp_path, config)
    assert checks["position mode"]["status"] == "ok" and "one-way" in checks["position mode"]["detail"]
