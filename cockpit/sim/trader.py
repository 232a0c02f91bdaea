"""The built-in demo trader: an external strategy on the simulator's account, so the demo is alive.

It trades through the REST API with its own signed client, as another process on the account would: its
orders and fills reach every user stream, and cockpit sees them as fills it did not place.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from cockpit.sim.client import SignedClient

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue


class OrderClient(Protocol):
    """What the trader sends its orders through: Binance's signed client, or another dialect's (it takes the
    same Binance-shaped `POST /fapi/v1/order` parameters)."""

    async def __aenter__(self) -> OrderClient: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any: ...


class DemoTrader:
    def __init__(
        self,
        sim: Venue,
        seed: int,
        pause_s: tuple[float, float] = (1.5, 5.0),
        client: Callable[[str, str, str], OrderClient] = SignedClient,
    ) -> None:
        """`client(base_url, api_key, api_secret)`: what it trades through (Binance's REST by default)."""
        self._sim = sim
        self._rng = random.Random(seed)
        self._pause = pause_s
        self._client = client
        self.orders_sent = 0

    async def run(self) -> None:
        async with self._client(self._sim.base_url, self._sim.api_key, self._sim.api_secret) as client:
            while True:
                await asyncio.sleep(self._rng.uniform(*self._pause))
                try:
                    await self._act(client)
                except (TimeoutError, OSError, ValueError):
                    continue  # a fault is in force; an external strategy keeps going

    async def _act(self, client: OrderClient) -> None:
        symbol = self._rng.choice(list(self._sim.specs))
        spec = self._sim.specs[symbol]
        acct = self._sim.account
        held = [leg for leg in acct.legs_of(symbol) if leg.qty != 0]
        self.orders_sent += 1
        if held and self._rng.random() < 0.45:
            leg = self._rng.choice(held)
            await client.request("POST", "/fapi/v1/order", self._closing(symbol, leg.side, leg.qty))
            return
        notional = Decimal(self._rng.randrange(150, 1500))
        price = self._sim.prices.prices[symbol]
        qty = (notional / price / spec.step_size).to_integral_value(ROUND_DOWN) * spec.step_size
        qty = max(qty, spec.min_qty)
        if qty * price < spec.min_notional:
            return
        side = self._rng.choice(("BUY", "SELL"))
        order: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": format(qty, "f")}
        if acct.dual_side:  # hedge mode: a buy opens the LONG leg, a sell the SHORT one
            order["positionSide"] = "LONG" if side == "BUY" else "SHORT"
        if self._rng.random() < 0.7:
            await client.request("POST", "/fapi/v1/order", {**order, "type": "MARKET"})
        else:
            offset = spec.tick_size * self._rng.randrange(1, 20)
            limit = price - offset if side == "BUY" else price + offset
            await client.request(
                "POST",
                "/fapi/v1/order",
                {
                    **order,
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "price": format(spec.round_price(limit), "f"),
                },
            )

    @staticmethod
    def _closing(symbol: str, leg: str, qty: Decimal) -> dict[str, Any]:
        """A market order that closes a position: reduce-only in one-way mode, on its leg in hedge mode."""
        order: dict[str, Any] = {
            "symbol": symbol,
            "side": "SELL" if qty > 0 else "BUY",
            "type": "MARKET",
            "quantity": format(abs(qty), "f"),
        }
        if leg == "BOTH":
            order["reduceOnly"] = True
        else:
            order["positionSide"] = leg
        return order
