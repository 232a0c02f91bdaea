"""/metrics: the real engine against the simulator, scraped over HTTP and parsed with prometheus-client's own
parser. It says what `cockpit ctl status --json` says, follows faults at once, observes the two histograms,
exposes exactly the contract's names (cockpit/metrics/names.py) and never a secret; an address in use stops
the start with exit 2, naming `metrics.listen`."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cockpit.config.secrets import Credentials
from cockpit.config.settings import load_config
from cockpit.core.commands import Backup, KillSwitch, Status
from cockpit.core.wire import result_to_json
from cockpit.engine.control import ask
from cockpit.engine.options import EngineOptions
from cockpit.engine.orders import submit
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.exchange.gateway import OrderIntent
from cockpit.metrics.names import (
    COMMIT_LATENCY_BUCKETS,
    HISTOGRAMS,
    METRIC_NAMES,
    ORDER_LATENCY_BUCKETS,
    PROCESS_NAMES,
)
from cockpit.metrics.server import MetricsListenError
from cockpit.sim.server import SimServer
from tests.conftest import FAST_OPTIONS, TEST_KEY, TEST_SECRET
from tests.test_cli_engine import cockpit

BTC = "BTC/USDT:USDT"
NOTIFY_URL = "json://127.0.0.1:9/hook-secret-token-0001"  # nothing listens on port 9: deliveries fail


# ----- a scrape, parsed -------------------------------------------------------------------------------------
class Scrape:
    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def get(self, name: str, **labels: str) -> float | None:
        """The value of the one sample `name` with these labels (None: no such sample)."""
        found = [s.value for s in self.samples if s.name == name and _has(s, labels)]
        assert len(found) <= 1, f"{name}{labels}: {len(found)} samples"
        return found[0] if found else None

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(s.labels.items())): s.value for s in self.samples if s.name == name}


def _has(sample: Sample, labels: dict[str, str]) -> bool:
    return all(sample.labels.get(k) == v for k, v in labels.items())


async def scrape(runtime: Runtime, path: str = "/metrics") -> Scrape:
    assert runtime.metrics_address is not None
    host, port = runtime.metrics_address
    async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}{path}") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        return Scrape(await response.text())


async def status_json(runtime: Runtime) -> dict[str, Any]:
    """What `cockpit ctl status --json` prints, asked over the same control socket in this process."""
    assert runtime.control is not None
    reply: dict[str, Any] = result_to_json(await ask(runtime.control.path, Status(by="ctl")))
    return reply


async def until(check: Callable[[], Awaitable[list[str]]], within: float = 15.0, what: str = "") -> None:
    """Until `check()` finds nothing wrong (its list of what is wrong, else empty); no fixed sleeps."""
    deadline = time.monotonic() + within
    while True:
        wrong = await check()
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still wrong after {within} s: {wrong}")
        await asyncio.sleep(0.05)


# ----- the engine with /metrics on an ephemeral port -------------------------------------------------------
def write_config(tmp_path: Path, sim: SimServer, listen: str, notify: bool = True) -> Path:
    config = tmp_path / "cockpit.toml"
    text = (
        f'[exchange]\nid = "binanceusdm"\nbase_url = "{sim.base_url}"\n\n'
        f'[session]\npath = "{tmp_path / "metrics.duckdb"}"\n\n'
        "[feeds]\nstale_after_s = 1.0\n\n"
        f'[metrics]\nlisten = "{listen}"\n'
    )
    if notify:
        text += '\n[notify.targets.ops]\nmin_severity = "warning"\n'
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
async def runtime(
    sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Runtime]:
    """The engine with /metrics on an ephemeral port and, unless parametrized False, a notification target."""
    notify = getattr(request, "param", True)
    monkeypatch.setenv("COCKPIT_NOTIFY_OPS", NOTIFY_URL)  # a real target whose deliveries fail
    config = write_config(tmp_path, sim, "127.0.0.1:0", notify=notify)
    loaded = load_config(config)
    spec = RunSpec(
        config=loaded,
        credentials=Credentials(TEST_KEY, TEST_SECRET),
        session_file=tmp_path / "metrics.duckdb",
        options=EngineOptions(mode="live", **FAST_OPTIONS),  # type: ignore[arg-type]
        notify_retry_s=(0.05,),
    )
    running = Runtime(spec)
    engine = await running.start()
    try:
        await _until_settled(running)
        assert engine is running.engine
        yield running
    finally:
        await running.stop()
    assert running.metrics_address is None  # the endpoint went with the engine


async def _until_settled(runtime: Runtime) -> None:
    async def wrong() -> list[str]:
        engine = runtime.engine
        assert engine is not None
        state = engine.state
        return [
            f"{item} {state.health_of(item).status}"
            for item in ("exchange", "feed", "user_stream", "database", "clock")
            if not state.health_of(item).ok
        ] + ([] if state.equity is not None else ["no equity yet"])

    await until(wrong, 20, "the engine settling")


async def open_position(runtime: Runtime, side: str = "buy", qty: str = "0.01") -> None:
    engine = runtime.engine
    assert engine is not None
    held = engine.state.positions.get(BTC)
    before = held.qty if held is not None else Decimal(0)
    ack = await submit(engine, OrderIntent(BTC, side, "market", Decimal(qty)))
    assert ack is not None
    change = Decimal(qty) if side == "buy" else -Decimal(qty)

    async def wrong() -> list[str]:
        held = engine.state.positions.get(BTC)
        now = held.qty if held is not None else Decimal(0)
        return [] if now == before + change else [f"BTC position {now}"]

    await until(wrong, 10, "the fill")


# ----- what the scrape says against what ctl status says ----------------------------------------------------
def disagreements(status: dict[str, Any], m: Scrape, volatile: bool = True) -> list[str]:
    """Where the scrape and the status differ. `volatile`: also the figures that move with every mark and
    clock check (only comparable when both read the same State)."""
    wrong: list[str] = []

    def same(what: str, got: float | None, want: float | None, tolerance: float = 1e-9) -> None:
        if got is None or want is None:
            if got != want:
                wrong.append(f"{what}: metrics {got}, status {want}")
        elif abs(got - want) > tolerance:
            wrong.append(f"{what}: metrics {got}, status {want}")

    info = m.get("cockpit_engine_info", exchange=status["exchange"], mode=status["mode"])
    same("engine_info", info, 1.0)
    health = {dict(k)["component"]: v for k, v in m.series("cockpit_health_ok").items()}
    want_health = {item: 1.0 if text == "ok" else 0.0 for item, text in status["health"].items()}
    if health != want_health:
        wrong.append(f"health: metrics {health}, status {status['health']}")
    ks = status["kill_switch"]
    same("kill switch", m.get("cockpit_kill_switch_engaged"), 1.0 if ks["engaged"] else 0.0)
    if ks["engaged"]:
        same("kill switch info", m.get("cockpit_kill_switch_info", cause=ks["cause"], by=ks["by"]), 1.0)
    else:
        same("kill switch info", len(m.series("cockpit_kill_switch_info")), 0)
    same("open positions", m.get("cockpit_open_positions"), len(status["positions"]))
    same("position series", len(m.series("cockpit_position_size")), len(status["positions"]))
    for p in status["positions"]:
        labels = {"symbol": p["symbol"], "side": p["side"]}
        same(f"{p['symbol']} size", m.get("cockpit_position_size", **labels), float(p["qty"]))
        same(f"{p['symbol']} ghost", m.get("cockpit_position_ghost", symbol=p["symbol"]), float(p["ghost"]))
        if volatile:
            notional = float(Decimal(p["qty"]) * Decimal(p["mark"]))
            same(f"{p['symbol']} notional", m.get("cockpit_position_notional_usdt", **labels), notional, 1e-6)
            upnl = m.get("cockpit_position_unrealized_pnl_usdt", **labels)
            same(f"{p['symbol']} upnl", upnl, float(p["upnl"]), 0.0051)  # the status: at cents
    same("open orders", m.get("cockpit_open_orders"), status["open_orders"])
    c = status["counters"]
    same("fills", m.get("cockpit_fills_total"), c["fills"])
    same("submitted", m.get("cockpit_orders_total", outcome="submitted"), c["orders_submitted"])
    same("rejected", m.get("cockpit_orders_total", outcome="rejected"), c["orders_rejected"])
    rl = status["rate_limit"]
    same("rate limit", m.get("cockpit_ratelimit_limit_weight"), rl["limit"])
    if volatile:
        same("equity", m.get("cockpit_equity_usdt"), float(status["equity"]), 0.0051)  # the status: at cents
        same("wallet", m.get("cockpit_wallet_balance_usdt"), float(status["wallet"]), 1e-6)
        ratio = m.get("cockpit_drawdown_ratio")
        same("drawdown", None if ratio is None else ratio * 100, status["drawdown_pct"], 0.00051)
        same("band", m.get("cockpit_drawdown_band", band=status["drawdown_band"]), 1.0)
        same("bands", sum(m.series("cockpit_drawdown_band").values()), 1.0)
        offset = status["clock_offset_ms"]
        same("clock", m.get("cockpit_clock_offset_seconds"), None if offset is None else -offset / 1000)
        used = m.get("cockpit_ratelimit_used_weight")
        # State's figure is refreshed when the used share moves by a whole percent: the same percent
        same(
            "weight used (%)",
            None if used is None else used * 100 // rl["limit"],
            rl["used"] * 100 // rl["limit"],
        )
        rate = c["fill_rate"]
        if c["orders_submitted"] >= 5 and rate is not None:
            same("fill ratio", m.get("cockpit_fill_ratio"), rate)
    return wrong


async def agree(runtime: Runtime) -> list[str]:
    """The scrape against the status, both of the same State: a scrape between two status answers of the
    same seq read that State (State changes only with an event, each with its own seq)."""
    before = await status_json(runtime)
    m = await scrape(runtime)
    after = await status_json(runtime)
    if before["seq"] != after["seq"]:
        return [f"State moved during the scrape ({before['seq']} → {after['seq']})"]
    return disagreements(after, m)


async def test_metrics_say_what_ctl_status_says(runtime: Runtime, tmp_path: Path) -> None:
    await open_position(runtime)
    await until(lambda: agree(runtime), 15, "metrics against the status")
    # `cockpit ctl status --json` itself, from another process: the figures that do not move with marks
    code, out, err = await cockpit(
        tmp_path, "ctl", "--config", str(tmp_path / "cockpit.toml"), "status", "--json"
    )
    assert code == 0, err
    status = orjson.loads(out)
    assert [(p["symbol"], p["side"], p["qty"]) for p in status["positions"]] == [(BTC, "long", "0.01")]

    async def stable() -> list[str]:
        return disagreements(status, await scrape(runtime), volatile=False)

    await until(stable, 10, "metrics against `cockpit ctl status --json`")
    m = await scrape(runtime)
    engine = runtime.engine
    assert engine is not None
    assert m.get("cockpit_engine_start_time_seconds") == engine.started_at
    events = m.get("cockpit_events_total")
    assert events is not None and 0 < events <= engine.state.seq
    last = m.get("cockpit_last_event_timestamp_seconds")
    assert last is not None and time.time() - 30 < last <= time.time()
    ticks = m.get("cockpit_ticks_total")
    assert ticks is not None and 0 < ticks <= engine.market.ticks_seen
    assert m.get("cockpit_stream_connected", stream="user") == 1.0
    assert {dict(k)["stream"] for k in m.series("cockpit_stream_connected")} == set(engine.state.streams)
    assert m.get("cockpit_stream_stale_seconds", stream="market:market") is not None
    assert m.get("cockpit_open_incidents", severity="critical") == 0.0
    assert m.get("cockpit_notify_target_ok", target="ops") == 1.0
    assert m.get("cockpit_notify_failures_total", target="ops") == 0.0
    assert_no_secret(runtime, m.text)
    # the index links /metrics; anything else is not found
    host, port = runtime.metrics_address or ("", 0)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://{host}:{port}/") as index:
            assert index.status == 200 and 'href="/metrics"' in await index.text()
        async with http.get(f"http://{host}:{port}/secrets") as other:
            assert other.status == 404


# ----- faults show at once ----------------------------------------------------------------------------------
async def test_the_kill_switch_and_a_dropped_stream_show_in_the_next_scrape(
    runtime: Runtime, sim: SimServer
) -> None:
    assert runtime.control is not None
    m = await scrape(runtime)
    assert m.get("cockpit_kill_switch_engaged") == 0.0 and not m.series("cockpit_kill_switch_info")
    user_reconnects = m.get("cockpit_stream_reconnects_total", stream="user")
    assert user_reconnects == 0.0
    engaged = await ask(runtime.control.path, KillSwitch(on=True, by="ctl", cause="metrics test").confirmed())
    m = await scrape(runtime)  # the command answered once engaged: the very next scrape has it
    assert m.get("cockpit_kill_switch_engaged") == 1.0
    # by: who engaged it, as the control socket names its peer (the status says the same)
    assert m.series("cockpit_kill_switch_info") == {(("by", engaged.by), ("cause", "metrics test")): 1.0}
    await until(lambda: agree(runtime), 10, "metrics against the status")

    await sim.inject({"kind": "ws_drop", "refuse_s": 1.5})

    async def down() -> list[str]:
        m = await scrape(runtime)
        user = m.get("cockpit_stream_connected", stream="user")
        return [] if user == 0.0 and m.get("cockpit_health_ok", component="user_stream") == 0.0 else [user]

    await until(down, 10, "the user stream down in the scrape")

    async def back() -> list[str]:
        m = await scrape(runtime)
        count = m.get("cockpit_stream_reconnects_total", stream="user") or 0
        up = m.get("cockpit_stream_connected", stream="user")
        return [] if count >= 1 and up == 1.0 else [f"reconnects {count}, connected {up}"]

    await until(back, 20, "the user stream back, one reconnect more")
    m = await scrape(runtime)
    market = {
        dict(k)["stream"]: v
        for k, v in m.series("cockpit_stream_reconnects_total").items()
        if dict(k)["stream"].startswith("market:")
    }
    assert any(v >= 1 for v in market.values()), market

    # the kill switch and the dropped streams are incidents: the target's deliveries fail (nothing listens)
    async def failing() -> list[str]:
        m = await scrape(runtime)
        ok = m.get("cockpit_notify_target_ok", target="ops")
        failures = m.get("cockpit_notify_failures_total", target="ops") or 0
        return [] if ok == 0.0 and failures >= 1 else [f"ok {ok}, failures {failures}"]

    await until(failing, 20, "the notification target failing")
    m = await scrape(runtime)
    incidents = m.get("cockpit_open_incidents", severity="critical") or 0
    assert incidents + (m.get("cockpit_open_incidents", severity="warning") or 0) >= 1
    assert_no_secret(runtime, m.text)


# ----- the histograms ---------------------------------------------------------------------------------------
def buckets(m: Scrape, name: str, **labels: str) -> list[float]:
    return sorted(float(s.labels["le"]) for s in m.samples if s.name == f"{name}_bucket" and _has(s, labels))


@pytest.mark.parametrize("runtime", [False], indirect=True)  # no notification target: no notifier
async def test_histograms_observe_orders_and_commits_and_outlive_a_restore(runtime: Runtime) -> None:
    await open_position(runtime)
    m = await scrape(runtime)
    orders = m.get("cockpit_order_latency_seconds_count", op="create_order")
    assert orders is not None and orders >= 1
    assert buckets(m, "cockpit_order_latency_seconds", op="create_order") == [
        *ORDER_LATENCY_BUCKETS,
        float("inf"),
    ]
    assert m.get("cockpit_order_latency_seconds_bucket", op="create_order", le="+Inf") == orders
    assert (m.get("cockpit_order_latency_seconds_sum", op="create_order") or 0) > 0
    assert (m.get("cockpit_order_latency_seconds_count", op="fetch_positions") or 0) >= 1  # every call
    commits = m.get("cockpit_db_commit_latency_seconds_count")
    assert commits is not None and commits >= 1
    assert buckets(m, "cockpit_db_commit_latency_seconds") == [*COMMIT_LATENCY_BUCKETS, float("inf")]

    # a restore: the same endpoint goes on with the new engine; the histograms keep their samples
    engine = runtime.engine
    assert engine is not None
    address = runtime.metrics_address
    made = await engine.control(Backup(by="test"))
    assert made.verified
    restored = await runtime.restore(Path(made.path))
    assert runtime.metrics_address == address
    await _until_settled(runtime)

    async def follows() -> list[str]:
        m = await scrape(runtime)
        wrong = []
        if m.get("cockpit_engine_start_time_seconds") != restored.started_at:
            wrong.append("still the old engine")
        if (m.get("cockpit_order_latency_seconds_count", op="create_order") or 0) < orders:
            wrong.append("order latency samples lost")
        if (m.get("cockpit_db_commit_latency_seconds_count") or 0) <= commits:
            wrong.append("no commit of the new engine observed")
        return wrong

    await until(follows, 15, "the endpoint reading the restored engine")

    # without a notifier the open incidents are followed all the same, and there is no target
    assert runtime.engine is not None
    await runtime.engine.control(KillSwitch(on=True, by="test").confirmed())

    async def incident() -> list[str]:
        m = await scrape(runtime)
        open_now = sum(v for v in m.series("cockpit_open_incidents").values())
        return [] if open_now >= 1 else [f"{open_now} open incidents"]

    await until(incident, 10, "the kill switch's incident open")
    m = await scrape(runtime)
    assert not m.series("cockpit_notify_target_ok") and not m.series("cockpit_notify_failures_total")


# ----- exactly the contract's names -------------------------------------------------------------------------
def exposed_names(m: Scrape) -> dict[str, str]:
    """Each name as the contract writes it (a counter's with `_total`, a histogram's base name): its type."""
    names: dict[str, str] = {}
    for family in m.families.values():
        name = family.name + "_total" if family.type == "counter" else family.name
        names[name] = family.type
    return names


def contract_type(name: str) -> str:
    if name in HISTOGRAMS:
        return "histogram"
    return "counter" if name.endswith("_total") else "gauge"


async def test_the_exposition_has_exactly_the_contract_s_names_and_types(runtime: Runtime) -> None:
    assert runtime.control is not None
    for side in ("buy", "buy", "sell", "buy", "buy"):  # five outcomes: the fill ratio appears
        await open_position(runtime, side)
    await ask(runtime.control.path, KillSwitch(on=True, by="ctl").confirmed())  # its info series appears

    async def complete() -> list[str]:
        names = exposed_names(await scrape(runtime))
        return [n for n in METRIC_NAMES if n not in names]

    await until(complete, 15, "every contract name exposed")
    m = await scrape(runtime)
    names = exposed_names(m)
    cockpit_names = {n for n in names if n.startswith("cockpit_")}
    assert sorted(cockpit_names - set(METRIC_NAMES)) == []  # nothing outside the contract
    assert len(set(METRIC_NAMES)) == len(METRIC_NAMES)
    assert {n: names[n] for n in METRIC_NAMES} == {n: contract_type(n) for n in METRIC_NAMES}
    for name in PROCESS_NAMES:
        assert names.get(name) == contract_type(name), name
    # the conventions: units in the names, `_total` only and always on counters
    units = ("_seconds", "_usdt", "_ratio", "_weight", "_requests", "_events", "_bytes", "_fds", "_info")
    counts = ("_positions", "_orders", "_incidents", "_ok", "_connected", "_engaged", "_active", "_band")
    for name, kind in names.items():
        if not name.startswith("cockpit_"):
            continue
        assert (kind == "counter") == name.endswith("_total"), name
        if kind == "gauge":
            assert name.endswith(units + counts) or name in {
                "cockpit_position_size",
                "cockpit_position_ghost",
            }
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        for sample in m.samples:
            if sample.name.startswith(name.removesuffix("_total")):
                assert sample.value == sample.value, f"{sample.name} is NaN"  # never NaN: absent instead
    assert m.get("cockpit_fill_ratio") == 1.0
    assert m.get("cockpit_position_size", symbol=BTC, side="long") == pytest.approx(0.03)
    assert_no_secret(runtime, m.text)


def assert_no_secret(runtime: Runtime, text: str) -> None:
    engine = runtime.engine
    assert engine is not None
    listen_key = getattr(engine.feeds[1], "listen_key", None) if len(engine.feeds) > 1 else None
    for secret in (TEST_KEY, TEST_SECRET, NOTIFY_URL, "hook-secret-token", listen_key):
        if secret:
            assert secret not in text, "a secret in the exposition"


# ----- the address in use -----------------------------------------------------------------------------------
async def test_an_address_in_use_stops_the_start_with_exit_2_naming_metrics_listen(
    sim: SimServer, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, sim, f"127.0.0.1:{port}", notify=False)
        code, out, err = await cockpit(tmp_path, "run", "--config", str(config), "--headless", "--json")
        assert code == 2, err
        assert f"cannot serve metrics on 127.0.0.1:{port}" in err
        assert f'metrics.listen = "127.0.0.1:{port}": the address is already in use' in err
        assert "fix: give this engine its own port in [metrics] listen" in err
        assert out.strip() == ""  # refused before the engine started: not one event

        # in process: the same error, and the Runtime lets go of everything (the account, the socket)
        spec = RunSpec(
            config=load_config(config),
            credentials=Credentials(TEST_KEY, TEST_SECRET),
            session_file=tmp_path / "metrics.duckdb",
            options=EngineOptions(mode="live", **FAST_OPTIONS),  # type: ignore[arg-type]
        )
        runtime = Runtime(spec)
        with pytest.raises(MetricsListenError) as info:
            await runtime.start()
        assert info.value.exit_code == 2 and "metrics.listen" in info.value.render()
        assert runtime.engine is None and runtime.control is None and runtime.metrics_address is None


def test_the_readme_lists_exactly_the_contract_s_metrics_with_their_types() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `cockpit_")]
    documented = {row[1].strip().strip("`"): row[2].strip() for row in rows}
    assert list(documented) == list(METRIC_NAMES)
    assert documented == {name: contract_type(name) for name in METRIC_NAMES}


def test_deploy_metrics_txt_names_exactly_what_the_exporter_serves() -> None:
    """deploy/metrics.txt (the names the alert rules and the dashboard may use, sample names: a histogram's
    `_bucket`, `_sum` and `_count`) is the contract of names.py, written out."""
    listed = (Path(__file__).resolve().parent.parent / "deploy" / "metrics.txt").read_text(encoding="utf-8")
    served = [
        sample
        for name in (*METRIC_NAMES, *PROCESS_NAMES)
        for sample in ([f"{name}_bucket", f"{name}_sum", f"{name}_count"] if name in HISTOGRAMS else [name])
    ]
    assert [line.strip() for line in listed.splitlines() if line.strip()] == served
