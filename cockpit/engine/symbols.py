"""Exchange ids (BTCUSDT) ↔ ccxt unified symbols (BTC/USDT:USDT) for every market the exchange lists.

Cockpit names a symbol one way everywhere (events, State, panes, reports): the unified symbol. Anything that
arrives with an exchange id (the user stream, the market streams) is unified here, at the boundary. The map
holds every market, not only the followed ones (`feeds.symbols`): the account may hold a position anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cockpit.exchange.reports import MarketReport


class SymbolMap:
    def __init__(self, by_id: Mapping[str, str], followed: Iterable[str] | None = None) -> None:
        self._by_id = dict(by_id)
        self._by_symbol = {v: k for k, v in self._by_id.items()}
        # followed markets, in the config's order; without a list every mapped market is followed
        wanted = list(self._by_symbol) if followed is None else list(followed)
        self._followed = tuple(s for s in dict.fromkeys(wanted) if s in self._by_symbol)

    @classmethod
    def from_markets(cls, markets: Mapping[str, MarketReport], followed: Iterable[str]) -> SymbolMap:
        """From the gateway's `load_markets()`: every market listed, by its exchange id. Where two markets
        share an id (a spot and a swap market on a multi-market client), the followed one wins, then the
        contract."""
        follow = set(followed)
        by_id: dict[str, str] = {}
        rank: dict[str, tuple[bool, bool]] = {}
        for symbol, market in markets.items():
            exchange_id = market.exchange_id
            if not exchange_id:
                continue
            score = (symbol in follow, market.contract)
            if exchange_id not in by_id or score > rank[exchange_id]:
                by_id[exchange_id], rank[exchange_id] = symbol, score
        return cls(by_id, [s for s in followed if s in markets])

    def unified(self, exchange_id: str) -> str:
        """The unified symbol for an exchange id (any case); a unified symbol or an unknown id is returned
        as it is."""
        found = self._by_id.get(exchange_id)
        if found is None:
            found = self._by_id.get(exchange_id.upper(), exchange_id)
        return found

    def exchange_id(self, symbol: str) -> str:
        return self._by_symbol.get(symbol, symbol.split(":")[0].replace("/", ""))

    def is_followed(self, symbol: str) -> bool:
        return symbol in self._followed

    @property
    def unified_symbols(self) -> list[str]:
        """The followed markets (config `feeds.symbols`), unified."""
        return list(self._followed)

    @property
    def exchange_ids(self) -> list[str]:
        """The followed markets' exchange ids."""
        return [self._by_symbol[s] for s in self._followed]

    @property
    def markets(self) -> list[str]:
        """Every market the exchange lists, unified."""
        return list(self._by_symbol)
