"""The engine as an operator runs it: `cockpit run --headless`, `cockpit ctl` from another process, kill -9,
and bad session files."""

from __future__ import annotations

import asyncio
import getpass
import os
import random
import signal
import stat
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from cockpit.core.state import fold
from cockpit.engine.control import socket_path_for
from cockpit.sim.server import SimServer
from cockpit.store import SessionStore, verify
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.test_engine import trade
from tests.waiting import wait_until


def write_config(tmp_path: Path, base_url: str, session: Path, exchange: str = "binanceusdm") -> Path:
    config = tmp_path / "cockpit.toml"
    config.write_text(
        f'[exchange]\nid = "{exchange}"\nbase_url = "{base_url}"\n\n[session]\npath = "{session}"\n\n'
        "[feeds]\nstale_after_s = 2.0\n"
    )
    return config


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "COCKPIT_API_KEY": TEST_KEY,
        "COCKPIT_API_SECRET": TEST_SECRET,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONUNBUFFERED": "1",
    }


class HeadlessEngine:
    """`cockpit run --headless --json` in a subprocess, its events collected as they are printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, config: Path, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
    ) -> HeadlessEngine:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cockpit", "run", "--config", str(config), "--headless", "--json", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env or cli_env(tmp_path),
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            if line.startswith(b"{"):
                self.events.append(orjson.loads(line))

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]

    async def wait_for(self, kind: str, within: float = 20.0) -> dict[str, Any]:
        await wait_until(
            lambda: kind in self.kinds() or self.proc.returncode is not None, within, f"{kind} printed"
        )
        assert kind in self.kinds(), (
            f"engine exited {self.proc.returncode} before {kind}: {await self.errors()}"
        )
        return next(e for e in self.events if e["kind"] == kind)

    async def errors(self) -> str:
        if self.proc.returncode is not None and self.proc.stderr is not None:
            self.stderr += await self.proc.stderr.read()
        return self.stderr.decode(errors="replace")[-2000:]

    async def finish(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 20)
        await self._reader
        return code


async def cockpit(tmp_path: Path, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=cli_env(tmp_path),
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_headless_json_prints_each_event_once_committed(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "run.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    await engine.wait_for("reconcile.done")
    await trade(sim, symbol="ETHUSDT", side="BUY", quantity="0.2")
    fill = await engine.wait_for("order.filled")
    assert await engine.finish() == 0
    assert engine.kinds()[0] == "session.started" and engine.kinds()[-1] == "session.stopped"
    assert all(set(e) == {"seq", "ts", "kind", "severity", "source", "payload"} for e in engine.events)
    assert [e["seq"] for e in engine.events] == list(range(1, len(engine.events) + 1))
    assert fill["payload"]["symbol"] == "ETH/USDT:USDT" and fill["payload"]["last_qty"] == "0.2"
    report = verify(session)
    assert report.ok and report.last_seq == engine.events[-1]["seq"]


async def test_ctl_controls_a_running_engine_from_another_process(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "ctl.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.01")
        await engine.wait_for("position.changed")
        sock = socket_path_for(session)
        assert sock.parent == tmp_path / ".cockpit-control"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600  # owner only, in an owner-only folder
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700

        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "status", "--json")
        assert code == 0
        status = orjson.loads(out)
        assert [(p["symbol"], p["side"], p["qty"]) for p in status["positions"]] == [
            ("BTC/USDT:USDT", "short", "0.01")
        ]
        assert set(status["health"]) == {"exchange", "feed", "user_stream", "database", "clock"}
        assert status["kill_switch"]["engaged"] is False
        assert status["equity"] is not None and status["rate_limit"]["limit"] == 2400
        assert "drawdown_pct" in status

        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "status")
        assert code == 0 and "BTC/USDT:USDT" in out and "health:" in out

        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "kill-switch", "on")
        assert code == 0 and orjson.loads(out)["engaged"] is True
        code, _, err = await cockpit(tmp_path, "ctl", "--config", str(config), "kill-switch", "off")
        assert code == 2 and "--yes" in err  # a release needs a confirmation a stray key cannot give
        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "kill-switch", "off", "--yes")
        assert code == 0 and orjson.loads(out)["engaged"] is False

        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "reconcile")
        trigger = orjson.loads(out)["trigger"]  # who asked: the socket's peer, by user, tool and pid
        assert code == 0 and trigger.startswith(
            f"operator:{getpass.getuser()} via ctl (uid {os.getuid()}, pid "
        )

        code, _, err = await cockpit(tmp_path, "ctl", "--config", str(config), "flatten", "BTCUSDT")
        assert code == 2 and "--yes" in err
        assert sim.state()["positions"] != []
        code, out, _ = await cockpit(tmp_path, "ctl", "--config", str(config), "flatten", "BTCUSDT", "--yes")
        assert code == 0 and orjson.loads(out)["verified"] is True
        assert sim.state()["positions"] == []
    finally:
        assert await engine.finish() == 0
    kinds = engine.kinds()
    assert kinds.count("operator.action") == 4  # the two refused ones never reached the engine
    assert not sock.exists()


async def test_ctl_lists_and_cancels_open_orders_from_another_process(sim: SimServer, tmp_path: Path) -> None:
    from tests.test_orders import open_at_exchange, rest_order

    session = tmp_path / "orders.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    ctl = ("ctl", "--config", str(config))
    try:
        await engine.wait_for("reconcile.done")
        await rest_order(sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-a")
        await rest_order(sim, "ETHUSDT", "SELL", "0.5", Decimal("9000"), "strat-b")
        await wait_until(lambda: engine.kinds().count("order.accepted") == 2, 15, "both orders accepted")
        code, out, _ = await cockpit(tmp_path, *ctl, "orders")
        assert code == 0 and out.startswith("2 open orders")
        assert "BTC/USDT:USDT" in out and "@ 30000.0" in out and "strat-b" in out and "external" in out
        code, out, _ = await cockpit(tmp_path, *ctl, "orders", "--json")
        assert [o["client_order_id"] for o in orjson.loads(out)["orders"]] == ["strat-a", "strat-b"]

        code, _, err = await cockpit(tmp_path, *ctl, "cancel")
        assert code == 2 and "exactly one of ORDER, --symbol SYMBOL or --all" in err
        code, _, err = await cockpit(tmp_path, *ctl, "cancel", "strat-a")
        assert code == 2 and "--yes" in err  # not a terminal: the y/N prompt cannot be answered
        code, _, err = await cockpit(tmp_path, *ctl, "cancel", "nope", "--yes")
        assert code != 0 and "no open order 'nope'" in err and "strat-a" in err
        code, out, _ = await cockpit(tmp_path, *ctl, "cancel", "strat-a", "--yes")
        assert code == 0 and orjson.loads(out)["canceled"] == ["strat-a"]
        assert await open_at_exchange(sim) == {"strat-b"}
        code, out, _ = await cockpit(tmp_path, *ctl, "cancel", "--all", "--yes")
        result = orjson.loads(out)
        assert code == 0 and result["verified"] is True and result["canceled"] == ["strat-b"]
        assert await open_at_exchange(sim) == set()
    finally:
        assert await engine.finish() == 0
    actions = [e["payload"] for e in engine.events if e["kind"] == "operator.action"]
    assert [(a["action"], a.get("order")) for a in actions] == [("cancel", "strat-a"), ("cancel", None)]


async def test_ctl_says_when_no_engine_is_running(sim: SimServer, tmp_path: Path) -> None:
    config = write_config(tmp_path, sim.base_url, tmp_path / "idle.duckdb")
    code, _, err = await cockpit(tmp_path, "ctl", "--config", str(config), "status")
    assert code == 1 and "no engine is running" in err and "cockpit run" in err
    assert "Traceback" not in err


async def test_report_sessions_and_export_read_the_session_the_engine_is_writing(
    sim: SimServer, tmp_path: Path
) -> None:
    """The engine holds its file; the three readers ask it for a verified read copy, show the live figures and
    delete the copy: no backup is taken, no read copy is left behind, nothing is recorded as an operator's."""
    session = tmp_path / "live.duckdb"
    reads = tmp_path / ".reads"
    config = write_config(tmp_path, sim.base_url, session)
    (tmp_path / "old.duckdb").write_text("not a session\n")  # listed beside it, unreadable
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        await trade(sim, symbol="ETHUSDT", side="BUY", quantity="0.2")
        await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.2")
        await wait_until(lambda: engine.kinds().count("order.filled") == 2, what="2 fills printed")
        filled = max(e["seq"] for e in engine.events if e["kind"] == "order.filled")
        realized = sum((t.realized_pnl for t in sim.account.trades), Decimal(0))

        code, out, err = await cockpit(tmp_path, "report", str(session), "--format", "json")
        assert code == 0, err
        report = orjson.loads(out)
        assert report["file"] == str(session) and report["live"] is True
        assert report["fills"] == 2 and report["events"] >= filled and report["exchange"] == "binanceusdm"
        assert Decimal(report["pnl"]["realized"]) == realized and realized != 0  # exact; written normalized
        read_from = Path(report["read_from"])
        assert read_from.parent == reads and read_from.name.startswith("live-")
        assert not read_from.exists()  # deleted once read
        assert "live.duckdb is live" in err and "verified copy" in err and str(read_from) in err

        code, out, err = await cockpit(tmp_path, "report", str(session), "--format", "md")
        assert code == 0 and out.startswith("## Incident Report: live.duckdb"), err

        code, out, err = await cockpit(tmp_path, "sessions", "--config", str(config), "--json")
        assert code == 0, err
        rows = {Path(r["path"]).name: r for r in orjson.loads(out)}
        assert set(rows) == {"live.duckdb", "old.duckdb"}
        live = rows["live.duckdb"]
        assert live["live"] is True and live["readable"] is True and live["error"] is None
        assert live["fills"] == 2 and live["events"] >= filled and live["mode"] == "live"
        assert live["realized_pnl"] == str(realized)
        assert Path(live["read_from"]).parent == reads and not Path(live["read_from"]).exists()
        assert rows["old.duckdb"]["live"] is False and "not a DuckDB file" in rows["old.duckdb"]["error"]

        code, out, err = await cockpit(tmp_path, "sessions", "--config", str(config))
        assert code == 0 and "live.duckdb (live)" in out and f"session files in {tmp_path}" in out, err

        parquet = tmp_path / "export"
        code, out, err = await cockpit(tmp_path, "export", str(session), "--parquet", str(parquet))
        assert code == 0 and "events:" in out, err
        exported = duckdb.sql(f"SELECT kind FROM '{parquet / 'events.parquet'}' ORDER BY seq").fetchall()
        assert len(exported) >= filled and [k for (k,) in exported].count("order.filled") == 2
        assert engine.proc.returncode is None  # the engine never stopped or lost its file
        assert list(reads.iterdir()) == []  # five reads, every copy deleted
        assert not (tmp_path / "backups").exists()  # none of them a backup (the hourly one is an hour away)
        code, out, err = await cockpit(tmp_path, "restore", "--config", str(config), "--list")
        assert code == 0 and "no backups of live.duckdb yet" in out, err
    finally:
        assert await engine.finish() == 0
    assert "db.backup" not in engine.kinds()
    assert [e for e in engine.events if e["kind"] == "operator.action"] == []  # a read is no operator action


async def test_report_on_a_file_another_process_holds_names_it_when_no_engine_answers(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    SessionStore.open(path).close()
    socket_path_for(path).parent.mkdir(mode=0o700)
    socket_path_for(path).touch()  # a socket file left behind, nothing listening
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ok', flush=True); sys.stdin.read()",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"ok"
        code, out, err = await cockpit(tmp_path, "report", str(path), "--format", "json")
        assert code == 2 and out == ""
        assert f"session file {path} is in use by process {holder.pid}" in err
        assert "asking its engine for a consistent copy failed: no engine is running" in err
        assert "Traceback" not in err
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        await holder.wait()


async def test_kill_9_at_random_moments_loses_nothing_and_restart_reconciles(tmp_path: Path) -> None:
    """kill -9 while a strategy trades on the account; every restart restores and reconciles."""
    seed = int(os.environ.get("COCKPIT_CRASH_SEED", time.time()))
    rng = random.Random(seed)
    sim = SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, seed=seed % 1000, activity=True,
                    tick_interval=0.05, trader_pause_s=(0.05, 0.3))  # fmt: skip
    await sim.start()
    session = tmp_path / "crash.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    printed: list[dict[str, Any]] = []
    restart_seconds: list[float] = []
    try:
        for _ in range(6):
            started = time.monotonic()
            engine = await HeadlessEngine.start(config, tmp_path)
            await engine.wait_for("reconcile.done")
            restart_seconds.append(time.monotonic() - started)
            await asyncio.sleep(rng.uniform(0.1, 1.5))
            engine.proc.send_signal(signal.SIGKILL)
            assert await engine.finish(signal.SIGKILL) == -signal.SIGKILL
            printed.extend(engine.events)
        await sim.stop_activity()
        for symbol in sim.specs:  # resting limit orders would keep filling after the strategy stopped
            sim.account.cancel_all(symbol)
        final = await HeadlessEngine.start(config, tmp_path)
        await final.wait_for("reconcile.done")
        assert await final.finish() == 0
        printed.extend(final.events)
    finally:
        await sim.stop()

    report = verify(session)
    assert report.ok, f"seed {seed}: {report.render()}"
    with SessionStore.open(session) as store:
        stored = store.read_events()
    by_seq = {e.seq: e for e in stored}
    for event in printed:  # everything the engine acknowledged (printed after commit) is on disk
        on_disk = by_seq.get(event["seq"])
        assert on_disk is not None and on_disk.kind == event["kind"], f"seed {seed}: lost {event}"
        assert on_disk.payload == event["payload"], f"seed {seed}: changed {event}"
    fills = [e.payload["trade_id"] for e in stored if e.kind in ("order.filled", "order.partially_filled")]
    # every trade made once the session had started is a fill on disk, exactly once; a trade from the moments
    # while the engine was starting may be one too (in its adopted position and its first reconcile), and
    # every fill on disk is a trade of the exchange
    began_ms = stored[0].ts * 1000
    trades = [t for t in sim.account.trades if t.time >= began_ms]
    sim_trades = [str(t.trade_id) for t in trades]
    assert len(sim_trades) > 5, f"seed {seed}: the strategy hardly traded"
    missing = sorted(set(sim_trades) - set(fills))
    detail = {
        "missing": [(t.trade_id, t.symbol, t.time) for t in trades if str(t.trade_id) in missing],
        "duplicated": sorted({t for t in fills if fills.count(t) > 1}),
        "invented": sorted(set(fills) - {str(t.trade_id) for t in sim.account.trades}),
        "reconciles": [(e.seq, e.payload["trigger"], e.payload.get("through_ms")) for e in stored
                       if e.kind == "reconcile.done"],
    }  # fmt: skip
    assert not missing and not detail["duplicated"] and not detail["invented"], (
        f"seed {seed}: fills on disk differ from the exchange's: {detail}"
    )
    state = fold(stored)
    exchange = {p["symbol"]: p["qty"] for p in sim.state()["positions"]}
    assert {
        s.replace("/USDT:USDT", "USDT"): format(p.qty.normalize(), "f") for s, p in state.positions.items()
    } == exchange
    assert all(not p.ghost for p in state.positions.values()), f"seed {seed}: a fill was mistaken for a ghost"
    print(f"seed {seed}: restart-to-reconciled seconds {[round(s, 2) for s in restart_seconds]}")


async def test_foreign_duckdb_file_is_refused_untouched(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(session))
    con.execute("CREATE TABLE prices (x INTEGER)")
    con.close()
    before = session.read_bytes()
    config = write_config(tmp_path, sim.base_url, session)
    code, _, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--duration", "1")
    assert code == 2 and str(session) in err and "Traceback" not in err
    assert session.read_bytes() == before


async def test_a_file_that_is_not_duckdb_is_refused_untouched(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "notes.duckdb"
    session.write_text("these are my notes, not a database\n")
    config = write_config(tmp_path, sim.base_url, session)
    code, _, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--duration", "1")
    assert code == 2 and str(session) in err and "Traceback" not in err
    assert session.read_text() == "these are my notes, not a database\n"


async def test_session_from_a_newer_schema_is_refused(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "future.duckdb"
    SessionStore.open(session).close()
    con = duckdb.connect(str(session))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    config = write_config(tmp_path, sim.base_url, session)
    code, _, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--duration", "1")
    assert code == 2 and "newer" in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["/proc/cockpit/session.duckdb", "/sys/session.duckdb"])
async def test_unwritable_session_path_is_named(sim: SimServer, tmp_path: Path, where: str) -> None:
    config = write_config(tmp_path, sim.base_url, Path(where))
    code, _, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--duration", "1")
    assert code == 2 and where.rsplit("/", 1)[0] in err and "Traceback" not in err
