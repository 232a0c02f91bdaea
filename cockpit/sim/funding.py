"""Funding: every interval (8 h on Binance, at 00:00, 08:00 and 16:00 UTC) open positions pay or receive
notional at the mark times the funding rate. The interval can be shortened (`funding_interval_s`) for tests
and the demo; the rate is per symbol (0.01 % by default) and what premiumIndex shows as `lastFundingRate`."""

from __future__ import annotations

from decimal import Decimal

from cockpit.sim.clock import SimClock

BINANCE_INTERVAL_S = 8 * 60 * 60
DEFAULT_RATE = Decimal("0.0001")


class FundingSchedule:
    def __init__(
        self,
        clock: SimClock,
        symbols: list[str],
        interval_s: float = BINANCE_INTERVAL_S,
        rate: Decimal = DEFAULT_RATE,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"funding_interval_s must be positive, got {interval_s!r}")
        self._clock = clock
        self.interval_ms = max(1, int(interval_s * 1000))
        self.rates: dict[str, Decimal] = dict.fromkeys(symbols, rate)
        now = clock.now_ms()
        if self.interval_ms == BINANCE_INTERVAL_S * 1000:
            self.next_time = (now // self.interval_ms + 1) * self.interval_ms  # on Binance's UTC grid
        else:
            self.next_time = now + self.interval_ms

    def seconds_to_next(self) -> float:
        return max(0.0, (self.next_time - self._clock.now_ms()) / 1000.0)

    def advance(self) -> None:
        """The funding time after the one just settled (skipping any already past)."""
        now = self._clock.now_ms()
        self.next_time += self.interval_ms
        if self.next_time <= now:
            self.next_time += ((now - self.next_time) // self.interval_ms + 1) * self.interval_ms
