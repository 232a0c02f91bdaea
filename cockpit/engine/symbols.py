"""Exchange ids (BTCUSDT) ↔ ccxt unified symbols (BTC/USDT:USDT) for the markets cockpit follows."""

from __future__ import annotations

from collections.abc import Mapping


class SymbolMap:
    def __init__(self, by_id: Mapping[str, str]) -> None:
        self._by_id = dict(by_id)
        self._by_symbol = {v: k for k, v in by_id.items()}

    def unified(self, exchange_id: str) -> str:
        """The unified symbol; an id cockpit does not follow is returned as it is."""
        return self._by_id.get(exchange_id.upper(), exchange_id)

    def exchange_id(self, symbol: str) -> str:
        return self._by_symbol.get(symbol, symbol.split(":")[0].replace("/", ""))

    @property
    def unified_symbols(self) -> list[str]:
        return list(self._by_symbol)

    @property
    def exchange_ids(self) -> list[str]:
        return list(self._by_id)
