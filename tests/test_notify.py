"""Notifications with real parts: the engine (`Runtime`, as `cockpit run` runs it) against the simulator over
real sockets, faults injected, messages delivered by apprise to a local HTTP server (`json://`) and a local
SMTP server (aiosmtpd, `mailto://`); a target that hangs or is down; `cockpit notify test`; `ctl ack`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cockpit.config.schema import NotifyConfig, TargetConfig
from cockpit.config.secrets import Credentials
from cockpit.core.commands import Acknowledge, Status
from cockpit.core.domain import Event
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.server import SimServer
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET, make_config
from tests.notify_servers import Hanging, Mailserver, Webhook
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def hook() -> AsyncIterator[Webhook]:
    server = await Webhook().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def mail() -> AsyncIterator[Mailserver]:
    server = await Mailserver().start()
    try:
        yield server
    finally:
        await server.stop()


def spec_for(sim: SimServer, tmp_path: Path, targets: dict[str, TargetConfig], **notify: Any) -> RunSpec:
    session = tmp_path / "session.duckdb"
    config = make_config(sim.base_url, session, clock_warn_ms=100, clock_kill_ms=300)
    config = replace(config, notify=replace(NotifyConfig(), targets=targets, **notify))
    return RunSpec(
        config=config,
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session,
        options=EngineOptions(**{"mode": "live", **FAST_OPTIONS}),  # type: ignore[arg-type]
        notify_retry_s=(0.2, 0.2),
        notify_settle_s=1.0,
        notify_stream_hold_s=1.0,  # no maintenance comes to absorb these streams' drops
    )


async def test_a_fault_reaches_the_webhook_and_the_email_once_with_its_cause_and_command(
    sim: SimServer, tmp_path: Path, hook: Webhook, mail: Mailserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCKPIT_NOTIFY_TEAM", hook.url)
    monkeypatch.setenv("COCKPIT_NOTIFY_PHONE", mail.url)
    targets = {"team": TargetConfig(), "phone": TargetConfig(min_severity="critical")}
    runtime = Runtime(spec_for(sim, tmp_path, targets, grace_s=1.0))
    live: list[Event] = []
    runtime.add_subscriber(live.append)
    engine = await runtime.start()
    try:
        await wait_until(lambda: engine.state.health_of("feed").ok, 15, "the market feed up")
        # a stream refused for 4 s: a warning the team hears once (not the critical-only phone), then resolved
        await sim.inject({"kind": "ws_drop", "refuse_s": 4})
        await wait_until(lambda: any("Stream" in t and "down" in t for t in hook.titles()), 15, "stream down")
        await wait_until(
            lambda: any(t.startswith("[cockpit resolved]") for t in hook.titles()), 20, "resolved"
        )
        opened = [r for r in hook.got if "down" in r.title and not r.title.startswith("[cockpit resolved]")]
        assert len(opened) == 1, hook.titles()  # however many streams and retries: one incident, one message
        assert "Cockpit already: reconnecting with backoff" in opened[0].body
        assert "Do: cockpit attach" in opened[0].body
        assert "cause feed:" in opened[0].body
        assert mail.got == []  # a stream back within seconds does not wake the critical-only phone

        # the clock 3 s off: critical (the kill switch engages) — the phone's email says what and what to do
        await sim.inject({"kind": "clock_skew", "ms": 3000})
        await wait_until(lambda: mail.got, 20, "the critical email")
        subjects = [m.title for m in mail.got]
        assert any(s.startswith("[cockpit CRITICAL]") and "Clock drift" in s for s in subjects), subjects
        clock = next(m for m in mail.got if "Clock drift" in m.title)
        assert "Cockpit already: offset measured against the exchange's clock" in clock.body
        assert "cockpit ctl ack" in clock.body
        await wait_until(lambda: engine.state.kill_switch.engaged, 10, "the kill switch")
        await wait_until(
            lambda: any("Kill switch engaged" in m.title for m in mail.got), 10, "kill switch mail"
        )
        kill = next(m for m in mail.got if "Kill switch engaged" in m.title)
        assert "cockpit ctl kill-switch off" in kill.body

        # acknowledged: recorded before it takes effect, and the engine names what it acknowledged
        result = await engine.control(Acknowledge(by="test"))
        assert result.acknowledged, result
        await wait_until(
            lambda: any(e.kind == "operator.action" and e.payload.get("action") == "ack" for e in live),
            5,
            "the acknowledgement recorded",
        )
        # nothing secret in what the engine recorded
        assert not any(hook.url in str(e.payload) or mail.url in str(e.payload) for e in live)
    finally:
        sim.clear_faults()
        await runtime.stop()
    assert hook.url.encode() not in (tmp_path / "session.duckdb").read_bytes()


async def test_a_target_that_hangs_or_is_down_never_blocks_the_engine_and_is_shown_in_health(
    sim: SimServer, tmp_path: Path, hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hanging = await Hanging().start()
    monkeypatch.setenv("COCKPIT_NOTIFY_TEAM", hook.url)
    monkeypatch.setenv("COCKPIT_NOTIFY_PAGER", hanging.url)
    targets = {"team": TargetConfig(), "pager": TargetConfig()}
    runtime = Runtime(spec_for(sim, tmp_path, targets, grace_s=0.0))
    live: list[Event] = []
    runtime.add_subscriber(live.append)
    engine = await runtime.start()
    try:
        assert runtime.notifier is not None
        runtime.notifier.couriers["pager"].timeout_s = 2.0  # apprise waits longer on its own
        await wait_until(lambda: engine.state.health_of("feed").ok, 15, "the market feed up")
        await sim.inject({"kind": "ws_drop", "refuse_s": 3})
        await wait_until(lambda: hook.got, 15, "the team's message")
        # while the pager's send hangs, the engine goes on: it answers and commits events
        seq = engine.state.seq
        status = await engine.control(Status(by="test"))
        assert status.seq >= seq
        await wait_until(lambda: engine.state.seq > seq + 5, 10, "events still committed")
        # after its retries the pager is failing: shown in Health, recorded, and told to the other target
        await wait_until(lambda: engine.state.health_of("notify").status == "failing", 30, "notify failing")

        def changed() -> list[Event]:
            return [e for e in live if e.kind == "health.changed" and e.payload.get("item") == "notify"]

        await wait_until(changed, 5, "health.changed notify delivered")  # folded at once, delivered at commit
        assert changed()[-1].severity == "warning"
        assert "pager" in changed()[-1].payload["message"]
        assert hanging.url not in str(changed()[-1].payload)  # the reason never carries the URL
        await wait_until(
            lambda: any("Notification target failing" in t for t in hook.titles()), 15, "the team told"
        )
        reported = await engine.control(Status(by="test"))  # what `cockpit ctl status` shows
        assert reported.health["notify"] == "failing" and "pager" in reported.health_detail["notify"]
        assert runtime.notifier.targets_status()["pager"][0] is False
        assert runtime.notifier.targets_status()["team"] == (True, 0)
    finally:
        sim.clear_faults()
        await runtime.stop()
        await hanging.stop()


async def test_a_configured_target_without_a_url_refuses_to_start_and_says_where_it_goes(
    sim: SimServer, tmp_path: Path
) -> None:
    runtime = Runtime(spec_for(sim, tmp_path, {"phone": TargetConfig()}))
    with pytest.raises(Exception) as info:
        await runtime.start()
    error: Any = info.value
    assert error.exit_code == 2
    assert "COCKPIT_NOTIFY_PHONE" in error.render() and "cockpit keys set notify:phone" in error.render()


def cockpit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cockpit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


async def test_notify_test_sends_to_each_target_and_says_which_failed(
    tmp_path: Path, hook: Webhook, mail: Mailserver
) -> None:
    import asyncio

    config = tmp_path / "cockpit.toml"
    config.write_text(
        "[notify.targets.team]\n[notify.targets.phone]\nmin_severity = 'critical'\n[notify.targets.dead]\n",
        encoding="utf-8",
    )
    env = {
        "COCKPIT_NOTIFY_TEAM": hook.url,
        "COCKPIT_NOTIFY_PHONE": mail.url,
        "COCKPIT_NOTIFY_DEAD": "json://127.0.0.1:9/notify",  # nothing listens on the discard port
    }
    started = time.time()
    done = await asyncio.to_thread(cockpit, "notify", "test", "--config", str(config), env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "team: sent" in done.stdout and "phone: sent" in done.stdout
    assert "dead: FAILED" in done.stdout
    assert "127.0.0.1:9" not in done.stdout + done.stderr  # the URL is never printed
    assert [r.title for r in hook.got] == ["[cockpit test] team"]
    assert [m.title for m in mail.got] == ["[cockpit test] phone"]
    assert "critical incidents and above" in mail.got[0].body
    assert hook.got[0].at >= started

    missing = await asyncio.to_thread(cockpit, "notify", "test", "--config", str(config), env={})
    assert missing.returncode == 2
    assert "cockpit keys set notify:team" in missing.stderr


async def test_the_engine_calls_its_heartbeat_url_while_it_runs(
    sim: SimServer, tmp_path: Path, hook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCKPIT_HEARTBEAT_URL", f"http://127.0.0.1:{hook.port}/ping")
    runtime = Runtime(spec_for(sim, tmp_path, {}))  # no target: the heartbeat alone
    engine = await runtime.start()
    try:
        assert runtime.notifier is not None
        notifier = runtime.notifier
        await wait_until(lambda: hook.pings and notifier.heartbeat_ok, 15, "the first heartbeat answered")
        assert engine.state.mode == "live"
    finally:
        await runtime.stop()
    count = len(hook.pings)
    assert hook.got == []  # a heartbeat is not a message
    assert count >= 1
