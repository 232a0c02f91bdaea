"""Binance USD-M stream payloads → typed messages. orjson for the bytes, one dict lookup per message."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from cockpit.feeds.messages import (
    AccountUpdate,
    AggTrade,
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


def _opt_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _dec(value: Any) -> Decimal:
    # Binance sends decimals as strings; Decimal(str) is exact. Numbers (never sent for money) go via str too.
    if value is None or value == "":
        return _ZERO
    return Decimal(value if isinstance(value, str) else str(value))


def book_ticker(d: dict[str, Any]) -> BookTicker:
    return BookTicker(
        d["s"],
        float(d["b"]),
        float(d["B"]),
        float(d["a"]),
        float(d["A"]),
        int(d["u"]),
        int(d.get("E", 0)),
        int(d.get("T", 0)),
    )


def mark_price(d: dict[str, Any]) -> MarkPrice:
    nft = d.get("T")
    return MarkPrice(
        d["s"],
        float(d["p"]),
        _opt_float(d.get("i")),
        _opt_float(d.get("r")),
        None if nft is None else int(nft),
        int(d["E"]),
    )


def agg_trade(d: dict[str, Any]) -> AggTrade:
    return AggTrade(
        d["s"],
        int(d["a"]),
        float(d["p"]),
        float(d["q"]),
        int(d["f"]),
        int(d["l"]),
        int(d["T"]),
        bool(d["m"]),
        int(d["E"]),
    )


_MARKET: dict[str, Callable[[dict[str, Any]], MarketMessage]] = {
    "bookTicker": book_ticker,
    "markPriceUpdate": mark_price,
    "aggTrade": agg_trade,
}


def market_event(data: dict[str, Any]) -> MarketMessage | None:
    """One market event (the `data` of a combined-stream frame); None for event types the cockpit ignores."""
    parser = _MARKET.get(data.get("e", ""))
    if parser is None:
        return None
    try:
        return parser(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ParseError(f"{data.get('e')}: bad or missing field {exc}") from exc


def combined_frame(raw: bytes | str) -> tuple[str | None, dict[str, Any]]:
    """Split a frame into (stream, data). Raw-stream frames and control replies give stream None."""
    obj = orjson.loads(raw)
    if not isinstance(obj, dict):
        raise ParseError(f"frame is not a JSON object: {str(raw)[:80]}")
    data = obj.get("data")
    if isinstance(data, dict) and "stream" in obj:
        return str(obj["stream"]), data
    return None, obj


def order_update(msg: dict[str, Any]) -> OrderUpdate:
    o = msg["o"]
    return OrderUpdate(
        symbol=o["s"],
        client_order_id=o["c"],
        order_id=int(o["i"]),
        side=o["S"],
        type=o["o"],
        status=o["X"],
        execution_type=o["x"],
        time_in_force=o.get("f", ""),
        orig_qty=_dec(o["q"]),
        price=_dec(o.get("p")),
        avg_price=_dec(o.get("ap")),
        executed_qty=_dec(o["z"]),
        last_fill_qty=_dec(o["l"]),
        last_fill_price=_dec(o["L"]),
        commission=_dec(o.get("n")),
        commission_asset=o.get("N"),
        realized_pnl=_dec(o.get("rp")),
        reduce_only=bool(o.get("R", False)),
        position_side=o.get("ps", "BOTH"),
        is_maker=bool(o.get("m", False)),
        trade_id=int(o.get("t", 0)),
        event_time=int(msg["E"]),
        transaction_time=int(msg.get("T", o.get("T", 0))),
    )


def account_update(msg: dict[str, Any]) -> AccountUpdate:
    a = msg["a"]
    balances = tuple(
        BalanceUpdate(b["a"], _dec(b["wb"]), _dec(b.get("cw")), _dec(b.get("bc"))) for b in a.get("B", ())
    )
    positions = tuple(
        PositionUpdate(
            p["s"],
            _dec(p["pa"]),
            _dec(p["ep"]),
            _dec(p.get("bep")),
            _dec(p.get("cr")),
            _dec(p.get("up")),
            p.get("mt", ""),
            _dec(p.get("iw")),
            p.get("ps", "BOTH"),
        )
        for p in a.get("P", ())
    )
    return AccountUpdate(a.get("m", ""), balances, positions, int(msg["E"]), int(msg.get("T", 0)))


def user_event(msg: dict[str, Any]) -> UserEvent:
    kind = msg.get("e", "")
    try:
        if kind == "ORDER_TRADE_UPDATE":
            return order_update(msg)
        if kind == "ACCOUNT_UPDATE":
            return account_update(msg)
        return OtherUserEvent(str(kind), int(msg.get("E", 0)), msg)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ParseError(f"{kind}: bad or missing field {exc}") from exc
