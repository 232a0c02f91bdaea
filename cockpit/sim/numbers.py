"""Decimals as Binance writes them: strings without exponent or float noise."""

from __future__ import annotations

from decimal import Decimal

ZERO = Decimal(0)


def fmt(value: Decimal, places: int = 8) -> str:
    """Decimal → Binance-style string without exponent or float noise."""
    q = value.quantize(Decimal(1).scaleb(-places)) if places >= 0 else value
    text = format(q.normalize(), "f")
    return "0" if text in ("-0", "") else text
