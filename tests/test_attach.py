"""Attach: a cockpit over an engine that runs elsewhere (cockpit/engine/broadcast.py, cockpit/ui/attached.py).

The engine runs as a Runtime (with its control socket) or as `cockpit run --headless` in another process; the
cockpits attach over the real Unix socket and fold what it sends with the same `apply`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cockpit.config.secrets import Credentials
from cockpit.core.commands import KillSwitch, Status
from cockpit.core.errors import CockpitError
from cockpit.engine import broadcast
from cockpit.engine.control import ask, socket_path_for
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.server import SimServer
from cockpit.ui.attached import AttachedBackend, EngineUnreachable
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET, make_config
from tests.test_cli_engine import HeadlessEngine, write_config
from tests.test_engine import BTC, trade
from tests.waiting import wait_until


@pytest.fixture
async def runtime(sim: SimServer, tmp_path: Path) -> AsyncIterator[Runtime]:
    """An engine with its control socket, in this process, against the simulator."""
    session = tmp_path / "attach.duckdb"
    spec = RunSpec(
        config=make_config(sim.base_url, session),
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=session,
        options=EngineOptions(mode="live", **FAST_OPTIONS),  # type: ignore[arg-type]
    )
    running = Runtime(spec)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def attach() -> AsyncIterator[Callable[..., Any]]:
    cockpits: list[AttachedBackend] = []

    async def start(path: Path, **options: Any) -> AttachedBackend:
        cockpit = AttachedBackend(path, **options)
        cockpit.keep_seqs = True
        cockpits.append(cockpit)
        await cockpit.start()
        return cockpit

    yield start
    for cockpit in cockpits:
        await cockpit.stop()


def same_state(cockpit: AttachedBackend, runtime: Runtime) -> bool:
    """The cockpit holds the engine's State (when both are at the same seq: the engine folds before its
    store commits, a cockpit after)."""
    engine = runtime.engine
    assert engine is not None
    return cockpit.state.seq == engine.state.seq and cockpit.state == engine.state


async def test_two_attached_cockpits_hold_the_engines_state_while_it_trades(
    sim: SimServer, runtime: Runtime, attach: Callable[..., Any]
) -> None:
    assert runtime.control is not None
    first = await attach(runtime.control.path)
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.010")
    second = await attach(runtime.control.path)
    await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.004")
    await wait_until(lambda: BTC in first.state.positions, 20, "the position in the first cockpit")
    await wait_until(
        lambda: same_state(first, runtime) and same_state(second, runtime),
        20,
        "both cockpits at the engine's State",
    )
    assert str(first.state.positions[BTC].qty) == "0.006"
    assert second.snapshots == 1 and first.snapshots == 1  # each attached once, then events only
    seqs = first.seqs_seen
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), "events in order, each once"

    # an action from an attached cockpit is the engine's, recorded as asked by this user via the cockpit
    engaged = await first.act(KillSwitch(on=True, cause="from an attached cockpit", by="ui"))
    assert engaged.engaged
    await wait_until(lambda: second.state.kill_switch.engaged, 10, "the kill switch in the other cockpit")
    assert "via ui" in second.state.kill_switch.by


async def test_a_stuck_cockpit_is_resynchronised_and_never_slows_the_engine(
    runtime: Runtime, attach: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broadcast, "QUEUE_MAX", 50)
    assert runtime.control is not None and runtime.engine is not None and runtime.broadcast is not None
    engine = runtime.engine
    # a cockpit that asks to attach and then reads nothing (a frozen terminal, a stopped process)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(runtime.control.path))
    raw.sendall(b'{"cmd": "attach", "by": "stuck"}\n')
    hub = runtime.broadcast
    await wait_until(lambda: len(hub.attached) == 1, 10, "the stuck cockpit attached")
    stuck = next(iter(hub.attached))
    healthy = await attach(runtime.control.path)
    start = engine.state.seq
    for n in range(3000):  # 12 MB: far more than the stuck cockpit's queue and its socket's buffers hold
        engine.emit("alert", {"message": f"load {n}", "detail": "x" * 4000}, "info", "engine")
        if n % 200 == 0:
            await asyncio.sleep(0)
    await wait_until(lambda: same_state(healthy, runtime), 30, "the healthy cockpit through every event")
    assert healthy.state.seq >= start + 3000 and healthy.snapshots == 1
    assert len(stuck.queue) <= 50, "the stuck cockpit's queue is bounded"
    assert stuck.resync is not None or stuck.resyncs > 0, "the stuck cockpit is due a snapshot"
    # it wakes up: a resync, then a snapshot of the State now, then events again
    raw.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=raw, limit=1 << 26)
    kinds: list[str] = []  # what it still had in its socket, then the resync
    while kinds[-2:] != ["resync", "snapshot"]:
        message = orjson.loads(await asyncio.wait_for(reader.readline(), 20))
        kinds.append(message["t"])
    assert message["seq"] >= start + 3000, "the snapshot is of the State now"
    assert kinds.count("events") < 3000 // 50, "the backlog was never sent: the snapshot replaced it"
    after = orjson.loads(await asyncio.wait_for(reader.readline(), 20))
    assert after["t"] in ("events", "telemetry"), "then it is fed as any cockpit"
    writer.close()


async def test_a_cockpit_of_another_user_is_refused(runtime: Runtime, attach: Callable[..., Any]) -> None:
    assert runtime.control is not None
    runtime.control.trusted = frozenset({os.getuid() + 4242})  # as if this test ran as another user
    with pytest.raises(CockpitError) as refused:
        await attach(runtime.control.path)
    assert refused.value.title == "refused: this engine answers its own user only"


async def test_attach_with_no_engine_says_so(tmp_path: Path, attach: Callable[..., Any]) -> None:
    with pytest.raises(CockpitError) as refused:
        await attach(tmp_path / "nothing.sock")
    assert refused.value.title == "no engine is running for this session"
    assert "cockpit run --config F --headless" in refused.value.fix


async def test_engine_killed_and_restarted_the_cockpit_says_so_and_catches_up(
    sim: SimServer, tmp_path: Path, attach: Callable[..., Any]
) -> None:
    session = tmp_path / "service.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    try:
        await engine.wait_for("reconcile.done")
        socket = socket_path_for(session)
        cockpit: AttachedBackend = await attach(socket, find_socket=lambda: socket)
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.010")
        await wait_until(lambda: BTC in cockpit.state.positions, 20, "the position, attached")
        first_seen = cockpit.seqs_seen[0] if cockpit.seqs_seen else cockpit.state.seq + 1

        engine.proc.send_signal(signal.SIGKILL)
        await engine.proc.wait()
        await wait_until(lambda: cockpit.link_problem() is not None, 2, "ENGINE UNREACHABLE")
        assert (cockpit.link_problem() or "").startswith("ENGINE UNREACHABLE")
        with pytest.raises(EngineUnreachable):  # actions are disabled while the engine is away
            await cockpit.act(Status(by="ui"))
        assert BTC in cockpit.state.positions  # the last State stays

        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.005")  # while nobody watches
        engine = await HeadlessEngine.start(config, tmp_path)
        await wait_until(lambda: cockpit.link_problem() is None, 30, "re-attached to the restarted engine")
        await wait_until(
            lambda: BTC in cockpit.state.positions and str(cockpit.state.positions[BTC].qty) == "0.015",
            30,
            "the fill made while the engine was down, recovered and shown",
        )
        status = await ask(socket, Status(by="test"))
        await wait_until(lambda: cockpit.state.seq >= status.seq, 10, "the cockpit at the engine's seq")

        def missing() -> list[int]:  # the log of what it missed comes as soon as the file has it all
            seen = set(cockpit.seqs_seen)
            return [s for s in range(first_seen, status.seq + 1) if s not in seen]

        await wait_until(lambda: not missing(), 20, "every event shown")
        assert not missing(), f"events never shown: {missing()[:20]}"
        assert cockpit.snapshots == 2, (
            f"{cockpit.snapshots} snapshots: one at attach, one from the restarted engine"
        )
    finally:
        await engine.finish()


async def test_news_about_the_store_reaches_a_cockpit_once_at_its_commit(runtime: Runtime) -> None:
    """An event delivered early (news about the store, before its commit) is folded into the engine's State
    at its emit: a cockpit gets it once, in seq order, with its seq, or its State would drift."""
    engine = runtime.engine
    assert engine is not None
    streamed: list[int] = []
    told: list[int] = []
    engine.core.stream(lambda e: streamed.append(e.seq))
    engine.subscribe(lambda e: told.append(e.seq))
    event = engine.emit("alert", {"message": "early news"}, "warning", "store", immediate=True)
    await wait_until(lambda: event.seq in streamed, 10, "the commit streamed")
    assert told.count(0) >= 1 and event.seq not in told, "subscribers: the early copy (seq 0) only"
    assert streamed.count(event.seq) == 1 and 0 not in streamed, "the stream: the event once, with its seq"


def test_an_unreachable_engine_leads_the_banner_and_dates_the_state() -> None:
    from cockpit.core.state import State
    from widgets.banner import banner_text

    state = State(seq=42, ts=1_700_000_000.0)
    text, cls = banner_text(state, 7.0, 1_700_000_100.0, "ENGINE UNREACHABLE for 3 s (killed)")
    assert cls == "-unreachable"
    assert text.startswith("ENGINE UNREACHABLE for 3 s (killed) — showing its State as of ")
    assert "(event 42)" in text
    assert banner_text(state, 7.0, 1_700_000_100.0, None) == ("", "")


async def test_a_dropped_link_catches_up_from_the_engines_memory(
    runtime: Runtime, attach: Callable[..., Any]
) -> None:
    """An SSH tunnel that drops and comes back: the same engine, so the events missed meanwhile, in order,
    from its memory (no snapshot)."""
    assert runtime.control is not None and runtime.engine is not None
    engine = runtime.engine
    cockpit: AttachedBackend = await attach(runtime.control.path)
    await wait_until(lambda: same_state(cockpit, runtime), 10, "attached")
    seen_before = cockpit.state.seq
    assert cockpit._writer is not None
    cockpit._writer.transport.abort()  # the link drops
    await wait_until(lambda: cockpit.link_problem() is not None, 5, "the loss noticed")
    for n in range(50):
        engine.emit("alert", {"message": f"while away {n}"}, "warning", "engine")
    await wait_until(lambda: cockpit.link_problem() is None and same_state(cockpit, runtime), 20, "caught up")
    assert cockpit.snapshots == 1 and cockpit.attaches == 2, "caught up from memory, not from a snapshot"
    missed = [s for s in range(seen_before + 1, engine.state.seq + 1) if s not in set(cockpit.seqs_seen)]
    assert not missed


async def test_events_folded_unrecorded_reach_a_cockpit_as_a_snapshot(
    runtime: Runtime, attach: Callable[..., Any]
) -> None:
    """After the store failed, what the engine folds unrecorded (and whatever was pending) reaches attached
    cockpits as the engine's State itself, and a cockpit that re-attaches is never caught up past it."""
    assert runtime.control is not None and runtime.engine is not None
    engine = runtime.engine
    cockpit: AttachedBackend = await attach(runtime.control.path)
    await wait_until(lambda: same_state(cockpit, runtime), 10, "attached")
    engine.core.apply_unrecorded("alert", {"message": "folded unrecorded"}, "critical", "store")
    await wait_until(lambda: cockpit.state == engine.state, 10, "the unrecorded event in the cockpit")
    assert cockpit.snapshots == 2 and cockpit.state.alerts[-1].message == "folded unrecorded"
    assert runtime.broadcast is not None and runtime.broadcast.unrecorded_at == engine.state.seq


def test_a_cockpit_adopts_another_engine_only_with_its_snapshot() -> None:
    """A hello from an engine other than the one this State came from, then the link drops before the
    snapshot: the next attach must ask for a snapshot, not for events after a seq of another engine."""
    from cockpit.core.domain import Event as CoreEvent
    from cockpit.core.snapshot import state_to_json
    from cockpit.core.state import State

    cockpit = AttachedBackend(Path("unused.sock"))
    cockpit._take({"t": "hello", "engine": "A", "pid": 1, "session": "s", "kill_pct": 15, "breaker_pct": 7})
    cockpit._take({"t": "snapshot", "seq": 0, "recent": [], "state": orjson.loads(state_to_json(State()))})
    assert cockpit.engine_id == "A"
    cockpit._take({"t": "hello", "engine": "B", "pid": 2, "session": "s", "kill_pct": 15, "breaker_pct": 7})
    assert cockpit.engine_id is None, "not B's State yet: the next attach asks for a snapshot"
    # a gap (an event after one this State never had): the State is not the engine's any more
    cockpit.engine_id = "A"
    event = CoreEvent(5, 1.0, "alert", "warning", "engine", {"message": "x"})
    with pytest.raises(ValueError, match="came after"):
        cockpit._take({"t": "events", "events": [event.to_json()]})
    assert cockpit.engine_id is None and cockpit.state.seq == 0
    # a newer engine's telemetry with a field this cockpit does not know: read, not a broken link
    cockpit._take({"t": "telemetry", "now": 5.0, "ticks_per_s": 10.0, "a_new_figure": 1})
    assert cockpit.telemetry().ticks_per_s == 10.0


async def test_a_cockpit_that_comes_while_the_engine_stops_is_not_fed(runtime: Runtime) -> None:
    assert runtime.broadcast is not None and runtime.control is not None
    hub = runtime.broadcast
    await hub.close("the engine stopped")
    reader, writer = await asyncio.open_unix_connection(str(runtime.control.path))
    writer.write(b'{"cmd": "attach", "by": "late"}\n')
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b"", "closed at once: no hello from a stopped engine"
    assert not hub.attached


async def test_an_attached_cockpit_shows_new_events_without_waiting_for_its_timer(runtime: Runtime) -> None:
    """New events repaint the panes at once (coalesced), not at the next tick of the 5 Hz timer: with the
    timer stopped, every event still reaches the Events pane, including one right after a repaint."""
    from cockpit.ui.app import CockpitApp

    assert runtime.control is not None and runtime.engine is not None
    backend = AttachedBackend(runtime.control.path)
    app = CockpitApp(backend)
    async with app.run_test():
        await wait_until(backend.attached.is_set, 10, "attached")
        app.refresh_timer.stop()
        for n in range(5):
            runtime.engine.emit("alert", {"message": f"shown at once {n}"}, "warning", "engine")
            await wait_until(
                lambda: any(f"shown at once {n}" in line for line in app.events_pane.shown_lines),  # noqa: B023
                10,
                f"alert {n} in the Events pane",
            )
        assert not app._repaint_due


async def test_attach_commands_say_what_is_wrong(sim: SimServer, tmp_path: Path) -> None:
    from tests.test_cli_engine import cockpit as run_cockpit

    code, _, err = await run_cockpit(tmp_path, "attach", str(tmp_path / "nothing.sock"))
    assert code == 2 and "nothing.sock does not exist" in err and "ssh -N -L" in err
    config = write_config(tmp_path, sim.base_url, tmp_path / "idle.duckdb")
    code, _, err = await run_cockpit(tmp_path, "attach", "--config", str(config))
    assert code == 1 and "no engine is running" in err
    code, _, err = await run_cockpit(tmp_path, "attach", "x.sock", "--config", str(config))
    assert code == 2 and "give a SOCKET or --config, not both" in err


async def test_actions_reach_the_engine_after_its_session_rotated(runtime: Runtime) -> None:
    """A rotation moves the engine's socket beside the new file (the old one unlinked) while the link streams
    on its old connection: actions, the fleet-wide ones too, look the socket up again and reach it."""
    from cockpit.engine.rotation import rotate
    from cockpit.ui.fleet import Account, FleetBackend

    assert runtime.control is not None and runtime.engine is not None
    engine = runtime.engine
    old = runtime.control.path
    bare = AttachedBackend(old)  # `cockpit attach SOCKET`: no finder at all
    named = AttachedBackend(old, find_socket=lambda: old)  # a finder that still names the old socket
    fleet = FleetBackend([Account("bare", bare), Account("named", named)])
    try:
        await bare.start()
        await named.start()
        await rotate(engine, "daily")
        await wait_until(lambda: not old.exists() and runtime.control.path.exists(), 10, "the socket moved")
        await wait_until(lambda: bare.session_file == engine.session_file, 10, "the new session named")
        await wait_until(lambda: named.session_file == engine.session_file, 10, "named by both")
        await bare.act(Status(by="test"))
        status = await bare.act(KillSwitch(on=True, cause="after the rotation", by="test"))
        assert status.engaged and engine.state.kill_switch.engaged
        assert bare.path == runtime.control.path
        outcomes = await fleet.kill_all("test")
        assert [o.verified for o in outcomes] == [True, True], [o.line() for o in outcomes]
        assert named.path == runtime.control.path
        # a rotation whose news this cockpit missed: nothing answers where it was, looked up and sent again
        named.socket_moved = False
        named.path = old
        assert (await named.act(Status(by="test"))).kill_switch.engaged
        assert named.path == runtime.control.path
    finally:
        await bare.stop()
        await named.stop()


async def test_a_link_that_outlives_its_cancels_is_logged_at_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cockpit.ui import attached

    monkeypatch.setattr(attached, "STOP_TRIES", 3)
    released = asyncio.Event()

    async def stubborn() -> None:  # a link that swallows every cancel
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    cockpit = AttachedBackend(tmp_path / "x.sock")
    cockpit._link = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # running, in its wait
    try:
        await cockpit.stop()
    finally:
        released.set()
    assert "still runs after 3 cancels" in caplog.text
