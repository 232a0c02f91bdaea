"""The simulator: a real HTTP + WebSocket server on loopback that answers like Binance USD-M futures.

    sim = SimServer(seed=7, activity=False)
    base_url = await sim.start()            # http://127.0.0.1:PORT
    await sim.inject({"kind": "ws_drop", "refuse_s": 3})
    await sim.stop()

Control API (no auth, loopback only): `POST /_sim/faults` with a fault object, `DELETE /_sim/faults`,
`GET /_sim/faults`, `GET /_sim/state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from cockpit.sim import hostile
from cockpit.sim.account import ZERO, Account, fmt
from cockpit.sim.clock import SimClock
from cockpit.sim.faults import Fault, FaultBoard, FaultError, parse_fault
from cockpit.sim.market import DEFAULT_SYMBOLS, PriceWalk, SymbolSpec
from cockpit.sim.rest import RestApi
from cockpit.sim.streams import StreamHub

DEMO_API_KEY = "cockpit-demo-key"
DEMO_API_SECRET = "cockpit-demo-secret"
MAINT_MARGIN_RATE = Decimal("0.004")


class SimServer:
    def __init__(
        self,
        api_key: str = DEMO_API_KEY,
        api_secret: str = DEMO_API_SECRET,
        seed: int = 1,
        activity: bool = True,
        tick_interval: float = 0.1,
        wallet: Decimal = Decimal("10000"),
        specs: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS,
        scenario: list[tuple[float, dict[str, Any]]] | None = None,
        trader_pause_s: tuple[float, float] = (1.5, 5.0),
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.seed = seed
        self.activity = activity
        self.tick_interval = tick_interval
        self.scenario = scenario or []
        self.trader_pause_s = trader_pause_s
        self.specs = {s.symbol: s for s in specs}
        self.clock = SimClock()
        self.prices = PriceWalk(specs, seed)
        self.account = Account(self.specs, self.prices, self.clock, wallet=wallet)
        self.faults = FaultBoard()
        self.listen_keys: dict[str, int] = {}
        self.hub = StreamHub(self.faults, self.listen_keys)
        self.rest = RestApi(self)
        self.update_id = 1
        self.base_url = ""
        self.port = 0
        self.injected: list[dict[str, Any]] = []
        self._rng = random.Random(seed ^ 0x5EED)
        self._agg_id = 1
        self._hostile_trades = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.account.listeners.append(self._on_user_event)

    # ----- lifecycle --------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        self.rest.register(app)
        for prefix in ("", "/public", "/market"):
            app.router.add_get(prefix + "/ws", self.hub.handle_raw)
            app.router.add_get(prefix + "/ws/{streams:.*}", self.hub.handle_raw)
            app.router.add_get(prefix + "/stream", self.hub.handle_combined)
        app.router.add_get("/private/ws", self.hub.handle_private)
        app.router.add_get("/private/stream", self.hub.handle_private)
        app.router.add_post("/_sim/faults", self._post_fault)
        app.router.add_delete("/_sim/faults", self._delete_faults)
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_get("/_sim/state", self._get_state)
        app.router.add_post("/_sim/firehose", self._post_firehose)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if not sockets:
            raise OSError(f"simulator did not bind {host}:{port}")
        self.port = int(sockets[0].getsockname()[1])
        self.base_url = f"http://{host}:{self.port}"
        self._tasks.append(asyncio.create_task(self._market_loop(), name="sim-market"))
        if self.activity:
            from cockpit.sim.trader import DemoTrader

            self._tasks.append(
                asyncio.create_task(
                    DemoTrader(self, self._rng.randrange(1 << 30), self.trader_pause_s).run(),
                    name="sim-trader",
                )
            )
        if self.scenario:
            self._tasks.append(asyncio.create_task(self._scenario_loop(), name="sim-scenario"))
        return self.base_url

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.hub.close_all(code=1001, message=b"server shutdown")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop_activity(self) -> None:
        """Stop the demo trader (the account stays as it is)."""
        for task in [t for t in self._tasks if t.get_name() == "sim-trader"]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            self._tasks.remove(task)

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- faults -----------------------------------------------------------------------------------
    async def inject(self, spec: dict[str, Any]) -> Fault:
        """Validate and apply a fault; raises FaultError naming the problem."""
        fault = parse_fault(spec)
        kind, params = fault.kind, fault.params
        if kind in ("ghost_position", "price_move", "hostile") and params["symbol"] not in self.specs:
            raise FaultError(
                f"{kind}: symbol {params['symbol']!r} is not listed; use one of {list(self.specs)}"
            )
        self.injected.append(fault.to_json())
        if kind == "clock_skew":
            self.clock.skew_ms = int(params["ms"])
        elif kind == "ghost_position":
            self.account.ghost_position(
                params["symbol"], params["side"], Decimal(params["qty"]), pushed=params["pushed"]
            )
        elif kind == "price_move":
            self.prices.move(params["symbol"], float(params["pct"]))
            self.account.on_prices()
            self._publish_prices()
        elif kind == "hostile" and params["target"] in hostile.STREAM_TARGETS:
            self._push_hostile(params, int(params["count"]))
            return fault  # served now, nothing left to serve later
        self.faults.add(fault)
        if kind in ("ws_drop", "maintenance"):
            await self.hub.close_all(code=1001, message=b"going away")
        return fault

    def _push_hostile(self, params: dict[str, Any], count: int) -> None:
        symbol = params["symbol"]
        mark = fmt(self.prices.prices[symbol])
        for _ in range(count):
            now = self.clock.now_ms()
            if params["target"] == "account":
                event = hostile.account_update(symbol, now, mark)
            else:
                self._hostile_trades += 1
                event = hostile.order_update(symbol, now, mark, 8_000_000 + self._hostile_trades)
            self.hub.publish_user(hostile.served(event, params))

    def clear_faults(self) -> None:
        self.faults.clear()
        self.clock.skew_ms = 0

    # ----- state ------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        acct = self.account
        return {
            "base_url": self.base_url,
            "server_time": self.clock.now_ms(),
            "balance": {
                "asset": "USDT",
                "wallet": fmt(acct.wallet),
                "unrealized_pnl": fmt(acct.total_unrealized()),
                "equity": fmt(acct.wallet + acct.total_unrealized()),
                "available": fmt(acct.available()),
            },
            "positions": [
                {
                    "symbol": s,
                    "qty": fmt(p.qty),
                    "entry": fmt(p.entry),
                    "mark": fmt(acct.mark(s)),
                    "unrealized_pnl": fmt(acct.unrealized(s)),
                }
                for s, p in acct.positions.items()
                if p.qty != 0
            ],
            "orders": [
                {
                    "order_id": o.order_id,
                    "client_order_id": o.client_order_id,
                    "symbol": o.symbol,
                    "side": o.side,
                    "type": o.type,
                    "qty": fmt(o.orig_qty),
                    "executed": fmt(o.executed_qty),
                    "price": fmt(o.price),
                    "status": o.status,
                    "reduce_only": o.reduce_only,
                }
                for o in acct.open_orders()
            ],
            "trades": len(acct.trades),
            "prices": {s: fmt(p) for s, p in self.prices.prices.items()},
            "faults": self.faults.to_json(),
            "connections": len(self.hub.connections),
            "weight_used_1m": self.rest.weights.used,
        }

    def mark_price_row(self, symbol: str) -> dict[str, Any]:
        now = self.clock.now_ms()
        mark = self.prices.prices[symbol]
        return {
            "symbol": symbol,
            "markPrice": fmt(mark),
            "indexPrice": fmt(mark),
            "estimatedSettlePrice": fmt(mark),
            "lastFundingRate": "0.00010000",
            "interestRate": "0.00010000",
            "nextFundingTime": (now // 28_800_000 + 1) * 28_800_000,
            "time": now,
        }

    def liquidation_price(self, symbol: str) -> Decimal:
        acct = self.account
        qty = acct.positions[symbol].qty
        if qty == 0:
            return ZERO
        others = sum((acct.unrealized(s) for s in acct.positions if s != symbol), ZERO)
        wallet = acct.wallet + others
        entry = acct.positions[symbol].entry
        denom = qty - abs(qty) * MAINT_MARGIN_RATE
        price = (qty * entry - wallet) / denom
        return max(price, ZERO)

    # ----- control routes ---------------------------------------------------------------------------
    async def _post_fault(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            fault = await self.inject(spec)
        except orjson.JSONDecodeError as exc:
            return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "fault": fault.to_json()})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": self.faults.to_json(), "injected": self.injected})

    async def _post_firehose(self, request: web.Request) -> web.Response:
        """`{"symbol": "BTCUSDT", "count": N}`: N bookTicker frames to its subscribers, flat out."""
        try:
            spec = orjson.loads(await request.read())
            symbol, count = str(spec["symbol"]).upper(), int(spec["count"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"firehose needs {{symbol, count}}: {exc}"}, status=400)
        if symbol not in self.specs:
            return web.json_response({"error": f"symbol {symbol!r} is not listed"}, status=400)
        bid, ask = self.prices.bid_ask(symbol)
        now = self.clock.now_ms()
        frames = [
            {
                "e": "bookTicker",
                "u": i,
                "E": now + i,
                "T": now + i,
                "s": symbol,
                "b": fmt(bid),
                "B": "10",
                "a": fmt(ask),
                "A": "10",
            }
            for i in range(1000)
        ]
        sent = await self.hub.blast(symbol.lower() + "@bookTicker", frames, count)
        return web.json_response({"sent": sent})

    async def _get_state(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.state()), content_type="application/json")

    # ----- market data ------------------------------------------------------------------------------
    async def _market_loop(self) -> None:
        steps = 0
        per_second = max(1, round(1.0 / self.tick_interval))
        while True:
            await asyncio.sleep(self.tick_interval)
            steps += 1
            self.prices.step()
            self.account.on_prices()
            self._publish_prices(mark_1s=steps % per_second == 0, mark_3s=steps % (3 * per_second) == 0)
            for symbol in self.specs:
                if self._rng.random() < 0.3:
                    self._publish_trade(
                        symbol,
                        self.prices.prices[symbol],
                        self.specs[symbol].step_size * 10,
                        self._rng.random() < 0.5,
                    )

    def _publish_prices(self, mark_1s: bool = True, mark_3s: bool = True) -> None:
        now = self.clock.now_ms()
        hub = self.hub
        for symbol in self.specs:
            self.update_id += 1
            low = symbol.lower()
            stream = low + "@bookTicker"
            if hub.has_subscribers(stream):
                bid, ask = self.prices.bid_ask(symbol)
                hub.publish(
                    stream,
                    {
                        "e": "bookTicker",
                        "u": self.update_id,
                        "E": now,
                        "T": now,
                        "s": symbol,
                        "b": fmt(bid),
                        "B": "10",
                        "a": fmt(ask),
                        "A": "10",
                    },
                )
            if mark_1s or mark_3s:
                row = self.mark_price_row(symbol)
                payload = {
                    "e": "markPriceUpdate",
                    "E": now,
                    "s": symbol,
                    "p": row["markPrice"],
                    "i": row["indexPrice"],
                    "P": row["estimatedSettlePrice"],
                    "r": row["lastFundingRate"],
                    "T": row["nextFundingTime"],
                }
                bad = self.faults.take("hostile", target="mark", symbol=symbol)
                if bad is not None:
                    payload = hostile.served(payload, bad.params)
                if mark_1s:
                    hub.publish(low + "@markPrice@1s", payload)
                if mark_3s:
                    hub.publish(low + "@markPrice", payload)

    def _publish_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_maker: bool) -> None:
        stream = symbol.lower() + "@aggTrade"
        self._agg_id += 1
        if self.hub.has_subscribers(stream):
            now = self.clock.now_ms()
            self.hub.publish(
                stream,
                {
                    "e": "aggTrade",
                    "E": now,
                    "s": symbol,
                    "a": self._agg_id,
                    "p": fmt(price),
                    "q": fmt(qty),
                    "f": self._agg_id * 3,
                    "l": self._agg_id * 3 + 2,
                    "T": now,
                    "m": buyer_maker,
                },
            )

    def _on_user_event(self, event: dict[str, Any]) -> None:
        self.hub.publish_user(event)
        order = event.get("o")
        if event.get("e") == "ORDER_TRADE_UPDATE" and isinstance(order, dict) and order.get("x") == "TRADE":
            self._publish_trade(order["s"], Decimal(order["L"]), Decimal(order["l"]), order["S"] == "SELL")

    async def _scenario_loop(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for at, spec in sorted(self.scenario, key=lambda item: item[0]):
            await asyncio.sleep(max(0.0, started + at - loop.time()))
            await self.inject(spec)
