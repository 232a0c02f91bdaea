"""Bybit v5 (linear USDT perpetuals): everything of cockpit's exchange side that is Bybit's own."""

from cockpit.exchange.bybit.dialect import BYBIT, Bybit

__all__ = ["BYBIT", "Bybit"]
