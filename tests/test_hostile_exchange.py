"""A hostile exchange: every path the engine reads serves values no real exchange should (the simulator's
`hostile` fault). The engine stays up, State stays plausible (equity, peak, drawdown untouched by the bad
input), each bad input is counted per source and shown in Health, and nothing else happens: no kill switch,
no ghost, no fill, no incident beyond the "bad data" note.

One engine and one simulator per group of cases (market feed, user stream, REST), the cases run one after the
other against it; the parsing itself is checked case by case without sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cockpit.core.commands import Status
from cockpit.core.incidents import incidents_from
from cockpit.core.state import State
from cockpit.engine.market import RESTORED_MARK_MAX_AGE_S, restored_marks
from cockpit.engine.symbols import SymbolMap
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.dlq import DeadLetterBuffer
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, GatewayNotice, RetryPolicy
from cockpit.feeds import MarketFeed, ParseError
from cockpit.feeds.parse import (
    _checked_book_ticker,
    _usual_book_ticker,
    combined_frame,
    market_event,
    user_event,
)
from cockpit.feeds.rejects import MarkCheck
from cockpit.sim import hostile
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET, EngineRun, stop
from tests.waiting import wait_until
from widgets.positions import stale_symbols

BTC = "BTC/USDT:USDT"
MARK_STREAM = "btcusdt@markPrice@1s"
OVERSIZED = "9" * 100_000  # a figure padded to 100 kB
# values no figure may take; each is a case on every numeric field below
BAD_NUMBERS: list[Any] = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    "1e400",
    True,
    "garbage",
    {"x": 1},
    OVERSIZED,
]
BAD_PRICES: list[Any] = [*BAD_NUMBERS, "0", "-60000", 1e308]


def mark_frame(**change: Any) -> dict[str, Any]:
    frame = {
        "e": "markPriceUpdate",
        "E": 1,
        "s": "BTCUSDT",
        "p": "64000.5",
        "i": "64000",
        "r": "0.0001",
        "T": 2,
    }
    return {**frame, **change}


def book_frame(**change: Any) -> dict[str, Any]:
    frame = {
        "e": "bookTicker",
        "u": 400900217,
        "s": "BTCUSDT",
        "b": "64000.10",
        "B": "31.21",
        "a": "64000.20",
        "A": "40.66",
        "T": 1,
        "E": 2,
    }
    return {**frame, **change}


# ----- parsing, case by case --------------------------------------------------------------------------
def test_a_good_frame_of_each_kind_parses() -> None:
    """The control case: the hostile frames below differ from these in one field only."""
    assert market_event(mark_frame()) is not None
    assert user_event(hostile.account_update("BTCUSDT", 1, "64000")) is not None
    assert user_event(hostile.order_update("BTCUSDT", 1, "64000", 7)) is not None


@pytest.mark.parametrize("value", [*BAD_PRICES, None], ids=repr)
def test_a_bad_mark_is_refused_naming_the_field(value: Any) -> None:
    frame = mark_frame(p=value) if value is not None else {k: v for k, v in mark_frame().items() if k != "p"}
    with pytest.raises(ParseError, match=r"markPriceUpdate: .*p"):
        market_event(frame)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[(f, v) for f in ("b", "a") for v in BAD_PRICES],
        *[(f, v) for f in ("B", "A") for v in [*BAD_NUMBERS, "-1"]],
        *[(f, v) for f in ("u", "E", "T") for v in [True, 1.5, "soon", None]],
        ("s", 42),
        ("s", ""),
    ],
    ids=repr,
)
def test_a_bad_book_ticker_is_refused_naming_the_field(field: str, value: Any) -> None:
    frame = book_frame(**{field: value})
    with pytest.raises(ParseError, match=rf"bookTicker: .*\b{field} \("):
        market_event(frame)


# the values a book ticker field is drawn from: good ones of every form, and hostile ones
FIGURES = st.one_of(
    st.sampled_from(["64000.10", "0", "0.0", "1e9", "999999999.99", "1e12", " 5 ", "1_0", "-0", "+3", ".5"]),
    st.sampled_from(BAD_PRICES),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.decimals(allow_nan=True).map(str),
    st.text(max_size=8),
)
WHOLES = st.one_of(st.integers(), st.sampled_from([True, 1.5, "12", " 7", "-", None]), st.text(max_size=4))


@given(
    b=FIGURES, bq=FIGURES, a=FIGURES, aq=FIGURES, u=WHOLES, e=WHOLES,
    s=st.one_of(st.sampled_from(["BTCUSDT", "", "X" * 65]), st.integers()),
)  # fmt: skip
def test_the_usual_book_ticker_reading_agrees_with_the_checked_one(
    b: Any, bq: Any, a: Any, aq: Any, u: Any, e: Any, s: Any
) -> None:
    """The busiest message has a quick reading for frames as Binance sends them: it takes no frame the
    field-by-field checks refuse, and builds the same ticker from any frame it takes."""
    frame = book_frame(b=b, B=bq, a=a, A=aq, u=u, E=e, s=s)
    quick = _usual_book_ticker(frame)
    try:
        checked = _checked_book_ticker(frame)
    except (ValueError, TypeError, KeyError):
        assert quick is None
    else:
        assert quick is None or quick == checked


def test_a_usual_book_ticker_takes_the_quick_reading() -> None:
    """The agreement above would hold for a quick reading that never reads: a usual frame takes it."""
    assert _usual_book_ticker(book_frame()) == market_event(book_frame())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[("a.B.0.wb", v) for v in BAD_NUMBERS],
        *[("a.P.0.pa", v) for v in BAD_NUMBERS],
        ("a.P.0.ep", "-5"),
        ("a.P.0.ep", "0"),  # an open position's entry
        ("a.P.0.up", "NaN"),
        ("a.P.0.s", {"x": 1}),
        ("a.P", {"x": 1}),
        ("a", "garbage"),
        ("E", "soon"),
    ],
    ids=repr,
)
def test_a_bad_account_update_is_refused(field: str, value: Any) -> None:
    frame = hostile.served(hostile.account_update("BTCUSDT", 1, "64000"), {"field": field, "value": value})
    with pytest.raises(ParseError, match="ACCOUNT_UPDATE"):
        user_event(frame)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[("o.l", v) for v in BAD_NUMBERS],
        *[("o.L", v) for v in ["NaN", "-60000", True, "1e999999"]],
        ("o.q", True),
        ("o.z", "-1"),
        ("o.n", "Infinity"),
        ("o.rp", "1e400"),
        ("o.i", 1.5),
        ("o.s", 42),
        ("o", [1]),
    ],
    ids=repr,
)
def test_a_bad_order_update_is_refused(field: str, value: Any) -> None:
    frame = hostile.served(hostile.order_update("BTCUSDT", 1, "64000", 7), {"field": field, "value": value})
    with pytest.raises(ParseError, match="ORDER_TRADE_UPDATE"):
        user_event(frame)


def test_a_missing_field_is_refused() -> None:
    frame = hostile.served(hostile.order_update("BTCUSDT", 1, "64000", 7), {"field": "o.l", "missing": True})
    with pytest.raises(ParseError, match="ORDER_TRADE_UPDATE"):
        user_event(frame)


@pytest.mark.parametrize("data", ["garbage", 3, [1, 2], None], ids=repr)
def test_a_stream_frame_whose_data_is_not_an_object_is_refused(data: Any) -> None:
    stream, payload = combined_frame(orjson.dumps({"stream": "btcusdt@markPrice@1s", "data": data}))
    assert stream == "btcusdt@markPrice@1s"  # the stream is known (alive), its data refused
    with pytest.raises(ParseError, match="data is not a JSON object"):
        market_event(payload)


def test_a_mark_far_from_the_last_good_one_waits_for_an_independent_source() -> None:
    check = MarkCheck()
    assert check.judge("BTCUSDT", 64_000.0) == (True, None)
    assert check.judge("BTCUSDT", 1e6) == (False, None)  # 15x: one frame is not believed (held)
    take, refused = check.judge("BTCUSDT", 64_010.0)  # the stream comes back: refused, reported now
    assert (
        take
        and refused is not None
        and "1e+06" in refused.reason
        and "nothing confirmed it" in refused.reason
    )
    assert refused.source == "ws"
    assert check.judge("BTCUSDT", 30_000.0) == (False, None)  # a real crash: the first frame held …
    assert check.judge("BTCUSDT", 30_100.0) == (False, None)  # … the stream's next frame confirms nothing …
    assert check.judge("BTCUSDT", 30_150.0, "rest") == (True, None)  # … REST agrees: believed, no bad data
    assert check.last["BTCUSDT"] == 30_150.0
    assert check.judge("BTCUSDT", 30_200.0) == (True, None)  # the stream's later frames near it: taken


def test_a_stream_repeating_an_absurd_mark_confirms_nothing() -> None:
    """A stuck publisher sends the same 100x mark frame after frame: held, never believed; REST disagrees, so
    it is refused, REST marks the symbol, and every later frame is refused at once until the stream agrees
    with REST again."""
    check = MarkCheck(last={"BTCUSDT": 64_000.0})  # seeded, as from a restored session
    for _ in range(5):
        assert check.judge("BTCUSDT", 6.4e6) == (False, None)  # held, however often the stream repeats it
    assert check.last["BTCUSDT"] == 64_000.0 and "BTCUSDT" not in check.disputed
    take, refused = check.judge("BTCUSDT", 64_050.0, "rest")  # REST disagrees: the stream's mark is refused
    assert take and refused is not None and refused.source == "ws" and "100x" in refused.reason
    assert check.last["BTCUSDT"] == 64_050.0 and "BTCUSDT" in check.disputed
    for _ in range(3):  # the stream keeps sending it: each frame refused at once, reported as the stream's
        take, refused = check.judge("BTCUSDT", 6.4e6)
        assert not take and refused is not None and refused.source == "ws" and "REST" in refused.reason
    take, refused = check.judge("BTCUSDT", 70_000.0)  # plausible, yet 9 % off REST: still refused
    assert not take and refused is not None
    assert check.judge("BTCUSDT", 64_100.0, "rest") == (True, None)  # REST keeps marking it
    assert check.judge("BTCUSDT", 64_200.0) == (True, None)  # the stream agrees with REST again: taken
    assert "BTCUSDT" not in check.disputed and not check.held
    assert check.judge("BTCUSDT", 64_300.0) == (True, None)  # and its frames are judged as before


def test_a_rest_mark_far_off_waits_for_the_stream() -> None:
    """The other way round: a REST mark far from the last good one is held until the stream agrees; REST
    repeating itself confirms nothing either, and a stream frame near the last good mark refuses it."""
    check = MarkCheck(last={"BTCUSDT": 30_000.0})
    assert check.judge("BTCUSDT", 1e5, "rest") == (False, None)  # REST far off: held …
    assert check.judge("BTCUSDT", 1e5, "rest") == (False, None)  # … REST again: still held
    take, refused = check.judge("BTCUSDT", 30_210.0)  # the stream disagrees: REST's mark refused
    assert take and refused is not None and refused.source == "rest"
    assert check.judge("BTCUSDT", 50_000.0, "rest") == (False, None)  # a real jump REST sees first …
    assert check.judge("BTCUSDT", 50_400.0) == (True, None)  # … the stream agrees: believed


def test_a_held_stream_mark_and_a_rest_mark_both_far_off() -> None:
    """REST disagrees with the stream's held mark and is itself far from the last good one: the stream's mark
    is refused, REST's is held until the stream confirms it (a disputed stream may still confirm it)."""
    check = MarkCheck(last={"BTCUSDT": 64_000.0})
    assert check.judge("BTCUSDT", 6.4e6) == (False, None)
    take, refused = check.judge("BTCUSDT", 20_000.0, "rest")
    assert not take and refused is not None and refused.source == "ws"
    assert check.held["BTCUSDT"] == (20_000.0, "rest") and "BTCUSDT" in check.disputed
    assert check.judge("BTCUSDT", 20_100.0) == (True, None)  # the stream agrees with REST: believed
    assert check.last["BTCUSDT"] == 20_100.0 and "BTCUSDT" not in check.disputed


def test_a_restored_mark_judges_the_first_mark_only_while_recent() -> None:
    """A mark a day old or older says little about the market now: it does not seed the check."""
    eth, now = "ETH/USDT:USDT", time.time()
    state = State(
        marks={BTC: Decimal("64000.5"), eth: Decimal("3000")},
        mark_ts={BTC: now - 3600, eth: now - RESTORED_MARK_MAX_AGE_S - 1},
    )
    symbols = SymbolMap({"BTCUSDT": BTC, "ETHUSDT": eth})
    assert restored_marks(state, symbols, now) == {"BTCUSDT": 64000.5}


# ----- the engine against a hostile simulator ---------------------------------------------------------
def plausible(state: State, wallet: Decimal) -> None:
    """What the bad input must not have moved: equity near the wallet, no drawdown, no kill switch."""
    assert state.equity is not None and abs(state.equity - wallet) < wallet * Decimal("0.01"), state.equity
    assert state.peak_equity is not None and state.peak_equity < wallet * Decimal("1.01"), state.peak_equity
    assert state.drawdown_pct < 1, state.drawdown_pct
    assert not state.kill_switch.engaged, state.kill_switch
    assert not any(p.ghost for p in state.positions.values()), state.positions


def nothing_else(run: EngineRun) -> None:
    """No incident other than the bad-data note, no fill, no ghost, no dead letter."""
    kinds = set(run.kinds())
    assert not kinds & {"position.ghost", "killswitch.engaged", "order.filled", "dlq.added", "exchange.error"}
    # the tests' 1 s stale limit on 1 s mark streams lets a slow machine flap any of them, bad data or not
    causes = {i.cause for i in incidents_from(run.events)} - {"feed:market:market/stale"}
    assert causes <= {"bad_data"}, causes


async def started(sim: SimServer, start_engine: Any) -> EngineRun:
    """An engine holding a small BTC long (adopted at startup), its marks flowing."""
    await sim.inject({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": "0.01"})
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(
        lambda: BTC in run.engine.state.marks and run.engine.state.equity is not None, 10, "marks"
    )
    return run


async def refused(run: EngineRun, source: str, serve: Callable[[], Any], what: str) -> None:
    """Serve one hostile case and wait until the engine counted it refused from `source`."""
    before = run.engine.bad_data.totals.get(source, 0)
    await serve()
    await wait_until(
        lambda: run.engine.bad_data.totals.get(source, 0) > before, 10, f"{source} refusing {what}"
    )


MARK_CASES: list[dict[str, Any]] = [
    *[{"field": "p", "value": v} for v in BAD_PRICES],
    {"field": "p", "value": "1000000"},  # 15x the last good mark: held, and no second source agrees
    {"field": "p", "missing": True},
    {"field": "", "value": "garbage"},  # the whole frame
]


async def test_the_market_feed_refuses_hostile_marks(sim: SimServer, start_engine: Any) -> None:
    run = await started(sim, start_engine)
    wallet = run.engine.state.wallet
    assert wallet is not None
    for case in MARK_CASES:
        spec = {"kind": "hostile", "target": "mark", **case}
        await refused(run, "market_feed", lambda spec=spec: sim.inject(spec), repr(case)[:60])
        plausible(run.engine.state, wallet)
        mark = run.engine.state.marks[BTC]
        assert Decimal(50_000) < mark < Decimal(80_000), (case, mark)
    assert run.engine.bad_data.totals["market_feed"] >= len(MARK_CASES)
    status = run.engine.state.health_of("data")
    assert status.status == "bad data" and "market feed" in status.detail, status
    # frames of garbage are no data: the mark stream may go stale meanwhile, and is fresh again after
    await wait_until(lambda: run.engine.state.health_of("feed").ok, 10, f"feed ok {run.engine.state.streams}")
    report = await run.engine.control(Status(by="test"))
    assert report.health["data"] == "bad data" and "market feed" in report.health_detail["data"]
    # one event at once, then one summary at most every 30 s: never an event per frame
    assert 1 <= len(run.of("data.rejected")) <= 2
    nothing_else(run)


async def test_a_real_move_is_believed_once_rest_confirms_it(sim: SimServer, start_engine: Any) -> None:
    """Not a false alarm: a 60 % move is held on the stream's first frame, the exchange's REST mark agrees,
    and it is the new mark within a few seconds — one REST read, no bad-data note."""
    run = await started(sim, start_engine)
    before = run.engine.state.marks[BTC]
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
    await wait_until(lambda: run.engine.state.marks[BTC] > before * Decimal("1.5"), 5, "the moved mark")
    feed = run.engine.feeds[0]
    assert isinstance(feed, MarketFeed) and feed.rest_confirms == 1
    assert run.engine.bad_data.totals == {} and run.of("data.rejected") == []


STALE_S = 3.0


@pytest.fixture
def stale_after_3s(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's `feeds.stale_after_s` at 3 s instead of the tests' 1 s, which a 1 s mark stream on a slow
    machine can flap: with it a test can say that no stream was called stale."""
    import tests.conftest as conftest

    made = conftest.make_config

    def make_config(*args: Any, **kwargs: Any) -> Any:
        config = made(*args, **kwargs)
        return replace(config, feeds=replace(config.feeds, stale_after_s=STALE_S))

    monkeypatch.setattr(conftest, "make_config", make_config)


def sim_mark(sim: SimServer) -> Decimal:
    return Decimal(sim.prices.prices["BTCUSDT"])


def stream_marks(run: EngineRun) -> list[Any]:
    return [e for e in run.of("market.marks") if e.payload.get("source") == "ws"]


def near(a: Decimal, b: Decimal, pct: float = 0.5) -> bool:
    return abs(a - b) <= b * Decimal(repr(pct)) / 100


async def test_a_mark_stream_of_only_bad_frames_falls_back_to_rest_marks(
    sim: SimServer, start_engine: Any, stale_after_3s: None
) -> None:
    """The stream keeps sending, but only NaN marks: it is not stale (the data is the problem), yet after
    `stale_after_s` without a good mark its symbol is marked by REST, so equity and drawdown follow the market
    (and the drawdown kill switch can fire); once good frames flow again, the stream marks it again."""
    run = await started(sim, start_engine)
    engine = run.engine
    await sim.inject({"kind": "hostile", "target": "mark", "field": "p", "value": "NaN", "count": 100_000})
    await wait_until(lambda: engine.bad_data.totals.get("market_feed", 0) > 0, 10, "NaN marks refused")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -30})
    await wait_until(lambda: near(engine.state.marks[BTC], sim_mark(sim)), 15, "the REST mark after the move")
    assert engine.state.marks_source == "rest"
    state = engine.state
    position = state.positions[BTC]
    assert state.wallet is not None and state.equity is not None
    assert near(state.equity, state.wallet + position.qty * (state.marks[BTC] - position.entry), 0.1)
    assert state.drawdown_pct > Decimal("1.5"), state.drawdown_pct  # 0.01 BTC lost 30 % of ~640 USDT
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 10})  # and it keeps following
    await wait_until(lambda: near(engine.state.marks[BTC], sim_mark(sim)), 10, "the next REST mark")
    assert engine.state.health_of("data").status == "bad data"
    assert engine.state.health_of("feed").ok, engine.state.streams
    assert "feed.stale" not in run.kinds()
    # good frames again: the stream marks the symbol, REST is no longer asked
    sim.clear_faults()
    await wait_until(lambda: engine.state.marks_source == "ws", 10, "stream marks again")
    feed = engine.feeds[0]
    polls = feed.rest_polls
    seen = len(stream_marks(run))
    await wait_until(lambda: len(stream_marks(run)) >= seen + 5, 10, "5 more stream marks")  # 4 s or more
    assert feed.rest_polls <= polls + 1, (polls, feed.rest_polls)  # REST asked every 2 s while it was needed
    nothing_else(run)


def folded_marks(run: EngineRun) -> list[Decimal]:
    """Every BTC mark the engine folded, in order (stream and REST)."""
    return [Decimal(e.payload["marks"][BTC]) for e in run.of("market.marks") if BTC in e.payload["marks"]]


async def test_a_stream_repeating_an_absurd_mark_is_never_believed(
    sim: SimServer, start_engine: Any, stale_after_3s: None
) -> None:
    """A stuck publisher sends the same 100x mark frame after frame while the exchange's REST mark stays put:
    the stream repeating itself confirms nothing (it used to: the second frame 'agreed' with the first, and
    one absurd mark poisoned equity and peak). REST disagrees, so every such frame is refused as bad data and
    the symbol is marked by REST meanwhile, following the market; once the stream agrees with REST again, it
    marks the symbol again."""
    run = await started(sim, start_engine)
    engine = run.engine
    wallet = engine.state.wallet
    assert wallet is not None
    real = sim_mark(sim)
    absurd = str(real * 100)
    await sim.inject({"kind": "hostile", "target": "mark", "field": "p", "value": absurd, "count": 100_000})
    await wait_until(
        lambda: (
            max(folded_marks(run), default=real) > real * 2
            or engine.bad_data.totals.get("market_feed", 0) >= 4
        ),
        15,
        "four absurd frames refused (or one believed)",
    )
    assert max(folded_marks(run), default=real) < real * 2, folded_marks(run)
    plausible(engine.state, wallet)
    assert "100x" in engine.bad_data.last_reason["market_feed"], engine.bad_data.last_reason
    # REST marks the symbol meanwhile (its stream frames are all refused), and follows the market
    feed = engine.feeds[0]
    assert isinstance(feed, MarketFeed) and "BTCUSDT" in feed.marks_check.disputed
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 5})
    await wait_until(lambda: near(engine.state.marks[BTC], sim_mark(sim)), 10, "the REST mark after the move")
    assert feed.rest_polls > 0
    # the stream agrees with REST again: it marks the symbol again, and REST is no longer asked
    sim.clear_faults()
    await wait_until(lambda: "BTCUSDT" not in feed.marks_check.disputed, 10, "the stream agreeing again")
    polls = feed.rest_polls
    seen = len(stream_marks(run))
    await wait_until(lambda: len(stream_marks(run)) >= seen + 4, 10, "4 more stream marks")
    assert feed.rest_polls <= polls + 1, (polls, feed.rest_polls)
    assert max(folded_marks(run), default=real) < real * 2, folded_marks(run)
    assert set(engine.bad_data.totals) == {"market_feed"}, engine.bad_data.totals
    assert "feed.stale" not in run.kinds()
    nothing_else(run)


async def test_a_jump_rest_cannot_confirm_is_never_believed(
    sim: SimServer, start_engine: Any, stale_after_3s: None
) -> None:
    """The exchange's REST marks cannot be read (premiumIndex answers are refused) while the market moves
    60 %: the stream's jump has no independent source, so it is not believed, however often it repeats it.
    BTC keeps its last good mark, which goes stale (the position shows market data down); equity, peak and
    drawdown stay put. The first REST mark read again confirms the move."""
    run = await started(sim, start_engine)
    engine = run.engine
    wallet = engine.state.wallet
    assert wallet is not None
    before = engine.state.marks[BTC]
    unreadable = {
        "kind": "hostile",
        "target": "premium",
        "field": "",
        "value": {"x": 1},
        "count": 100_000,
    }
    await sim.inject(unreadable)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
    await wait_until(
        lambda: BTC in stale_symbols(engine.state, time.time()), 15, "BTC's last good mark going stale"
    )
    # the confirming read, then the REST fallback's (the stream has had no believable mark for 3 s)
    await wait_until(lambda: engine.bad_data.totals.get("rest_marks", 0) >= 2, 10, "REST refused twice")
    alerts = [e.payload["message"] for e in run.of("alert")]
    assert any("REST mark to confirm a held BTCUSDT mark failed (the mark stays held)" in a for a in alerts)
    assert engine.state.marks[BTC] < before * Decimal("1.5"), engine.state.marks[BTC]
    assert max(folded_marks(run)) < before * Decimal("1.5"), folded_marks(run)
    plausible(engine.state, wallet)
    assert "market_feed" not in engine.bad_data.totals, engine.bad_data.totals  # the move is not bad data
    sim.clear_faults()  # REST readable again: the REST fallback's next read confirms the move
    await wait_until(lambda: engine.state.marks[BTC] > before * Decimal("1.5"), 10, "the moved mark")
    assert "market_feed" not in engine.bad_data.totals, engine.bad_data.totals
    assert not engine.state.kill_switch.engaged


async def test_the_first_mark_after_a_restart_is_judged_against_the_restored_one(
    sim: SimServer, start_engine: Any
) -> None:
    """A restored session knows its marks: the new engine's first mark, 100x off, is held and refused, never
    folded into equity and peak (it used to be believed: the check started empty); a real move confirmed by
    REST is still believed."""
    first = await started(sim, start_engine)
    wallet = first.engine.state.wallet
    restored = first.engine.state.marks[BTC]
    assert wallet is not None
    await stop(first)
    # the simulator's paced frames wait, so that the test's 100x frame is the new engine's very first mark
    await sim.inject({"kind": "ws_stall", "seconds": 3})
    starting = asyncio.create_task(start_engine())
    await wait_until(lambda: sim.hub.has_subscribers(MARK_STREAM), 10, "the new engine's mark stream")
    await sim.hub.blast(MARK_STREAM, [mark_frame(p=str(restored * 100), E=int(time.time() * 1000))], 1)
    run: EngineRun = await starting
    engine = run.engine

    await wait_until(lambda: len(folded_marks(run)) >= 3, 15, "marks again after the stall")
    assert max(folded_marks(run)) < restored * 2, folded_marks(run)
    assert near(engine.state.marks[BTC], sim_mark(sim)), (engine.state.marks[BTC], sim_mark(sim))
    await wait_until(lambda: engine.bad_data.totals.get("market_feed", 0) > 0, 10, "the 100x mark refused")
    assert "100x" in engine.bad_data.last_reason["market_feed"], engine.bad_data.last_reason
    plausible(engine.state, wallet)
    # a real move, confirmed by REST, is believed after a restart as before
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
    await wait_until(lambda: engine.state.marks[BTC] > restored * Decimal("1.5"), 10, "the moved mark")
    assert engine.bad_data.totals == {"market_feed": 1}, engine.bad_data.totals


async def test_a_real_move_while_stopped_is_believed_after_the_restart(
    sim: SimServer, start_engine: Any
) -> None:
    """Not a false alarm: the market moved 60 % while cockpit was stopped; the first mark is held, REST
    confirms it, and there is no bad-data note."""
    first = await started(sim, start_engine)
    restored = first.engine.state.marks[BTC]
    await stop(first)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 60})
    run: EngineRun = await start_engine()
    await wait_until(lambda: run.engine.state.marks[BTC] > restored * Decimal("1.5"), 10, "the moved mark")
    assert run.engine.bad_data.totals == {} and run.of("data.rejected") == []


USER_CASES: list[dict[str, Any]] = [
    *[{"target": "account", "field": "a.B.0.wb", "value": v} for v in ("NaN", "1e400", True)],
    *[
        {"target": "account", "field": "a.P.0.pa", "value": v}
        for v in ("NaN", "Infinity", "1e999999", OVERSIZED)
    ],
    {"target": "account", "field": "a.P.0.ep", "value": "-5"},
    {"target": "account", "field": "a.P.0.pa", "missing": True},
    {"target": "account", "field": "a", "value": "garbage"},
    *[{"target": "order", "field": "o.l", "value": v} for v in ("NaN", "Infinity", True, {"x": 1})],
    {"target": "order", "field": "o.L", "value": "-60000"},
    {"target": "order", "field": "o.q", "missing": True},
    {"target": "order", "field": "", "value": [1, 2, 3]},
]


async def test_the_user_stream_refuses_hostile_events(sim: SimServer, start_engine: Any) -> None:
    run = await started(sim, start_engine)
    wallet = run.engine.state.wallet
    assert wallet is not None
    held = run.engine.state.positions[BTC].qty
    for case in USER_CASES:
        spec = {"kind": "hostile", **case}
        await refused(run, "user_stream", lambda spec=spec: sim.inject(spec), repr(case)[:60])
        plausible(run.engine.state, wallet)
        assert run.engine.state.wallet == wallet and run.engine.state.positions[BTC].qty == held, case
    assert run.engine.bad_data.totals["user_stream"] == len(USER_CASES)
    assert "user stream" in run.engine.state.health_of("data").detail
    nothing_else(run)


REST_CASES: list[tuple[str, dict[str, Any]]] = [
    *[
        ("rest_positions", {"field": "positionAmt", "value": v})
        for v in ("NaN", "Infinity", "1e999999", True)
    ],
    ("rest_positions", {"field": "positionAmt", "missing": True}),
    ("rest_positions", {"field": "entryPrice", "value": "-5"}),
    ("rest_positions", {"field": "symbol", "missing": True}),
    ("rest_positions", {"field": "", "value": {"code": 0, "msg": "an object, not a list"}}),
    *[("rest_balance", {"field": "totalWalletBalance", "value": v}) for v in ("NaN", "1e400", True)],
    ("rest_balance", {"field": "", "value": [1, 2]}),
]


async def test_rest_answers_with_hostile_figures_are_failed_reads(sim: SimServer, start_engine: Any) -> None:
    """A positions answer cockpit cannot read is never 'no positions': no ghost, nothing adopted."""
    run = await started(sim, start_engine)
    wallet = run.engine.state.wallet
    assert wallet is not None
    for source, case in REST_CASES:
        target = "positions" if source == "rest_positions" else "balance"
        spec = {"kind": "hostile", "target": target, "count": 2, **case}
        await refused(run, source, lambda spec=spec: sim.inject(spec), repr(case)[:60])
        plausible(run.engine.state, wallet)
        assert run.engine.state.positions[BTC].qty == Decimal("0.01"), case
    sim.clear_faults()
    await run.wait_for("reconcile.done", where=lambda e: e.seq > run.events[-1].seq - 1000)
    plausible(run.engine.state, wallet)
    detail = run.engine.state.health_of("data").detail
    assert "REST positions" in detail and "REST balance" in detail, detail
    nothing_else(run)


@pytest.mark.parametrize(
    "case",
    [{"field": "markPrice", "value": v} for v in ("NaN", "0", "-60000", True, "1e308")]
    + [{"field": "", "value": {"x": 1}}],
    ids=repr,
)
async def test_hostile_rest_marks_are_refused_as_bad_data(sim: SimServer, case: dict[str, Any]) -> None:
    client = make_ccxt_client("binanceusdm", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=2000)
    gateway = ExchangeGateway(
        client, policy=RetryPolicy(transient_wait_s=0.05), dead_letters=DeadLetterBuffer()
    )
    notices: list[GatewayNotice] = []
    gateway.add_listener(notices.append)
    try:
        assert await gateway.fetch_mark_prices([BTC])  # the control: a good answer reads
        await sim.inject({"kind": "hostile", "target": "premium", **case})
        with pytest.raises(GatewayError):
            await gateway.fetch_mark_prices([BTC])
    finally:
        await gateway.close()
    assert [n.kind for n in notices] == ["bad_data"], notices
    assert isinstance(gateway.dead_letters, DeadLetterBuffer) and gateway.dead_letters.letters == []


# ----- feed health after a stalled socket ------------------------------------------------------------------
async def test_feed_health_clears_when_data_flows_again_after_a_stall(
    sim: SimServer, start_engine: Any
) -> None:
    """ws_stall: the streams go stale, the silent socket is reconnected, data flows again; `ctl status` says
    feed ok (it used to say stale for good: the reconnect forgot which streams it had reported stale)."""
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("feed").ok, 10, "feed ok")
    # stale after 1 s, the silent socket reconnected after 2 s, data again within 1 s of the new socket
    # (before the stale limit: only the first frame can say the streams flow again, as in the 12 s stall)
    await sim.inject({"kind": "ws_stall", "seconds": 2.5})
    await run.wait_for("feed.stale")
    await wait_until(lambda: run.engine.state.health_of("feed").status == "stale", 5, "feed stale")
    await run.wait_for("feed.disconnected", within=10)
    await wait_until(lambda: run.engine.state.health_of("feed").ok, 15, "feed ok again after the stall")
    report = await run.engine.control(Status(by="test"))
    assert report.health["feed"] == "ok", report.health_detail
    assert all(s.state == "connected" for s in run.engine.state.streams.values()), run.engine.state.streams
