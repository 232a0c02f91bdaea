"""The watchdog: its conditions from readings (pure), and the real thing — an engine process killed with
`kill -9`, a `cockpit watchdog` process telling a local webhook, the restarted engine resolving it."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from cockpit.core.commands import StatusReport
from cockpit.sim.server import SimServer
from cockpit.watchdog.watch import Reading, Watch
from tests.notify_servers import Webhook
from tests.test_cli_engine import HeadlessEngine, cli_env, write_config
from tests.test_commands import STATUS
from tests.waiting import wait_until


def status(seq: int, market_ts: float | None) -> StatusReport:
    return replace(STATUS, seq=seq, market_data_ts=market_ts)


def test_the_watch_names_each_condition_once_and_when_it_ends() -> None:
    watch = Watch(silent_after_s=60)
    assert watch.read(Reading(0, status(1, 0))) == []
    changes = watch.read(Reading(10, error="cannot connect", recorded_running=True))  # killed
    assert [(c.change, c.incident.cause, c.incident.severity) for c in changes] == [
        ("opened", "engine:unreachable", "critical")
    ]
    assert [c.change for c in watch.read(Reading(20, error="x", recorded_running=True))] == ["updated"]
    assert [(c.change, c.incident.cause) for c in watch.read(Reading(30, status(5, 30)))] == [
        ("resolved", "engine:unreachable")
    ]
    # answering, but no event for a minute and the newest mark old: two criticals
    assert watch.read(Reading(60, status(5, 30))) == []
    found = {c.incident.cause for c in watch.read(Reading(95, status(5, 30)))}
    assert found == {"engine:silent", "engine:no_market_data"}
    # a clean stop: a warning only once it lasted silent_after_s
    assert {c.change for c in watch.read(Reading(100, error="no engine", recorded_running=False))} == {
        "resolved"
    }
    assert watch.read(Reading(130, error="no engine", recorded_running=False)) == []
    changes = watch.read(Reading(161, error="no engine", recorded_running=False))
    assert [(c.change, c.incident.cause, c.incident.severity) for c in changes] == [
        ("opened", "engine:stopped", "warning")
    ]


async def test_the_watchdog_tells_within_its_interval_after_the_engine_is_killed(
    sim: SimServer, tmp_path: Path
) -> None:
    hook = await Webhook().start()
    session = tmp_path / "watched.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    config.write_text(
        config.read_text() + "\n[watchdog]\nevery_s = 1.0\nsilent_after_s = 30.0\n\n[notify.targets.team]\n"
    )
    env = {**cli_env(tmp_path), "COCKPIT_NOTIFY_TEAM": hook.url}
    engine = await HeadlessEngine.start(config, tmp_path, env=env)
    watchdog = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", "watchdog", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        await engine.wait_for("reconcile.done")
        await asyncio.sleep(3)  # the watchdog has read the running engine (every second)
        assert hook.got == []  # a healthy engine: nothing said
        killed_at = time.time()
        engine.proc.send_signal(signal.SIGKILL)
        await engine.proc.wait()
        await wait_until(lambda: hook.got, 20, "the watchdog's message")
        told = hook.got[0]
        assert told.title.startswith("[cockpit CRITICAL] #1 Engine not answering"), told.title
        assert "systemctl status cockpit" in told.body
        print(f"kill -9 → watchdog message delivered in {told.at - killed_at:.2f} s")
        engine = await HeadlessEngine.start(config, tmp_path, env=env)
        await wait_until(
            lambda: any(r.title.startswith("[cockpit resolved] #1") for r in hook.got), 40, "resolved"
        )
    finally:
        watchdog.send_signal(signal.SIGTERM)
        await asyncio.wait_for(watchdog.wait(), 20)
        await engine.finish()
        await hook.stop()
    assert watchdog.returncode == 0
