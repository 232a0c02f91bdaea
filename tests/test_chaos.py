"""Chaos test (issue 12, "Done when"): every fault kind of the simulator on a scripted timeline, with the demo
trader active on the account, against a real engine writing a real session file — and no false alarm.

The engine runs in-process through `Runtime`, the same object `cockpit run --headless` runs (control socket,
session-file check, live pointer), because the cadences must be shortened to keep this to a few minutes and
`cockpit run` takes them from nowhere but `EngineOptions`; in-process also lets the test wait on the live
events while the session file — read after the engine stopped — stays the truth every assertion is made on.
The simulator runs in the same process; faults are injected over its HTTP control API, as an operator would.

Cadences: the clock is checked every second (15 s in production) so that it runs inside every 429, ban and
maintenance window — the false-clock-drift path is exercised; the account is polled every second and
reconciled every 15 s (10 s / 60 s); feed backoff is 1/2/4 s (2/4/8 s); everything else is the default.
The engine follows four of the simulator's five symbols: the demo trader also trades BNB, which cockpit does
not follow, as another strategy on a real account would.

The schedule takes about 2.5 minutes of wall time on a 2-core machine (145 s measured).
`pytest tests/test_chaos.py -s` prints the per-fault table; the figures are also written as JSON to
`chaos.json` in the test's tmp_path (and to $COCKPIT_CHAOS_JSON when set).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from cockpit.analytics import build_report, open_for_reading
from cockpit.config.schema import TargetConfig
from cockpit.config.secrets import Credentials
from cockpit.config.settings import ExchangeConfig, SessionConfig, default_config
from cockpit.core.domain import Event
from cockpit.core.incidents import Incident
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.notify.router import STREAM_HOLD_S
from cockpit.sim.server import SimServer
from tests.chaos import FaultRun, ScheduledFault, analyse, render_table, schedule
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.notify_servers import Webhook
from tests.waiting import wait_until

FOLLOWED = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT")  # not BNB
STALE_AFTER_S = 2.0
CHAOS_OPTIONS = dict(
    mode="live",
    account_poll_s=1.0,
    reconcile_every_s=15.0,
    clock_every_s=1.0,
    feed_backoff=(1.0, 2.0, 4.0),
)
LEAD_IN_S = 5.0  # quiet time after startup, before the first fault
GAP_S = 5.0  # quiet time after each fault's window


def chaos_spec(base_url: str, session: Path, exchange_id: str = "binanceusdm") -> RunSpec:
    config = default_config()
    config = replace(
        config,
        exchange=ExchangeConfig(id=exchange_id, base_url=base_url),
        session=SessionConfig(path=session, dir=session.parent),
        feeds=replace(config.feeds, stale_after_s=STALE_AFTER_S, symbols=FOLLOWED),
        # every incident is told to the team at once (no grace): one message each, never one per event
        notify=replace(config.notify, grace_s=0.0, targets={"team": TargetConfig(rate_per_hour=3600)}),
    )
    return RunSpec(
        config=config,
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session,
        options=EngineOptions(**CHAOS_OPTIONS),  # type: ignore[arg-type]
    )


async def until(target: float) -> None:
    """Sleep until wall-clock `target`: the schedule is a timeline."""
    await asyncio.sleep(max(0.0, target - time.time()))


async def listed(http: aiohttp.ClientSession, base_url: str, kind: str) -> bool:
    async with http.get(f"{base_url}/_sim/faults") as resp:
        body = await resp.json()
    return any(f["kind"] == kind for f in body["faults"])


async def run_fault(http: aiohttp.ClientSession, base_url: str, fault: ScheduledFault) -> FaultRun:
    injected_at = time.time()
    async with http.post(f"{base_url}/_sim/faults", json=fault.spec) as resp:
        assert resp.status == 200, await resp.text()
    run = FaultRun(fault, injected_at)
    end = injected_at + fault.hold_s
    if fault.until_consumed:  # a counted fault ends when it is used up (bounded by hold_s)
        while time.time() < end and await listed(http, base_url, fault.spec["kind"]):  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # polling the simulator's control API
        end = min(end, time.time())
    await until(end)
    if fault.clear_at_end:
        async with http.delete(f"{base_url}/_sim/faults") as resp:
            assert resp.status == 200
    run.ended_at = time.time()
    run.window_end = run.ended_at + fault.grace_s
    await until(run.window_end)
    return run


def stored_events(session: Path) -> list[Event]:
    with open_for_reading(session) as readable:
        rows = readable.rows("SELECT seq, ts, kind, severity, source, payload FROM events ORDER BY seq")
    return [
        Event(seq, ts, kind, severity, source, orjson.loads(payload))
        for seq, ts, kind, severity, source, payload in rows
    ]


@pytest.mark.timeout(420)
@pytest.mark.parametrize("exchange", ["binance", "bybit"])
async def test_chaos_schedule_every_fault_detected_and_no_false_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: str
) -> None:
    started = time.monotonic()
    hook = await Webhook().start()  # the team's notifications arrive here, over HTTP, through apprise
    monkeypatch.setenv("COCKPIT_NOTIFY_TEAM", hook.url)
    sim = SimServer(
        api_key=TEST_KEY,
        api_secret=TEST_SECRET,
        seed=7,
        activity=True,  # the demo trader trades on the account throughout
        tick_interval=0.1,
        trader_pause_s=(1.0, 3.0),
        exchange=exchange,
    )
    await sim.start()
    session = tmp_path / "chaos.duckdb"
    runtime = Runtime(chaos_spec(sim.base_url, session, "bybit" if exchange == "bybit" else "binanceusdm"))
    live: list[Event] = []
    runtime.add_subscriber(live.append)
    runs: list[FaultRun] = []
    try:
        engine = await runtime.start()
        await wait_until(lambda: any(e.kind == "reconcile.done" for e in live), 20, "the startup reconcile")
        await wait_until(
            lambda: engine.state.health_of("feed").ok and engine.state.health_of("user_stream").ok,
            10,
            "both feeds up",
        )
        t0 = time.time()
        await until(t0 + LEAD_IN_S)
        async with aiohttp.ClientSession() as http:
            for fault in schedule(STALE_AFTER_S):
                runs.append(await run_fault(http, sim.base_url, fault))
                await until(time.time() + GAP_S)
        trades_on_account = sim.state()["trades"]
        partial_orders = [  # what the simulator did with the partial_fill fault, for the diagnosis
            {"symbol": o.symbol, "client_order_id": o.client_order_id, "type": o.type, "status": o.status}
            | {"qty": str(o.orig_qty), "executed": str(o.executed_qty), "at": o.time / 1000 - t0}
            for o in sim.account.orders.values()
            if o.starved
        ]
        notifier = runtime.notifier
        assert notifier is not None
    finally:
        await runtime.stop()
        await sim.stop()
        await hook.stop()
    incidents = notifier.builder.incidents  # the engine's own, as its messages number them (all, at stop)

    events = stored_events(session)  # the file is the truth
    report = build_report(session)
    analysis = analyse(runs, events, report, t0)
    wall_s = round(time.monotonic() - started, 1)
    figures = {
        "wall_s": wall_s,
        "trades_on_account": trades_on_account,
        "sim_partial_orders": partial_orders,
        "options": {**CHAOS_OPTIONS, "stale_after_s": STALE_AFTER_S, "followed": FOLLOWED},
        "faults": analysis.rows,
        **analysis.figures,
        "failures": analysis.failures,
    }
    told = notified(hook, incidents, runs)
    figures["notifications"] = told
    out = orjson.dumps(figures, option=orjson.OPT_INDENT_2, default=str)
    (tmp_path / "chaos.json").write_bytes(out)
    if os.environ.get("COCKPIT_CHAOS_JSON"):
        Path(os.environ["COCKPIT_CHAOS_JSON"]).write_bytes(out)
    print()
    print(render_table(analysis.rows))
    print(
        f"wall {wall_s} s; {len(events)} events; {analysis.figures['incidents']} incidents "
        f"({analysis.figures['incidents_outside_windows']} outside every window); "
        f"{analysis.figures['critical_outside_windows']} critical events outside every window; "
        f"kill switch: {analysis.figures['kill_switch'] or 'never'}"
    )
    p50, p99 = told["fault_to_delivered_p50_s"], told["fault_to_delivered_p99_s"]
    print(
        f"notifications: {told['opened']} opened for {told['incidents']} incidents, "
        f"{told['messages']} in all; fault → delivered p50 {p50} s, p99 {p99} s"
    )
    assert not analysis.failures, f"{len(analysis.failures)} problem(s):\n" + "\n".join(analysis.failures)
    assert told["duplicates"] == [], f"incidents told more than once: {told['duplicates']}"
    assert told["untold"] == [], f"incidents never told: {told['untold']}"
    assert told["blips_told"] == [], f"stream blips told though held: {told['blips_told']}"
    assert told["unknown"] == [], f"told of incidents merged away after: {told['unknown']}"


def notified(hook: Webhook, incidents: list[Incident], runs: list[FaultRun]) -> dict[str, Any]:
    """What the team heard: one opening per incident (none twice, none missed), and how soon after each fault
    its first message was delivered (received by the local server)."""
    opened: dict[int, float] = {}
    duplicates: list[int] = []
    for received in hook.got:
        found = re.match(r"^\[cockpit (?:WARNING|CRITICAL)\] #(\d+) ", received.title)
        if found:
            number = int(found[1])
            if number in opened:
                duplicates.append(number)
            opened.setdefault(number, received.at)

    # a stream's incident is held STREAM_HOLD_S (maintenance may absorb it): one over well before it is not
    # told, one open well past it must be; one ending about then may go either way (events take a moment to
    # reach the router)
    def stream_for(i: Incident) -> float | None:
        return i.duration(i.last) if i.cause.startswith("feed:") else None

    def shorter(i: Incident, limit: float) -> bool:
        lasted = stream_for(i)
        return lasted is not None and lasted < limit

    expected = [i for i in incidents if i.severity != "info" and not shorter(i, STREAM_HOLD_S + 2)]
    untold = [f"#{i.number} {i.title}" for i in expected if i.number not in opened]
    held = [i for i in incidents if shorter(i, STREAM_HOLD_S - 2)]
    blips_told = [f"#{i.number} {i.title}" for i in held if i.number in opened]
    unknown = sorted(set(opened) - {i.number for i in incidents})  # e.g. a stream's told, then merged
    delays = []
    for run in runs:
        after = [at for at in opened.values() if run.injected_at <= at <= run.window_end]
        if after:
            delays.append(min(after) - run.injected_at)
    delays.sort()

    def pct(p: float) -> float | None:
        return round(delays[min(len(delays) - 1, int(p * len(delays)))], 2) if delays else None

    return {
        "incidents": len(expected),
        "held_stream_blips": len(held),
        "opened": len(opened),
        "blips_told": blips_told,
        "unknown": unknown,
        "messages": len(hook.got),
        "duplicates": duplicates,
        "untold": untold,
        "faults_told": len(delays),
        "fault_to_delivered_s": [round(d, 2) for d in delays],
        "fault_to_delivered_p50_s": pct(0.5),
        "fault_to_delivered_p99_s": pct(0.99),
    }
