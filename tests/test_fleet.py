"""The fleet: one cockpit over several accounts, each with its own engine (cockpit/ui/fleet.py,
cockpit/ui/fleet_app.py, widgets/fleet.py, `cockpit ctl --fleet`).

Two real headless engines in their own processes, each against its own simulator (two accounts), attached
with one cockpit under Pilot; `cockpit ctl --fleet` as a subprocess; the fleet file's errors; snapshots."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.widgets import Label

from cockpit.config.errors import ConfigError
from cockpit.config.fleet import load_fleet
from cockpit.core.commands import Status
from cockpit.core.fleet import fleet_totals
from cockpit.core.state import KillSwitch
from cockpit.engine.control import ask, socket_path_for
from cockpit.engine.runtime import Runtime
from cockpit.sim.server import SimServer
from cockpit.ui.attached import AttachedBackend
from cockpit.ui.backend import FixedBackend
from cockpit.ui.fleet import Account, FleetBackend
from cockpit.ui.fleet_app import FleetApp
from cockpit.ui.screens.confirm import ConfirmScreen
from cockpit.ui.screens.dialogs import DeadLettersScreen
from cockpit.ui.screens.fleet import FleetOutcomeScreen
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.test_cli_engine import HeadlessEngine
from tests.test_cli_engine import cockpit as run_cockpit
from tests.test_engine import trade
from tests.test_widgets import TELEMETRY, make_state, sample_events
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


# ----- the fleet file: bad input named, with the fix -----------------------------------------------------
def test_a_fleet_file_names_each_problem_and_its_fix(tmp_path: Path) -> None:
    (tmp_path / "main.toml").write_text("")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[account]]\nconfig = "main.toml"\n\n[[account]]\nname = "hedge"\nconfig = "gone.toml"\n\n'
        '[[account]]\nname = "x"\nconfig = "main.toml"\nsocket = "x.sock"\n\n[[account]]\nsokcet = "y.sock"\n'
    )
    with pytest.raises(ConfigError) as bad:
        load_fleet(fleet)
    text = bad.value.render()
    assert str(fleet) in text
    assert "account #2.config" in text and "gone.toml does not exist" in text
    assert "account #3: needs exactly one of config or socket, not both" in text
    assert "account #4.sokcet" in text and "did you mean 'socket'?" in text
    assert bad.value.exit_code == 2

    fleet.write_text('[[account]]\nconfig = "main.toml"\n\n[[account]]\nname = "main"\nsocket = "/x.sock"\n')
    with pytest.raises(ConfigError) as duplicate:
        load_fleet(fleet)
    assert (
        "account #2.name" in duplicate.value.render()
        and "the same name as account #1" in duplicate.value.render()
    )

    fleet.write_text('[[account]]\nconfig = "main.toml"\n\n[[account]]\nsocket = "/run/hedge.duckdb.sock"\n')
    accounts = load_fleet(fleet)
    assert [a.name for a in accounts] == ["main", "hedge"], "names default to the config's stem, the socket's"
    assert accounts[0].config == tmp_path / "main.toml", "relative paths from the fleet file's folder"
    with pytest.raises(ConfigError, match="does not exist"):
        load_fleet(tmp_path / "nothing.toml")


def test_a_fleet_file_refuses_one_engine_listed_twice(tmp_path: Path) -> None:
    (tmp_path / "main.toml").write_text("")
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(
        '[[account]]\nconfig = "main.toml"\n\n[[account]]\nname = "again"\nconfig = "./main.toml"\n\n'
        '[[account]]\nname = "s1"\nsocket = "/run/x.sock"\n\n'
        '[[account]]\nname = "s2"\nsocket = "/run/./x.sock"\n'
    )
    with pytest.raises(ConfigError) as twice:
        load_fleet(fleet)
    text = twice.value.render()
    assert "account #2.config" in text and "the same engine as account #1" in text, text
    assert "account #4.socket" in text and "the same engine as account #3" in text, text


# ----- snapshots: fixed States, one engine unreachable ---------------------------------------------------
class Lost(FixedBackend):
    def link_problem(self, now: float | None = None) -> str | None:
        return "ENGINE UNREACHABLE for 42 s (the engine closed the connection)"


def fixed_fleet() -> FleetBackend:
    main = FixedBackend(make_state(), sample_events(), TELEMETRY, label="main")
    engaged = KillSwitch(True, "engaged from the cockpit (k)", "ui", 0.0)
    hedge_state = make_state(
        positions={},
        orders={},
        equity=Decimal("5012.5"),
        drawdown_pct=Decimal("0.5"),
        drawdown_band="green",
        kill_switch=engaged,
    )
    hedge = FixedBackend(hedge_state, [], TELEMETRY)
    alt = Lost(make_state(equity=Decimal("2500")), [], TELEMETRY)
    return FleetBackend([Account("main", main), Account("hedge", hedge), Account("alt", alt)])


@pytest.fixture
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_fleet_screen(snap_compare: Any, size: tuple[int, int], utc_clock: None) -> None:
    assert snap_compare(FleetApp(fixed_fleet()), terminal_size=size)


async def test_the_fleet_pane_leaves_an_unreachable_account_out_of_the_totals_and_dates_it(
    utc_clock: None,
) -> None:
    app = FleetApp(fixed_fleet())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        rows = app.fleet_pane.rows_text
        assert rows[0].startswith("▶main") and "OK" in rows[0]
        assert "ENGAGED" in rows[1]
        assert "UNREACHABLE" in rows[2] and "2,500.00 @" in rows[2], "its last equity, dated"
        assert "14,990.85" in rows[3] and "1 of 2 engaged" in rows[3] and "2 of 3 summed" in rows[3]
        assert "not in totals: alt UNREACHABLE" in app.fleet_pane.note
        assert "main (1/3)" in app.header_pane.text
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert "hedge (2/3)" in app.header_pane.text and app.fleet_pane.rows_text[1].startswith("▶hedge")
        assert app.positions_pane.row_count == 0, "hedge holds no position"


async def test_an_account_whose_equity_is_unknown_is_named_not_silently_left_out_of_the_total() -> None:
    known = FixedBackend(make_state(), [], TELEMETRY)
    unknown = FixedBackend(make_state(equity=None), [], TELEMETRY)
    app = FleetApp(FleetBackend([Account("known", known), Account("unknown", unknown)]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        total = app.fleet_pane.rows_text[-1]
        assert "1 of 2 summed" in total, total
        assert "equity unknown: unknown" in app.fleet_pane.note
        assert fleet_totals(app.fleet.views()).summed == 1


async def test_switching_back_to_an_account_keeps_its_fill_after_half_an_hour_of_marks() -> None:
    """Each account keeps the event log's two bounds: its routine marks never push out its fills."""
    from cockpit.core.domain import Event

    fill = Event(1, 1.0, "order.filled", "info", "exchange", {"symbol": BTC, "side": "buy", "qty": "0.01"})
    marks = [Event(i, float(i), "market.marks", "info", "feed", {"marks": {}}) for i in range(2, 2500)]
    quiet = FixedBackend(make_state(), [], TELEMETRY)
    busy = FixedBackend(make_state(), [fill, *marks], TELEMETRY)
    app = FleetApp(FleetBackend([Account("quiet", quiet), Account("busy", busy)]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("right_square_bracket")
        await wait_until(lambda: "busy (2/2)" in app.header_pane.text, 5, "busy selected")
        assert [e.kind for e in app.fleet.accounts[1].recent][0] == "order.filled"
        assert any("BTC/USDT" in line for line in app.events_pane.shown_lines), app.events_pane.shown_lines


async def test_dialogs_and_toasts_name_the_account_brackets_and_all() -> None:
    """An account's name (or an engine's words) with brackets is shown as written, never read as markup; a
    dialog or a toast of an action on one account names it; the fleet-wide ones name every account."""
    live = FixedBackend(make_state(), [], TELEMETRY)
    other = FixedBackend(make_state(), [], TELEMETRY)
    app = FleetApp(FleetBackend([Account("binance [live]", live), Account("b [/x]", other)]))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f")
        await wait_until(lambda: isinstance(app.screen, ConfirmScreen), 5, "the flatten dialog")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == f"[binance [live]] Flatten {BTC}?"
        await pilot.press("escape")
        await pilot.press("k")
        titles = lambda: [n.title for n in app._notifications]  # noqa: E731
        await wait_until(lambda: "[binance [live]] kill switch refused" in titles(), 5, "the toast, named")
        await type_word(pilot, "KILL ALL", key="K")
        await wait_until(lambda: isinstance(app.screen, FleetOutcomeScreen), 10, "the outcome dialog")
        outcome = app.screen
        assert isinstance(outcome, FleetOutcomeScreen)
        body = str(outcome.query_one("#dialog-body").render())
        assert "binance [live]: refused" in body and "b [/x]: refused" in body, body
        await pilot.press("escape")
        # a dialog that shows one account's figures names it too, the one selected when the key was pressed
        await pilot.press("right_square_bracket", "d")
        await wait_until(lambda: isinstance(app.screen, DeadLettersScreen), 5, "the dead-letter dialog")
        title = app.screen.query_one("#dialog-title", Label)
        assert str(title.render()) == "[b [/x]] Dead-letter queue: 0 open"


async def test_fleet_wide_keys_typed_ahead_in_a_burst_reach_their_dialog(utc_clock: None) -> None:
    """`K KILL ALL⏎` as a terminal delivers a burst (every key queued before the first is handled): the
    word reaches the dialog, and each account answers (here read-only views: refused, said per account)."""
    app = FleetApp(fixed_fleet())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key in ["K", *keys_of("KILL ALL"), "enter"]:
            event = events.Key(key, " " if key == "space" else "\r" if key == "enter" else key)
            event.set_sender(app)
            app.post_message(event)
        await wait_until(lambda: isinstance(app.screen, FleetOutcomeScreen), 10, "the outcome dialog")
        outcome = app.screen
        assert isinstance(outcome, FleetOutcomeScreen)
        assert [o.account for o in outcome.outcomes] == ["main", "hedge", "alt"]
        assert all(not o.verified and "refused" in o.text for o in outcome.outcomes), outcome.lines
        assert sum(isinstance(s, ConfirmScreen) for s in app.screen_stack) == 0


@asynccontextmanager
async def in_process_engine(sim: SimServer, session: Path, **risk: float) -> AsyncIterator[Runtime]:
    """An engine with its control socket, in this process, against the simulator (`risk`: its limits)."""
    from cockpit.config.secrets import Credentials
    from cockpit.engine.options import EngineOptions
    from cockpit.engine.runtime import RunSpec
    from tests.conftest import FAST_OPTIONS, make_config

    options = EngineOptions(mode="live", **FAST_OPTIONS)  # type: ignore[arg-type]
    config = make_config(sim.base_url, session, **risk)
    runtime = Runtime(RunSpec(config, Credentials(TEST_KEY, TEST_SECRET), session, options))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def test_an_account_whose_engine_cannot_be_found_is_unreachable_not_the_fleets_end(
    sim: SimServer, tmp_path: Path
) -> None:
    """A corrupt pointer file (the engine's socket unreadable from its config) is that account's trouble: its
    row UNREACHABLE and retried, the other accounts watched."""
    from cockpit.commands.attach import config_finder

    broken = tmp_path / "broken"
    broken.mkdir()
    config = broken / "broken.toml"
    config.write_text(
        f'[exchange]\nid = "binanceusdm"\nbase_url = "{sim.base_url}"\n\n[session]\ndir = "{broken}"\n'
    )
    (broken / ".cockpit-live.json").write_text("{half a pointer")
    async with in_process_engine(sim, tmp_path / "up.duckdb") as runtime:
        assert runtime.control is not None
        path = runtime.control.path
        up = AttachedBackend(path, label="up", find_socket=lambda: path)
        lost = AttachedBackend(Path("broken"), label="broken", find_socket=config_finder(config))
        app = FleetApp(FleetBackend([Account("up", up), Account("broken", lost)]))
        async with app.run_test(size=(120, 40)):
            await wait_until(lambda: app.fleet.views()[0].link == "ok", 20, "up attached")
            await wait_until(lambda: "UNREACHABLE" in app.fleet_pane.rows_text[1], 10, "broken UNREACHABLE")
            assert app.is_running and app.error is None
            assert "JSONDecodeError" in lost.why_unreachable, lost.why_unreachable
            await app.stop_engine()


class OddEngine:
    """An engine's control socket that attaches cockpits (hello, snapshot, telemetry) and answers every
    command with `answer` (an engine that failed while it acted, an answer no cockpit can read…)."""

    def __init__(self, path: Path, answer: bytes) -> None:
        self.path = path
        self.answer = answer
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.server = await asyncio.start_unix_server(self._serve, str(self.path))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import orjson

        from cockpit.core.snapshot import state_to_json

        request = orjson.loads(await reader.readline())
        if request.get("cmd") == "attach":
            writer.write(orjson.dumps({"t": "hello", "engine": "odd", "pid": 1}) + b"\n")
            state = state_to_json(make_state(positions={}, orders={}))
            writer.write(b'{"t":"snapshot","seq":1,"recent":[],"state":%b}\n' % state.encode())
            writer.write(orjson.dumps({"t": "telemetry"}) + b"\n")
            await writer.drain()
            await reader.read()  # attached until the cockpit goes
        else:
            writer.write(self.answer + b"\n")
            await writer.drain()
        writer.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_each_account_gets_its_outcome_whatever_its_engine_answered(
    sim: SimServer, tmp_path: Path
) -> None:
    """An engine that failed while acting, or whose answer cannot be read, may have acted: "no answer — check
    there", never "refused"; one account's odd answer never loses the others' outcomes."""
    failed = OddEngine(
        tmp_path / "s" / "failed.sock",
        b'{"ok":false,"error":"the engine failed: ExchangeError","detail":"bybit [/v5/order/create] 10001"}',
    )
    unreadable = OddEngine(tmp_path / "s" / "unreadable.sock", b'{"ok":true,"result":{"engaged":"maybe"}}')
    async with in_process_engine(sim, tmp_path / "fine.duckdb") as runtime:
        assert runtime.control is not None
        engines = {"fine": runtime.control.path, "failed": failed.path, "unreadable": unreadable.path}
        await failed.start()
        await unreadable.start()
        try:
            fleet = FleetBackend(
                [
                    Account(
                        name, AttachedBackend(p, label=name, find_socket=lambda p=p: p), f"--config {name}"
                    )
                    for name, p in engines.items()
                ]
            )
            await fleet.start()
            await wait_until(
                lambda: all(
                    isinstance(a.backend, AttachedBackend) and a.backend.attached.is_set()
                    for a in fleet.accounts
                ),
                10,
                "all three attached",
            )
            outcomes = {o.account: o for o in await fleet.kill_all("test")}
            assert outcomes["fine"].verified, outcomes["fine"].text
            for name in ("failed", "unreadable"):
                assert outcomes[name].text.startswith("no answer — check there"), outcomes[name].text
                assert not outcomes[name].verified
            assert "[/v5/order/create]" in outcomes["failed"].text
            await fleet.stop()
        finally:
            failed.stop()
            unreadable.stop()


# ----- two real engines, two accounts ----------------------------------------------------------------------
def engine_config(folder: Path, name: str, base_url: str, exchange: str = "binanceusdm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.toml"
    config.write_text(
        f'[exchange]\nid = "{exchange}"\nbase_url = "{base_url}"\n\n'
        f'[session]\npath = "{folder / name}.duckdb"\n\n[feeds]\nstale_after_s = 2.0\n'
    )
    return config


class TwoAccounts:
    def __init__(self, tmp_path: Path, sims: list[SimServer]) -> None:
        self.tmp_path = tmp_path
        self.sims = sims
        names = ("alpha", "beta")
        self.configs = [
            engine_config(tmp_path / n, n, s.base_url, "bybit" if s.exchange == "bybit" else "binanceusdm")
            for n, s in zip(names, sims, strict=True)
        ]
        self.sockets = [socket_path_for(c.parent / f"{c.stem}.duckdb") for c in self.configs]
        self.engines: list[HeadlessEngine] = []
        self.fleet_file = tmp_path / "fleet.toml"
        self.fleet_file.write_text(
            "".join(f'[[account]]\nname = "{c.stem}"\nconfig = "{c}"\n\n' for c in self.configs)
        )

    async def start(self, index: int) -> HeadlessEngine:
        engine = await HeadlessEngine.start(self.configs[index], self.tmp_path)
        await engine.wait_for("reconcile.done", 30)
        if index < len(self.engines):
            self.engines[index] = engine
        else:
            self.engines.append(engine)
        return engine

    async def status(self, index: int) -> Any:
        return await ask(self.sockets[index], Status(by="test"))


@pytest.fixture
async def two_accounts(sim: SimServer, tmp_path: Path) -> AsyncIterator[TwoAccounts]:
    # a Binance account and a Bybit account in one fleet
    other = SimServer(
        api_key=TEST_KEY, api_secret=TEST_SECRET, seed=8, activity=False, tick_interval=0.05, exchange="bybit"
    )
    await other.start()
    fleet = TwoAccounts(tmp_path, [sim, other])
    try:
        for index in range(2):
            await fleet.start(index)
        yield fleet
    finally:
        for engine in fleet.engines:
            await engine.finish()
        await other.stop()


def fleet_app(fleet: TwoAccounts) -> FleetApp:
    accounts = [
        Account(
            c.stem, AttachedBackend(s, label=c.stem, find_socket=lambda s=s: s), act_there=f"--config {c}"
        )
        for c, s in zip(fleet.configs, fleet.sockets, strict=True)
    ]
    return FleetApp(FleetBackend(accounts))


def keys_of(word: str) -> list[str]:
    return ["space" if c == " " else c for c in word]


async def type_word(pilot: Any, word: str, key: str | None = None) -> None:
    """`key` then `word` and Enter, in one go (typed ahead: the dialog may not be drawn yet)."""
    await pilot.press(*([key] if key else []), *keys_of(word), "enter")


async def test_one_cockpit_over_two_accounts(two_accounts: TwoAccounts) -> None:
    fleet = two_accounts
    app = fleet_app(fleet)
    async with app.run_test(size=(120, 40)) as pilot:
        backend = app.fleet
        await wait_until(lambda: all(v.link == "ok" for v in backend.views()), 20, "both engines attached")
        statuses = [await fleet.status(i) for i in range(2)]
        totals = fleet_totals(backend.views())
        assert totals.counted == 2 and totals.equity == sum(Decimal(s.equity) for s in statuses)
        await wait_until(lambda: "20,000.00" in app.fleet_pane.rows_text[-1], 5, "the total equity shown")

        await trade(fleet.sims[0], symbol="BTCUSDT", side="BUY", quantity="0.010")
        await trade(fleet.sims[1], symbol="ETHUSDT", side="SELL", quantity="0.100")
        await wait_until(lambda: BTC in app.positions_pane.rows, 20, "alpha's position in the positions pane")
        await wait_until(
            lambda: ETH in backend.accounts[1].backend.state.positions, 20, "beta's, in the fleet"
        )

        # switching: every pane to beta's State, the event log refilled with beta's own events
        await pilot.press("right_square_bracket")
        await wait_until(lambda: "beta (2/2)" in app.header_pane.text, 5, "beta selected in the header")
        await wait_until(lambda: ETH in app.positions_pane.rows and BTC not in app.positions_pane.rows, 5)
        lines = app.events_pane.shown_lines
        assert any("ETH/USDT" in line for line in lines) and not any("BTC/USDT" in line for line in lines)
        await pilot.press("left_square_bracket")
        await wait_until(lambda: BTC in app.positions_pane.rows and ETH not in app.positions_pane.rows, 5)
        assert not any("ETH/USDT" in line for line in app.events_pane.shown_lines)

        # kill switch on ALL accounts: typed, sent to both, verified per account
        await type_word(pilot, "KILL ALL", key="K")
        await wait_until(lambda: isinstance(app.screen, FleetOutcomeScreen), 20, "the outcome per account")
        outcome = app.screen
        assert isinstance(outcome, FleetOutcomeScreen)
        assert [o.verified for o in outcome.outcomes] == [True, True], outcome.lines
        for index in range(2):
            assert (await fleet.status(index)).kill_switch.engaged, f"engine {index} engaged (ctl status)"
        await pilot.press("enter")

        # flatten ALL accounts: a wrong word does nothing; the right one flattens both, verified at each sim
        await pilot.press("ctrl+f")
        await type_word(pilot, "FLATTEN")
        assert isinstance(app.screen, ConfirmScreen) and app.screen.answer is None, (
            "FLATTEN is not FLATTEN ALL"
        )
        await pilot.press("escape")
        await type_word(pilot, "FLATTEN ALL", key="ctrl+f")
        await wait_until(lambda: isinstance(app.screen, FleetOutcomeScreen), 60, "the flatten outcome")
        outcome = app.screen
        assert isinstance(outcome, FleetOutcomeScreen)
        assert [o.verified for o in outcome.outcomes] == [True, True], outcome.lines
        for sim in fleet.sims:
            assert all(p.qty == 0 for p in sim.account.positions.values()), "flat at the exchange"
        await pilot.press("escape")

        # one engine killed: its row UNREACHABLE, out of the totals; back when it is restarted
        fleet.engines[1].proc.send_signal(signal.SIGKILL)
        await fleet.engines[1].proc.wait()
        await wait_until(lambda: backend.views()[1].link == "unreachable", 10, "beta UNREACHABLE")
        await wait_until(lambda: "UNREACHABLE" in app.fleet_pane.rows_text[1], 5, "shown UNREACHABLE")
        assert backend.views()[0].link == "ok", "alpha stays OK: never a false alarm"
        left = fleet_totals(backend.views())
        assert left.counted == 1 and [v.name for v in left.left_out] == ["beta"]
        assert left.equity == backend.accounts[0].backend.state.equity
        assert "not in totals: beta UNREACHABLE" in app.fleet_pane.note
        await fleet.start(1)
        await wait_until(lambda: backend.views()[1].link == "ok", 30, "beta back")
        await wait_until(lambda: fleet_totals(backend.views()).counted == 2, 10, "beta summed again")
        await app.stop_engine()  # detaches from both (it used to hang now and then: see AttachedBackend.stop)


async def test_each_account_shows_its_own_engines_risk_limits_from_the_first_attach(
    sim: SimServer, tmp_path: Path
) -> None:
    """The first account's limits come with its engine's hello (after the app mounted): its REDUCE-ONLY
    banner shows at its own breaker without a switch; an account whose engine names none shows the defaults,
    never the previous account's."""
    risk = {"warn_drawdown_pct": 1.0, "breaker_drawdown_pct": 2.0, "kill_drawdown_pct": 50.0}
    async with in_process_engine(sim, tmp_path / "tight.duckdb", **risk) as runtime:
        engine = runtime.engine
        assert runtime.control is not None and engine is not None
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="1")
        await wait_until(lambda: BTC in engine.state.positions, 20, "the position")
        await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -0.5})  # ~ 3 % drawdown
        await wait_until(lambda: 2.0 <= float(engine.state.drawdown_pct) < 7.0, 20, "a drawdown of 2-7 %")
        path = runtime.control.path
        tight = AttachedBackend(path, label="tight", find_socket=lambda: path)
        plain = FixedBackend(make_state(drawdown_pct=Decimal("3"), drawdown_band="yellow"), [], TELEMETRY)
        app = FleetApp(FleetBackend([Account("tight", tight), Account("plain", plain)]))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(lambda: "REDUCE-ONLY" in app.banner_pane.text, 20, "tight's breaker, unswitched")
            assert (app.kill_pct, app.breaker_pct) == (50.0, 2.0)
            await pilot.press("right_square_bracket")
            await wait_until(lambda: "plain (2/2)" in app.header_pane.text, 5, "plain selected")
            assert (app.kill_pct, app.breaker_pct) == (15.0, 7.0), "the defaults, not tight's"
            assert "REDUCE-ONLY" not in app.banner_pane.text
            await pilot.press("left_square_bracket")
            await wait_until(lambda: "REDUCE-ONLY" in app.banner_pane.text, 5, "tight's own again")
            await app.stop_engine()


async def test_an_account_never_reached_shows_no_figure(sim: SimServer, tmp_path: Path) -> None:
    """An engine never heard from: every figure "—" (not kill "off", 0 positions, 0.00 % GREEN)."""
    async with in_process_engine(sim, tmp_path / "up.duckdb") as runtime:
        assert runtime.control is not None
        path, gone = runtime.control.path, tmp_path / "gone.sock"
        up = AttachedBackend(path, label="up", find_socket=lambda: path)
        never = AttachedBackend(gone, label="never", find_socket=lambda: gone)
        app = FleetApp(FleetBackend([Account("up", up), Account("never", never)]))
        async with app.run_test(size=(120, 40)):
            await wait_until(lambda: "UNREACHABLE" in app.fleet_pane.rows_text[1], 20, "never UNREACHABLE")
            cells = app.fleet_pane._rendered["never"]
            assert {k: c.text for k, c in cells.items() if k not in ("account", "link")} == dict.fromkeys(
                (
                    "exchange",
                    "equity",
                    "drawdown",
                    "health",
                    "kill",
                    "incidents",
                    "positions",
                    "ghosts",
                    "exposure",
                ),
                "—",
            ), app.fleet_pane.rows_text[1]
            await app.stop_engine()


async def test_ctl_acts_on_one_account_or_every_account(two_accounts: TwoAccounts) -> None:
    fleet = two_accounts
    path = str(fleet.fleet_file)
    code, out, err = await run_cockpit(fleet.tmp_path, "ctl", "--fleet", path, "status", "--all")
    assert code == 0, err
    assert "== alpha ==" in out and "== beta ==" in out
    assert "TOTAL equity 20,000.00 USDT over 2 of 2 accounts" in out and "0 of 2 engaged" in out

    code, _, err = await run_cockpit(fleet.tmp_path, "ctl", "--fleet", path, "status")
    assert code == 2 and "which account?" in err and "--account NAME" in err
    code, _, err = await run_cockpit(fleet.tmp_path, "ctl", "--fleet", path, "--account", "gamma", "status")
    assert code == 2 and "no account named 'gamma'" in err and "alpha, beta" in err

    code, _, _ = await run_cockpit(
        fleet.tmp_path, "ctl", "--fleet", path, "--account", "beta", "kill-switch", "on"
    )
    assert code == 0
    assert (await fleet.status(1)).kill_switch.engaged and not (await fleet.status(0)).kill_switch.engaged

    args = ("ctl", "--fleet", path, "kill-switch", "on", "--all-accounts")
    code, _, err = await run_cockpit(fleet.tmp_path, *args)
    assert code == 2 and "add --yes" in err, "no terminal: the typed confirmation is needed"
    code, out, err = await run_cockpit(fleet.tmp_path, *args, "--yes")
    assert code == 0, out + err
    assert "VERIFIED  alpha: kill switch ENGAGED" in out and "verified on 2 of 2 accounts" in out
    assert (await fleet.status(0)).kill_switch.engaged

    await trade(fleet.sims[0], symbol="BTCUSDT", side="BUY", quantity="0.010")
    await wait_until(
        lambda: any(e["kind"] == "order.filled" for e in fleet.engines[0].events), 20, "the fill"
    )
    await fleet.engines[1].finish()  # beta's engine stops: not reached, exit 1
    flatten = ("ctl", "--fleet", path, "flatten", "--all", "--all-accounts", "--yes")
    code, out, err = await run_cockpit(fleet.tmp_path, *flatten)
    assert code == 1, out + err
    assert "VERIFIED  alpha: flat, verified at the exchange" in out
    assert "NOT VERIFIED  beta: not reached — act there: `cockpit ctl --config" in out
    assert all(p.qty == 0 for p in fleet.sims[0].account.positions.values())
    code, out, _ = await run_cockpit(fleet.tmp_path, "ctl", "--fleet", path, "status", "--all")
    assert code == 1 and "UNREACHABLE" in out and "left out (unreachable): beta" in out


def drive_fleet_in_tmux(fleet_file: Path, tmp_path: Path) -> None:
    """The fleet cockpit in a detached tmux session at 80×24: both accounts and the totals shown, `]` selects
    the next account, `q q` detaches (exit 0)."""
    import os
    import subprocess
    import sys
    import uuid

    from tests.test_cli_engine import cli_env
    from tests.test_tmux_e2e import TMUX, TmuxCockpit

    assert TMUX is not None, "tmux is required for the end-to-end test (.ci/run installs it)"
    name = f"cockpit-fleet-{uuid.uuid4().hex[:8]}"
    exit_file = tmp_path / f"{name}.exit"
    env = cli_env(tmp_path)
    keys = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "COCKPIT_API_KEY", "COCKPIT_API_SECRET")
    exports = " ".join(f"{k}={env[k]}" for k in keys)
    command = (
        f"cd {Path.cwd()} && env {exports} TERM=screen-256color "
        f"{sys.executable} -m cockpit attach --fleet {fleet_file}; echo $? > {exit_file}"
    )
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", command],
        check=True,
        env={**os.environ, "TERM": "screen-256color"},
    )
    c = TmuxCockpit(name, exit_file)
    try:
        screen = c.wait(
            lambda s: all(w in s for w in ("alpha", "beta", "TOTAL", "20,000.00")), "both accounts"
        )
        assert screen.count(" OK") >= 2 and "K Kill ALL" in screen and "alpha (1/2)" in screen, screen
        c.keys("]")
        c.wait(lambda s: "beta (2/2)" in s, "beta selected")
        c.keys("q")
        c.wait(lambda s: "keep running" in s, "the detach dialog")
        c.keys("q")
        deadline = time.monotonic() + 20
        while not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert exit_file.exists() and exit_file.read_text().strip() == "0", "the cockpit detached"
    finally:
        if c.alive():
            subprocess.run([TMUX, "kill-session", "-t", name], capture_output=True)


async def test_fleet_cockpit_in_tmux_at_80x24(two_accounts: TwoAccounts) -> None:
    """`cockpit attach --fleet F` as a trader runs it: tmux, TERM=screen-256color, 80×24."""
    import asyncio

    await asyncio.to_thread(drive_fleet_in_tmux, two_accounts.fleet_file, two_accounts.tmp_path)
    for index in range(2):
        assert (await two_accounts.status(index)).seq > 0, "both engines keep running after the detach"


async def test_attach_refuses_a_fleet_it_cannot_tell_apart(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "live.toml").write_text("")
    both = ("--config", str(tmp_path / "a" / "live.toml"), "--config", str(tmp_path / "b" / "live.toml"))
    code, _, err = await run_cockpit(tmp_path, "attach", *both)
    assert code == 2 and "two engines would have the same account name" in err and "--fleet" in err
    code, _, err = await run_cockpit(tmp_path, "attach", "--fleet", str(tmp_path / "fleet.toml"))
    assert code == 2 and "fleet.toml" in err and "the fleet file does not exist" in err
