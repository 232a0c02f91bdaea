"""Binance USD-M futures: everything of cockpit's exchange side that is Binance's own, in one folder."""

from cockpit.exchange.binance.dialect import BINANCE_USDM, BinanceUsdm

__all__ = ["BINANCE_USDM", "BinanceUsdm"]
