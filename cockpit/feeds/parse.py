"""Binance USD-M stream payloads → typed messages. orjson for the bytes, one dict lookup per message.

Every figure is checked here, once (`cockpit/core/plausible.py`): finite, the right type (a JSON bool is not a
number), in range, a price above zero. A frame holding one bad figure raises `ParseError` naming the event,
the field and the value, and is dropped whole: nothing unchecked reaches the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from cockpit.core.plausible import (
    FIGURE_TEXT_MAX,
    PRICE_LIMIT_FLOAT,
    QUANTITY_LIMIT_FLOAT,
    BadFigure,
    money,
    price_float,
    price_or_zero,
    quantity,
    rate_float,
    size,
    size_float,
    text,
    whole,
)
from cockpit.feeds.messages import (
    AccountUpdate,
    AggTrade,
    AlgoUpdate,
    BalanceUpdate,
    BookTicker,
    MarketMessage,
    MarkPrice,
    OrderUpdate,
    OtherUserEvent,
    PositionUpdate,
    UserEvent,
)

_ZERO = Decimal(0)


class ParseError(ValueError):
    """A payload that is not what Binance documents; the message names the event and the missing field."""


def _opt_rate(value: Any, what: str) -> float | None:
    return None if value is None or value == "" else rate_float(value, what)


def _opt_price(value: Any, what: str) -> float | None:
    return None if value is None or value == "" else price_float(value, what)


def _opt(check: Callable[[Any, str], Decimal], value: Any, what: str) -> Decimal:
    """An optional figure (absent or "" is 0), checked when present."""
    return _ZERO if value is None or value == "" else check(value, what)


def book_ticker(d: dict[str, Any]) -> BookTicker:
    """The busiest message (every change of a best bid or ask): a frame as Binance sends it is read in one
    pass; any other goes through the field-by-field checks, which accept or refuse the same frames and name
    what is wrong."""
    quick = _usual_book_ticker(d)
    return quick if quick is not None else _checked_book_ticker(d)


def _usual_book_ticker(d: dict[str, Any]) -> BookTicker | None:
    """Decimal strings for the figures, integers for the ids and times, every figure in range; else None."""
    s, b, bq, a, aq = d.get("s"), d.get("b"), d.get("B"), d.get("a"), d.get("A")
    u, e, t = d.get("u"), d.get("E", 0), d.get("T", 0)
    if not (
        type(s) is str
        and type(b) is str
        and type(bq) is str
        and type(a) is str
        and type(aq) is str
        and type(u) is int
        and type(e) is int
        and type(t) is int
        and 0 < len(s) <= FIGURE_TEXT_MAX
        and len(b) <= FIGURE_TEXT_MAX
        and len(bq) <= FIGURE_TEXT_MAX
        and len(a) <= FIGURE_TEXT_MAX
        and len(aq) <= FIGURE_TEXT_MAX
    ):
        return None
    try:
        bid, bid_qty, ask, ask_qty = float(b), float(bq), float(a), float(aq)
    except ValueError:
        return None
    if (  # a NaN or an Infinity fails these too
        0.0 < bid < PRICE_LIMIT_FLOAT
        and 0.0 < ask < PRICE_LIMIT_FLOAT
        and 0.0 <= bid_qty < QUANTITY_LIMIT_FLOAT
        and 0.0 <= ask_qty < QUANTITY_LIMIT_FLOAT
    ):
        return BookTicker(s, bid, bid_qty, ask, ask_qty, u, e, t)
    return None


def _checked_book_ticker(d: dict[str, Any]) -> BookTicker:
    return BookTicker(
        text(d["s"], "s (symbol)"),
        price_float(d["b"], "b (bid)"),
        size_float(d["B"], "B (bid qty)"),
        price_float(d["a"], "a (ask)"),
        size_float(d["A"], "A (ask qty)"),
        whole(d["u"], "u (update id)"),
        whole(d.get("E", 0), "E (event time)"),
        whole(d.get("T", 0), "T (transaction time)"),
    )


def mark_price(d: dict[str, Any]) -> MarkPrice:
    nft = d.get("T")
    return MarkPrice(
        text(d["s"], "s (symbol)"),
        price_float(d["p"], "p (mark price)"),
        _opt_price(d.get("i"), "i (index price)"),
        _opt_rate(d.get("r"), "r (funding rate)"),
        None if nft is None else whole(nft, "T (next funding time)"),
        whole(d["E"], "E (event time)"),
    )


def agg_trade(d: dict[str, Any]) -> AggTrade:
    return AggTrade(
        text(d["s"], "s (symbol)"),
        whole(d["a"], "a (trade id)"),
        price_float(d["p"], "p (price)"),
        size_float(d["q"], "q (quantity)"),
        whole(d["f"], "f (first trade id)"),
        whole(d["l"], "l (last trade id)"),
        whole(d["T"], "T (trade time)"),
        bool(d["m"]),
        whole(d["E"], "E (event time)"),
    )


_MARKET: dict[str, Callable[[dict[str, Any]], MarketMessage]] = {
    "bookTicker": book_ticker,
    "markPriceUpdate": mark_price,
    "aggTrade": agg_trade,
}


def market_event(data: Any) -> MarketMessage | None:
    """One market event (the `data` of a combined-stream frame); None for event types the cockpit ignores."""
    if not isinstance(data, dict):
        raise ParseError(f"data is not a JSON object: {type(data).__name__}")
    parser = _MARKET.get(data.get("e", ""))
    if parser is None:
        return None
    try:
        return parser(data)
    except BadFigure as exc:
        raise ParseError(f"{data.get('e')}: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"{data.get('e')}: bad or missing field {exc}") from exc


def combined_frame(raw: bytes | str) -> tuple[str | None, Any]:
    """Split a frame into (stream, data). Raw-stream frames and control replies give stream None."""
    obj = orjson.loads(raw)
    if not isinstance(obj, dict):
        raise ParseError(f"frame is not a JSON object: {str(raw)[:80]}")
    if "stream" in obj:  # its data is checked by market_event
        return str(obj["stream"]), obj.get("data")
    return None, obj


def order_update(msg: dict[str, Any]) -> OrderUpdate:
    o = msg["o"]
    if not isinstance(o, dict):
        raise BadFigure(f"o (the order) is not an object: {type(o).__name__}")
    asset = o.get("N")
    return OrderUpdate(
        symbol=text(o["s"], "o.s (symbol)"),
        client_order_id=text(o["c"], "o.c (client order id)"),
        order_id=whole(o["i"], "o.i (order id)"),
        side=text(o["S"], "o.S (side)"),
        type=text(o["o"], "o.o (type)"),
        status=text(o["X"], "o.X (status)"),
        execution_type=text(o["x"], "o.x (execution type)"),
        time_in_force=str(o.get("f", "")),
        orig_qty=size(o["q"], "o.q (quantity)"),
        price=_opt(price_or_zero, o.get("p"), "o.p (price)"),
        avg_price=_opt(price_or_zero, o.get("ap"), "o.ap (average price)"),
        executed_qty=size(o["z"], "o.z (filled quantity)"),
        last_fill_qty=size(o["l"], "o.l (last fill quantity)"),
        last_fill_price=price_or_zero(o["L"], "o.L (last fill price)"),
        commission=_opt(money, o.get("n"), "o.n (commission)"),
        commission_asset=None if asset is None else text(asset, "o.N (commission asset)"),
        realized_pnl=_opt(money, o.get("rp"), "o.rp (realized PnL)"),
        reduce_only=o.get("R", False) is True,
        position_side=str(o.get("ps", "BOTH")),
        is_maker=o.get("m", False) is True,
        trade_id=whole(o.get("t", 0), "o.t (trade id)"),
        event_time=whole(msg["E"], "E (event time)"),
        transaction_time=whole(msg.get("T", o.get("T", 0)), "T (transaction time)"),
    )


def account_update(msg: dict[str, Any]) -> AccountUpdate:
    a = msg["a"]
    if not isinstance(a, dict):
        raise BadFigure(f"a (the account) is not an object: {type(a).__name__}")
    balances = tuple(
        BalanceUpdate(
            text(b["a"], "a.B.a (asset)"),
            money(b["wb"], "a.B.wb (wallet balance)"),
            _opt(money, b.get("cw"), "a.B.cw (cross wallet)"),
            _opt(money, b.get("bc"), "a.B.bc (balance change)"),
        )
        for b in _rows(a.get("B", ()), "a.B (balances)")
    )
    positions = tuple(
        PositionUpdate(
            text(p["s"], "a.P.s (symbol)"),
            quantity(p["pa"], "a.P.pa (position amount)"),
            _entry(p),
            _opt(price_or_zero, p.get("bep"), "a.P.bep (breakeven price)"),
            _opt(money, p.get("cr"), "a.P.cr (accumulated realized)"),
            _opt(money, p.get("up"), "a.P.up (unrealized PnL)"),
            str(p.get("mt", "")),
            _opt(money, p.get("iw"), "a.P.iw (isolated wallet)"),
            str(p.get("ps", "BOTH")),
        )
        for p in _rows(a.get("P", ()), "a.P (positions)")
    )
    return AccountUpdate(
        str(a.get("m", "")),
        balances,
        positions,
        whole(msg["E"], "E (event time)"),
        whole(msg.get("T", 0), "T (transaction time)"),
    )


def _rows(value: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or not all(isinstance(row, dict) for row in value):
        raise BadFigure(f"{what} is not a list of objects: {type(value).__name__}")
    return list(value)


def _entry(p: dict[str, Any]) -> Decimal:
    """An open position's entry is a price (above zero); a flat one's is 0."""
    entry = price_or_zero(p["ep"], "a.P.ep (entry price)")
    if entry == 0 and quantity(p["pa"], "a.P.pa") != 0:
        raise BadFigure("a.P.ep (entry price) is 0 for an open position")
    return entry


def algo_update(msg: dict[str, Any]) -> AlgoUpdate:
    o = msg["o"]
    if not isinstance(o, dict):
        raise BadFigure(f"o (the conditional order) is not an object: {type(o).__name__}")
    return AlgoUpdate(
        symbol=text(o["s"], "o.s (symbol)"),
        client_algo_id=text(o["caid"], "o.caid (client algo id)"),
        algo_id=whole(o["aid"], "o.aid (algo id)"),
        order_type=text(o["o"], "o.o (order type)"),
        side=text(o["S"], "o.S (side)"),
        position_side=str(o.get("ps", "BOTH")),
        quantity=size(o.get("q", "0"), "o.q (quantity)"),
        status=text(o["X"], "o.X (algo status)"),
        trigger_price=_opt(price_or_zero, o.get("tp"), "o.tp (trigger price)"),
        price=_opt(price_or_zero, o.get("p"), "o.p (price)"),
        close_position=o.get("cp", False) is True,
        reduce_only=o.get("R", False) is True,
        placed_order_id=str(o.get("ai") or ""),
        reason=str(o.get("rm") or ""),
        event_time=whole(msg.get("E", msg.get("T", 0)), "E (event time)"),
    )


def user_event(msg: dict[str, Any]) -> UserEvent:
    kind = msg.get("e", "")
    try:
        if kind == "ORDER_TRADE_UPDATE":
            return order_update(msg)
        if kind == "ACCOUNT_UPDATE":
            return account_update(msg)
        if kind == "ALGO_UPDATE":
            return algo_update(msg)
        return OtherUserEvent(str(kind), whole(msg.get("E", 0), "E (event time)"), msg)
    except BadFigure as exc:
        raise ParseError(f"{kind}: {exc}") from exc
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ParseError(f"{kind}: bad or missing field {exc}") from exc
