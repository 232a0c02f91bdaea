"""Symbols the simulator lists, with Binance-like precision, and their seeded price walk."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal


@dataclass(frozen=True)
class SymbolSpec:
    """One USD-M perpetual as exchangeInfo describes it."""

    symbol: str  # exchange id, e.g. BTCUSDT
    base: str
    start_price: Decimal
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_leverage: int = 125
    quote: str = "USDT"

    @property
    def price_precision(self) -> int:
        return -self.tick_size.normalize().as_tuple().exponent  # type: ignore[operator]

    @property
    def quantity_precision(self) -> int:
        return max(0, -self.step_size.normalize().as_tuple().exponent)  # type: ignore[operator]

    def round_price(self, price: Decimal) -> Decimal:
        return (price / self.tick_size).quantize(Decimal(1), ROUND_HALF_EVEN) * self.tick_size


def _spec(
    symbol: str, base: str, price: str, tick: str, step: str, max_qty: str, market_max: str, notional: str
) -> SymbolSpec:
    step_d = Decimal(step)
    return SymbolSpec(
        symbol=symbol,
        base=base,
        start_price=Decimal(price),
        tick_size=Decimal(tick),
        step_size=step_d,
        min_qty=step_d,
        max_qty=Decimal(max_qty),
        market_max_qty=Decimal(market_max),
        min_notional=Decimal(notional),
    )


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("BTCUSDT", "BTC", "64000.0", "0.10", "0.001", "1000", "120", "100"),
    _spec("ETHUSDT", "ETH", "3200.00", "0.01", "0.001", "10000", "2000", "20"),
    _spec("SOLUSDT", "SOL", "150.0000", "0.0100", "1", "1000000", "5000", "5"),
    _spec("XRPUSDT", "XRP", "0.6000", "0.0001", "0.1", "10000000", "1000000", "5"),
    _spec("BNBUSDT", "BNB", "580.000", "0.010", "0.01", "100000", "2000", "5"),
)


class PriceWalk:
    """Seeded geometric random walk of each symbol's mark price, on the symbol's tick grid."""

    def __init__(self, specs: tuple[SymbolSpec, ...], seed: int, step_bps: float = 2.0) -> None:
        self._rng = random.Random(seed)
        self._specs = {s.symbol: s for s in specs}
        self._step = step_bps / 10_000.0
        self.prices: dict[str, Decimal] = {s.symbol: s.start_price for s in specs}

    def step(self) -> None:
        for symbol, price in self.prices.items():
            spec = self._specs[symbol]
            move = Decimal(repr(self._rng.gauss(0.0, self._step)))
            new = spec.round_price(price * (Decimal(1) + move))
            self.prices[symbol] = max(new, spec.tick_size)

    def move(self, symbol: str, pct: float) -> Decimal:
        spec = self._specs[symbol]
        new = spec.round_price(self.prices[symbol] * (Decimal(1) + Decimal(repr(pct)) / Decimal(100)))
        self.prices[symbol] = max(new, spec.tick_size)
        return self.prices[symbol]

    def bid_ask(self, symbol: str) -> tuple[Decimal, Decimal]:
        mark = self.prices[symbol]
        tick = self._specs[symbol].tick_size
        return max(mark - tick, tick), mark + tick
