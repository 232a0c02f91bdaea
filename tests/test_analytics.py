"""Reports and analytics of real session files: the engine runs against the simulator with injected faults,
stops, and the file it wrote is analysed read-only."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl
import pytest

from cockpit.analytics import (
    build_report,
    equity_curve,
    export_parquet,
    list_sessions,
    open_for_reading,
    render_markdown,
    render_sessions,
    report_command,
    sessions_json,
)
from cockpit.analytics.metrics import union_seconds
from cockpit.core import events as ev
from cockpit.core.commands import KillSwitch, Reconcile, ResetPeak
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.incidents import incidents_from
from cockpit.core.state import fold
from cockpit.engine.orders import submit
from cockpit.exchange.gateway import OrderIntent
from cockpit.sim.server import SimServer
from cockpit.store import SessionFileError, SessionStore, companions
from tests.conftest import EngineRun, stop
from tests.test_engine import BTC, ETH, trade
from tests.waiting import wait_until

TEMPLATE_SECTIONS = (
    "## Incident Report:",
    "**Date**:",
    "**Duration**:",
    "**Severity**:",
    "### Summary",
    "### Timeline",
    "### Root Cause",
    "### Impact",
    "### Resolution",
    "### Prevention",
    "### Lessons Learned",
)


def file_digest(path: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in companions(path) if p.exists())).hexdigest()


async def troubled_session(sim: SimServer, start_engine: Any) -> tuple[Path, EngineRun]:
    """A session with trades, a 1 s socket outage, a 429, a kill switch episode and rejected orders."""
    run: EngineRun = await start_engine()
    engine = run.engine
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.01")
    await trade(sim, symbol="ETHUSDT", side="BUY", quantity="0.5")
    await wait_until(lambda: len(run.of("order.filled")) == 3, what="3 fills")

    await sim.inject({"kind": "ws_drop", "refuse_s": 1.0})
    drop = await run.wait_for("feed.disconnected")
    await run.wait_for(
        "feed.reconnected", within=15, where=lambda e: e.payload["stream"] == drop.payload["stream"]
    )

    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 0.5})
    limited = await run.wait_for("exchange.rate_limited")
    await run.wait_for("exchange.recovered", where=lambda e: e.seq > limited.seq)

    await engine.control(KillSwitch(on=True, cause="analytics drill", by="test"))
    assert await submit(engine, OrderIntent(ETH, "buy", "market", Decimal("0.1"))) is None  # refused by risk
    await engine.control(KillSwitch(on=False, by="test").confirmed())

    await sim.inject({"kind": "reject_orders", "count": 1, "code": -4005})
    assert await submit(engine, OrderIntent(ETH, "buy", "market", Decimal("0.1"))) is None
    ack = await submit(engine, OrderIntent(BTC, "sell", "market", Decimal("0.01")))  # closes BTC
    assert ack is not None
    await wait_until(lambda: len(run.of("order.filled")) == 4, what="the cockpit order's fill")
    await engine.core.drain()
    await stop(run)
    return engine.store.path, run


async def test_report_names_every_injected_incident_at_the_time_it_happened(
    sim: SimServer, start_engine: Any, tmp_path: Path
) -> None:
    path, run = await troubled_session(sim, start_engine)
    events = run.events
    before = file_digest(path)
    report = build_report(path)

    assert report["file"] == str(path) and report["events"] == events[-1].seq
    assert report["start_ts"] == events[0].ts and report["end_ts"] == events[-1].ts
    assert report["severity"] == "critical"  # the kill switch

    # one incident per episode, each from its first symptom, with its time and message
    expected = [(i.first_seq, i.cause, i.start, i.end) for i in incidents_from(events)]
    assert [(i["seq"], i["cause"], i["start_ts"], i["end_ts"]) for i in report["incidents"]] == expected
    causes = [i["cause"] for i in report["incidents"]]
    assert {"exchange:rate_limit", "killswitch", "order:rejected"} <= set(causes)
    outages = [c for c in causes if c.startswith("feed:") and not c.endswith("/stale")]
    assert len({e.payload["stream"] for e in run.of("feed.disconnected")}) > 1
    assert len(outages) == 1  # every stream the one drop closed: one outage, not an incident per stream
    assert len(causes) == len(set(causes))  # minutes apart at most: nothing here happened twice
    assert len(report["incidents"]) < sum(1 for e in events if e.severity != "info")
    kill = next(i for i in report["incidents"] if i["cause"] == "killswitch")
    refused = next(e for e in run.of("order.rejected") if e.source == "risk")
    assert refused.seq in kill["seqs"] and kill["severity"] == "critical"  # refused by it: part of it
    limited = run.of("exchange.rate_limited")[0]
    incident = next(i for i in report["incidents"] if i["kind"] == "exchange.rate_limited")
    assert incident["ts"] == limited.ts and incident["message"] == limited.payload["message"]
    assert report["rate_limited"] == len(run.of("exchange.rate_limited")) >= 1 and report["bans"] == 0
    assert report["exchange_outages"][0]["start_ts"] == limited.ts

    # the socket outage: from the first disconnect to the reconnect of the same stream (about the 1 s refusal)
    drops = report["feed_disconnects"]
    assert {d["stream"] for d in drops} == {e.payload["stream"] for e in run.of("feed.disconnected")}
    for d in drops:
        first = next(e for e in run.of("feed.disconnected") if e.payload["stream"] == d["stream"])
        back = next(
            e for e in run.of("feed.reconnected") if e.payload["stream"] == d["stream"] and e.seq > first.seq
        )
        assert d["start_ts"] == first.ts and d["end_ts"] == back.ts
        assert d["seconds"] == pytest.approx(back.ts - first.ts, abs=1e-3)
        assert 0.9 <= d["seconds"] <= 4.0, d
    assert report["downtime_s"] >= max(d["seconds"] for d in drops)

    # the kill switch episode, its cause and who released it
    engaged, released = run.of("killswitch.engaged")[0], run.of("killswitch.released")[0]
    [episode] = report["kill_switch_episodes"]
    assert episode["start_ts"] == engaged.ts and episode["end_ts"] == released.ts
    assert episode["cause"] == "analytics drill" and episode["released_by"] == "test"
    assert episode["seconds"] == pytest.approx(released.ts - engaged.ts, abs=1e-3)

    # rejections by reason: the risk refusal and the exchange's -4005
    reasons = report["rejections_by_reason"]
    assert sum(reasons.values()) == report["orders_rejected"] == 2
    assert any(r.startswith("kill switch engaged (analytics drill)") for r in reasons)
    exchange_reason = next(e.payload["reason"] for e in run.of("order.rejected") if e.source == "exchange")
    assert reasons[exchange_reason] == 1

    # fills: exactly the simulator's trades, with their realized PnL and commission
    trades = sim.account.trades
    assert report["fills"] == len(trades) == 4
    assert Decimal(report["pnl"]["realized"]) == sum((t.realized_pnl for t in trades), Decimal(0))
    assert Decimal(report["pnl"]["commission"]) == sum((t.commission for t in trades), Decimal(0))
    assert report["orders_filled"] == 1 and report["fill_rate"] == pytest.approx(1 / 3)

    # order latency: submitted -> first answer, for the two orders that reached the exchange
    assert report["latency_samples"] == 2
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"] <= report["latency_p99_ms"] < 5000

    # resolution: the operator's actions and the automatic recoveries
    kinds = {a["kind"] for a in report["resolution"]}
    assert {"operator.action", "killswitch.engaged", "killswitch.released", "exchange.recovered"} <= kinds
    assert "feed.reconnected" in kinds

    # equity: the fold's own figures
    final = fold(events)
    assert report["equity"]["end"] == pytest.approx(float(final.equity or 0))
    assert report["max_drawdown_pct"] is not None and report["max_drawdown_pct"] >= 0

    md = render_markdown(report)
    for section in TEMPLATE_SECTIONS:
        assert section in md, section
    assert "analytics drill" in md and exchange_reason in md and "exchange.rate_limited" in md
    assert report_command(path, "md") == md
    assert orjson.loads(report_command(path, "json"))["incidents"] == report["incidents"]
    with pytest.raises(UsageError, match="unknown report format"):
        report_command(path, "html")

    # the column-wise equity (used for large sessions) agrees with the fold
    with open_for_reading(path) as session:
        by_fold = equity_curve(session, method="fold").points
        by_columns = equity_curve(session, method="columns").points
    assert by_fold.height > 1 and by_fold["seq"].to_list() == by_columns["seq"].to_list()
    for a, b in zip(by_fold["equity"], by_columns["equity"], strict=True):
        assert a == pytest.approx(b, rel=1e-12)
    assert file_digest(path) == before  # only ever read
    assert by_fold["drawdown_pct"].max() == pytest.approx(
        by_columns["drawdown_pct"].max(), rel=1e-9, abs=1e-12
    )


async def test_sessions_are_listed_and_exported_to_parquet(
    sim: SimServer, start_engine: Any, tmp_path: Path
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.02")
    await wait_until(lambda: len(run.of("order.filled")) == 2, what="2 fills")
    await run.wait_for("market.marks")
    await run.engine.core.drain()
    await stop(run)
    path = run.engine.store.path
    (tmp_path / "notes.duckdb").write_text("not a database\n")
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "session-old.duckdb").write_text("skipped\n")

    rows = list_sessions(tmp_path)
    assert [r.path.name for r in rows] == ["notes.duckdb", "session.duckdb"]
    bad, good = rows
    assert not bad.readable and "not a DuckDB file" in (bad.error or "")
    assert good.events == run.events[-1].seq and good.fills == 2
    assert good.start == run.events[0].ts and good.end == run.events[-1].ts
    assert good.exchange == "binanceusdm" and good.mode == "live"
    assert good.realized_pnl == sum((t.realized_pnl for t in sim.account.trades), Decimal(0)) != 0
    assert good.incidents == len(incidents_from(run.events))
    table = render_sessions(rows)
    assert "session.duckdb" in table and "unreadable" in table and "not a DuckDB file" in table
    assert orjson.loads(orjson.dumps(sessions_json(rows)))[1]["fills"] == 2

    out = tmp_path / "export"
    counts = export_parquet(path, out)
    assert set(counts) == {"events", "ticks", "snapshots", "dead_letters", "meta"}
    assert counts["events"] == run.events[-1].seq and counts["ticks"] > 0
    for table_name, n in counts.items():
        frame = pl.read_parquet(out / f"{table_name}.parquet")
        assert frame.height == n, table_name
    events = pl.read_parquet(out / "events.parquet")
    assert events["seq"].to_list() == list(range(1, counts["events"] + 1))
    with pytest.raises(UsageError, match="would overwrite") as refused:
        export_parquet(path, out)
    assert "events.parquet" in refused.value.detail


async def test_a_peak_reset_leaves_the_bad_peaks_drawdown_out_of_the_report(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(reconcile_every_s=3600)
    engine = run.engine
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in engine.state.positions and BTC in engine.state.marks, what="BTC")
    await engine.control(Reconcile(by="test"))  # a clean pass
    mark = engine.state.marks[BTC]
    # 12 345 BTC the exchange never held, from the user stream; reconcile corrects it and drops its peak
    fake = ev.position_changed(symbol=BTC, qty="12345", entry=str(mark - 100), reason="user stream")
    engine.emit("position.changed", fake, "info", "user_stream")
    await engine.control(Reconcile(by="test"))
    await run.wait_for("drawdown.peak_reset")
    # a mark a hundred times too high; the operator resets the peak once the real marks are back
    engine.emit("market.marks", ev.market_marks(marks={BTC: str(mark * 100)}, source="ws"), "info", "feed")
    await wait_until(lambda: engine.state.drawdown_pct > 90, what="the bad peak's drawdown")
    await engine.control(ResetPeak(by="test").confirmed())
    after = engine.state.seq
    await wait_until(lambda: engine.state.seq > after + 10, what="marks after the reset")
    await engine.core.drain()
    live_peak = engine.state.peak_equity
    await stop(run)

    path = engine.store.path
    with SessionStore.open(path, create=False) as store:
        final = fold(store.read_events())
    assert len([e for e in run.events if e.kind == "drawdown.peak_reset"]) == 2
    report = build_report(path)
    assert report["max_drawdown_pct"] is not None and report["max_drawdown_pct"] < 1, report["equity"]
    with open_for_reading(path) as session:
        by_fold = equity_curve(session, method="fold").points
        by_columns = equity_curve(session, method="columns").points
    assert by_fold["seq"].to_list() == by_columns["seq"].to_list()
    for column in ("equity", "peak", "drawdown_pct"):
        for a, b in zip(by_fold[column], by_columns[column], strict=True):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), column
    assert by_columns["drawdown_pct"].max() < 1
    # after the last reset the curve's peak is the live one
    assert by_fold["peak"][-1] == pytest.approx(float(final.peak_equity or 0), rel=1e-12)
    assert live_peak is not None and by_columns["peak"][-1] == pytest.approx(float(live_peak), rel=1e-12)


def test_bad_input_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.duckdb"
    text.write_text("hello\n")
    with pytest.raises(SessionFileError, match="not a DuckDB file"):
        build_report(text)

    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("CREATE TABLE prices (ts DOUBLE, px DOUBLE)")
    con.close()
    with pytest.raises(SessionFileError, match="not a cockpit session") as err:
        build_report(foreign)
    assert err.value.fix

    newer = tmp_path / "newer.duckdb"
    SessionStore.open(newer).close()
    con = duckdb.connect(str(newer))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SessionFileError, match="newer cockpit"):
        export_parquet(newer, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    empty = tmp_path / "empty.duckdb"
    SessionStore.open(empty).close()
    with pytest.raises(CockpitError, match="session has no events"):
        report_command(empty, "md")

    with pytest.raises(SessionFileError, match="no session file"):
        build_report(tmp_path / "missing.duckdb")
    rows = {r.path.name: r for r in list_sessions(tmp_path)}
    assert rows["empty.duckdb"].readable and rows["empty.duckdb"].events == 0
    assert "newer cockpit" in (rows["newer.duckdb"].error or "")
    assert "not a cockpit session" in (rows["foreign.duckdb"].error or "")


def test_a_session_held_by_another_process_points_to_a_backup(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "live.duckdb"
    SessionStore.open(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); "
            "print('ok', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(SessionFileError, match="in use by process") as err:
            build_report(path)
        assert "cockpit backup --config" in err.value.fix
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def test_union_of_outages_counts_overlaps_once() -> None:
    assert union_seconds([(0, 2), (1, 3), (5, 6)]) == 4
    assert union_seconds([]) == 0


# ----- synthetic sessions (large ones are for the timing probe, not the tests) ---------------------------
SOL = "SOL/USDT:USDT"
SYMBOLS = (BTC, ETH, SOL)


def synthetic_session(path: Path, n: int, seed: int = 1) -> None:
    """A session file of `n` events in the engine's schema, hash-chained so that `verify` accepts it: marks
    every 0.1 s, balances, positions, order round trips with fills, 429s, socket drops and incidents."""
    import random

    from cockpit.store import GENESIS, event_hash, payload_text

    SessionStore.open(path, meta={"exchange": "binanceusdm", "mode": "live"}).close()
    rng = random.Random(seed)
    marks = {BTC: 60000.0, ETH: 3000.0, SOL: 150.0}
    qty = dict.fromkeys(SYMBOLS, 0.0)
    wallet = 10000.0
    ts = 1_700_000_000.0
    rows: list[tuple[int, float, str, str, str, str, str]] = []
    prev = GENESIS

    def add(kind: str, severity: str, source: str, payload: dict[str, Any]) -> None:
        nonlocal prev
        seq = len(rows) + 1
        text = payload_text(payload)
        prev = event_hash(prev, seq, ts, kind, severity, source, text)
        rows.append((seq, ts, kind, severity, source, text, prev))

    add("session.started", "info", "engine", {"mode": "live", "exchange": "binanceusdm"})
    add("balance.updated", "info", "exchange", {"wallet": str(wallet), "available": str(wallet)})
    order = 0
    while len(rows) < n:
        ts += 0.1
        r = rng.random()
        if r < 0.6:
            for s in marks:
                marks[s] = round(marks[s] * (1 + rng.gauss(0, 0.0005)), 2)
            add(
                "market.marks",
                "info",
                "feed",
                {"marks": {s: str(v) for s, v in marks.items()}, "source": "ws"},
            )
        elif r < 0.63:
            order += 1
            s = rng.choice(SYMBOLS)
            side = "sell" if qty[s] > 1 else "buy" if qty[s] < -1 else rng.choice(("buy", "sell"))
            cid = f"ck-{order}"
            amount = round(rng.uniform(0.01, 1.0), 2)
            base = {
                "client_order_id": cid,
                "symbol": s,
                "side": side,
                "type": "market",
                "amount": str(amount),
            }
            add("order.submitted", "info", "operator", {**base, "origin": "cockpit"})
            ts += rng.uniform(0.002, 0.05)
            if rng.random() < 0.1:
                add(
                    "order.rejected",
                    "warning",
                    "exchange",
                    {**base, "reason": rng.choice(("-2019", "-4005"))},
                )
                continue
            add("order.accepted", "info", "exchange", {**base, "order_id": str(order), "origin": "cockpit"})
            pnl = round(rng.gauss(0, 5), 4)
            wallet += pnl
            fill = {**base, "trade_id": str(order), "last_qty": str(amount), "last_price": str(marks[s])}
            add(
                "order.filled",
                "info",
                "user_stream",
                {**fill, "realized_pnl": str(pnl), "commission": "0.01"},
            )
            qty[s] += amount if side == "buy" else -amount
            add(
                "position.changed",
                "info",
                "exchange",
                {"symbol": s, "qty": str(round(qty[s], 2)), "entry": str(marks[s])},
            )
            add("balance.updated", "info", "exchange", {"wallet": str(round(wallet, 4)), "available": "1"})
        elif r < 0.9:
            add("ratelimit.updated", "info", "exchange", {"used": rng.randint(0, 2400), "limit": 2400})
        elif r < 0.995:
            add("clock.checked", "info", "clock", {"offset_ms": rng.uniform(-50, 50), "status": "ok"})
        elif r < 0.997:
            add("feed.disconnected", "warning", "feed", {"stream": "market:market", "reason": "1006"})
            ts += rng.uniform(0.2, 3.0)
            add("feed.reconnected", "info", "feed", {"stream": "market:market"})
        elif r < 0.998:
            add("exchange.rate_limited", "warning", "exchange", {"message": "429", "retry_after_s": 1.0})
            ts += 1.0
            add("exchange.recovered", "info", "exchange", {"message": ""})
        else:
            add("alert", "warning", "engine", {"message": "something to look at"})
    rows = rows[:n]
    frame = pl.DataFrame(
        rows, schema=["seq", "ts", "kind", "severity", "source", "payload", "hash"], orient="row"
    )
    con = duckdb.connect(str(path))
    try:
        con.register("frame", frame)
        con.execute("INSERT INTO events SELECT * FROM frame")
    finally:
        con.close()


def test_a_large_session_is_valued_column_wise_and_agrees_with_the_fold(tmp_path: Path) -> None:
    from cockpit.analytics.metrics import FOLD_LIMIT
    from cockpit.store import verify

    path = tmp_path / "big.duckdb"
    synthetic_session(path, 40_000)
    assert verify(path).ok
    report = build_report(path)
    assert report["equity"]["method"] == "columns" and report["events"] == 40_000
    with open_for_reading(path) as session:
        by_fold = equity_curve(session, method="fold").points
    assert by_fold.height > FOLD_LIMIT // 2
    assert report["equity"]["points"] == by_fold.height
    assert report["max_drawdown_pct"] == pytest.approx(by_fold["drawdown_pct"].max(), abs=1e-4)
    assert report["equity"]["end"] == pytest.approx(by_fold["equity"][-1], rel=1e-12)
    assert report["fills"] == report["orders_filled"]  # every accepted order filled at once
    assert report["latency_samples"] == report["orders_filled"] + report["orders_rejected"]
    assert all(d["end"] is not None for d in report["feed_disconnects"])


def test_a_real_drawdown_before_a_bad_sample_stays_in_the_report_after_the_reset() -> None:
    """A real 20 % loss, then a mark a hundred times too high, then the operator's reset at the equity of
    the moment: the report keeps the 20 %; the points measured from the bad peak use the real one."""
    import polars as pl

    from cockpit.analytics.metrics import _honour_resets

    equity = [10_000.0, 9_000.0, 8_000.0, 1_000_000.0, 8_000.0, 8_100.0]
    peaks = [10_000.0, 10_000.0, 10_000.0, 1_000_000.0, 1_000_000.0, 8_100.0]
    drawdown = [(p - e) / p * 100 for p, e in zip(peaks, equity, strict=True)]
    curve = pl.DataFrame(
        {"seq": [1, 2, 3, 4, 5, 7], "equity": equity, "peak": peaks, "drawdown_pct": drawdown}
    )

    def reset(by: str, new: float) -> pl.DataFrame:
        return pl.DataFrame({"seq": [6], "by": [by], "old_peak": [1_000_000.0], "new_peak": [new]})

    by_operator = _honour_resets(curve, reset("ctl", 8_000.0))
    assert by_operator["drawdown_pct"].round(6).to_list() == [0.0, 10.0, 20.0, 0.0, 20.0, 0.0]
    assert by_operator["peak"].to_list() == [10_000.0] * 5 + [8_100.0]
    # a reconcile goes back to the peak measured on a reconciled account: every point above it was the lie
    by_reconcile = _honour_resets(curve, reset("reconcile", 10_000.0))
    assert by_reconcile["drawdown_pct"].round(6).to_list() == [0.0, 10.0, 20.0, 0.0, 20.0, 0.0]
