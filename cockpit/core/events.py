"""The payload of each event kind: one `TypedDict` per kind in `EVENT_KINDS`, and one builder per kind.

Payloads stay plain JSON dicts, in memory and on disk: a TypedDict is a `dict` at run time and costs nothing,
so the fold reads them as fast as before. The types are for mypy: a builder is the only place its kind's
payload is assembled (`order_filled(...) -> OrderFilled`), and the readers (the fold, incidents, analytics,
the event log, the headless printer) take a payload as its kind's TypedDict, so each key they read is checked.

- A builder is named after its kind, `.` → `_` (`order.filled` → `order_filled`). It takes keyword arguments
  and gives the keys in one fixed order (the event log and the headless printer show them in that order).
  An optional key whose argument is None is left out, as it always was. One builder is not a kind's:
  `order_report`, the user stream's report of an order, which the order kinds built from it start with.
- `NotRequired` marks a key that some builds of the kind leave out, or that files written by earlier
  versions lack (noted at the key): a reader of such a key uses `.get` with the default the fold always used.
- `PAYLOADS` maps each kind to its TypedDict; `Payload` is any of them.

Deliberately without `from __future__ import annotations`: on Python 3.11 it hides `NotRequired` from the
TypedDicts' `__required_keys__`, which the tests read.
"""

from typing import Any, NotRequired, TypedDict, TypeVar, cast

from cockpit.core.domain import EVENT_KINDS


class UnknownEventKind(ValueError):
    """A programming error: an event kind that is not in `cockpit.core.domain.EVENT_KINDS`."""


def check_kind(kind: str) -> None:
    """Raise UnknownEventKind unless `kind` is in the vocabulary."""
    if kind not in EVENT_KINDS:
        raise UnknownEventKind(
            f"unknown event kind {kind!r}: every kind must be listed in cockpit.core.domain.EVENT_KINDS, "
            "have its payload in cockpit/core/events.py and a line in the README's event vocabulary"
        )


def _without_none(payload: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    """`payload` (in its order) without the optional keys whose value is None."""
    return {k: v for k, v in payload.items() if v is not None or k not in optional}


# ----- what any event may say about itself -------------------------------------------------------------


_P = TypeVar("_P")


def _legged(payload: _P, leg: str | None) -> _P:
    """The payload with its hedge-mode leg (long | short); a one-way position's ("both", None) is left out."""
    if leg in ("long", "short"):
        cast(dict[str, Any], payload)["leg"] = leg
    return payload


class Wording(TypedDict, total=False):
    """The keys a reader of any kind looks at to word an event: the fold's alert message, incident titles,
    the event log (the first of message, reason, cause, detail that is set)."""

    message: str
    reason: str
    cause: str
    detail: str


# ----- session ----------------------------------------------------------------------------------------
class SessionStarted(TypedDict):
    mode: str  # live | dry-run | demo
    exchange: str
    session_file: str
    restored: bool
    restored_seq: int
    continues: NotRequired[str]  # a rotated session: the file before (its State carried, snapshot at seq 1)
    session_began: NotRequired[float]  # a rotated session: when its first file's first event was written


def session_started(
    *,
    mode: str,
    exchange: str,
    session_file: str,
    restored: bool,
    restored_seq: int,
    continues: str | None = None,
    session_began: float | None = None,
) -> SessionStarted:
    payload = {
        "mode": mode,
        "exchange": exchange,
        "session_file": session_file,
        "restored": restored,
        "restored_seq": restored_seq,
        "continues": continues,
        "session_began": session_began,
    }
    return cast(SessionStarted, _without_none(payload, ("continues", "session_began")))


class SessionRotated(TypedDict):
    next_file: str  # the session goes on in this file
    reason: str  # daily | size
    last_seq: int  # this event's own seq: the last of this file
    message: str


def session_rotated(*, next_file: str, reason: str, last_seq: int, message: str) -> SessionRotated:
    return {"next_file": next_file, "reason": reason, "last_seq": last_seq, "message": message}


class SessionStopped(TypedDict):
    seq: int  # this event's own seq


def session_stopped(*, seq: int) -> SessionStopped:
    return {"seq": seq}


# ----- feeds ------------------------------------------------------------------------------------------
class FeedConnected(TypedDict):
    stream: str  # `<feed>` or `<feed>/<stream>`
    feed: str
    down_for_s: NotRequired[float]  # after a drop


def feed_connected(*, stream: str, feed: str, down_for_s: float | None = None) -> FeedConnected:
    payload: FeedConnected = {"stream": stream, "feed": feed}
    if down_for_s is not None:
        payload["down_for_s"] = down_for_s
    return payload


class FeedReconnected(FeedConnected):
    """The same shape as `feed.connected`: a stream back after a disconnect."""


def feed_reconnected(*, stream: str, feed: str, down_for_s: float | None = None) -> FeedReconnected:
    payload: FeedReconnected = {"stream": stream, "feed": feed}
    if down_for_s is not None:
        payload["down_for_s"] = down_for_s
    return payload


class FeedDisconnected(TypedDict):
    stream: str
    feed: str
    attempt: int
    failures: int
    retry_in_s: float | None
    reason: str
    close_code: int | None
    down_for_s: float | None
    final: NotRequired[bool]  # the first engine versions' files: the stream gave up (no longer written)


def feed_disconnected(
    *,
    stream: str,
    feed: str,
    attempt: int,
    failures: int,
    retry_in_s: float | None,
    reason: str,
    close_code: int | None,
    down_for_s: float | None,
) -> FeedDisconnected:
    return {
        "stream": stream,
        "feed": feed,
        "attempt": attempt,
        "failures": failures,
        "retry_in_s": retry_in_s,
        "reason": reason,
        "close_code": close_code,
        "down_for_s": down_for_s,
    }


class FeedStale(TypedDict):
    stream: str
    feed: str
    silent_s: float
    reason: str


def feed_stale(*, stream: str, feed: str, silent_s: float, reason: str) -> FeedStale:
    return {"stream": stream, "feed": feed, "silent_s": silent_s, "reason": reason}


# ----- market -----------------------------------------------------------------------------------------
class MarketMarks(TypedDict):
    marks: dict[str, str]  # unified symbol -> decimal string (tests and old files: numbers too)
    source: str  # ws | rest


def market_marks(*, marks: dict[str, str], source: str) -> MarketMarks:
    return {"marks": marks, "source": source}


class MarketSteps(TypedDict):
    price_step: str
    amount_step: str


class MarketInfo(TypedDict):
    markets: dict[str, MarketSteps]
    stale_after_s: NotRequired[float]  # at start (and when it changed): the engine's feeds.stale_after_s


def market_info(*, markets: dict[str, MarketSteps], stale_after_s: float | None = None) -> MarketInfo:
    payload: MarketInfo = {"markets": markets}
    if stale_after_s is not None:
        payload["stale_after_s"] = stale_after_s
    return payload


# ----- the exchange -----------------------------------------------------------------------------------
class _ExchangeNotice(TypedDict):
    op: str
    message: str
    retry_after_s: NotRequired[float]
    error_class: NotRequired[str]


def _notice(op: str, message: str, retry_after_s: float | None, error_class: str | None) -> _ExchangeNotice:
    payload: _ExchangeNotice = {"op": op, "message": message}
    if retry_after_s is not None:
        payload["retry_after_s"] = retry_after_s
    if error_class is not None:
        payload["error_class"] = error_class
    return payload


class ExchangeRateLimited(_ExchangeNotice):
    notices: NotRequired[int]  # the answers this event stands for; absent (one) in older files


def exchange_rate_limited(
    *, op: str, message: str, notices: int, retry_after_s: float | None = None, error_class: str | None = None
) -> ExchangeRateLimited:
    payload = cast(ExchangeRateLimited, _notice(op, message, retry_after_s, error_class))
    payload["notices"] = notices
    return payload


class ExchangeBanned(_ExchangeNotice):
    notices: NotRequired[int]  # the answers this event stands for; absent (one) in older files


def exchange_banned(
    *, op: str, message: str, notices: int, retry_after_s: float | None = None, error_class: str | None = None
) -> ExchangeBanned:
    payload = cast(ExchangeBanned, _notice(op, message, retry_after_s, error_class))
    payload["notices"] = notices
    return payload


class ExchangeMaintenance(_ExchangeNotice):
    notices: NotRequired[int]  # the answers this event stands for; absent (one) in older files


def exchange_maintenance(
    *, op: str, message: str, notices: int, retry_after_s: float | None = None, error_class: str | None = None
) -> ExchangeMaintenance:
    payload = cast(ExchangeMaintenance, _notice(op, message, retry_after_s, error_class))
    payload["notices"] = notices
    return payload


class ExchangeAuthFailed(_ExchangeNotice):
    fix: str


def exchange_auth_failed(
    *, op: str, message: str, fix: str, retry_after_s: float | None = None, error_class: str | None = None
) -> ExchangeAuthFailed:
    payload = cast(ExchangeAuthFailed, _notice(op, message, retry_after_s, error_class))
    payload["fix"] = fix
    return payload


class ExchangeRecovered(_ExchangeNotice):
    held_notices: NotRequired[dict[str, int]]  # per trouble, the notices held after its last event


def exchange_recovered(
    *,
    op: str,
    message: str,
    held_notices: dict[str, int] | None = None,
    retry_after_s: float | None = None,
    error_class: str | None = None,
) -> ExchangeRecovered:
    payload = cast(ExchangeRecovered, _notice(op, message, retry_after_s, error_class))
    if held_notices:
        payload["held_notices"] = held_notices
    return payload


class ExchangeError(_ExchangeNotice):
    """An exchange call failed for good: `op`, `message`, and the error class when known."""


def exchange_error(
    *, op: str, message: str, retry_after_s: float | None = None, error_class: str | None = None
) -> ExchangeError:
    return _notice(op, message, retry_after_s, error_class)


class RatelimitUpdated(TypedDict):
    used: int
    limit: int
    queued: int
    rejected_recent: int
    cooldown_until: float | None
    banned_until: float | None
    window_s: NotRequired[float]  # the shared budget's window (files before it: Binance's minute)
    # the busiest endpoint with a budget of its own (Bybit's per-second ones), when one is in use
    endpoint: NotRequired[str]
    endpoint_used: NotRequired[int]
    endpoint_limit: NotRequired[int]
    endpoint_cooldown_until: NotRequired[float | None]


def ratelimit_updated(
    *,
    used: int,
    limit: int,
    queued: int,
    rejected_recent: int,
    cooldown_until: float | None,
    banned_until: float | None,
    window_s: float = 60.0,
    endpoint: str | None = None,
    endpoint_used: int = 0,
    endpoint_limit: int = 0,
    endpoint_cooldown_until: float | None = None,
) -> RatelimitUpdated:
    payload: RatelimitUpdated = {
        "used": used,
        "limit": limit,
        "queued": queued,
        "rejected_recent": rejected_recent,
        "cooldown_until": cooldown_until,
        "banned_until": banned_until,
        "window_s": window_s,
    }
    if endpoint:
        payload["endpoint"] = endpoint
        payload["endpoint_used"] = endpoint_used
        payload["endpoint_limit"] = endpoint_limit
        payload["endpoint_cooldown_until"] = endpoint_cooldown_until
    return payload


# ----- orders -----------------------------------------------------------------------------------------
# Amounts and prices are decimal strings. The order kinds share one key order: the exchange's report of an
# order (client_order_id, order_id, symbol, side, type, amount, price, filled, average, reduce_only, origin,
# status), then what the kind adds.


class OrderReport(TypedDict):
    """The user stream's report of an order, as the order kinds built from it carry it."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    amount: str
    price: str
    filled: str
    average: str
    reduce_only: bool
    origin: str  # cockpit | external
    status: str
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_report(
    *,
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    price: str,
    filled: str,
    average: str,
    reduce_only: bool,
    origin: str,
    status: str,
    leg: str | None = None,
) -> OrderReport:
    """Not a kind of its own: the keys each order kind built from the user stream starts with, in their order
    (`order_accepted(**report)`, `order_filled(**report, trade_id=…)`, the guard's `killswitch.guard`)."""
    payload: OrderReport = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "price": price,
        "filled": filled,
        "average": average,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
    }
    return _legged(payload, leg)


class OrderSubmitted(TypedDict):
    client_order_id: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit
    amount: str
    price: str | None
    reduce_only: bool
    origin: str  # cockpit
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_submitted(
    *,
    client_order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    price: str | None,
    reduce_only: bool,
    origin: str,
    leg: str | None = None,
) -> OrderSubmitted:
    payload: OrderSubmitted = {
        "client_order_id": client_order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "price": price,
        "reduce_only": reduce_only,
        "origin": origin,
    }
    return _legged(payload, leg)


class OrderAccepted(TypedDict):
    client_order_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    amount: str
    price: str | None
    filled: str
    average: NotRequired[str]  # the user stream's
    reduce_only: bool
    origin: str  # cockpit | external
    status: str
    resolved_by_lookup: NotRequired[bool]  # cockpit's own orders: the ack was looked up after a timeout
    trigger: NotRequired[str]  # a conditional order's trigger price
    conditional: NotRequired[bool]  # placed through the exchange's conditional (algo) service
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_accepted(
    *,
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    price: str | None,
    filled: str,
    reduce_only: bool,
    origin: str,
    status: str,
    average: str | None = None,
    resolved_by_lookup: bool | None = None,
    trigger: str | None = None,
    conditional: bool | None = None,
    leg: str | None = None,
) -> OrderAccepted:
    payload = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "price": price,
        "filled": filled,
        "average": average,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
        "resolved_by_lookup": resolved_by_lookup,
        "trigger": trigger,
        "conditional": conditional,
    }
    optional = ("average", "resolved_by_lookup", "trigger", "conditional")
    return _legged(cast(OrderAccepted, _without_none(payload, optional)), leg)


class OrderTriggered(TypedDict):
    """A conditional order's trigger was hit: it is no longer open as itself; the exchange placed the order
    it stood for (`placed`: that order's id, when the exchange says), whose fills follow as usual."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    amount: str
    trigger: str
    reduce_only: bool
    origin: str
    status: str  # triggered | finished
    placed: NotRequired[str]
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_triggered(
    *,
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    trigger: str,
    reduce_only: bool,
    origin: str,
    status: str,
    placed: str | None = None,
    leg: str | None = None,
) -> OrderTriggered:
    payload = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "trigger": trigger,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
        "placed": placed,
    }
    return _legged(cast(OrderTriggered, _without_none(payload, ("placed",))), leg)


class _Fill(TypedDict):
    """One trade of an order: `order.filled` (the order is done) and `order.partially_filled` share it.

    The quantity of this trade is `last_qty` wherever the fill comes from. `filled` (the order's cumulative
    executed quantity), `price`, `average`, `reduce_only`, `status` and `maker` are the user stream's: a fill
    that reconcile recovered from the trade history has none of them, and says `recovered: true`."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    amount: str
    price: NotRequired[str]
    filled: NotRequired[str]
    average: NotRequired[str]
    reduce_only: NotRequired[bool]
    origin: str  # cockpit | external | unknown (recovered, its order never seen)
    status: NotRequired[str]
    trade_id: str
    last_qty: str
    last_price: str
    commission: str
    realized_pnl: str
    trade_time_ms: int
    maker: NotRequired[bool]
    # always written now; files written before lack it on the user stream's fills (read it as False there)
    recovered: NotRequired[bool]
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


_FILL_OPTIONAL = ("price", "filled", "average", "reduce_only", "status", "maker")


def _fill(
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type_: str,
    amount: str,
    origin: str,
    trade_id: str,
    last_qty: str,
    last_price: str,
    commission: str,
    realized_pnl: str,
    trade_time_ms: int,
    recovered: bool,
    price: str | None,
    filled: str | None,
    average: str | None,
    reduce_only: bool | None,
    status: str | None,
    maker: bool | None,
) -> dict[str, Any]:
    payload = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type_,
        "amount": amount,
        "price": price,
        "filled": filled,
        "average": average,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
        "trade_id": trade_id,
        "last_qty": last_qty,
        "last_price": last_price,
        "commission": commission,
        "realized_pnl": realized_pnl,
        "trade_time_ms": trade_time_ms,
        "maker": maker,
        "recovered": recovered,
    }
    return _without_none(payload, _FILL_OPTIONAL)


class OrderFilled(_Fill):
    """The order is done (or, `recovered`, a fill reconcile found in the trade history)."""


def order_filled(
    *,
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    origin: str,
    trade_id: str,
    last_qty: str,
    last_price: str,
    commission: str,
    realized_pnl: str,
    trade_time_ms: int,
    recovered: bool,
    price: str | None = None,
    filled: str | None = None,
    average: str | None = None,
    reduce_only: bool | None = None,
    status: str | None = None,
    maker: bool | None = None,
    leg: str | None = None,
) -> OrderFilled:
    payload = cast(
        OrderFilled,
        _fill(
            client_order_id, order_id, symbol, side, type, amount, origin, trade_id, last_qty, last_price,
            commission, realized_pnl, trade_time_ms, recovered, price, filled, average, reduce_only, status,
            maker,
        ),
    )  # fmt: skip
    return _legged(payload, leg)


class OrderPartiallyFilled(_Fill):
    """A trade that leaves part of the order open (the user stream's; reconcile records `order.filled`)."""


def order_partially_filled(
    *,
    client_order_id: str,
    order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    origin: str,
    trade_id: str,
    last_qty: str,
    last_price: str,
    commission: str,
    realized_pnl: str,
    trade_time_ms: int,
    recovered: bool = False,
    price: str | None = None,
    filled: str | None = None,
    average: str | None = None,
    reduce_only: bool | None = None,
    status: str | None = None,
    maker: bool | None = None,
    leg: str | None = None,
) -> OrderPartiallyFilled:
    payload = cast(
        OrderPartiallyFilled,
        _fill(
            client_order_id, order_id, symbol, side, type, amount, origin, trade_id, last_qty, last_price,
            commission, realized_pnl, trade_time_ms, recovered, price, filled, average, reduce_only, status,
            maker,
        ),
    )  # fmt: skip
    return _legged(payload, leg)


class OrderRejected(TypedDict):
    client_order_id: str
    order_id: NotRequired[str]  # the user stream's
    symbol: str
    side: str
    type: str
    amount: str
    price: str | None
    filled: NotRequired[str]  # the user stream's
    average: NotRequired[str]  # the user stream's
    reduce_only: bool
    origin: str
    status: NotRequired[str]  # the user stream's
    reason: NotRequired[str]  # cockpit's own refusals and the exchange's errors
    refused_by: NotRequired[str]  # risk: refused before it was sent
    dry_run: NotRequired[bool]  # a dry run: never sent
    error_class: NotRequired[str]  # the exchange refused it
    error_type: NotRequired[str]
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_rejected(
    *,
    client_order_id: str,
    symbol: str,
    side: str,
    type: str,  # noqa: A002 - the payload's key
    amount: str,
    price: str | None,
    reduce_only: bool,
    origin: str,
    order_id: str | None = None,
    filled: str | None = None,
    average: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    refused_by: str | None = None,
    dry_run: bool | None = None,
    error_class: str | None = None,
    error_type: str | None = None,
    leg: str | None = None,
) -> OrderRejected:
    payload = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "price": price,
        "filled": filled,
        "average": average,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
        "reason": reason,
        "refused_by": refused_by,
        "dry_run": dry_run,
        "error_class": error_class,
        "error_type": error_type,
    }
    optional = (
        "order_id",
        "filled",
        "average",
        "status",
        "reason",
        "refused_by",
        "dry_run",
        "error_class",
        "error_type",
    )
    return _legged(cast(OrderRejected, _without_none(payload, optional)), leg)


class OrderCanceled(TypedDict):
    client_order_id: str
    order_id: NotRequired[str]  # the user stream's report …
    symbol: str
    side: NotRequired[str]
    type: NotRequired[str]
    amount: NotRequired[str]
    price: NotRequired[str]
    filled: NotRequired[str]  # … and cockpit's own TTL cancel
    average: NotRequired[str]
    reduce_only: NotRequired[bool]
    origin: NotRequired[str]
    status: str  # canceled | expired | gone (not open at the exchange: reconcile)
    remaining: NotRequired[str]  # TTL cancel: the remainder canceled
    reason: NotRequired[str]
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)


def order_canceled(
    *,
    client_order_id: str,
    symbol: str,
    status: str,
    order_id: str | None = None,
    side: str | None = None,
    type: str | None = None,  # noqa: A002 - the payload's key
    amount: str | None = None,
    price: str | None = None,
    filled: str | None = None,
    average: str | None = None,
    reduce_only: bool | None = None,
    origin: str | None = None,
    remaining: str | None = None,
    reason: str | None = None,
    leg: str | None = None,
) -> OrderCanceled:
    payload = {
        "client_order_id": client_order_id,
        "order_id": order_id,
        "symbol": symbol,
        "side": side,
        "type": type,
        "amount": amount,
        "price": price,
        "filled": filled,
        "average": average,
        "reduce_only": reduce_only,
        "origin": origin,
        "status": status,
        "remaining": remaining,
        "reason": reason,
    }
    required = ("client_order_id", "symbol", "status")
    return _legged(
        cast(OrderCanceled, {k: v for k, v in payload.items() if v is not None or k in required}), leg
    )


class FundingPaid(TypedDict):
    """One funding payment on a position: `amount` < 0 paid, > 0 received (already in the exchange's wallet;
    recorded so PnL, the report and the stats can say how much of it was funding)."""

    symbol: str
    amount: str
    asset: str
    income_id: str  # the exchange's id (Binance's tranId): recorded once
    time_ms: int  # exchange time
    recovered: bool  # read from the income history after the engine was down (or the stream missed it)


def funding_paid(
    *, symbol: str, amount: str, asset: str, income_id: str, time_ms: int, recovered: bool
) -> FundingPaid:
    return {
        "symbol": symbol,
        "amount": amount,
        "asset": asset,
        "income_id": income_id,
        "time_ms": time_ms,
        "recovered": recovered,
    }


# ----- positions and balance --------------------------------------------------------------------------
class PositionChanged(TypedDict):
    symbol: str
    qty: str  # signed: long > 0, short < 0; "0": closed
    entry: str
    leverage: NotRequired[int]  # REST only (the user stream does not carry it)
    liquidation: NotRequired[str]  # REST only; "0": none at this margin
    ghost: NotRequired[bool]  # False: no longer a ghost (adopted, or explained by recorded fills)
    reason: str
    message: NotRequired[str]
    margin: NotRequired[str]  # REST only: cross | isolated
    isolated_margin: NotRequired[str]  # REST only: an isolated position's own margin
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)
    # recorded fills this figure does not include yet (signed; absent: it includes every one recorded)
    unbooked: NotRequired[str]


def position_changed(
    *,
    symbol: str,
    qty: str,
    entry: str,
    reason: str,
    leverage: int | None = None,
    liquidation: str | None = None,
    ghost: bool | None = None,
    message: str | None = None,
    margin: str | None = None,
    isolated_margin: str | None = None,
    leg: str | None = None,
    unbooked: str | None = None,
) -> PositionChanged:
    payload = {
        "symbol": symbol,
        "qty": qty,
        "entry": entry,
        "leverage": leverage,
        "liquidation": liquidation,
        "ghost": ghost,
        "reason": reason,
        "message": message,
        "margin": margin,
        "isolated_margin": isolated_margin,
        "unbooked": unbooked,
    }
    optional = ("leverage", "liquidation", "ghost", "message", "margin", "isolated_margin", "unbooked")
    return _legged(cast(PositionChanged, _without_none(payload, optional)), leg)


class PositionGhost(TypedDict):
    symbol: str
    qty: str  # the exchange's
    entry: str
    leverage: NotRequired[int]
    liquidation: NotRequired[str]
    local_qty: str
    exchange_qty: str
    unexplained_qty: str
    booked_qty: str  # what the recorded trades explain
    message: str
    leg: NotRequired[str]  # a hedge-mode leg: long | short (absent on a one-way account)
    unbooked: NotRequired[str]  # recorded fills this figure does not include yet (as position.changed's)


def position_ghost(
    *,
    symbol: str,
    qty: str,
    entry: str,
    local_qty: str,
    exchange_qty: str,
    unexplained_qty: str,
    booked_qty: str,
    message: str,
    leverage: int | None = None,
    liquidation: str | None = None,
    leg: str | None = None,
    unbooked: str | None = None,
) -> PositionGhost:
    payload = {
        "symbol": symbol,
        "qty": qty,
        "entry": entry,
        "leverage": leverage,
        "liquidation": liquidation,
        "local_qty": local_qty,
        "exchange_qty": exchange_qty,
        "unexplained_qty": unexplained_qty,
        "booked_qty": booked_qty,
        "message": message,
        "unbooked": unbooked,
    }
    optional = ("leverage", "liquidation", "unbooked")
    return _legged(cast(PositionGhost, _without_none(payload, optional)), leg)


class BalanceUpdated(TypedDict):
    wallet: str
    available: NotRequired[str]  # REST
    reason: NotRequired[str]  # the user stream's update reason


def balance_updated(
    *, wallet: str, available: str | None = None, reason: str | None = None
) -> BalanceUpdated:
    payload: BalanceUpdated = {"wallet": wallet}
    if available is not None:
        payload["available"] = available
    if reason is not None:
        payload["reason"] = reason
    return payload


# ----- reconcile --------------------------------------------------------------------------------------
class ReconcileStarted(TypedDict):
    trigger: str


def reconcile_started(*, trigger: str) -> ReconcileStarted:
    return {"trigger": trigger}


class ReconcileDone(TypedDict):
    trigger: str
    matched: int
    recovered_fills: int
    recovered_by_symbol: dict[str, int]
    ghosts: list[str]
    adopted: list[str]
    corrected: list[str]
    orders_added: int
    orders_removed: int
    ghosts_open: list[str]
    seconds: float
    through_ms: int
    booked: NotRequired[list[str]]  # older files: symbols whose recorded fills the positions include
    denied: NotRequired[list[str]]  # ghosts where cockpit held quantity the exchange denies


def reconcile_done(
    *,
    trigger: str,
    matched: int,
    recovered_fills: int,
    recovered_by_symbol: dict[str, int],
    ghosts: list[str],
    adopted: list[str],
    corrected: list[str],
    orders_added: int,
    orders_removed: int,
    ghosts_open: list[str],
    seconds: float,
    through_ms: int,
    denied: list[str],
) -> ReconcileDone:
    return {
        "trigger": trigger,
        "matched": matched,
        "recovered_fills": recovered_fills,
        "recovered_by_symbol": recovered_by_symbol,
        "ghosts": ghosts,
        "adopted": adopted,
        "corrected": corrected,
        "orders_added": orders_added,
        "orders_removed": orders_removed,
        "ghosts_open": ghosts_open,
        "seconds": seconds,
        "through_ms": through_ms,
        "denied": denied,
    }


# ----- the kill switch --------------------------------------------------------------------------------
class KillswitchEngaged(TypedDict):
    cause: str
    by: str
    since: NotRequired[float]  # carried over: engaged since then (else: the event's time)
    carried_over: NotRequired[bool]
    persisted: NotRequired[bool]  # False: engaged in memory only, the session file could not be written
    message: str


def killswitch_engaged(
    *,
    cause: str,
    by: str,
    message: str,
    since: float | None = None,
    carried_over: bool | None = None,
    persisted: bool | None = None,
) -> KillswitchEngaged:
    payload = {
        "cause": cause,
        "by": by,
        "since": since,
        "carried_over": carried_over,
        "persisted": persisted,
        "message": message,
    }
    return cast(KillswitchEngaged, _without_none(payload, ("since", "carried_over", "persisted")))


class KillswitchReleased(TypedDict):
    by: str
    previous_cause: str
    carried_over: NotRequired[bool]
    message: str


def killswitch_released(
    *, by: str, previous_cause: str, message: str, carried_over: bool | None = None
) -> KillswitchReleased:
    payload = {"by": by, "previous_cause": previous_cause, "carried_over": carried_over, "message": message}
    return cast(KillswitchReleased, _without_none(payload, ("carried_over",)))


class KillswitchGuard(TypedDict):
    """The guard's first cancel and first flag carry the other client's order (its report's keys); a summary
    only the counts."""

    client_order_id: NotRequired[str]
    order_id: NotRequired[str]
    symbol: NotRequired[str]
    side: NotRequired[str]
    type: NotRequired[str]
    amount: NotRequired[str]
    price: NotRequired[str]
    filled: NotRequired[str]
    average: NotRequired[str]
    reduce_only: NotRequired[bool]
    origin: NotRequired[str]
    status: NotRequired[str]
    action: str  # cancel | flag | summary
    last_qty: NotRequired[str]  # flag: the fill's quantity
    canceled: int
    already_filled: int
    cancel_failed: int
    flagged: int
    symbols: list[str]
    message: str


def killswitch_guard(
    *,
    action: str,
    canceled: int,
    already_filled: int,
    cancel_failed: int,
    flagged: int,
    symbols: list[str],
    message: str,
    order: OrderReport | None = None,
    last_qty: str | None = None,
) -> KillswitchGuard:
    payload: dict[str, Any] = {**order} if order is not None else {}
    payload["action"] = action
    if last_qty is not None:
        payload["last_qty"] = last_qty
    payload.update(
        canceled=canceled,
        already_filled=already_filled,
        cancel_failed=cancel_failed,
        flagged=flagged,
        symbols=symbols,
        message=message,
    )
    return cast(KillswitchGuard, payload)


# ----- flatten ----------------------------------------------------------------------------------------
class FlattenStarted(TypedDict):
    symbols: list[str]
    by: str
    positions: dict[str, str]  # the exchange's signed quantity of each target held


def flatten_started(*, symbols: list[str], by: str, positions: dict[str, str]) -> FlattenStarted:
    return {"symbols": symbols, "by": by, "positions": positions}


class FlattenDone(TypedDict):
    symbols: list[str]
    by: str
    verified: bool
    rounds: int
    remaining: dict[str, str]
    errors: list[str]
    message: str


def flatten_done(
    *,
    symbols: list[str],
    by: str,
    verified: bool,
    rounds: int,
    remaining: dict[str, str],
    errors: list[str],
    message: str,
) -> FlattenDone:
    return {
        "symbols": symbols,
        "by": by,
        "verified": verified,
        "rounds": rounds,
        "remaining": remaining,
        "errors": errors,
        "message": message,
    }


# ----- clock, drawdown, health ------------------------------------------------------------------------
class ClockChecked(TypedDict):
    offset_ms: float
    status: str  # ok | drift | kill
    rtt_ms: float
    error_ms: float
    warn_ms: float
    kill_ms: float
    samples: int
    discarded: int
    filtered: bool
    method: str


def clock_checked(
    *,
    offset_ms: float,
    status: str,
    rtt_ms: float,
    error_ms: float,
    warn_ms: float,
    kill_ms: float,
    samples: int,
    discarded: int,
    filtered: bool,
    method: str,
) -> ClockChecked:
    return {
        "offset_ms": offset_ms,
        "status": status,
        "rtt_ms": rtt_ms,
        "error_ms": error_ms,
        "warn_ms": warn_ms,
        "kill_ms": kill_ms,
        "samples": samples,
        "discarded": discarded,
        "filtered": filtered,
        "method": method,
    }


class ClockDrift(ClockChecked):
    message: str


def clock_drift(*, checked: ClockChecked, message: str) -> ClockDrift:
    """The check's figures (`clock_checked`) and what crossing the threshold means."""
    return {**checked, "message": message}


class DrawdownBand(TypedDict):
    band: str  # green | yellow | orange | red
    drawdown_pct: float
    equity: str
    peak_equity: str
    message: str


def drawdown_band(
    *, band: str, drawdown_pct: float, equity: str, peak_equity: str, message: str
) -> DrawdownBand:
    return {
        "band": band,
        "drawdown_pct": drawdown_pct,
        "equity": equity,
        "peak_equity": peak_equity,
        "message": message,
    }


class DrawdownPeakReset(TypedDict):
    by: str  # who asked: an operator (ui, ctl) or the engine (a reconcile that corrected the account)
    old_peak: str | None
    new_peak: str  # the equity when it was reset: drawdown starts again from 0
    reason: str
    message: str


def drawdown_peak_reset(
    *, by: str, old_peak: str | None, new_peak: str, reason: str, message: str
) -> DrawdownPeakReset:
    return {"by": by, "old_peak": old_peak, "new_peak": new_peak, "reason": reason, "message": message}


class HealthChanged(TypedDict):
    item: str  # exchange | feed | user_stream | database | clock
    status: str  # ok, or the named problem
    message: NotRequired[str]
    detail: NotRequired[str]


def health_changed(
    *, item: str, status: str, message: str | None = None, detail: str | None = None
) -> HealthChanged:
    payload: HealthChanged = {"item": item, "status": status}
    if message is not None:
        payload["message"] = message
    if detail is not None:
        payload["detail"] = detail
    return payload


class EventRefused(TypedDict):
    kind: str  # the kind of the event that was refused (it is not in the file)
    reason: str
    message: str


def event_refused(*, kind: str, reason: str, message: str) -> EventRefused:
    return {"kind": kind, "reason": reason, "message": message}


# ----- bad exchange data ------------------------------------------------------------------------------
class DataRejected(TypedDict):
    source: str  # market_feed | user_stream | rest_positions | rest_balance | rest_marks | rest_trades | rest
    reason: str  # the last rejection's: names the field and the value
    count: int  # rejections of this source this event reports (the first: 1; a summary: those since)
    totals: dict[str, int]  # every source's rejections since the engine started
    message: str


def data_rejected(
    *, source: str, reason: str, count: int, totals: dict[str, int], message: str
) -> DataRejected:
    return {"source": source, "reason": reason, "count": count, "totals": totals, "message": message}


# ----- the session file -------------------------------------------------------------------------------
class DbBackup(TypedDict):
    path: str
    size_bytes: int
    verified: bool
    last_seq: int | None
    seconds: float
    by: str
    message: str


def db_backup(
    *, path: str, size_bytes: int, verified: bool, last_seq: int | None, seconds: float, by: str, message: str
) -> DbBackup:
    return {
        "path": path,
        "size_bytes": size_bytes,
        "verified": verified,
        "last_seq": last_seq,
        "seconds": seconds,
        "by": by,
        "message": message,
    }


class DbArchived(TypedDict):
    rows: int  # ticks moved out of the session file
    files: int  # Parquet files written
    through_ts: float  # every tick before this time is in the archive
    folder: str
    seconds: float
    message: str


def db_archived(
    *, rows: int, files: int, through_ts: float, folder: str, seconds: float, message: str
) -> DbArchived:
    return {
        "rows": rows,
        "files": files,
        "through_ts": through_ts,
        "folder": folder,
        "seconds": seconds,
        "message": message,
    }


class DbCorrupt(TypedDict):
    problems: dict[str, str]  # check -> what is wrong
    kept_aside: str
    message: str


def db_corrupt(*, problems: dict[str, str], kept_aside: str, message: str) -> DbCorrupt:
    return {"problems": problems, "kept_aside": kept_aside, "message": message}


class DbRestored(TypedDict):
    backup: str
    kept_aside: str | None
    restored_seq: int | None
    by: NotRequired[str]  # `cockpit restore` (cli)
    message: str


def db_restored(
    *, backup: str, kept_aside: str | None, restored_seq: int | None, message: str, by: str | None = None
) -> DbRestored:
    payload = {
        "backup": backup,
        "kept_aside": kept_aside,
        "restored_seq": restored_seq,
        "by": by,
        "message": message,
    }
    return cast(DbRestored, _without_none(payload, ("by",)))


class DbError(TypedDict):
    message: str
    attempt: int
    retry_in_s: float | None
    final: bool  # every retry failed: the engine stops


def db_error(*, message: str, attempt: int, retry_in_s: float | None, final: bool) -> DbError:
    return {"message": message, "attempt": attempt, "retry_in_s": retry_in_s, "final": final}


class DlqAdded(TypedDict):
    op: str
    error_class: str
    error_type: str
    reason: str
    attempts: int
    message: str


def dlq_added(
    *, op: str, error_class: str, error_type: str, reason: str, attempts: int, message: str
) -> DlqAdded:
    return {
        "op": op,
        "error_class": error_class,
        "error_type": error_type,
        "reason": reason,
        "attempts": attempts,
        "message": message,
    }


# ----- the operator, and anything else ----------------------------------------------------------------
class OperatorAction(TypedDict):
    action: str  # reconcile | flatten | kill_switch | backup | adopt | dlq.retry | cancel | ack
    symbols: NotRequired[list[str] | str]  # flatten, cancel: the symbols, or "all"
    order: NotRequired[str]  # cancel: the one order (client order id or exchange id)
    on: NotRequired[bool]  # kill_switch
    symbol: NotRequired[str]  # adopt
    id: NotRequired[int]  # dlq.retry: the dead letter
    by: str


def operator_action(
    *,
    action: str,
    by: str,
    symbols: list[str] | str | None = None,
    on: bool | None = None,
    symbol: str | None = None,
    id: int | None = None,  # noqa: A002 - the payload's key
    order: str | None = None,
) -> OperatorAction:
    payload = {
        "action": action,
        "symbols": symbols,
        "order": order,
        "on": on,
        "symbol": symbol,
        "id": id,
        "by": by,
    }
    return cast(OperatorAction, _without_none(payload, ("symbols", "order", "on", "symbol", "id")))


class Alert(TypedDict):
    message: str
    feed: NotRequired[str]  # a REST fallback feed failed
    available: NotRequired[str]  # insufficient margin: the free margin
    fill_rate: NotRequired[float]
    removed: NotRequired[list[str]]  # backup retention: the files removed …
    after: NotRequired[str]  # … after this backup


def alert(
    *,
    message: str,
    feed: str | None = None,
    available: str | None = None,
    fill_rate: float | None = None,
    removed: list[str] | None = None,
    after: str | None = None,
) -> Alert:
    payload: Alert = {"message": message}
    if feed is not None:
        payload["feed"] = feed
    if available is not None:
        payload["available"] = available
    if fill_rate is not None:
        payload["fill_rate"] = fill_rate
    if removed is not None:
        payload["removed"] = removed
    if after is not None:
        payload["after"] = after
    return payload


# ----- every kind -------------------------------------------------------------------------------------
PAYLOADS: dict[str, type] = {
    "session.started": SessionStarted,
    "session.stopped": SessionStopped,
    "session.rotated": SessionRotated,
    "feed.connected": FeedConnected,
    "feed.disconnected": FeedDisconnected,
    "feed.reconnected": FeedReconnected,
    "feed.stale": FeedStale,
    "market.marks": MarketMarks,
    "market.info": MarketInfo,
    "exchange.rate_limited": ExchangeRateLimited,
    "exchange.banned": ExchangeBanned,
    "exchange.maintenance": ExchangeMaintenance,
    "exchange.auth_failed": ExchangeAuthFailed,
    "exchange.recovered": ExchangeRecovered,
    "exchange.error": ExchangeError,
    "ratelimit.updated": RatelimitUpdated,
    "order.submitted": OrderSubmitted,
    "order.accepted": OrderAccepted,
    "order.filled": OrderFilled,
    "order.partially_filled": OrderPartiallyFilled,
    "order.rejected": OrderRejected,
    "order.canceled": OrderCanceled,
    "order.triggered": OrderTriggered,
    "funding.paid": FundingPaid,
    "position.changed": PositionChanged,
    "position.ghost": PositionGhost,
    "balance.updated": BalanceUpdated,
    "reconcile.started": ReconcileStarted,
    "reconcile.done": ReconcileDone,
    "killswitch.engaged": KillswitchEngaged,
    "killswitch.released": KillswitchReleased,
    "killswitch.guard": KillswitchGuard,
    "flatten.started": FlattenStarted,
    "flatten.done": FlattenDone,
    "clock.checked": ClockChecked,
    "clock.drift": ClockDrift,
    "drawdown.band": DrawdownBand,
    "drawdown.peak_reset": DrawdownPeakReset,
    "health.changed": HealthChanged,
    "event.refused": EventRefused,
    "data.rejected": DataRejected,
    "db.backup": DbBackup,
    "db.archived": DbArchived,
    "db.corrupt": DbCorrupt,
    "db.restored": DbRestored,
    "db.error": DbError,
    "dlq.added": DlqAdded,
    "operator.action": OperatorAction,
    "alert": Alert,
}

Payload = (
    SessionStarted
    | SessionStopped
    | FeedConnected
    | FeedDisconnected
    | FeedReconnected
    | FeedStale
    | MarketMarks
    | MarketInfo
    | ExchangeRateLimited
    | ExchangeBanned
    | ExchangeMaintenance
    | ExchangeAuthFailed
    | ExchangeRecovered
    | ExchangeError
    | RatelimitUpdated
    | OrderSubmitted
    | OrderAccepted
    | OrderFilled
    | OrderPartiallyFilled
    | OrderRejected
    | OrderCanceled
    | OrderTriggered
    | FundingPaid
    | PositionChanged
    | PositionGhost
    | BalanceUpdated
    | ReconcileStarted
    | ReconcileDone
    | KillswitchEngaged
    | KillswitchReleased
    | KillswitchGuard
    | FlattenStarted
    | FlattenDone
    | ClockChecked
    | ClockDrift
    | DrawdownBand
    | DrawdownPeakReset
    | HealthChanged
    | EventRefused
    | DataRejected
    | DbBackup
    | DbArchived
    | SessionRotated
    | DbCorrupt
    | DbRestored
    | DbError
    | DlqAdded
    | OperatorAction
    | Alert
)

# ----- what one reader of several kinds reads ---------------------------------------------------------
ExchangeNotice = (
    ExchangeRateLimited
    | ExchangeBanned
    | ExchangeMaintenance
    | ExchangeAuthFailed
    | ExchangeRecovered
    | ExchangeError
)


class FeedRead(TypedDict, total=False):
    """A feed event (`feed.connected`, `.reconnected`, `.disconnected`, `.stale`) as the fold reads it: the
    keys of the four kinds, each optional since each kind has only some (the tests hold it to them)."""

    stream: str
    feed: str
    down_for_s: float | None
    attempt: int
    failures: int
    retry_in_s: float | None
    reason: str
    close_code: int | None
    silent_s: float
    final: bool


OrderRead = OrderSubmitted | OrderAccepted | OrderFilled | OrderPartiallyFilled
PositionRead = PositionChanged | PositionGhost
