"""Bybit v5's streams (linear USDT perpetuals), parsed into the same typed messages as Binance's."""
