"""Replay: stored events through the same apply and the same panes, read-only, seekable."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cockpit.core.errors import CockpitError
from cockpit.core.state import fold
from cockpit.replay.session import ReplaySession
from cockpit.sim.server import SimServer
from cockpit.store import SessionFileError, SessionStore
from cockpit.ui.backend import ReplayBackend
from cockpit.ui.replay_app import ReplayApp
from tests.conftest import EngineRun, stop
from tests.test_cli_engine import HeadlessEngine, cockpit, write_config
from tests.test_engine import trade
from tests.waiting import wait_until
from widgets.positions import PositionsTable


@pytest.fixture
async def recorded(sim: SimServer, start_engine: Any) -> Path:
    """A real session: trades, a rate limit (warning) and a ghost (critical), snapshots every 25 events."""
    run: EngineRun = await start_engine()
    run.engine.core._snapshot_every = 25
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.3")
    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 1})
    await run.wait_for("exchange.rate_limited", within=10)
    await sim.inject({"kind": "ghost_position", "symbol": "SOLUSDT", "side": "long", "qty": "5"})
    await run.wait_for("position.ghost", within=10)
    await wait_until(lambda: run.engine.state.seq > 80, within=15, what="80 events")
    await stop(run)
    return Path(run.engine.session_file)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_replayed_state_equals_the_live_state_at_every_snapshot(recorded: Path) -> None:
    session = ReplaySession.open(recorded)
    assert len(session.snapshot_seqs) >= 3
    for seq in session.snapshot_seqs:
        session._checkpoints.clear()
        session.seek(seq - 1)
        session.step(1)  # fold up to the snapshot's event, not starting from the snapshot itself
        assert session.state == session.snapshot(seq)  # the snapshot is what the live engine had then


async def test_seeking_anywhere_equals_playing_up_to_there(recorded: Path) -> None:
    session = ReplaySession.open(recorded)
    for target in (1, 17, session.total // 2, session.total - 3, session.total):
        session.seek(target)
        assert session.state == fold(session.events_between(0, target)) and session.position == target
    session.seek(0)
    assert session.state.seq == 0


async def test_replay_screen_keys_and_incidents(recorded: Path) -> None:
    before = digest(recorded)
    session = ReplaySession.open(recorded)
    app = ReplayApp(ReplayBackend(session))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "REPLAY" in str(app.query_one("#timeline").render())
        assert "REPLAY" in str(app.query_one("#banner").render())
        await pilot.press("end")
        await pilot.pause()
        table = app.query_one("#positions", PositionsTable)
        assert {k.value for k in table.rows} >= {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
        await pilot.press("home")
        assert session.position == 0
        incidents = session.incidents()
        await pilot.press("n")
        assert session.position == incidents[0]
        await pilot.press("n")
        assert session.position == incidents[1]
        await pilot.press("p")
        assert session.position == incidents[0]
        await pilot.press("full_stop")
        assert session.position == incidents[0] + 1
        await pilot.press("comma")
        assert session.position == incidents[0]
        speed = app.speed
        await pilot.press("plus")
        assert app.speed > speed
        await pilot.press("minus", "minus")
        assert app.speed < speed
        await pilot.press("space")
        assert app.playing
        start = session.position
        await wait_until(lambda: session.position > start, what="playback to move")
        await pilot.press("space")
        assert not app.playing
        await pilot.press("k")  # the live kill switch key: no such action in a replay
        await pilot.pause()
        assert any("REPLAY" in str(n.message) for n in app._notifications)
        await pilot.press("q")
    assert digest(recorded) == before  # replay never modifies the file


async def test_replay_of_a_session_the_engine_is_writing_uses_a_read_copy_deleted_when_it_exits(
    sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cockpit replay` on a live session: the engine's read copy (not a backup), replayed, then deleted."""
    import asyncio
    from argparse import Namespace

    from cockpit.commands.replay import replay_command
    from cockpit.store.errors import SessionInUse

    session = tmp_path / "busy.duckdb"
    engine = await HeadlessEngine.start(write_config(tmp_path, sim.base_url, session), tmp_path)
    seen: list[tuple[Path, bool, str]] = []

    def run(app: ReplayApp) -> int:  # the app's screen is tested above; here: what it was given, and after
        replayed = app.replay.session
        seen.append((replayed.path, replayed.path.exists(), replayed.events_between(0, 1)[0].kind))
        return 0

    monkeypatch.setattr(ReplayApp, "run", run)
    try:
        await engine.wait_for("reconcile.done")
        with pytest.raises(SessionInUse) as locked:
            ReplaySession.open(session)
        assert "cockpit backup" in locked.value.fix
        code = await asyncio.to_thread(replay_command, Namespace(session=str(session), end=True))
        assert code == 0
        [(copy, existed, first)] = seen
        assert existed and first == "session.started"  # the app replayed the engine's copy
        assert copy.parent == tmp_path / ".reads" and copy.name.startswith("busy-")
        assert not copy.exists() and list(copy.parent.iterdir()) == []  # deleted when the app exited
        assert not (tmp_path / "backups").exists()
    finally:
        assert await engine.finish() == 0
    assert "db.backup" not in engine.kinds() and "operator.action" not in engine.kinds()


async def test_replay_refuses_bad_files_with_a_clear_message(tmp_path: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database")
    code, _, err = await cockpit(tmp_path, "replay", str(text))
    assert code == 2 and "not a DuckDB file" in err and "Traceback" not in err

    empty = tmp_path / "empty.duckdb"
    SessionStore.open(empty).close()
    with pytest.raises(CockpitError, match="no events"):
        ReplaySession.open(empty)

    newer = tmp_path / "newer.duckdb"
    SessionStore.open(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SessionFileError, match="newer"):
        ReplaySession.open(newer)


async def test_stats_screen_in_a_replay_draws_the_equity(recorded: Path) -> None:
    from textual.widgets import Sparkline, Static

    from cockpit.ui.screens.stats import StatsScreen

    app = ReplayApp(ReplayBackend(ReplaySession.open(recorded)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        await wait_until(lambda: isinstance(app.screen, StatsScreen), within=10, what="the stats screen")
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        assert screen.report["fills"] == 2 and screen.report["rate_limited"] == 1
        body = str(screen.query_one("#dialog-body", Static).render())
        assert f"incidents {len(screen.report['incidents'])}" in body
        assert "Ghost position SOL/USDT:USDT" in body and "Rate limited (429)" in body
        assert len(screen.query_one("#stats-equity", Sparkline).data or []) > 1
        await pilot.press("escape")


async def test_sessions_report_and_export_commands(recorded: Path, tmp_path: Path) -> None:
    import orjson
    import polars as pl

    code, out, _ = await cockpit(tmp_path, "sessions", "--dir", str(recorded.parent), "--json")
    assert code == 0
    [row] = [r for r in orjson.loads(out) if r["path"] == str(recorded)]
    assert row["fills"] == 2 and row["incidents"] >= 2

    code, out, _ = await cockpit(tmp_path, "report", str(recorded), "--format", "md")
    assert code == 0
    for heading in ("Timeline", "Impact", "Resolution", "Root cause", "Lessons"):
        assert heading.lower() in out.lower()
    code, out, _ = await cockpit(tmp_path, "report", str(recorded), "--format", "json")
    report = orjson.loads(out)
    assert report["fills"] == 2 and report["rate_limited"] == 1
    assert any(i["cause"] == "ghost:SOL/USDT:USDT" for i in report["incidents"])
    assert row["incidents"] == len(report["incidents"])

    out_dir = tmp_path / "parquet"
    code, _, _ = await cockpit(tmp_path, "export", str(recorded), "--parquet", str(out_dir))
    assert code == 0
    assert pl.read_parquet(out_dir / "events.parquet").height == report["events"]
    code, _, err = await cockpit(tmp_path, "export", str(recorded), "--parquet", str(out_dir))
    assert code == 2 and "Traceback" not in err  # never overwrites

    code, _, err = await cockpit(tmp_path, "report", str(tmp_path / "nothing.duckdb"))
    assert code == 2 and "nothing.duckdb" in err


async def test_replay_n_jumps_from_one_incident_to_the_next_past_every_reconnect_attempt(
    sim: SimServer, start_engine: Any
) -> None:
    """Sockets refused for a few seconds are several streams and reconnect attempts but one outage: `n` goes
    from its first symptom straight to the next incident (a 429), not through each stream and attempt."""
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await sim.inject({"kind": "ws_drop", "refuse_s": 5.0})
    drop = await run.wait_for("feed.disconnected")
    stream = drop.payload["stream"]
    await run.wait_for(
        "feed.reconnected", within=30, where=lambda e: e.payload["stream"] == stream and e.seq > drop.seq
    )
    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 0.5})
    limited = await run.wait_for("exchange.rate_limited")
    await run.wait_for("exchange.recovered", where=lambda e: e.seq > limited.seq)
    await run.engine.core.drain()
    await stop(run)
    drops = run.of("feed.disconnected")
    assert len({e.payload["stream"] for e in drops}) > 1 and len(drops) > 2  # the old `n` stopped at each
    firsts = [drop.seq]  # one outage for every stream and attempt

    session = ReplaySession.open(Path(run.engine.session_file))
    app = ReplayApp(ReplayBackend(session))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("home")
        for first in firsts:
            await pilot.press("n")
            assert session.position == first
        await pilot.press("n")
        assert session.position == limited.seq  # every other reconnect attempt skipped
        await pilot.pause()
        assert any("Rate limited" in str(n.message) for n in app._notifications)
        await pilot.press("p")
        assert session.position == firsts[-1]
        await pilot.press("end", "n")
        assert session.position == session.total  # no later incident: stays
        await pilot.press("p")
        assert session.position == session.incidents()[-1] >= limited.seq
        await pilot.press("q")


LIVE_ACTIONS = (
    "reconcile",
    "flatten_selected",
    "flatten_all",
    "kill_switch",
    "backup",
    "restore",
    "dead_letters",
    "quit_cockpit",
)


async def test_no_live_action_is_reachable_in_a_replay(sim: SimServer, start_engine: Any) -> None:
    """The replay composes the live cockpit's panes, not the live cockpit: none of its actions (keys, palette
    commands, or the action itself) exists there, and its keys do nothing."""
    from cockpit.ui.app import PALETTE_TITLES, CockpitApp

    live = {b.action for b in CockpitApp.BINDINGS if hasattr(b, "action")}
    assert set(LIVE_ACTIONS) <= live  # the live app has them all: the list below is not empty talk
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await stop(run)
    path = Path(run.engine.session_file)
    before = digest(path)
    app = ReplayApp(ReplayBackend(ReplaySession.open(path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert not isinstance(app, CockpitApp)
        assert not {b.binding.action for b in app.active_bindings.values()} & set(LIVE_ACTIONS)
        palette = {c.title for c in app.get_system_commands(app.screen)}
        assert not palette & {PALETTE_TITLES[a] for a in LIVE_ACTIONS}
        assert {"Filter events", "Session stats and analytics", "Play/pause"} <= palette  # what it has
        shown = len(app._notifications)
        for action in LIVE_ACTIONS:
            assert not hasattr(app, f"action_{action}")
            assert await app.run_action(action) is False  # nothing to run, not even a refusal
        await pilot.press("r", "f", "F", "k", "b", "R", "d")  # the live keys: nothing happens
        await pilot.pause()
        assert len(app._notifications) == shown and len(app.screen_stack) == 1
        assert app.is_running
        await pilot.press("q")
    assert digest(path) == before
