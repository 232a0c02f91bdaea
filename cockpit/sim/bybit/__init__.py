"""The simulator's Bybit v5 dialect (linear USDT perpetuals): the same simulated account, market, funding
and faults as the Binance one, on Bybit's paths, records, retCodes and sockets.

    sim = SimServer(exchange="bybit", activity=False)
    base_url = await sim.start()    # REST /v5/…, ws://…/v5/public/linear, ws://…/v5/private

`BybitDialect` is what the server needs of a dialect: its routes, its background task, its sockets to close
on a fault, and the hostile stream frames.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from cockpit.sim.bybit import views
from cockpit.sim.bybit.book import Entry, OrderBook
from cockpit.sim.bybit.client import BybitOrderClient
from cockpit.sim.bybit.executions import Executions
from cockpit.sim.bybit.pushes import PrivatePushes
from cockpit.sim.bybit.rest import BybitRest
from cockpit.sim.bybit.ws import PRIVATE_PATH, PUBLIC_PATH, BybitStreams
from cockpit.sim.records import SimOrder, SimPosition

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue

__all__ = ["BybitDialect"]


class BybitDialect:
    name = "bybit"

    def __init__(self, sim: Venue, tick_interval: float) -> None:
        self.sim = sim
        self.tick_interval = tick_interval
        self.book = OrderBook(sim.account, sim.algos)
        self.executions = Executions(sim.account, self.book)
        self.rest = BybitRest(sim, self.book, self.executions)
        self.streams = BybitStreams(sim)
        self.pushes = PrivatePushes(sim, self.book, self.executions, self.streams)
        sim.account.listeners.append(self.pushes.on_event)

    def register(self, app: web.Application) -> None:
        self.rest.register(app)
        self.streams.register(app)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._market_loop(), name="sim-bybit-market")]

    async def close_sockets(self, code: int = 1001, message: bytes = b"going away") -> None:
        await self.streams.close_all(code=code, message=message)

    def stream_urls(self, base_url: str) -> str:
        ws = base_url.replace("http", "ws", 1)
        return f"{ws}{PUBLIC_PATH} and {ws}{PRIVATE_PATH}"

    async def blast(self, symbol: str, count: int) -> int:
        return await self.streams.blast(symbol, count)

    def order_client(self, base_url: str, api_key: str, api_secret: str) -> BybitOrderClient:
        """The demo trader's client: its orders on Bybit's wire."""
        return BybitOrderClient(base_url, api_key, api_secret)

    def push_hostile(self, params: dict[str, Any], count: int) -> None:
        """A hostile fault on a stream target: a plausible `position` (`account`) or `order` (`order`) push
        of `symbol`, served with the fault's value (`field` a path into the push: `data.0.size`)."""
        acct = self.sim.account
        symbol = params["symbol"]
        spec = acct.specs[symbol]
        mark = acct.mark(symbol)
        now = self.sim.clock.now_ms()
        for n in range(count):
            if params["target"] == "account":
                leg = SimPosition(symbol, qty=spec.step_size, entry=mark, update_time=now)
                self.streams.push_private("position", [views.position(acct, leg, ws=True)], served=params)
            else:
                order = SimOrder(
                    order_id=9_000_000 + n,
                    client_order_id=f"hostile_{n}",
                    symbol=symbol,
                    side="BUY",
                    type="MARKET",
                    orig_qty=spec.step_size,
                    price=Decimal(0),
                    time_in_force="IOC",
                    reduce_only=False,
                    time=now,
                    status="FILLED",
                    executed_qty=spec.step_size,
                    cum_quote=spec.step_size * mark,
                    update_time=now,
                )
                self.streams.push_private("order", [views.order(acct, Entry(order), ws=True)], served=params)

    async def _market_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self.streams.publish_market()
