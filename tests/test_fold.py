"""The fold: `fold` (what restore, replay and analytics use) gives exactly what applying events one by one
gives, and the valuation it keeps is the one a trader would compute by hand."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cockpit.core.domain import ROUTINE_KEPT, ROUTINE_KINDS, Event
from cockpit.core.snapshot import state_from_json, state_to_json
from cockpit.core.state import State, apply, fold
from cockpit.replay.session import CHECKPOINT_EVERY, ReplaySession
from cockpit.store import SessionStore

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")


def write_session(path: Path, events: list[Event]) -> Path:
    with SessionStore.open(path) as store:
        store.start()
        for event in events:
            store.append(event)
        store.close()
    return path


def random_events(rng: random.Random, n: int, wallet_from: int = 1) -> list[Event]:
    """Mostly marks (as live sessions are), with positions opening, flipping and closing, wallet changes,
    warnings among the marks, prices written with varying precision (1.0 vs 1.00) and other events."""
    events: list[Event] = []
    for seq in range(1, n + 1):
        ts = 1.79e9 + seq * 0.25
        roll = rng.random()
        symbol = rng.choice(SYMBOLS)
        payload: dict[str, Any]
        if seq == wallet_from or (seq > wallet_from and roll < 0.02):  # before it: marks, no valuation
            kind, payload = (
                "balance.updated",
                {"wallet": f"{rng.randint(5_000, 20_000)}.{rng.randint(0, 99)}"},
            )
        elif roll < 0.08:
            qty = rng.choice(["0", "0.001", "-0.5", "2", "-3.25", "0"])
            kind, payload = (
                "position.changed",
                {"symbol": symbol, "qty": qty, "entry": f"{rng.randint(90, 110)}.5"},
            )
            if rng.random() < 0.3:  # from REST: leverage and liquidation ("0": none at this margin)
                payload.update(leverage=rng.choice([5, 10]), liquidation=rng.choice(["0", "61.25"]))
        elif roll < 0.085:
            kind, payload = "market.info", {"markets": {symbol: {"price_step": "0.01", "amount_step": "0.1"}}}
        elif roll < 0.09:
            kind, payload = "feed.stale", {"stream": "market", "silent_s": 6.0}
        elif roll < 0.10:
            kind, payload = "clock.checked", {"offset_ms": rng.uniform(-50, 50), "status": "ok"}
        else:
            kind = "market.marks"
            picked = rng.sample(SYMBOLS, rng.randint(1, 3))
            digits = rng.choice([1, 2, 4])
            payload = {"marks": {s: f"{rng.uniform(80, 120):.{digits}f}" for s in picked}}
            if rng.random() < 0.05:
                payload["marks"] = {picked[0]: "100.0" if rng.random() < 0.5 else "100.00"}
            if rng.random() < 0.1:
                payload["source"] = "rest"
        severity = "warning" if kind == "market.marks" and rng.random() < 0.02 else "info"
        if kind == "feed.stale":
            severity = "warning"
        events.append(Event(seq, ts, kind, severity, "test", payload))  # type: ignore[arg-type]
    return events


@pytest.mark.parametrize("seed", range(8))
def test_fold_is_exactly_applying_events_one_by_one(seed: int) -> None:
    events = random_events(random.Random(seed), 3000, wallet_from=1 if seed % 2 else 300)
    one_by_one = [State()]
    for event in events:
        one_by_one.append(apply(one_by_one[-1], event))
    assert fold(events) == one_by_one[-1]
    assert state_to_json(fold(events)) == state_to_json(one_by_one[-1])  # the same digits, not just values
    # the same digits after every few events, however the runs of marks are cut
    state, done = State(), 0
    for upto in range(1, len(events) + 1, 7):
        state, done = fold(events[done:upto], state), upto
        assert state_to_json(state) == state_to_json(one_by_one[upto])
    # from any point, on any split, as restore (a snapshot + the tail) and replay (in pieces) fold
    rng = random.Random(seed)
    for _ in range(20):
        cut = rng.randint(0, len(events))
        assert state_to_json(fold(events[cut:], fold(events[:cut]))) == state_to_json(one_by_one[-1])


def test_the_valuation_is_wallet_plus_unrealized_and_the_peak_is_the_highest_equity_seen() -> None:
    events = random_events(random.Random(42), 4000)
    state, peak = State(), None
    for event in events:
        state = apply(state, event)
        if state.wallet is None:
            continue
        expected = state.wallet + sum(
            (p.qty * (p.mark - p.entry) for p in state.positions.values() if p.mark is not None), Decimal(0)
        )
        assert state.equity == expected
        peak = expected if peak is None else max(peak, expected)
        assert state.peak_equity == peak
        assert state.drawdown_pct == ((peak - expected) / peak * 100 if peak > 0 else 0)
        for (
            symbol,
            position,
        ) in state.positions.items():  # a position shows its symbol's latest mark, as written
            assert str(position.mark) == str(state.marks.get(symbol, position.mark))


def test_replay_reaches_the_same_state_at_every_checkpoint_and_seek(tmp_path: Path) -> None:
    events = random_events(random.Random(7), 2 * CHECKPOINT_EVERY + 500, wallet_from=100)
    path = write_session(tmp_path / "s.duckdb", events)
    with SessionStore.open(path, create=False) as store:
        stored = store.read_events()  # payload keys come back sorted, as they are written
    expected = {0: State()}
    state = State()
    for event in stored:
        state = apply(state, event)
        expected[event.seq] = state
    session = ReplaySession.open(path)
    try:
        while session.position < session.total:
            session.step(777)  # pieces that straddle checkpoints
            assert session.state == expected[session.position]
        assert sorted(session._checkpoints) == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]  # seeks stay short
        for position in (CHECKPOINT_EVERY, CHECKPOINT_EVERY + 1, 2 * CHECKPOINT_EVERY - 1, 3, 0, len(events)):
            session.seek(position)
            assert state_to_json(session.state) == state_to_json(expected[position])
    finally:
        session.close()


def test_a_replay_step_returns_what_the_event_log_keeps(tmp_path: Path) -> None:
    """A step folds every event but hands back only what the event log would keep of them: every event that
    is not routine, and the last ROUTINE_KEPT routine ones (the older marks are folded from their rows)."""
    events = random_events(random.Random(3), 3 * ROUTINE_KEPT + 400)
    path = write_session(tmp_path / "s.duckdb", events)
    with SessionStore.open(path, create=False) as store:
        stored = store.read_events()
    session = ReplaySession.open(path)
    try:
        shown = session.step(len(stored))
    finally:
        session.close()
    routine = [e for e in stored if e.kind in ROUTINE_KINDS]
    assert len(routine) > ROUTINE_KEPT  # the case where some are left out
    assert [e for e in shown if e.kind not in ROUTINE_KINDS] == [
        e for e in stored if e.kind not in ROUTINE_KINDS
    ]
    assert [e for e in shown if e.kind in ROUTINE_KINDS][-ROUTINE_KEPT:] == routine[-ROUTINE_KEPT:]
    assert [e.seq for e in shown] == sorted(e.seq for e in shown)
    assert session.state == fold(stored)


# ----- what the Positions pane reads: leverage, liquidation, precision, mark times --------------------------
def ev(seq: int, kind: str, severity: str = "info", **payload: Any) -> Event:
    return Event(seq, 1.79e9 + seq, kind, severity, "test", payload)  # type: ignore[arg-type]


BTC = SYMBOLS[0]


def test_leverage_and_liquidation_are_shown_again_after_a_position_re_opens() -> None:
    """REST (reconcile) carries leverage and liquidation; the user stream does not. A close and a re-open
    through the stream keeps the symbol's leverage (an account setting); the liquidation of a different size
    is unknown until the exchange says it again, and "0" (none at this margin) is kept, not dropped."""
    events = [
        ev(1, "position.changed", symbol=BTC, qty="0.01", entry="64000", leverage=10, liquidation="58000.5"),
        ev(2, "position.changed", symbol=BTC, qty="0.01", entry="64000", reason="user stream, same size"),
        ev(3, "position.changed", symbol=BTC, qty="0", entry="0"),
        ev(4, "position.changed", symbol=BTC, qty="0.02", entry="64100", reason="re-opened (user stream)"),
    ]
    states = [State()]
    for e in events:
        states.append(apply(states[-1], e))
    assert states[2].positions[BTC].leverage == 10 and states[2].positions[BTC].liquidation == Decimal(
        "58000.5"
    )
    assert BTC not in states[3].positions and states[3].leverages == {BTC: 10}
    reopened = states[4].positions[BTC]
    assert reopened.leverage == 10  # was None: the re-open's payload has no leverage
    assert reopened.liquidation is None  # a new size: not the old position's price
    again = apply(
        states[4], ev(5, "position.changed", symbol=BTC, qty="0.02", entry="64100", liquidation="0")
    )
    assert again.positions[BTC].liquidation == Decimal(0)
    assert fold(events) == states[-1]


def test_precision_stale_threshold_and_mark_times_survive_snapshot_and_restore() -> None:
    events = [
        ev(1, "market.info", markets={BTC: {"price_step": "0.1", "amount_step": "0.001"}}, stale_after_s=7.5),
        ev(2, "market.marks", marks={BTC: "64000.1"}),
        ev(3, "market.info", markets={"XRP/USDT:USDT": {"price_step": "0.0001", "amount_step": "0.1"}}),
        ev(4, "market.marks", marks={"XRP/USDT:USDT": "0.6123"}),
        ev(5, "market.marks", marks={BTC: "64000.2"}),
    ]
    live = State()
    for e in events:
        live = apply(live, e)
    assert live.markets[BTC].price_step == Decimal("0.1") and live.markets[BTC].amount_step == Decimal(
        "0.001"
    )
    assert live.markets["XRP/USDT:USDT"].price_step == Decimal("0.0001")
    assert live.stale_after_s == 7.5
    assert live.mark_ts == {BTC: events[4].ts, "XRP/USDT:USDT": events[3].ts}
    for cut in range(len(events) + 1):
        restored = fold(events[cut:], state_from_json(state_to_json(fold(events[:cut]))))
        assert restored == live
    assert state_from_json(state_to_json(live)) == live


def test_a_deleted_session_file_stays_deleted_until_a_restore_or_a_new_start() -> None:
    """A write that succeeds into the unlinked file, a retried write or a backup never turns Health back to ok
    while the session path no longer names the engine's file."""
    from cockpit.core import events as ev

    tape: list[Event] = []

    def at(kind: str, payload: Any) -> State:
        tape.append(Event(len(tape) + 1, 1.79e9 + len(tape), kind, "info", "engine", payload))
        return fold(tape)

    at(
        "session.started",
        ev.session_started(mode="demo", exchange="x", session_file="s", restored=False, restored_seq=0),
    )
    gone = at(
        "health.changed", ev.health_changed(item="database", status="deleted", message="session file deleted")
    )
    assert gone.health_of("database").status == "deleted"
    after = [
        at("db.error", ev.db_error(message="disk full", attempt=1, retry_in_s=0.5, final=False)),
        at("health.changed", ev.health_changed(item="database", status="ok", message="writes recovered")),
        at(
            "db.backup",
            ev.db_backup(
                path="b", size_bytes=1, verified=True, last_seq=4, seconds=0.1, by="engine", message="m"
            ),
        ),
    ]
    assert [s.health_of("database").status for s in after] == ["deleted"] * 3
    restored = at("db.restored", ev.db_restored(backup="b", kept_aside=None, restored_seq=5, message="m"))
    assert restored.health_of("database").status == "ok"
    at(
        "health.changed",
        ev.health_changed(item="database", status="replaced", message="session file replaced"),
    )
    again = at(
        "session.started",
        ev.session_started(mode="demo", exchange="x", session_file="s", restored=True, restored_seq=7),
    )
    assert again.health_of("database").status == "ok"  # a start on the last backup: the file is open again
