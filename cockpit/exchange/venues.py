"""The exchanges cockpit trades on, by ccxt exchange id: each one's dialect (dialect.py)."""

from __future__ import annotations

from cockpit.exchange.binance import BINANCE_USDM
from cockpit.exchange.bybit import BYBIT
from cockpit.exchange.dialect import Dialect

DIALECTS: dict[str, Dialect] = {BINANCE_USDM.id: BINANCE_USDM, BYBIT.id: BYBIT}


def dialect_for(exchange_id: str) -> Dialect:
    """The dialect of a supported exchange (ValueError naming the supported ones otherwise)."""
    if exchange_id not in DIALECTS:
        raise ValueError(f"exchange {exchange_id!r} is not supported; supported: {', '.join(DIALECTS)}")
    return DIALECTS[exchange_id]
