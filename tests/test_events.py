"""Typed event payloads (cockpit/core/events.py): every kind has its TypedDict and its builder, emit refuses a
kind outside the vocabulary, the readers read only keys their kinds have, and `order.filled` in the shape both
builders now share folds exactly as the two shapes that are on disk in older session files."""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import re
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cockpit.core import events as ev
from cockpit.core.domain import EVENT_KINDS, Event, Severity
from cockpit.core.incidents import incidents_from
from cockpit.core.state import HANDLERS, State, apply, fold
from cockpit.store import SessionStore

ROOT = Path(__file__).resolve().parent.parent


def builder_of(kind: str) -> Callable[..., Any]:
    builder = getattr(ev, kind.replace(".", "_"), None)
    assert callable(builder), f"no builder events.{kind.replace('.', '_')} for {kind}"
    return builder


def keys_of(typed: Any) -> set[str]:
    """The keys of a TypedDict, or of any member of a union of them."""
    if isinstance(typed, types.UnionType):
        return set().union(*(keys_of(t) for t in typed.__args__))
    return set(typed.__required_keys__) | set(typed.__optional_keys__)


# ----- one TypedDict and one builder per kind ------------------------------------------------------------
def test_every_kind_has_its_typeddict_and_its_builder() -> None:
    assert list(ev.PAYLOADS) == list(EVENT_KINDS)
    for kind, typed in ev.PAYLOADS.items():
        assert typing.is_typeddict(typed), kind
        assert typing.get_type_hints(builder_of(kind))["return"] is typed, kind
    assert set(typing.get_args(ev.Payload)) == set(ev.PAYLOADS.values())


ORDER = {
    "client_order_id": "ck-1",
    "symbol": "BTC/USDT:USDT",
    "side": "buy",
    "type": "limit",
    "amount": "0.01",
}
REPORT = ev.order_report(
    client_order_id="x-7",
    order_id="77",
    symbol="BTC/USDT:USDT",
    side="buy",
    type="limit",
    amount="0.5",
    price="64000",
    filled="0",
    average="0",
    reduce_only=False,
    origin="external",
    status="new",
)
FILL = {
    **ORDER,
    "order_id": "11",
    "origin": "cockpit",
    "trade_id": "t-1",
    "last_qty": "0.01",
    "last_price": "64000.5",
    "commission": "0.01",
    "realized_pnl": "0",
    "trade_time_ms": 1_790_000_000_000,
}
CHECKED = ev.clock_checked(
    offset_ms=1.5,
    status="ok",
    rtt_ms=20.0,
    error_ms=10.0,
    warn_ms=500,
    kill_ms=2000,
    samples=4,
    discarded=0,
    filtered=True,
    method="ntp",
)
COUNTS = {"canceled": 1, "already_filled": 0, "cancel_failed": 0, "flagged": 0, "symbols": ["BTC/USDT:USDT"]}

# every kind built twice where it has optional keys: with none of them, then with all of them
SAMPLES: dict[str, list[Any]] = {
    "session.started": [
        ev.session_started(
            mode="live", exchange="binanceusdm", session_file="s", restored=False, restored_seq=0
        ),
        ev.session_started(
            mode="live",
            exchange="binanceusdm",
            session_file="t",
            restored=True,
            restored_seq=0,
            continues="s",
            session_began=1.0,
        ),
    ],
    "session.stopped": [ev.session_stopped(seq=9)],
    "session.rotated": [ev.session_rotated(next_file="b.duckdb", reason="daily", last_seq=9, message="m")],
    "feed.connected": [
        ev.feed_connected(stream="user", feed="user"),
        ev.feed_connected(stream="user", feed="user", down_for_s=1.5),
    ],
    "feed.reconnected": [ev.feed_reconnected(stream="market:public", feed="market:public", down_for_s=3.0)],
    "feed.disconnected": [
        ev.feed_disconnected(
            stream="user",
            feed="user",
            attempt=1,
            failures=0,
            retry_in_s=2.0,
            reason="closed",
            close_code=None,
            down_for_s=None,
        )
    ],
    "feed.stale": [
        ev.feed_stale(stream="market:market/x", feed="market:market", silent_s=6.0, reason="silent")
    ],
    "market.marks": [ev.market_marks(marks={"BTC/USDT:USDT": "64000.5"}, source="ws")],
    "market.info": [
        ev.market_info(markets={}),
        ev.market_info(
            markets={"BTC/USDT:USDT": {"price_step": "0.1", "amount_step": "0.001"}}, stale_after_s=5
        ),
    ],
    "exchange.rate_limited": [
        ev.exchange_rate_limited(op="fetch_positions", message="429", notices=1),
        ev.exchange_rate_limited(
            op="x", message="429", notices=3, retry_after_s=1.0, error_class="rate_limit"
        ),
    ],
    "exchange.banned": [
        ev.exchange_banned(op="x", message="418", notices=1, retry_after_s=60.0, error_class="rate_limit")
    ],
    "exchange.maintenance": [
        ev.exchange_maintenance(op="x", message="503", notices=1, retry_after_s=5.0, error_class="transient")
    ],
    "exchange.auth_failed": [
        ev.exchange_auth_failed(op="x", message="-2015", fix="check", retry_after_s=1.0, error_class="auth")
    ],
    "exchange.recovered": [
        ev.exchange_recovered(op="x", message="back", held_notices={}),
        ev.exchange_recovered(
            op="x", message="back", held_notices={"rate_limited": 2}, retry_after_s=1.0, error_class="x"
        ),
    ],
    "exchange.error": [
        ev.exchange_error(op="x", message="failed", retry_after_s=1.0, error_class="critical")
    ],
    "ratelimit.updated": [
        ev.ratelimit_updated(
            used=10, limit=2400, queued=0, rejected_recent=0, cooldown_until=None, banned_until=None
        ),
        ev.ratelimit_updated(
            used=40,
            limit=600,
            queued=1,
            rejected_recent=1,
            cooldown_until=None,
            banned_until=None,
            window_s=5.0,
            endpoint="order/create",
            endpoint_used=10,
            endpoint_limit=10,
            endpoint_cooldown_until=1790000000.5,
        ),
    ],
    "order.submitted": [
        ev.order_submitted(**ORDER, price=None, reduce_only=False, origin="cockpit"),
        ev.order_submitted(**ORDER, price=None, reduce_only=False, origin="cockpit", leg="long"),
    ],
    "order.accepted": [
        ev.order_accepted(
            **ORDER,
            order_id="11",
            price="64000",
            filled="0",
            reduce_only=False,
            origin="cockpit",
            status="open",
        ),
        ev.order_accepted(
            **ORDER,
            order_id="3358",
            price=None,
            filled="0",
            reduce_only=True,
            origin="external",
            status="open",
            trigger="61000",
            conditional=True,
            leg="short",
        ),
        ev.order_accepted(
            **ORDER,
            order_id="11",
            price=None,
            filled="0",
            reduce_only=False,
            origin="cockpit",
            status="open",
            average="0",
            resolved_by_lookup=True,
        ),
    ],
    "order.filled": [
        ev.order_filled(**FILL, recovered=True),
        ev.order_filled(
            **FILL,
            recovered=False,
            price="0",
            filled="0.01",
            average="64000.5",
            reduce_only=False,
            status="filled",
            maker=False,
            leg="long",
        ),
    ],
    "order.partially_filled": [
        ev.order_partially_filled(**FILL),
        ev.order_partially_filled(
            **FILL,
            recovered=False,
            price="64000",
            filled="0.005",
            average="64000",
            reduce_only=False,
            status="partially_filled",
            maker=True,
            leg="short",
        ),
    ],
    "order.rejected": [
        ev.order_rejected(**ORDER, price=None, reduce_only=False, origin="cockpit"),
        ev.order_rejected(
            **ORDER,
            price="1",
            reduce_only=False,
            origin="cockpit",
            order_id="11",
            filled="0",
            average="0",
            status="rejected",
            reason="no",
            refused_by="risk",
            dry_run=True,
            error_class="invalid",
            error_type="InvalidOrder",
            leg="long",
        ),
    ],
    "order.canceled": [
        ev.order_canceled(client_order_id="ck-1", symbol="BTC/USDT:USDT", status="gone"),
        ev.order_canceled(**REPORT | {"status": "canceled"}, remaining="0.5", reason="TTL", leg="short"),
    ],
    "funding.paid": [
        ev.funding_paid(
            symbol="BTC/USDT:USDT",
            amount="-0.64210000",
            asset="USDT",
            income_id="4480321991774044580",
            time_ms=1621584000000,
            recovered=False,
        ),
    ],
    "order.triggered": [
        ev.order_triggered(
            client_order_id="ck-stop-1",
            order_id="3358",
            symbol="BTC/USDT:USDT",
            side="sell",
            type="stop_market",
            amount="0.01",
            trigger="61000",
            reduce_only=True,
            origin="cockpit",
            status="triggered",
            placed="8101",
            leg="long",
        ),
    ],
    "position.changed": [
        ev.position_changed(symbol="BTC/USDT:USDT", qty="1", entry="100", reason="ORDER"),
        ev.position_changed(symbol="BTC/USDT:USDT", qty="1", entry="101", reason="ORDER", unbooked="-0.5"),
        ev.position_changed(
            symbol="BTC/USDT:USDT",
            qty="1",
            entry="100",
            reason="adopted",
            leverage=10,
            liquidation="0",
            ghost=False,
            message="adopted",
        ),
        ev.position_changed(
            symbol="BTC/USDT:USDT",
            qty="1",
            entry="100",
            reason="account-poll",
            margin="isolated",
            isolated_margin="12.5",
            leg="short",
        ),
    ],
    "position.ghost": [
        ev.position_ghost(
            symbol="BTC/USDT:USDT",
            qty="1",
            entry="100",
            local_qty="0",
            exchange_qty="1",
            unexplained_qty="1",
            booked_qty="0",
            message="ghost",
            leverage=5,
            liquidation="61.5",
            leg="long",
            unbooked="0.5",
        )
    ],
    "balance.updated": [
        ev.balance_updated(wallet="100"),
        ev.balance_updated(wallet="100", available="90", reason="ORDER"),
    ],
    "reconcile.started": [ev.reconcile_started(trigger="startup")],
    "reconcile.done": [
        ev.reconcile_done(
            trigger="startup",
            matched=1,
            recovered_fills=0,
            recovered_by_symbol={},
            ghosts=[],
            adopted=[],
            corrected=[],
            orders_added=0,
            orders_removed=0,
            ghosts_open=[],
            seconds=0.1,
            through_ms=1,
            denied=[],
        )
    ],
    "killswitch.engaged": [
        ev.killswitch_engaged(cause="drawdown", by="risk", message="engaged"),
        ev.killswitch_engaged(
            cause="c", by="store", message="m", since=1.0, carried_over=True, persisted=False
        ),
    ],
    "killswitch.released": [
        ev.killswitch_released(by="ctl", previous_cause="c", message="released"),
        ev.killswitch_released(by="ctl", previous_cause="c", message="released", carried_over=True),
    ],
    "killswitch.guard": [
        ev.killswitch_guard(action="summary", **COUNTS, message="summary"),
        ev.killswitch_guard(action="flag", **COUNTS, message="flag", order=REPORT, last_qty="0.5"),
    ],
    "flatten.started": [
        ev.flatten_started(symbols=["BTC/USDT:USDT"], by="ctl", positions={"BTC/USDT:USDT": "1"})
    ],
    "flatten.done": [
        ev.flatten_done(
            symbols=[], by="ctl", verified=True, rounds=1, remaining={}, errors=[], message="flat"
        )
    ],
    "clock.checked": [CHECKED],
    "clock.drift": [ev.clock_drift(checked=CHECKED, message="drift")],
    "drawdown.band": [
        ev.drawdown_band(band="orange", drawdown_pct=5.5, equity="94", peak_equity="100", message="orange")
    ],
    "drawdown.peak_reset": [
        ev.drawdown_peak_reset(by="ctl", old_peak="5E+305", new_peak="1000", reason="r", message="reset"),
        ev.drawdown_peak_reset(by="ui", old_peak=None, new_peak="1000", reason="r", message="reset"),
    ],
    "event.refused": [ev.event_refused(kind="market.marks", reason="not JSON", message="refused")],
    "health.changed": [
        ev.health_changed(item="exchange", status="ok"),
        ev.health_changed(item="database", status="ok", message="recovered", detail="d"),
    ],
    "data.rejected": [
        ev.data_rejected(source="market_feed", reason="r", count=1, totals={"market_feed": 1}, message="m")
    ],
    "db.backup": [
        ev.db_backup(path="b", size_bytes=1, verified=True, last_seq=None, seconds=0.1, by="ctl", message="m")
    ],
    "db.archived": [
        ev.db_archived(rows=1, files=1, through_ts=1.0, folder="t", seconds=0.1, message="m"),
    ],
    "db.corrupt": [ev.db_corrupt(problems={"hash": "broken"}, kept_aside="a", message="corrupt")],
    "db.restored": [
        ev.db_restored(backup="b", kept_aside=None, restored_seq=3, message="m"),
        ev.db_restored(backup="b", kept_aside="a", restored_seq=None, message="m", by="cli"),
    ],
    "db.error": [ev.db_error(message="m", attempt=1, retry_in_s=2.0, final=False)],
    "dlq.added": [
        ev.dlq_added(op="create_order", error_class="x", error_type="Y", reason="r", attempts=5, message="m")
    ],
    "operator.action": [
        ev.operator_action(action="backup", by="ctl"),
        ev.operator_action(action="flatten", by="ctl", symbols="all"),
        ev.operator_action(action="x", by="ctl", symbols=["a"], on=True, symbol="a", id=3, order="o"),
    ],
    "alert": [
        ev.alert(message="m"),
        ev.alert(message="m", feed="f", available="1", fill_rate=0.5, removed=["r"], after="a"),
    ],
}


# keys only older session files have: read, never built
LEGACY = {"feed.disconnected": {"final"}, "reconcile.done": {"booked"}}


def test_every_builder_gives_its_typeddicts_keys() -> None:
    assert set(SAMPLES) == set(EVENT_KINDS)
    for kind, built in SAMPLES.items():
        typed = ev.PAYLOADS[kind]
        for payload in built:
            assert type(payload) is dict, kind  # a plain dict: stored and folded as it is
            assert set(payload) <= keys_of(typed), (kind, set(payload) - keys_of(typed))
            assert typed.__required_keys__ <= set(payload), (kind, typed.__required_keys__ - set(payload))
        assert set().union(*built) == keys_of(typed) - LEGACY.get(kind, set()), kind  # each key is built


def test_the_views_of_several_kinds_have_only_their_keys() -> None:
    """FeedRead is the fold's view of the four feed kinds: the same keys, the same types, all optional."""
    kinds = (ev.FeedConnected, ev.FeedReconnected, ev.FeedDisconnected, ev.FeedStale)
    view = typing.get_type_hints(ev.FeedRead)
    assert set(view) == set().union(*(keys_of(k) for k in kinds))
    assert ev.FeedRead.__required_keys__ == frozenset()
    for kind in kinds:
        for key, hint in typing.get_type_hints(kind).items():
            if (
                key != "down_for_s"
            ):  # feed.connected's is a float when present, feed.disconnected's may be None
                assert view[key] == hint, (kind, key)


def test_the_order_report_is_what_the_order_kinds_built_from_it_start_with() -> None:
    """`order_report` is the user stream's report of an order (engine/account.py): every key of
    OrderReport, in the order each order kind built from it gives them first."""
    # every key but the optional leg (a hedge-mode order's: long | short), which comes last when it is there
    assert [*REPORT, "leg"] == list(typing.get_type_hints(ev.OrderReport))
    trade = {
        k: FILL[k]
        for k in ("trade_id", "last_qty", "last_price", "commission", "realized_pnl", "trade_time_ms")
    }
    for built in (
        ev.order_accepted(**REPORT),
        ev.order_rejected(**REPORT),
        ev.order_canceled(**REPORT),
        ev.order_filled(**REPORT, **trade, recovered=False),
        ev.order_partially_filled(**REPORT, **trade, recovered=False),
    ):
        assert list(built)[: len(REPORT)] == list(REPORT) and {k: built[k] for k in REPORT} == REPORT


def _payload_arguments(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """The payload argument (the second) of each `.emit(kind, payload, …)` and `.record(…)` call."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("emit", "record")
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant | ast.Name)  # a kind (not a feed's own FeedState.…)
        ):
            found.append((node.lineno, node.args[1]))
    return found


def test_no_event_is_emitted_with_a_payload_built_by_hand() -> None:
    """mypy takes a dict literal whose keys fit some kind's TypedDict as that kind's payload: only this
    catches one written at an emit or record (a builder assembles every payload)."""
    by_hand = (ast.Dict, ast.DictComp)
    checked = 0
    for path in sorted([*(ROOT / "cockpit").rglob("*.py"), *(ROOT / "widgets").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, payload in _payload_arguments(tree):
            checked += 1
            written = isinstance(payload, by_hand) or (
                isinstance(payload, ast.Call)
                and isinstance(payload.func, ast.Name)
                and payload.func.id == "dict"
            )
            assert not written, (
                f"{path.relative_to(ROOT)}:{line}: a payload built by hand, not by its builder"
            )
    assert checked > 50


# ----- emit refuses a kind outside the vocabulary ---------------------------------------------------------
class _Store:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append_critical(self, event: Event) -> concurrent.futures.Future[None]:
        self.events.append(event)
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        done.set_result(None)
        return done

    def put_snapshot(self, seq: int, ts: float, state_json: str) -> None:
        pass


async def test_emit_and_record_of_an_unknown_kind_raise_and_number_nothing() -> None:
    from cockpit.engine.core import EventCore

    store = _Store()
    core = EventCore(store, State())
    with pytest.raises(ev.UnknownEventKind, match="'order.fill'.*EVENT_KINDS"):
        core.emit("order.fill", ev.alert(message="a typo"))
    with pytest.raises(ev.UnknownEventKind):
        await core.record("killswitch.engage", ev.alert(message="a typo"))
    assert store.events == [] and core.state.seq == 0
    event = core.emit("alert", ev.alert(message="fine"), "warning")
    assert event.seq == 1 and event.payload == {"message": "fine"} and store.events == [event]
    await core.stop()


async def test_the_engine_refuses_an_unknown_kind_even_once_stopped(start_engine: Any) -> None:
    run = await start_engine()
    engine = run.engine
    with pytest.raises(ev.UnknownEventKind):
        engine.emit("alerts", ev.alert(message="a typo"))
    with pytest.raises(ev.UnknownEventKind):
        await engine.record("alerts", ev.alert(message="a typo"))
    await engine.stop()
    assert engine.emit("alert", ev.alert(message="after the stop")) is None  # a late callback: nothing said
    with pytest.raises(ev.UnknownEventKind):
        engine.emit("alerts", ev.alert(message="a typo after the stop"))


# ----- order.filled: one shape now, two on disk -----------------------------------------------------------
BTC = "BTC/USDT:USDT"
# the user stream's fill as engine/account.py wrote it before the builders (no `recovered`)
OLD_STREAM_FILL = {
    "client_order_id": "ck-1",
    "order_id": "11",
    "symbol": BTC,
    "side": "buy",
    "type": "limit",
    "amount": "0.02",
    "price": "64000",
    "filled": "0.02",
    "average": "64000",
    "reduce_only": False,
    "origin": "cockpit",
    "status": "filled",
    "trade_id": "t-2",
    "last_qty": "0.01",
    "last_price": "64000",
    "commission": "0.0256",
    "realized_pnl": "0",
    "trade_time_ms": 1_790_000_002_000,
    "maker": True,
}
OLD_STREAM_PARTIAL = {
    **OLD_STREAM_FILL,
    "filled": "0.01",
    "status": "partially_filled",
    "trade_id": "t-1",
    "trade_time_ms": 1_790_000_001_000,
}
# a fill reconcile recovered from the trade history, as engine/reconcile.py writes it (no `filled`, price …)
OLD_RECOVERED_FILL = {
    "client_order_id": "ex-99",
    "order_id": "99",
    "symbol": BTC,
    "side": "sell",
    "type": "market",
    "amount": "0.005",
    "trade_id": "t-3",
    "last_qty": "0.005",
    "last_price": "64010",
    "commission": "0.0128",
    "realized_pnl": "0.05",
    "trade_time_ms": 1_790_000_003_000,
    "origin": "unknown",
    "recovered": True,
}


def _stream_fill(old: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    build = ev.order_partially_filled if partial else ev.order_filled
    fields = {k: v for k, v in old.items()}
    return dict(build(**fields, recovered=False))


def _session(fills: list[tuple[str, dict[str, Any], Severity, str]]) -> list[Event]:
    """A session around the fills: a wallet, cockpit's order submitted and accepted, the fills, positions."""
    head: list[tuple[str, Any, Severity, str]] = [
        ("balance.updated", ev.balance_updated(wallet="10000", available="10000"), "info", "exchange"),
        (
            "order.submitted",
            ev.order_submitted(
                client_order_id="ck-1",
                symbol=BTC,
                side="buy",
                type="limit",
                amount="0.02",
                price="64000",
                reduce_only=False,
                origin="cockpit",
            ),
            "info",
            "operator",
        ),
        (
            "order.accepted",
            ev.order_accepted(
                client_order_id="ck-1",
                order_id="11",
                symbol=BTC,
                side="buy",
                type="limit",
                amount="0.02",
                price="64000",
                filled="0",
                reduce_only=False,
                origin="cockpit",
                status="open",
            ),
            "info",
            "exchange",
        ),
        ("market.marks", ev.market_marks(marks={BTC: "64005"}, source="ws"), "info", "feed"),
    ]
    tail: list[tuple[str, Any, Severity, str]] = [
        ("market.marks", ev.market_marks(marks={BTC: "64020.5"}, source="ws"), "info", "feed"),
        (
            "position.changed",
            ev.position_changed(symbol=BTC, qty="0.015", entry="64000", reason="ORDER"),
            "info",
            "user_stream",
        ),
    ]
    rows = [*head, *fills, *tail]
    return [
        Event(seq, 1.79e9 + seq, kind, sev, src, dict(p)) for seq, (kind, p, sev, src) in enumerate(rows, 1)
    ]


def _fills(partial: dict[str, Any], filled: dict[str, Any], recovered: dict[str, Any]) -> list[Any]:
    return [
        ("order.partially_filled", partial, "info", "user_stream"),
        ("order.filled", filled, "info", "user_stream"),
        ("order.filled", recovered, "warning", "reconcile"),
    ]


def _write(path: Path, events: list[Event]) -> Path:
    with SessionStore.open(path) as store:
        store.start()
        for event in events:
            store.append(event)
        store.close()
    return path


def test_the_new_fill_shape_is_each_old_one_with_recovered_said() -> None:
    """Both builders fit one shape: the trade's quantity in `last_qty`, `recovered` always said; the stream's
    extras (the order's cumulative `filled`, price, average, status, maker) where the stream gave them."""
    assert _stream_fill(OLD_STREAM_FILL) == {**OLD_STREAM_FILL, "recovered": False}
    assert _stream_fill(OLD_STREAM_PARTIAL, partial=True) == {**OLD_STREAM_PARTIAL, "recovered": False}
    assert dict(ev.order_filled(**OLD_RECOVERED_FILL)) == OLD_RECOVERED_FILL
    assert list(_stream_fill(OLD_STREAM_FILL)) == [*OLD_STREAM_FILL, "recovered"]  # the same key order


async def test_old_and_new_order_filled_shapes_fold_to_the_same_state(tmp_path: Path) -> None:
    from cockpit.analytics.metrics import session_metrics
    from cockpit.replay.session import ReplaySession

    old = _session(_fills(OLD_STREAM_PARTIAL, OLD_STREAM_FILL, OLD_RECOVERED_FILL))
    new_fills = _fills(
        _stream_fill(OLD_STREAM_PARTIAL, partial=True),
        _stream_fill(OLD_STREAM_FILL),
        dict(ev.order_filled(**OLD_RECOVERED_FILL)),
    )
    new = _session(new_fills)
    assert "recovered" not in old[4].payload and new[4].payload["recovered"] is False

    state = fold(new)
    assert state == fold(old)
    one_by_one = State()
    for event in old:
        one_by_one = apply(one_by_one, event)
    assert one_by_one == state
    assert state.trade_ids == ("t-1", "t-2", "t-3") and state.orders == {}
    assert (
        state.counters.fills == 3 and state.counters.orders_filled == 1 and state.counters.partial_fills == 1
    )
    assert state.unbooked == {}  # the position update after the fills includes them

    # an old file replays to the same state as a new one, and reads the same in the analytics
    old_file, new_file = _write(tmp_path / "old.duckdb", old), _write(tmp_path / "new.duckdb", new)
    replayed = []
    for path in (old_file, new_file):
        session = ReplaySession.open(path)
        try:
            session.seek(session.total)
            replayed.append(session.state)
        finally:
            session.close()
    assert replayed == [state, state]
    was, now = (
        await asyncio.to_thread(session_metrics, old_file),
        await asyncio.to_thread(session_metrics, new_file),
    )
    assert (
        (now.fills, now.orders_filled, now.realized_pnl, now.commission)
        == (
            was.fills,
            was.orders_filled,
            was.realized_pnl,
            was.commission,
        )
        == (3, 1, Decimal("0.05"), Decimal("0.064"))
    )
    # the recovered fill is the one incident, in either shape
    assert [i.cause for i in incidents_from(old)] == [i.cause for i in incidents_from(new)] == ["reconcile"]


# ----- the readers read only keys their kinds have ---------------------------------------------------------
READERS = (
    "cockpit/core/state.py",
    "cockpit/core/incidents.py",
    "cockpit/analytics/metrics.py",
    "cockpit/engine/runtime.py",
    "cockpit/engine/guard.py",
    "widgets/events.py",
)


def _typed(node: ast.expr | None) -> Any:
    """The payload TypedDict (or union of them) an annotation or a cast names (`ev.X`, `events.X`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _typed(node.left), _typed(node.right)
        return left | right if left is not None and right is not None else None
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in ("ev", "events")
    ):
        found = getattr(ev, node.attr, None)
        return found if typing.is_typeddict(found) or isinstance(found, types.UnionType) else None
    return None


def _cast_type(node: ast.expr) -> Any:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "cast"
        and node.args
    ):
        return _typed(node.args[0])
    return None


def _reads(function: ast.FunctionDef) -> list[tuple[int, Any, str]]:
    """(line, type, key) of each constant key read from a name typed as a payload in `function`."""
    names: dict[str, Any] = {}
    for arg in [*function.args.args, *function.args.kwonlyargs]:
        if (typed := _typed(arg.annotation)) is not None:
            names[arg.arg] = typed
    for node in ast.walk(function):
        typed, name = None, None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            typed, name = _typed(node.annotation), node.target.id
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            typed, name = _cast_type(node.value), node.targets[0].id
        if typed is not None and name is not None:
            names[name] = typed
    found: list[tuple[int, Any, str]] = []
    for node in ast.walk(function):
        target: ast.expr | None = None
        key: ast.expr | None = None
        if isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            target, key = node.func.value, node.args[0] if node.args else None
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            target, key = node.comparators[0], node.left
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            continue
        typed = names.get(target.id) if isinstance(target, ast.Name) else _cast_type(target)
        if typed is not None:
            found.append((node.lineno, typed, key.value))
    return found


def test_every_key_a_reader_reads_is_a_key_of_the_payloads_it_reads() -> None:
    """mypy checks `p["key"]`, and `p.get("key")` wherever the value's type matters; this checks every
    constant key the readers read from a typed payload, `str(p.get(...))` included."""
    checked = 0
    for name in READERS:
        tree = ast.parse((ROOT / name).read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
            for line, typed, key in _reads(function):
                checked += 1
                assert key in keys_of(typed), f"{name}:{line}: {key!r} is not a key of {typed}"
    assert checked > 100  # the readers are typed: the fold alone reads some eighty keys


def test_every_handler_of_the_fold_takes_its_kinds_payload() -> None:
    for kind, handler in HANDLERS.items():
        hint = typing.get_type_hints(handler)["p"]
        assert ev.PAYLOADS[kind] in (typing.get_args(hint) or (hint,)) or hint in (ev.FeedRead,), kind
    from widgets.events import HEAD_KEYS, PRICE_KEYS

    every_key = set().union(*(keys_of(t) for t in ev.PAYLOADS.values()))
    assert set(HEAD_KEYS) | set(PRICE_KEYS) <= every_key


# ----- the README's vocabulary ----------------------------------------------------------------------------
def test_the_readme_vocabulary_lists_exactly_the_kinds() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Event vocabulary", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_.]+)` \|", section, re.M)
    assert listed == list(EVENT_KINDS)


def test_a_position_figure_keeps_the_recorded_fills_it_does_not_include() -> None:
    """`unbooked` is what the stream recorded since the exchange last reported a position. A figure that
    says it does not include some of them (`unbooked` in its payload: recorded after it was asked for, or an
    entry-only update of the same size) keeps those; one that says nothing includes every one."""

    def fill(seq: int, side: str, qty: str) -> Event:
        payload = ev.order_filled(client_order_id=f"x-{seq}", order_id=str(seq), symbol=BTC, side=side,
                                  type="market", amount=qty, trade_id=str(seq), last_qty=qty,
                                  last_price="64000", commission="0", realized_pnl="0",
                                  trade_time_ms=seq, origin="unknown", recovered=False)  # fmt: skip
        return Event(seq, 1.79e9 + seq, "order.filled", "info", "user_stream", dict(payload))

    def figure(seq: int, qty: str, unbooked: str | None = None) -> Event:
        payload = ev.position_changed(symbol=BTC, qty=qty, entry="64000", reason="x", unbooked=unbooked)
        return Event(seq, 1.79e9 + seq, "position.changed", "info", "reconcile", dict(payload))

    state = fold([fill(1, "buy", "0.01"), fill(2, "buy", "0.02")])
    assert state.unbooked == {BTC: Decimal("0.03")}
    kept = apply(state, figure(3, "0.01", unbooked="0.02"))  # includes the first fill, not the second
    assert kept.positions[BTC].qty == Decimal("0.01") and kept.unbooked == {BTC: Decimal("0.02")}
    assert apply(kept, figure(4, "0.03")).unbooked == {}  # includes both
