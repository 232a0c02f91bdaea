"""Figures from an exchange, checked once where they are parsed: finite, the right type, in range.

Every number an exchange sends (stream or REST) passes through one of these before it becomes a message or a
report: a JSON bool is not a number, `NaN`, `Infinity` and `1e999999` are not figures, a price is above zero,
and nothing is larger than any real account or market could hold. A figure that fails raises `BadFigure`
naming the field and the value, so the frame or answer it came in is rejected whole (never half-applied).

The limits are deliberately generous (a real figure never comes near them); what they stop is the absurd
value that would otherwise turn into an equity of 5E+305 and a kill switch that never lets go.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

PRICE_LIMIT = Decimal("1e9")  # no contract trades at a billion a unit
QUANTITY_LIMIT = Decimal("1e12")  # a position or order size (1000SHIB-style contracts stay far below)
MONEY_LIMIT = Decimal("1e12")  # a wallet, a balance change, a PnL, a commission
RATE_LIMIT = Decimal("10")  # a funding rate (a fraction: 0.0001 is 0.01 %)
FIGURE_TEXT_MAX = 64  # a decimal string longer than this is not a figure (an oversized frame's padding)
SHOWN_MAX = 40  # how much of a bad value a reason quotes
PRICE_LIMIT_FLOAT = float(PRICE_LIMIT)  # the same limits for market data read as floats
QUANTITY_LIMIT_FLOAT = float(QUANTITY_LIMIT)


class BadFigure(ValueError):
    """A figure from the exchange that cockpit refuses: the message names the field and the value."""


def shown(value: Any) -> str:
    """A bad value as a reason quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


def figure(value: Any, what: str, limit: Decimal = MONEY_LIMIT) -> Decimal:
    """An exact, finite Decimal from a decimal string or a JSON number, no larger than `limit` either way."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        kind = "missing" if value is None else f"not a number ({type(value).__name__} {shown(value)})"
        raise BadFigure(f"{what} is {kind}")
    if isinstance(value, str) and len(value) > FIGURE_TEXT_MAX:
        raise BadFigure(f"{what} is not a number ({len(value)} characters)")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BadFigure(f"{what} is not a number: {shown(value)}") from None
    if not number.is_finite():
        raise BadFigure(f"{what} is not finite: {shown(value)}")
    if abs(number) > limit:
        raise BadFigure(f"{what} is out of range: {shown(value)} (beyond ±{limit:.0E})")
    return number


def price(value: Any, what: str) -> Decimal:
    """A price: above zero and below PRICE_LIMIT."""
    number = figure(value, what, PRICE_LIMIT)
    if number <= 0:
        raise BadFigure(f"{what} is not a price: {shown(value)} (must be above zero)")
    return number


def price_or_zero(value: Any, what: str) -> Decimal:
    """A price where 0 means 'none' (an average before the first fill, a market order's limit price)."""
    return _not_negative(value, what, PRICE_LIMIT)


def quantity(value: Any, what: str) -> Decimal:
    """A signed size: finite, within QUANTITY_LIMIT."""
    return figure(value, what, QUANTITY_LIMIT)


def size(value: Any, what: str) -> Decimal:
    """An unsigned size (an order's, a fill's): not negative."""
    return _not_negative(value, what, QUANTITY_LIMIT)


def _not_negative(value: Any, what: str, limit: Decimal) -> Decimal:
    number = figure(value, what, limit)
    if number < 0:
        raise BadFigure(f"{what} is negative: {shown(value)}")
    return number


def money(value: Any, what: str) -> Decimal:
    """An amount of the settlement asset: finite, within MONEY_LIMIT."""
    return figure(value, what, MONEY_LIMIT)


def price_float(value: Any, what: str) -> float:
    """A market-data price as a float (ticks stay floats, for speed), checked as `price`."""
    if type(value) is float:  # the fast path a JSON number takes
        if not (0.0 < value < PRICE_LIMIT_FLOAT):
            raise BadFigure(f"{what} is not a price: {shown(value)}")
        return value
    number = _quick_float(value)  # Binance's decimal strings: a NaN or an Infinity fails the range test
    if 0.0 < number < PRICE_LIMIT_FLOAT:
        return number
    return float(price(value, what))  # refused (the exact check names why), or a figure float() cannot read


def _quick_float(value: Any) -> float:
    """A decimal string read as a float (the same float as through Decimal); NaN for anything else."""
    if type(value) is str and len(value) <= FIGURE_TEXT_MAX:
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def size_float(value: Any, what: str) -> float:
    """A market-data size as a float, checked as `size`."""
    if type(value) is float:
        if not (math.isfinite(value) and 0.0 <= value <= QUANTITY_LIMIT_FLOAT):
            raise BadFigure(f"{what} is not a size: {shown(value)}")
        return value
    number = _quick_float(value)
    if 0.0 <= number < QUANTITY_LIMIT_FLOAT:  # at the limit itself: the exact check decides
        return number
    return float(size(value, what))


def rate_float(value: Any, what: str) -> float:
    """A rate (funding) as a float: finite, within ±RATE_LIMIT."""
    return float(figure(value, what, RATE_LIMIT))


def whole(value: Any, what: str) -> int:
    """An integer field (an id, a time in ms): an int or a string of digits, never a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadFigure(f"{what} is not an integer: {shown(value)}")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 20:
            raise BadFigure(f"{what} is not an integer: {shown(value)}")
        return int(text)
    return value


def text(value: Any, what: str) -> str:
    """A short text field (a symbol, a status): a string, not an object or a number."""
    if not isinstance(value, str) or not value or len(value) > FIGURE_TEXT_MAX:
        raise BadFigure(f"{what} is not a name: {shown(value)}")
    return value
