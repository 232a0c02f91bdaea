"""`cockpit dlq` as an operator uses it: dead letters made by a real engine (`cockpit run --headless`) whose
flatten the simulator rejects, handled through the engine's control socket, then offline on the file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from cockpit.sim.server import SimServer
from cockpit.store import SessionStore
from tests.test_cli_engine import HeadlessEngine, cli_env, write_config
from tests.test_engine import trade
from tests.waiting import wait_until


async def cockpit(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=cli_env(tmp_path),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def dlq(tmp_path: Path, config: Path, *args: str) -> tuple[int, str, str]:
    return await cockpit(tmp_path, "dlq", "--config", str(config), *args)


async def dlq_list(tmp_path: Path, config: Path, status: str = "open") -> list[dict[str, Any]]:
    code, out, err = await dlq(tmp_path, config, "list", "--status", status, "--json")
    assert code == 0, err
    letters: list[dict[str, Any]] = orjson.loads(out)
    return letters


async def test_dlq_through_the_running_engine_then_offline_on_the_file(
    sim: SimServer, tmp_path: Path
) -> None:
    session = tmp_path / "dlq.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
        await engine.wait_for("position.changed")
        await sim.inject({"kind": "reject_orders", "count": 10, "code": -2019})
        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "flatten", "BTCUSDT", "--yes")
        assert code == 1 and orjson.loads(out)["verified"] is False

        letters = await dlq_list(tmp_path, config)
        assert len(letters) >= 2
        first, second = letters[0]["id"], letters[1]["id"]
        assert {(x["op"], x["error_class"], x["error_type"], x["status"]) for x in letters} == {
            ("create_order", "permanent", "InsufficientFunds", "open")
        }
        assert letters[0]["params"]["symbol"] == "BTC/USDT:USDT" and letters[0]["params"]["reduce_only"]

        code, out, _ = await dlq(tmp_path, config, "list")
        assert code == 0
        header, *rows = out.splitlines()
        assert header.split() == ["ID", "AGE", "OP", "CLASS", "ERROR", "REASON", "ATTEMPTS", "STATUS"]
        assert len(rows) == len(letters) and "create_order" in rows[0] and "InsufficientFunds" in rows[0]

        code, out, _ = await dlq(tmp_path, config, "stats")
        assert code == 0 and f"total:         {len(letters)}" in out
        assert f"open by op:    create_order {len(letters)}" in out and "Margin is insufficient" in out

        code, out, _ = await dlq(tmp_path, config, "remove", str(first))
        assert code == 0 and f"dead letter {first} marked removed (through the running engine)" in out
        assert [x["id"] for x in await dlq_list(tmp_path, config, "removed")] == [first]

        code, out, _ = await dlq(tmp_path, config, "cleanup", "--older-than", "1")
        assert code == 0 and "deleted 0 dead letter(s) older than 1 days" in out

        sim.clear_faults()
        code, _, err = await dlq(tmp_path, config, "retry", str(second))
        assert code == 2 and "--yes" in err  # a script cannot send an order without saying so
        assert sim.state()["positions"] != []
        code, out, err = await dlq(tmp_path, config, "retry", str(second), "--yes")
        assert code == 0, err
        assert f"dead letter {second} retried: order sent" in out
        await wait_until(lambda: sim.state()["positions"] == [], 10, "the position closed at the exchange")
        assert [x["id"] for x in await dlq_list(tmp_path, config, "retried")] == [second]
    finally:
        assert await engine.finish() == 0
    assert any(
        e["kind"] == "operator.action" and e["payload"].get("action") == "dlq.retry" for e in engine.events
    )

    everything = await dlq_list(tmp_path, config, "all")
    assert {x["id"]: x["status"] for x in everything if x["status"] != "open"} == {
        first: "removed",
        second: "retried",
    }
    third = next(x["id"] for x in everything if x["status"] == "open")

    code, out, err = await dlq(tmp_path, config, "retry", str(third), "--yes")
    assert code == 1 and "retry needs the running engine (it sends an order)" in err
    assert "cockpit run --config" in err and "Traceback" not in err

    code, out, _ = await dlq(tmp_path, config, "remove", str(third))
    assert code == 0 and f"dead letter {third} marked removed (in {session})" in out
    code, out, _ = await dlq(tmp_path, config, "stats")
    assert code == 0 and "removed 2" in out and "retried 1" in out

    code, out, _ = await dlq(tmp_path, config, "cleanup", "--older-than", "0")
    assert code == 0 and f"deleted {len(everything)} dead letter(s)" in out
    code, out, _ = await dlq(tmp_path, config, "list", "--status", "all")
    assert code == 0 and out.strip() == "no dead letters (any status)"
    with SessionStore.open(session, create=False) as store:
        assert store.dead_letters() == []


async def test_dlq_refuses_bad_input_with_exit_2(sim: SimServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim.base_url, tmp_path / "none.duckdb")
    code, _, err = await dlq(tmp_path, config, "list", "--status", "pending")
    assert code == 2 and "unknown status 'pending'" in err and "open, retried, removed, all" in err
    code, _, err = await dlq(tmp_path, config, "cleanup", "--older-than", "-1")
    assert code == 2 and "negative" in err
    code, _, err = await dlq(tmp_path, config, "list")
    assert code == 2 and "no session file" in err and "Traceback" not in err
    assert not (tmp_path / "none.duckdb").exists(), "listing never creates a session file"
