"""Hostile values: the fold never raises, State keeps only plausible figures, the core loses no seq.

A NaN, an Infinity, a 1e400, a wrong type or a missing key in any event's payload: `apply` returns, the event
changes nothing but the refusal count and a critical alert, and the next good event folds as if the bad one
had never come (a property test over every kind, fuzzed). Through the engine (simulator, real DuckDB file): a
bad value never stops it, never takes a seq that the file does not hold, and what it printed is on disk.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
from collections.abc import Mapping
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.core import events as ev
from cockpit.core.commands import KillSwitch
from cockpit.core.domain import EVENT_KINDS, Event
from cockpit.core.state import apply, fold
from cockpit.engine.account_files import AccountFiles
from cockpit.engine.core import EventNotRecorded
from cockpit.store import SessionStore
from tests.conftest import EngineRun, stop
from tests.test_events import SAMPLES
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"

# a session with a wallet, a position, its mark and an open order: every figure a bad value could poison
GOOD_START = [
    Event(1, 1.0, "balance.updated", "info", "exchange", ev.balance_updated(wallet="1000", available="900")),
    Event(2, 2.0, "market.marks", "info", "feed", ev.market_marks(marks={BTC: "60000"}, source="ws")),
    Event(
        3,
        3.0,
        "position.changed",
        "info",
        "exchange",
        ev.position_changed(symbol=BTC, qty="0.02", entry="59000", leverage=5, reason="stream"),
    ),
    Event(4, 4.0, "order.submitted", "info", "engine", dict(SAMPLES["order.submitted"][0])),
]
START = fold(GOOD_START)


def good_tail(after: int) -> list[Event]:
    """Ordinary events after the hostile one: a mark run (the fold's fast path), a wallet, a position."""
    marks = [
        Event(
            after + i, after + i, "market.marks", "info", "feed", ev.market_marks(marks={BTC: m}, source="ws")
        )
        for i, m in enumerate(("60100", "59900", "60050"), start=1)
    ]
    return [
        *marks,
        Event(after + 4, after + 4, "balance.updated", "info", "exchange", ev.balance_updated(wallet="1001")),
        Event(
            after + 5,
            after + 5,
            "position.changed",
            "info",
            "exchange",
            ev.position_changed(symbol=BTC, qty="0.03", entry="59500", reason="stream"),
        ),
    ]


HOSTILE = st.one_of(
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            "NaN",
            "sNaN",
            "Infinity",
            "-Infinity",
            "1e308",
            "1e400",
            1e308,
            "1e999999999",
            10**40,
            "-5",
            "0",
            0,
            -1e18,
            "",
            "abc",
            None,
            True,
            [],
            [1, "x"],
            {},
            {"x": math.nan},
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(max_size=6),
)


@st.composite
def hostile_payload(draw: st.DrawFn, kind: str) -> Any:
    """One of the kind's real payloads with values replaced, keys dropped, nested values poisoned."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from([None, [], "text", 5, {}]))  # not a mapping at all
    payload = dict(draw(st.sampled_from(SAMPLES[kind])))
    for key in list(payload):
        action = draw(st.sampled_from(("keep", "keep", "drop", "hostile", "nested")))
        if action == "drop":
            del payload[key]
        elif action == "hostile":
            payload[key] = draw(HOSTILE)
        elif action == "nested" and isinstance(payload[key], dict) and payload[key]:
            inner = dict(payload[key])
            inner[draw(st.sampled_from(sorted(inner)))] = draw(HOSTILE)
            payload[key] = inner
    return payload


def insane(value: Any, where: str = "state") -> list[str]:
    """Every figure in State that is not a plausible number (or a wrongly typed one)."""
    if isinstance(value, Decimal):
        ok = value.is_finite() and value.adjusted() <= 40
        return [] if ok else [f"{where} = {value!r}"]
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where} = {value!r}"]
    if isinstance(value, str | int | bool) or value is None:
        return []
    if dataclasses.is_dataclass(value):
        return [
            p for f in dataclasses.fields(value) for p in insane(getattr(value, f.name), f"{where}.{f.name}")
        ]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in insane(v, f"{where}[{k!r}]")]
    if isinstance(value, tuple):
        return [p for i, v in enumerate(value[-3:]) for p in insane(v, f"{where}[{i}]")]
    return [f"{where} has a {type(value).__name__}"]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_payload_of_any_kind_makes_the_fold_raise_or_poisons_state(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(EVENT_KINDS)))
    severity = data.draw(st.sampled_from(("info", "warning", "critical")))
    hostile = Event(5, 5.0, kind, severity, "exchange", data.draw(hostile_payload(kind)))

    after = apply(START, hostile)  # returns: never raises

    assert after.seq == 5 and not insane(after), insane(after)
    assert after.equity is None or after.drawdown_pct >= 0
    tail = good_tail(5)
    end = reduce(apply, tail, after)
    assert end.counters.refused == after.counters.refused, "a good event after a bad one was refused"
    assert not insane(end) and end.equity is not None
    assert end.positions[BTC].qty == Decimal("0.03") and end.wallet == Decimal("1001")
    assert fold([*GOOD_START, hostile, *tail]) == end  # the fast fold agrees, to the digit


def test_a_refused_event_changes_nothing_but_says_so() -> None:
    for payload in ({"marks": {BTC: "NaN"}, "source": "ws"}, {"marks": {BTC: "1e308"}, "source": "ws"}):
        bad = Event(5, 5.0, "market.marks", "info", "feed", payload)
        after = apply(START, bad)
        assert after.marks == START.marks and after.equity == START.equity
        assert after.peak_equity == START.peak_equity, "a 1e308 mark never becomes the peak"
        assert after.counters.refused == 1 and after.alerts[-1].severity == "critical"
        assert "event 5 (market.marks) refused" in after.alerts[-1].message
        assert fold([*GOOD_START, bad]) == after
    wallet = Event(5, 5.0, "balance.updated", "info", "exchange", {"wallet": "1e400", "available": "1"})
    assert apply(START, wallet).wallet == Decimal(1000)


@pytest.mark.parametrize("bad", ["NaN", "1e308", "-5", True, None])
def test_a_refused_mark_inside_a_run_leaves_the_run_s_other_marks_as_apply_does(bad: Any) -> None:
    """The fast fold believes marks as it reads them and undoes a whole run when one is refused: the marks
    before the bad one in its update, and the updates before it in the run, end exactly as `apply` leaves
    them (the refused update changes no mark; the ones around it all count)."""
    eth = "ETH/USDT:USDT"

    def marks(seq: int, **by_symbol: Any) -> Event:
        payload = ev.market_marks(
            marks={BTC if k == "btc" else eth: v for k, v in by_symbol.items()}, source="ws"
        )
        return Event(seq, float(seq), "market.marks", "info", "feed", dict(payload))

    run = [
        marks(5, btc="60100"),
        marks(6, eth="3100", btc=bad),  # the bad mark after a good one in the same update
        marks(7, btc="60200"),
        marks(8, eth=bad),
        marks(9, eth="3050"),
    ]
    expected = reduce(apply, run, START)
    assert expected.marks[BTC] == Decimal("60200") and expected.marks[eth] == Decimal("3050")
    assert expected.counters.refused == 2 and expected.mark_ts[eth] == 9.0
    assert fold([*GOOD_START, *run]) == expected
    cut = fold(run[:2], fold(GOOD_START))  # a run cut where the bad one is
    assert eth not in cut.marks and cut == reduce(apply, run[:2], START)


# ----- through the engine ------------------------------------------------------------------------------
async def test_a_nan_mark_neither_stops_the_engine_nor_loses_a_seq(start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    engine = run.engine
    await run.wait_for("reconcile.done")
    before = engine.state.seq

    engine.emit("market.marks", ev.market_marks(marks={BTC: "NaN"}, source="ws"), "info", "feed")
    engine.emit("alert", ev.alert(message="after the NaN"), "warning", "engine")
    # a payload the store cannot take (not JSON): refused, its seq stays free, said in its place
    engine.emit("alert", ev.alert(message="not JSON", removed=[{1, 2}]), "warning", "engine")  # type: ignore[list-item]
    engine.emit("alert", ev.alert(message="after the set"), "warning", "engine")
    await run.wait_for("alert", where=lambda e: e.payload["message"] == "after the set")

    assert not engine.core.store_failed and not engine.stopped.is_set()
    assert engine.core.refused == 2 and engine.state.counters.refused == 2
    stored = engine.store.read_events(after_seq=before)
    assert [e.seq for e in stored] == list(range(before + 1, before + 1 + len(stored))), "a seq was lost"
    kinds = [(e.kind, e.payload.get("message", "")) for e in stored]
    assert kinds[:4] == [
        ("market.marks", ""),
        ("alert", "after the NaN"),
        ("event.refused", kinds[2][1]),
        ("alert", "after the set"),
    ]
    assert "not JSON" in stored[2].payload["reason"] and stored[2].severity == "critical"
    # every event printed (delivered) is on disk under its seq, the refused one's alert included
    on_disk = {e.seq: e.kind for e in engine.store.read_events()}
    for event in run.events:
        assert event.seq == 0 or on_disk.get(event.seq) == event.kind, event
    refusal = next(a for a in engine.state.alerts if "(market.marks) refused" in a.message)
    assert on_disk[refusal.seq] == "market.marks"
    with pytest.raises(EventNotRecorded, match="alert was refused"):  # what needed it must not go ahead
        await engine.record("alert", ev.alert(message="x", removed=[{3}]), "warning", "engine")  # type: ignore[list-item]
    assert engine.store.read_events()[-1].kind == "event.refused" and not engine.core.store_failed
    await wait_until(lambda: engine.state.seq > before + 5, within=10, what="the engine going on")
    await stop(run)
    with SessionStore.open(engine.session_file, create=False) as store:
        assert store.read_events()[-1].kind == "session.stopped"


# ----- disk trouble: what is printed is what is on disk --------------------------------------------------
async def store_fails(run: EngineRun, hook: dict[str, bool]) -> None:
    """The engine's session store fails for good (the store's fault hook: a full disk cannot be produced in
    this sandbox) while the account's killswitch.json cannot be replaced either (a directory stands where its
    temporary file goes); the engine engages the kill switch in memory, leaves its note and stops."""
    engine = run.engine
    state_file = engine.account.kill_switch_file
    blocker = state_file.with_name(f".{state_file.name}.{os.getpid()}.tmp")
    blocker.mkdir()
    hook["on"] = True
    engine.emit("alert", ev.alert(message="a write that will fail"), "warning", "engine")
    await run.wait_for("killswitch.engaged", where=lambda e: e.payload.get("persisted") is False)
    await wait_until(lambda: engine.stopped.is_set(), within=10, what="the engine stopping")
    hook["on"] = False
    await stop(run)
    blocker.rmdir()


async def start_failable(start_engine: Any, **options: Any) -> tuple[EngineRun, dict[str, bool]]:
    """An engine whose store's SQL fails (OSError 28) once `hook["on"]` is set."""
    failing = {"on": False}

    def hook(sql: str) -> None:
        if failing["on"]:
            raise OSError(28, "No space left on device")

    run: EngineRun = await start_engine(
        store_options={"retry_delays": (0.0, 0.05, 0.1, 0.2, 0.4), "fault_hook": hook}, **options
    )
    await run.wait_for("reconcile.done")
    return run, failing


def engaged_by_the_store(run: EngineRun) -> None:
    """The kill switch is engaged because the last run's store failed, and the session file says so."""
    kill = run.engine.state.kill_switch
    assert kill.engaged and kill.by == "store", kill
    assert "session store failed" in kill.cause and "No space left on device" in kill.cause
    recorded = [e for e in run.engine.store.read_events() if e.kind == "killswitch.engaged"]
    assert recorded and recorded[-1].payload["by"] == "store" and recorded[-1].payload["carried_over"] is True
    assert not [e for e in run.engine.store.read_events() if e.kind == "killswitch.released"]
    assert orjson.loads(run.engine.account.kill_switch_file.read_bytes())["engaged"] is True
    assert run.engine.account.store_failure_note() is None  # said once: a third start does not say it again


async def test_a_full_disk_prints_nothing_the_file_does_not_hold_and_the_next_start_is_kill_switched(
    start_engine: Any,
) -> None:
    run, failing = await start_failable(start_engine)
    engine = run.engine
    await store_fails(run, failing)

    errors = run.of("db.error")
    kill = run.of("killswitch.engaged")[-1]
    assert [e.payload["attempt"] for e in errors] == [1, 2, 3, 4, 5, 6] and errors[-1].payload["final"]
    assert all(e.seq == 0 for e in [*errors, kill]), "news about the store is shown as not in the file"
    assert kill.payload["persisted"] is False
    with SessionStore.open(engine.session_file, create=False) as store:
        on_disk = {e.seq: e for e in store.read_events()}
    printed = [e for e in run.events if e.seq]
    assert len({e.seq for e in printed}) == len(printed), "an event printed twice"
    for event in printed:
        assert event.seq in on_disk and on_disk[event.seq].payload == event.payload, event
    assert not orjson.loads(engine.account.kill_switch_file.read_bytes())["engaged"]  # it could not say so

    # The next start, on a clean disk: the kill switch is engaged again, recorded, and says why.
    again: EngineRun = await start_engine()
    engaged_by_the_store(again)
    await again.wait_for("reconcile.done")
    released = await again.engine.control(KillSwitch(on=False, by="test").confirmed())
    assert not released.engaged  # its cause (the store) is gone: the operator can release it


async def test_a_note_whose_space_cannot_be_reserved_again_still_engages_the_kill_switch(
    start_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, failing = await start_failable(start_engine)
    await store_fails(run, failing)

    def eio(self: AccountFiles) -> None:  # the disk answers the next start's fsync with EIO
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(AccountFiles, "reserve_store_note", eio)
    again: EngineRun = await start_engine()
    engaged_by_the_store(again)
    said = [e for e in again.engine.store.read_events() if e.kind == "alert"]
    assert any("Input/output error" in e.payload["message"] for e in said), "the reservation's failure"


async def test_a_store_failure_after_a_release_elsewhere_is_not_undone_by_an_older_session_file(
    start_engine: Any, tmp_path: Path
) -> None:
    # Monday engages the kill switch and stops; Tuesday (a new file, the same account) releases it, then its
    # store fails: killswitch.json still says released, its `updated` newer than Monday's engagement.
    monday: EngineRun = await start_engine(session=tmp_path / "monday.duckdb")
    await monday.wait_for("reconcile.done")
    await monday.engine.control(KillSwitch(on=True, cause="operator says stop", by="test"))
    await stop(monday)
    tuesday, failing = await start_failable(start_engine, session=tmp_path / "tuesday.duckdb")
    assert tuesday.engine.state.kill_switch.engaged  # carried over from Monday
    await tuesday.engine.control(KillSwitch(on=False, by="test").confirmed())
    await store_fails(tuesday, failing)

    again: EngineRun = await start_engine(session=tmp_path / "monday.duckdb")  # Monday's file: engaged
    engaged_by_the_store(again)
