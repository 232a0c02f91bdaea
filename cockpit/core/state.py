"""State: a pure fold of events. `apply(state, event) -> state` is the only way state changes.

Live, restore and replay are the same fold: live applies events as they happen, restore applies the tail after
the last snapshot, replay applies stored events at a chosen speed. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from itertools import groupby
from typing import Any, TypeVar

from cockpit.core import events as ev
from cockpit.core.domain import Event, Leg, leg_of, position_key
from cockpit.core.domain import dec as _any_dec

ZERO = Decimal(0)

T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """`dataclasses.replace` for the frozen value types here, without re-running `__init__`: the fold's hot
    path (replace was 80 % of `apply`'s time). They keep a `__dict__` (no slots) so a copy is two C-level
    dict updates rather than a Python loop over the fields."""
    new = object.__new__(type(obj))
    fields = new.__dict__
    fields.update(obj.__dict__)
    fields.update(changes)
    return new


# ----- hostile values: what the fold will not take ----------------------------------------------------
# No figure of an account is anywhere near 1e18 (a price, a quantity, a wallet): a larger one is a bad value
# (a parser's 1e308, a wallet of 1e400), never a fact, and arithmetic on it would poison every later figure.
MAX_ADJUSTED_EXPONENT = 18
REFUSAL_TEXT_MAX = 200
MARK_LIMIT = Decimal(10) ** (MAX_ADJUSTED_EXPONENT + 1)  # a mark below it has at most that exponent


class BadValue(ValueError):
    """A payload value the fold refuses: not a number, not finite, or absurdly large."""


def dec(value: Any) -> Decimal:
    """A payload value as a finite, plausible Decimal (`cockpit.core.domain.dec`, then checked): NaN,
    Infinity and magnitudes of 1e18 and more raise BadValue, so they never reach State."""
    number = _any_dec(value)
    if not number.is_finite() or number.adjusted() > MAX_ADJUSTED_EXPONENT:
        raise BadValue(f"{value!r} is not a plausible number")
    return number


def _mark(value: Any) -> Decimal:
    """A mark price: a plausible number above zero."""
    mark = Decimal(value) if type(value) is str else _any_dec(value)  # str: the stored form
    if not ZERO < mark < MARK_LIMIT:  # a NaN raises here (the fold's context traps it): refused either way
        raise BadValue(f"mark {value!r} is not a plausible price")
    return mark


def _real(value: Any) -> float:
    """A payload value as a finite float (a duration, an offset, a time)."""
    number = float(value)
    if not math.isfinite(number):
        raise BadValue(f"{value!r} is not a finite number")
    return number


def _real_or_none(value: Any) -> float | None:
    return None if value is None else _real(value)


def refusal(exc: BaseException) -> str:
    """Why the fold refused an event, short enough for an alert line."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= REFUSAL_TEXT_MAX else text[: REFUSAL_TEXT_MAX - 1] + "…"


DRAWDOWN_BANDS = ("green", "yellow", "orange", "red")


def band_of(drawdown_pct: float) -> str:
    """green < 3 %, yellow 3–5 %, orange 5–7 %, red > 7 %."""
    if drawdown_pct < 3:
        return "green"
    if drawdown_pct < 5:
        return "yellow"
    if drawdown_pct <= 7:
        return "orange"
    return "red"


ALERTS_KEPT = 200
TRADE_IDS_KEPT = 5000
HEALTH_ITEMS = ("exchange", "feed", "user_stream", "database", "clock")
# database health while the session path no longer names the engine's open file (engine/file_watch.py): a
# backup of the open file does not bring the file back; only a restore (a new engine) clears it
SESSION_FILE_GONE = ("deleted", "replaced")
TERMINAL_ORDER_KINDS = ("order.filled", "order.rejected", "order.canceled")


@dataclass(frozen=True)
class Position:
    symbol: str  # ccxt unified symbol
    qty: Decimal  # signed: long > 0, short < 0
    entry: Decimal
    mark: Decimal | None = None
    leverage: int | None = None
    liquidation: Decimal | None = None
    ghost: bool = False  # the exchange holds it and no recorded trade explains it
    updated: float = 0.0
    booked: Decimal | None = None  # while a ghost: the quantity the recorded trades explain
    margin: str | None = None  # cross | isolated, as the exchange last said (REST)
    isolated_margin: Decimal | None = None  # an isolated position's own margin
    leg: Leg = "both"  # a hedge-mode leg (long | short); "both" on a one-way account

    @property
    def key(self) -> str:
        """Where State keeps it: the symbol, or "<symbol> long|short" for a hedge leg."""
        return position_key(self.symbol, self.leg)

    @property
    def side(self) -> str:
        return "long" if self.qty > 0 else "short" if self.qty < 0 else "flat"

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * (self.mark if self.mark is not None else self.entry)

    @property
    def upnl(self) -> Decimal:
        return self.qty * (self.mark - self.entry) if self.mark is not None else ZERO


@dataclass(frozen=True)
class MarketInfo:
    """What the exchange allows a symbol's numbers to be: the price tick and the amount step."""

    price_step: Decimal
    amount_step: Decimal


@dataclass(frozen=True)
class Order:
    client_order_id: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit | stop_market | take_profit_market | stop | take_profit | trailing_stop_market
    amount: Decimal
    filled: Decimal = ZERO
    price: Decimal | None = None
    average: Decimal | None = None
    trigger: Decimal | None = None  # a conditional order's trigger (stop) price
    conditional: bool = False  # the exchange's conditional (algo) service holds it: canceled through it
    status: str = "submitted"  # submitted | open | partially_filled
    reduce_only: bool = False
    origin: str = "cockpit"  # cockpit | external (another client on the account)
    order_id: str | None = None
    created: float = 0.0
    updated: float = 0.0
    leg: Leg = "both"  # the hedge-mode leg it is on (long | short)

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@dataclass(frozen=True)
class HealthItem:
    status: str = "unknown"  # "ok" or the named problem
    detail: str = ""
    since: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class StreamStatus:
    state: str = "connecting"  # connecting | connected | reconnecting | stale | disconnected
    attempt: int = 0
    retry_in_s: float | None = None
    silent_s: float | None = None
    since: float = 0.0


@dataclass(frozen=True)
class KillSwitch:
    engaged: bool = False
    cause: str = ""
    by: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class RateLimitView:
    used: int = 0
    limit: int = 2400
    queued: int = 0
    rejected_recent: int = 0
    cooldown_until: float | None = None
    banned_until: float | None = None
    window_s: float = 60.0  # the shared budget's window: Binance's minute, Bybit's 5 s
    endpoint: str = ""  # the busiest endpoint with a budget of its own ("" when none is in use)
    endpoint_used: int = 0
    endpoint_limit: int = 0
    endpoint_cooldown_until: float | None = None  # that endpoint refused until then (Bybit's 10006)


@dataclass(frozen=True)
class Alert:
    seq: int
    ts: float
    kind: str
    severity: str
    message: str


@dataclass(frozen=True)
class Counters:
    orders_submitted: int = 0
    orders_filled: int = 0
    orders_rejected: int = 0
    orders_canceled: int = 0
    fills: int = 0
    partial_fills: int = 0
    ghosts: int = 0
    reconciles: int = 0
    dead_letters: int = 0
    refused: int = 0  # events whose payload the fold could not take (`refused`): each one an alert

    @property
    def fill_rate(self) -> float | None:
        """Filled / (filled + rejected) of cockpit's own orders; None before any outcome."""
        done = self.orders_filled + self.orders_rejected
        return self.orders_filled / done if done else None


@dataclass(frozen=True)
class ReconcileSummary:
    seq: int
    ts: float
    trigger: str
    matched: int
    recovered_fills: int
    ghosts: tuple[str, ...]
    orders_added: int
    orders_removed: int


@dataclass(frozen=True)
class State:
    seq: int = 0
    ts: float = 0.0
    mode: str = "starting"  # starting (no session.started yet) | live | dry-run | demo | replay
    exchange: str = ""
    session_file: str = ""
    positions: Mapping[str, Position] = field(default_factory=dict)  # by key: symbol, or "<symbol> <leg>"
    orders: Mapping[str, Order] = field(default_factory=dict)  # open orders by client order id
    marks: Mapping[str, Decimal] = field(default_factory=dict)
    marks_source: str = "ws"  # ws | rest
    mark_ts: Mapping[str, float] = field(default_factory=dict)  # when each symbol's mark last arrived
    markets: Mapping[str, MarketInfo] = field(default_factory=dict)  # tick and step (`market.info`)
    stale_after_s: float = 5.0  # the engine's feeds.stale_after_s: a mark older than this is stale
    leverages: Mapping[str, int] = field(default_factory=dict)  # per symbol, kept while it is flat
    wallet: Decimal | None = None
    available: Decimal | None = None
    equity: Decimal | None = None
    peak_equity: Decimal | None = None
    # the peak as of the last reconcile that found every position as cockpit held it (or the last reset):
    # what the peak falls back to when a reconcile finds the account was not what the equity was measured on
    peak_checked: Decimal | None = None
    drawdown_pct: Decimal = ZERO
    drawdown_band: str = "green"
    health: Mapping[str, HealthItem] = field(default_factory=dict)
    streams: Mapping[str, StreamStatus] = field(default_factory=dict)
    clock_offset_ms: float | None = None
    kill_switch: KillSwitch = field(default_factory=KillSwitch)
    rate_limit: RateLimitView = field(default_factory=RateLimitView)
    flattening: tuple[str, ...] = ()
    last_flatten_verified: bool | None = None
    alerts: tuple[Alert, ...] = ()
    counters: Counters = field(default_factory=Counters)
    trade_ids: tuple[str, ...] = ()  # the most recent recorded trade ids (reconcile skips these)
    reconciled_through_ms: int = 0  # exchange time up to which the trade history has been checked
    funding: Decimal = ZERO  # the session's funding payments, signed (received > 0), in the settlement asset
    funding_ids: tuple[str, ...] = ()  # the most recent recorded payments' ids (never recorded twice)
    funding_through_ms: int = 0  # exchange time of the newest recorded payment
    # per position (its key: the symbol, or a hedge leg's "<symbol> long|short"), the signed quantity of the
    # fills recorded since the exchange last reported the position:
    # what a reconcile may still see missing from the position although the trades are recorded
    unbooked: Mapping[str, Decimal] = field(default_factory=dict)
    last_reconcile: ReconcileSummary | None = None

    # ----- derived ---------------------------------------------------------------------------------
    @property
    def unrealized(self) -> Decimal:
        return sum((p.upnl for p in self.positions.values()), ZERO)

    @property
    def exposure(self) -> Decimal:
        return sum((p.notional for p in self.positions.values()), ZERO)

    def health_of(self, item: str) -> HealthItem:
        return self.health.get(item, HealthItem())


# ----- the fold -----------------------------------------------------------------------------------------
Changes = dict[str, Any]
# A handler takes the event and its payload as its kind's TypedDict (cockpit/core/events.py): `_apply` hands
# the payload over as it is, so the handlers' key reads are typed at no cost (no copy, no cast call).
Handler = Callable[[State, Event, Any], Changes]


# Decimal arithmetic in the fold runs in this context, whatever the thread's context is: ccxt sets the
# ambient context's rounding to ROUND_HALF_UP when it formats amounts, and replay must not depend on that.
FOLD_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)


def apply(state: State, event: Event) -> State:
    """The state after `event`. Pure: the same events in the same order give the same state."""
    with localcontext(FOLD_CONTEXT):
        return _apply(state, event)


def fold(events: Iterable[Event], state: State | None = None) -> State:
    """`apply` over `events` in order: the same State, faster (see `Fold`)."""
    with Fold(state) as folding:
        for is_marks, run in groupby(events, _is_info_marks):
            if is_marks:
                folding.marks([(e.seq, e.ts, e.payload) for e in run])
            else:
                for event in run:
                    folding.event(event)
    return folding.state


def _is_info_marks(event: Event) -> bool:
    return event.kind == MARKS_KIND and event.severity == "info"


MARKS_KIND = "market.marks"
NO_MARKS: Mapping[str, Any] = {}


class Fold:
    """A fold in progress: `apply` over events fed in order, with the same result, faster.

    Used as a context manager: the Decimal context is entered once for the whole fold rather than once per
    event. Most of any session is runs of consecutive info mark updates. Between them nothing but marks
    change, so a run is folded without a State per event: each update changes the marks and, once there is
    a wallet and a position, the equity they give and the peak; one State is built when the run ends. The
    arithmetic is `_marks`'s and `_valuation`'s, in the same order, so the result is identical, not merely
    close (a test holds `state` equal to `apply`'s, to the digit, wherever a fold is cut). A stored mark
    update can be fed as its seq, ts and payload, without building an Event (`marks`: replay does)."""

    def __init__(self, state: State | None = None) -> None:
        self._state = state or State()
        self._context = localcontext(FOLD_CONTEXT)
        # the run of mark updates in progress: the State it started from (None: no run)
        self._start: State | None = None
        self._marks: dict[str, Decimal] = {}
        self._times: dict[str, float] = {}
        self._wallet = ZERO
        # what values each position: symbol, qty, entry, and its mark while `_marks` has none for it
        self._terms: list[tuple[str, Decimal, Decimal, Decimal | None]] = []
        self._equity: Decimal | None = None
        self._peak: Decimal | None = None
        self._last: tuple[int, float, ev.MarketMarks] | None = None  # the run's latest update

    def __enter__(self) -> Fold:
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._end_run()
        finally:
            self._context.__exit__(None, None, None)

    @property
    def state(self) -> State:
        """The state after the events fed so far."""
        if self._start is not None:
            with localcontext(FOLD_CONTEXT):
                self._end_run()
        return self._state

    def event(self, event: Event) -> None:
        if _is_info_marks(event):
            self.marks(((event.seq, event.ts, event.payload),))
            return
        if self._start is not None:
            self._end_run()
        self._state = _apply(self._state, event)

    def marks(self, updates: Sequence[tuple[int, float, Any]]) -> None:
        """Consecutive info `market.marks` events, each given as its seq, ts and payload: the fold's hot
        path, one call for a whole run of them, its figures in local variables. Every mark is believed as it
        is read (the usual case: the engine records only marks it checked); when one is refused, the whole
        call is undone and done again an update at a time, each update checked whole before any of its marks
        is kept."""
        if self._start is None:
            self._begin_run()
        marks_before, times_before = dict(self._marks), dict(self._times)
        try:
            self._believed_marks(updates)
        except Exception:  # a mark refused (or a figure that breaks the arithmetic): done again, carefully
            self._marks, self._times = marks_before, times_before
            self._checked_marks(updates)

    def _believed_marks(self, updates: Sequence[tuple[int, float, Any]]) -> None:
        """The updates, each mark checked as it is kept: raises on the first refused (its update, and those
        before it in this call, half kept: `marks` undoes them). Nothing else changes until all are in."""
        marks, times, terms, wallet = self._marks, self._times, self._terms, self._wallet
        last: tuple[int, float, ev.MarketMarks] | None  # each update's payload: a `market.marks` one
        equity, peak, last = self._equity, self._peak, self._last
        get = marks.get
        for last in updates:  # noqa: B007  # the last one is kept: the run's State takes its seq, ts, source
            ts = last[1]
            for symbol, value in last[2].get("marks", NO_MARKS).items():
                fresh = Decimal(value) if type(value) is str else _any_dec(value)  # str: the stored form
                if not ZERO < fresh < MARK_LIMIT:  # a NaN raises here (the fold's context traps it)
                    raise BadValue(f"mark {value!r} is not a plausible price")
                marks[symbol] = fresh
                times[symbol] = ts  # in the loop: a third of the cost of dict.fromkeys + update per event
            if terms:  # a wallet and a position: revalue (else equity is unchanged)
                unrealized = ZERO
                for symbol, qty, entry, held in terms:
                    mark = get(symbol, held)
                    unrealized += qty * (mark - entry) if mark is not None else ZERO
                equity = wallet + unrealized
                if peak is None or equity > peak:  # max(peak, equity): the peak stays on a tie
                    peak = equity
        self._equity, self._peak, self._last = equity, peak, last

    def _checked_marks(self, updates: Iterable[tuple[int, float, Any]]) -> None:
        """The updates one at a time, each checked whole first: a refused one goes through `_apply` exactly
        as that one event alone would (an alert, nothing changed), and the run goes on after it."""
        for update in updates:
            try:  # parsed before any is kept: an update the fold refuses changes no mark
                for _symbol, value in update[2].get("marks", NO_MARKS).items():
                    _mark(value)
            except Exception:  # refused: through `_apply`, exactly as that one event alone (an alert)
                self._end_run()
                seq, ts, payload = update
                self._state = _apply(self._state, Event(seq, ts, MARKS_KIND, "info", "", payload))
                self._begin_run()
                continue
            self._believed_marks((update,))

    def _begin_run(self) -> None:
        start = self._start = self._state
        self._marks = dict(start.marks)
        self._times = dict(start.mark_ts)
        positions = start.positions if start.wallet is not None else {}
        self._wallet = start.wallet if start.wallet is not None else ZERO  # unused without one: no terms
        self._terms = [(p.symbol, p.qty, p.entry, p.mark) for p in positions.values()]
        self._equity, self._peak, self._last = start.equity, start.peak_equity, None

    def _end_run(self) -> None:
        start = self._start
        if start is None:
            return
        if self._last is None:  # no update in the run: nothing changed
            self._start = None
            return
        seq, ts, payload = self._last
        marks = self._marks
        changes: Changes = {
            "marks": marks,
            "mark_ts": self._times,
            "marks_source": str(payload.get("source", "ws")),
            "seq": seq,
            "ts": ts,
        }
        if start.positions:
            changes["positions"] = _marked(start.positions, marks)
        peak, equity = self._peak, self._equity
        if self._terms and peak is not None and equity is not None:  # valued: a wallet and a position
            changes["equity"], changes["peak_equity"] = equity, peak
            changes["drawdown_pct"] = _drawdown(peak, equity)
        self._state, self._start = evolve(start, **changes), None


def _apply(state: State, event: Event) -> State:
    # Each handler returns only the fields it changes; they are merged into one new State here, so an
    # event costs one copy of State however many fields it touches (the fold's hot path: replay, restore).
    # The one place a payload of a known kind is dispatched: from here on it is its kind's TypedDict.
    payload: Any = event.payload
    handler = HANDLERS.get(event.kind)
    try:
        changes = handler(state, event, payload) if handler is not None else {}
        if event.severity != "info":
            alert = Alert(event.seq, event.ts, event.kind, event.severity, _message(event.kind, payload))
            changes["alerts"] = (*state.alerts[-(ALERTS_KEPT - 1) :], alert)
    except Exception as exc:  # a hostile payload (NaN, 1e400, a wrong type, a key missing): see `_refused`
        changes = _refused(state, event, exc)
    changes["seq"] = event.seq
    changes["ts"] = event.ts
    return evolve(state, **changes)


def _refused(state: State, event: Event, exc: BaseException) -> Changes:
    """An event the fold cannot take changes nothing but its count and a critical alert: the fold never
    raises, one bad value never stops the engine or a replay, and State keeps only plausible figures."""
    message = f"event {event.seq} ({event.kind}) refused, nothing changed: a bad value ({refusal(exc)})"
    alert = Alert(event.seq, event.ts, event.kind, "critical", message)
    return {
        "alerts": (*state.alerts[-(ALERTS_KEPT - 1) :], alert),
        "counters": evolve(state.counters, refused=state.counters.refused + 1),
    }


def _message(kind: str, payload: Any) -> str:
    """What an event says, whatever its kind: message, reason, cause, detail, else the kind."""
    p: ev.Wording = payload
    return str(p.get("message") or p.get("reason") or p.get("cause") or p.get("detail") or kind)


def _health(state: State, item: str, status: str, detail: str, ts: float) -> Changes:
    current = state.health.get(item)
    since = current.since if current is not None and current.status == status else ts
    return {"health": {**state.health, item: HealthItem(status, detail, since)}}


def _valuation(
    wallet: Decimal | None, positions: Mapping[str, Position], peak_equity: Decimal | None
) -> Changes:
    """Equity, peak and drawdown after marks, positions or the wallet changed (nothing before a wallet)."""
    if wallet is None:
        return {}
    equity = wallet + sum((p.upnl for p in positions.values()), ZERO)
    peak = equity if peak_equity is None else max(peak_equity, equity)
    return {"equity": equity, "peak_equity": peak, "drawdown_pct": _drawdown(peak, equity)}


def _drawdown(peak: Decimal, equity: Decimal) -> Decimal:
    return (peak - equity) / peak * 100 if peak > 0 else ZERO


# ----- handlers ---------------------------------------------------------------------------------------
def _session_started(state: State, e: Event, p: ev.SessionStarted) -> Changes:
    changes: Changes = {
        "mode": str(p.get("mode", state.mode)),
        "exchange": str(p.get("exchange", state.exchange)),
        "session_file": str(p.get("session_file", state.session_file)),
    }
    if _file_gone(state):  # a start on a copy of a lost file (its last backup): the file is open again
        changes.update(_health(state, "database", "ok", "", e.ts))
    if "data" in state.health and state.health["data"].status != "ok":  # a run ended in a bad-data episode
        changes.update(_health(state, "data", "ok", "", e.ts))  # the new run has refused nothing yet
    return changes


def _file_gone(state: State) -> bool:
    """The session file was deleted or replaced under the engine: nothing but a restore or a new start on a
    file brings it back, so a later write that succeeds (into the unlinked file) never reads as ok."""
    return state.health_of("database").status in SESSION_FILE_GONE


def _stream(state: State, e: Event, p: ev.FeedRead) -> Changes:
    name = str(p.get("stream", "market"))
    status = StreamStatus(
        state={
            "feed.connected": "connected",
            "feed.reconnected": "connected",
            "feed.disconnected": "reconnecting",
            "feed.stale": "stale",
        }[e.kind],
        attempt=int(p.get("attempt", 0)),
        retry_in_s=_real_or_none(p.get("retry_in_s")),
        silent_s=_real_or_none(p.get("silent_s")),
        since=e.ts,
    )
    if e.kind == "feed.disconnected" and p.get("final"):
        status = evolve(status, state="disconnected")
    streams = {**state.streams, name: status}
    item = "user_stream" if name == "user" else "feed"
    mine = [s for n, s in streams.items() if (n == "user") == (item == "user_stream")]
    worst = next((s for s in mine if s.state != "connected"), None)
    if worst is None:
        return {"streams": streams, **_health(state, item, "ok", "", e.ts)}
    detail = {
        "reconnecting": f"reconnecting (attempt {worst.attempt}, next in {worst.retry_in_s or 0:.0f} s)",
        "stale": f"stale ({worst.silent_s or 0:.1f} s silent)",
        "disconnected": "disconnected",
        "connecting": "connecting",
    }.get(worst.state, worst.state)
    return {"streams": streams, **_health(state, item, worst.state, detail, e.ts)}


def _marks(state: State, e: Event, p: ev.MarketMarks) -> Changes:
    marks = dict(state.marks)
    times = dict(state.mark_ts)
    ts = e.ts
    for symbol, value in p.get("marks", NO_MARKS).items():
        marks[symbol] = _mark(value)
        times[symbol] = ts
    changes: Changes = {"marks": marks, "mark_ts": times, "marks_source": str(p.get("source", "ws"))}
    if not state.positions:
        return changes  # nothing to revalue: equity is the wallet, unchanged
    positions = _marked(state.positions, marks)
    changes["positions"] = positions
    changes.update(_valuation(state.wallet, positions, state.peak_equity))
    return changes


def _marked(positions: Mapping[str, Position], marks: Mapping[str, Decimal]) -> dict[str, Position]:
    """The positions, each with its symbol's latest mark (as written: `100.0` stays `100.0`)."""
    return {
        k: evolve(p, mark=marks[p.symbol]) if p.symbol in marks and p.mark is not marks[p.symbol] else p
        for k, p in positions.items()
    }


EXCHANGE_STATUS = {
    "exchange.rate_limited": "rate_limited",
    "exchange.banned": "banned",
    "exchange.maintenance": "maintenance",
    "exchange.auth_failed": "auth_failed",
    "exchange.recovered": "ok",
}


def _exchange(state: State, e: Event, p: ev.ExchangeNotice) -> Changes:
    return _health(
        state,
        "exchange",
        EXCHANGE_STATUS[e.kind],
        _message(e.kind, p) if e.kind != "exchange.recovered" else "",
        e.ts,
    )


def _rate_limit(state: State, e: Event, p: ev.RatelimitUpdated) -> Changes:
    view = RateLimitView(
        used=int(p.get("used", 0)),
        limit=int(p.get("limit", 2400)),
        queued=int(p.get("queued", 0)),
        rejected_recent=int(p.get("rejected_recent", 0)),
        cooldown_until=_real_or_none(p.get("cooldown_until")),
        banned_until=_real_or_none(p.get("banned_until")),
        window_s=float(p.get("window_s", 60.0)),
        endpoint=str(p.get("endpoint", "")),
        endpoint_used=int(p.get("endpoint_used", 0)),
        endpoint_limit=int(p.get("endpoint_limit", 0)),
        endpoint_cooldown_until=_real_or_none(p.get("endpoint_cooldown_until")),
    )
    return {"rate_limit": view}


def _order_from(p: ev.OrderRead, ts: float, existing: Order | None) -> Order:
    base = existing or Order(
        client_order_id=str(p["client_order_id"]),
        symbol=str(p["symbol"]),
        side=str(p.get("side", "")),
        type=str(p.get("type", "")),
        amount=dec(p.get("amount", "0")),
        reduce_only=bool(p.get("reduce_only", False)),
        origin=str(p.get("origin", "cockpit")),
        created=ts,
        leg=leg_of(p.get("leg")),
    )
    # order_id, filled and average: not in order.submitted; filled, price, average: not in a recovered fill
    order_id, amount, filled = p.get("order_id"), p.get("amount"), p.get("filled")
    price, average = p.get("price"), p.get("average")
    trigger = p.get("trigger")
    return evolve(
        base,
        trigger=dec(trigger) if trigger not in (None, "0") else base.trigger,
        conditional=bool(p.get("conditional", base.conditional if "order_id" not in p else False)),
        order_id=str(order_id) if order_id is not None else base.order_id,
        amount=dec(amount) if amount is not None else base.amount,
        filled=dec(filled) if filled is not None else base.filled,
        price=dec(price) if price not in (None, "0") else base.price,
        average=dec(average) if average not in (None, "0") else base.average,
        updated=ts,
    )


def _order_submitted(state: State, e: Event, p: ev.OrderSubmitted) -> Changes:
    order = _order_from(p, e.ts, None)
    counters = evolve(state.counters, orders_submitted=state.counters.orders_submitted + 1)
    return {"orders": {**state.orders, order.client_order_id: order}, "counters": counters}


def _order_accepted(state: State, e: Event, p: ev.OrderAccepted) -> Changes:
    cid = str(p["client_order_id"])
    order = evolve(_order_from(p, e.ts, state.orders.get(cid)), status="open")
    return {"orders": {**state.orders, cid: order}}


def _order_fill(state: State, e: Event, p: ev.OrderFilled | ev.OrderPartiallyFilled) -> Changes:
    """A fill, from the user stream or recovered by reconcile (`recovered`): one shape, the trade's quantity
    in `last_qty`; the stream's also carry the order's cumulative `filled`, price and average. Files written
    before `recovered` was always set fold the same (it is not read here)."""
    cid = str(p["client_order_id"])
    order = _order_from(p, e.ts, state.orders.get(cid))
    counters = state.counters
    trade_id = p.get("trade_id")
    trade_ids = state.trade_ids
    if trade_id is not None:
        counters = evolve(counters, fills=counters.fills + 1)
        trade_ids = (*trade_ids[-(TRADE_IDS_KEPT - 1) :], str(trade_id))
    changes: Changes = {}
    symbol, last_qty = p.get("symbol"), p.get("last_qty")
    if trade_id is not None and symbol is not None and last_qty is not None:
        signed = dec(last_qty) if p.get("side") == "buy" else -dec(last_qty)
        key = position_key(str(symbol), p.get("leg"))  # a hedge leg's fills move that leg alone
        changes["unbooked"] = {**state.unbooked, key: state.unbooked.get(key, ZERO) + signed}
        held = state.positions.get(key)
        if held is not None and held.booked is not None:  # a ghost: what its recorded trades explain moves
            changes["positions"] = {**state.positions, key: evolve(held, booked=held.booked + signed)}
    orders = dict(state.orders)
    if e.kind == "order.filled":
        orders.pop(cid, None)
        if order.origin == "cockpit":
            counters = evolve(counters, orders_filled=counters.orders_filled + 1)
    else:
        orders[cid] = evolve(order, status="partially_filled")
        counters = evolve(counters, partial_fills=counters.partial_fills + 1)
    return {**changes, "orders": orders, "counters": counters, "trade_ids": trade_ids}


def _order_rejected(state: State, e: Event, p: ev.OrderRejected) -> Changes:
    orders = {k: v for k, v in state.orders.items() if k != p.get("client_order_id")}
    counters = evolve(state.counters, orders_rejected=state.counters.orders_rejected + 1)
    return {"orders": orders, "counters": counters}


def _order_canceled(state: State, e: Event, p: ev.OrderCanceled) -> Changes:
    orders = {k: v for k, v in state.orders.items() if k != p.get("client_order_id")}
    counters = evolve(state.counters, orders_canceled=state.counters.orders_canceled + 1)
    return {"orders": orders, "counters": counters}


def _funding_paid(state: State, e: Event, p: ev.FundingPaid) -> Changes:
    """Counted once by its id; the total is in the settlement asset (USDT) only: a payment in another asset
    (multi-assets mode) is recorded, not added to it."""
    income_id = str(p["income_id"])
    if income_id in state.funding_ids:
        return {}
    usdt = p.get("asset", "USDT") == "USDT"
    return {
        "funding": state.funding + (dec(p["amount"]) if usdt else ZERO),
        "funding_ids": (*state.funding_ids[-(TRADE_IDS_KEPT - 1) :], income_id),
        "funding_through_ms": max(state.funding_through_ms, int(p["time_ms"])),
    }


def _order_triggered(state: State, e: Event, p: ev.OrderTriggered) -> Changes:
    """No longer open as itself: the order it placed is followed under its own id."""
    return {"orders": {k: v for k, v in state.orders.items() if k != p.get("client_order_id")}}


def _position(state: State, e: Event, p: ev.PositionRead) -> Changes:
    symbol = str(p["symbol"])
    leg = leg_of(p.get("leg"))
    key = position_key(symbol, leg)  # a hedge leg is a position of its own
    qty = dec(p["qty"])
    positions = dict(state.positions)
    if qty == 0:
        positions.pop(key, None)
    else:
        old = positions.get(key)
        entry = dec(p.get("entry", "0"))
        ghost = bool(p.get("ghost", e.kind == "position.ghost" or (old is not None and old.ghost)))
        booked = old.booked if old is not None else None
        booked_qty = p.get("booked_qty")  # position.ghost's
        if booked_qty is not None:
            booked = dec(booked_qty)
        positions[key] = Position(
            symbol=symbol,
            qty=qty,
            entry=entry,
            mark=state.marks.get(symbol, old.mark if old else None),
            leverage=_leverage(state, p, symbol, old),
            liquidation=_liquidation(p, qty, entry, old),
            ghost=ghost,
            updated=e.ts,
            booked=booked if ghost else None,
            margin=_margin(p, old),
            isolated_margin=_isolated(p, old),
            leg=leg,
        )
    changes: Changes = {"positions": positions}
    leverage = p.get("leverage")
    if leverage is not None and state.leverages.get(symbol) != int(leverage):
        changes["leverages"] = {**state.leverages, symbol: int(leverage)}
    # the exchange's own figure: every fill recorded so far is in it, but for what it says it does not include
    # (fills recorded after the answer that brought it was asked for)
    pending = dec(p.get("unbooked", "0"))
    if pending or key in state.unbooked:
        unbooked = {k: q for k, q in state.unbooked.items() if k != key}
        changes["unbooked"] = {**unbooked, key: pending} if pending else unbooked
    if e.kind == "position.ghost":
        changes["counters"] = evolve(state.counters, ghosts=state.counters.ghosts + 1)
    changes.update(_valuation(state.wallet, positions, state.peak_equity))
    return changes


def _margin(p: ev.PositionRead, old: Position | None) -> str | None:
    """cross | isolated as the payload says (REST), else as last known."""
    margin = p.get("margin")
    return str(margin) if margin else (old.margin if old is not None else None)


def _isolated(p: ev.PositionRead, old: Position | None) -> Decimal | None:
    """The payload's isolated margin; a position the payload calls cross has none; else the last known."""
    isolated = p.get("isolated_margin")
    if isolated is not None:
        return dec(str(isolated))
    if p.get("margin") == "cross":
        return None
    return old.isolated_margin if old is not None else None


def _leverage(state: State, p: ev.PositionRead, symbol: str, old: Position | None) -> int | None:
    """The payload's leverage; without one (the user stream does not carry it) the position's, else the
    symbol's last known (leverage is a per-symbol account setting: it outlives a close and a re-open)."""
    if p.get("leverage") is not None:
        return int(p["leverage"])
    if old is not None and old.leverage is not None:
        return old.leverage
    return state.leverages.get(symbol)


def _liquidation(p: ev.PositionRead, qty: Decimal, entry: Decimal, old: Position | None) -> Decimal | None:
    """The payload's liquidation price ("0": the exchange sees none at this margin, kept as 0); without one,
    the position's while its size and entry are unchanged (an adoption), else unknown until the exchange
    says it again."""
    value = p.get("liquidation")
    if value is not None:
        return dec(value)
    if old is not None and old.qty == qty and old.entry == entry:
        return old.liquidation
    return None


def _market_info(state: State, e: Event, p: ev.MarketInfo) -> Changes:
    markets = dict(state.markets)
    for symbol, info in p.get("markets", NO_MARKS).items():
        markets[symbol] = MarketInfo(dec(info["price_step"]), dec(info["amount_step"]))
    changes: Changes = {"markets": markets}
    if p.get("stale_after_s") is not None:
        changes["stale_after_s"] = _real(p["stale_after_s"])
    return changes


def _balance(state: State, e: Event, p: ev.BalanceUpdated) -> Changes:
    wallet = dec(p["wallet"]) if p.get("wallet") is not None else state.wallet
    available = dec(p["available"]) if p.get("available") is not None else state.available
    return {
        "wallet": wallet,
        "available": available,
        **_valuation(wallet, state.positions, state.peak_equity),
    }


def _reconcile_done(state: State, e: Event, p: ev.ReconcileDone) -> Changes:
    summary = ReconcileSummary(
        seq=e.seq,
        ts=e.ts,
        trigger=str(p.get("trigger", "")),
        matched=int(p.get("matched", 0)),
        recovered_fills=int(p.get("recovered_fills", 0)),
        ghosts=tuple(p.get("ghosts", ())),
        orders_added=int(p.get("orders_added", 0)),
        orders_removed=int(p.get("orders_removed", 0)),
    )
    counters = evolve(state.counters, reconciles=state.counters.reconciles + 1)
    through = max(state.reconciled_through_ms, int(p.get("through_ms", 0)))
    changes: Changes = {"last_reconcile": summary, "counters": counters, "reconciled_through_ms": through}
    # no quantity cockpit counted that the exchange denies (a position opened by hand is no such thing): the
    # peak was measured on the account's own figures (older files, without `denied`: no ghost at all)
    if not p.get("denied", summary.ghosts):
        changes["peak_checked"] = state.peak_equity
    booked = p.get("booked")
    if booked:  # the exchange's positions, as cockpit holds them, include these symbols' recorded fills
        changes["unbooked"] = {s: q for s, q in state.unbooked.items() if s not in booked}
    return changes


def _kill_engaged(state: State, e: Event, p: ev.KillswitchEngaged) -> Changes:
    since = _real(p.get("since") or e.ts)  # carried over from an earlier session: engaged since then
    return {"kill_switch": KillSwitch(True, str(p.get("cause", "")), str(p.get("by", e.source)), since)}


def _kill_released(state: State, e: Event, p: ev.KillswitchReleased) -> Changes:
    return {"kill_switch": KillSwitch(False, "", str(p.get("by", e.source)), e.ts)}


def _flatten_started(state: State, e: Event, p: ev.FlattenStarted) -> Changes:
    symbols = tuple(str(s) for s in p.get("symbols", ()))
    return {"flattening": symbols, "last_flatten_verified": None}


def _flatten_done(state: State, e: Event, p: ev.FlattenDone) -> Changes:
    return {"flattening": (), "last_flatten_verified": bool(p.get("verified", False))}


def _clock(state: State, e: Event, p: ev.ClockChecked | ev.ClockDrift) -> Changes:
    offset = _real(p.get("offset_ms", 0.0))
    status = str(p.get("status", "ok"))
    detail = f"offset {offset:+.0f} ms" if status != "ok" else ""
    return {"clock_offset_ms": offset, **_health(state, "clock", status, detail, e.ts)}


def _drawdown_band(state: State, e: Event, p: ev.DrawdownBand) -> Changes:
    return {"drawdown_band": str(p.get("band", state.drawdown_band))}


def _peak_reset(state: State, e: Event, p: ev.DrawdownPeakReset) -> Changes:
    """The peak starts again from the equity of the reset: what a bad sample made the peak is gone."""
    peak = dec(p["new_peak"])
    changes: Changes = {"peak_equity": peak, "peak_checked": peak, "drawdown_pct": ZERO}
    if state.equity is not None:
        changes["drawdown_pct"] = max(_drawdown(peak, state.equity), ZERO)
    return changes


def _event_refused(state: State, e: Event, p: ev.EventRefused) -> Changes:
    return {"counters": evolve(state.counters, refused=state.counters.refused + 1)}


def _health_changed(state: State, e: Event, p: ev.HealthChanged) -> Changes:
    item, status = str(p["item"]), str(p["status"])
    if item == "database" and status not in SESSION_FILE_GONE and _file_gone(state):
        return {}
    return _health(state, item, status, str(p.get("detail", "")), e.ts)


# ----- bad exchange data (data.rejected): the "data" health item, per source, until health.changed ok -----
DATA_SOURCES = {
    "market_feed": "market feed",
    "user_stream": "user stream",
    "rest_positions": "REST positions",
    "rest_balance": "REST balance",
    "rest_marks": "REST marks",
    "rest_trades": "REST trades",
    "rest": "REST",
}


def _data_rejected(state: State, e: Event, p: ev.DataRejected) -> Changes:
    totals = ", ".join(f"{DATA_SOURCES.get(s, s)} {n}" for s, n in sorted(p.get("totals", {}).items()))
    detail = f"rejected: {totals}; last ({DATA_SOURCES.get(p['source'], p['source'])}): {p['reason']}"
    return _health(state, "data", "bad data", detail, e.ts)


def _db(state: State, e: Event, p: ev.DbError | ev.DbCorrupt | ev.DbBackup | ev.DbRestored) -> Changes:
    status = {"db.error": "retrying", "db.corrupt": "corrupt", "db.backup": "ok", "db.restored": "ok"}[e.kind]
    if e.kind == "db.error" and p.get("final"):
        status = "failed"
    if e.kind != "db.restored" and _file_gone(state):
        return {}  # a backup, a write retried: the file the session path named is still gone
    return _health(state, "database", status, _message(e.kind, p) if status != "ok" else "", e.ts)


def _dlq(state: State, e: Event, p: ev.DlqAdded) -> Changes:
    return {"counters": evolve(state.counters, dead_letters=state.counters.dead_letters + 1)}


HANDLERS: dict[str, Handler] = {
    "session.started": _session_started,
    "feed.connected": _stream,
    "feed.reconnected": _stream,
    "feed.disconnected": _stream,
    "feed.stale": _stream,
    "market.marks": _marks,
    "market.info": _market_info,
    "exchange.rate_limited": _exchange,
    "exchange.banned": _exchange,
    "exchange.maintenance": _exchange,
    "exchange.auth_failed": _exchange,
    "exchange.recovered": _exchange,
    "ratelimit.updated": _rate_limit,
    "order.submitted": _order_submitted,
    "order.accepted": _order_accepted,
    "order.partially_filled": _order_fill,
    "order.filled": _order_fill,
    "order.rejected": _order_rejected,
    "order.canceled": _order_canceled,
    "order.triggered": _order_triggered,
    "funding.paid": _funding_paid,
    "position.changed": _position,
    "position.ghost": _position,
    "balance.updated": _balance,
    "reconcile.done": _reconcile_done,
    "killswitch.engaged": _kill_engaged,
    "killswitch.released": _kill_released,
    "flatten.started": _flatten_started,
    "flatten.done": _flatten_done,
    "clock.checked": _clock,
    "clock.drift": _clock,
    "drawdown.band": _drawdown_band,
    "drawdown.peak_reset": _peak_reset,
    "health.changed": _health_changed,
    "event.refused": _event_refused,
    "data.rejected": _data_rejected,
    "db.error": _db,
    "db.corrupt": _db,
    "db.backup": _db,
    "db.restored": _db,
    "dlq.added": _dlq,
}
