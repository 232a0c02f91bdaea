"""The simulator: a real HTTP + WebSocket server on loopback that answers like Binance USD-M futures.

    sim = SimServer(seed=7, activity=False)
    base_url = await sim.start()            # http://127.0.0.1:PORT
    await sim.inject({"kind": "ws_drop", "refuse_s": 3})
    await sim.stop()

    sim = SimServer(activity=False, dual_side=True, funding_interval_s=2)   # hedge mode, funding every 2 s
    sim = SimServer(exchange="bybit")      # the same exchange on Bybit v5's wire (cockpit/sim/bybit)

Control API (no auth, loopback only): `POST /_sim/faults` with a fault object, `DELETE /_sim/faults`,
`GET /_sim/faults`, `GET /_sim/state`, `GET|POST /_sim/settings` (`dual_side`, `funding_interval_s`,
`funding_rate`, `margin_type`), `POST /_sim/funding` (settle funding now).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from cockpit.sim import hostile
from cockpit.sim.account import CROSS, ISOLATED, Account, fmt
from cockpit.sim.algo import AlgoBook
from cockpit.sim.clock import SimClock
from cockpit.sim.errors import ApiError
from cockpit.sim.faults import Fault, FaultBoard, FaultError, parse_fault
from cockpit.sim.funding import BINANCE_INTERVAL_S, DEFAULT_RATE, FundingSchedule
from cockpit.sim.market import DEFAULT_SYMBOLS, PriceWalk, SymbolSpec
from cockpit.sim.rest import RestApi
from cockpit.sim.streams import StreamHub

if TYPE_CHECKING:
    from cockpit.sim.trader import OrderClient

DEMO_API_KEY = "cockpit-demo-key"
DEMO_API_SECRET = "cockpit-demo-secret"
EXCHANGES = ("binance", "bybit")


class Dialect(Protocol):
    """An exchange's wire on the simulated exchange, other than Binance's (served by `rest` and `hub`)."""

    name: str

    def register(self, app: web.Application) -> None: ...

    def start(self) -> list[asyncio.Task[None]]: ...

    async def close_sockets(self, code: int = 1001, message: bytes = b"going away") -> None: ...

    def stream_urls(self, base_url: str) -> str: ...

    def push_hostile(self, params: dict[str, Any], count: int) -> None: ...

    def order_client(self, base_url: str, api_key: str, api_secret: str) -> OrderClient: ...

    async def blast(self, symbol: str, count: int) -> int: ...  # the firehose: book frames, flat out


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
        dual_side: bool = False,
        funding_interval_s: float = BINANCE_INTERVAL_S,
        funding_rate: Decimal = DEFAULT_RATE,
        isolated: tuple[str, ...] = (),
        exchange: str = "binance",
    ) -> None:
        """`dual_side`: start in hedge mode (LONG and SHORT legs per symbol); `funding_interval_s`: how often
        funding is paid (Binance: 8 h); `funding_rate`: each symbol's rate; `isolated`: symbols that start on
        isolated margin; `exchange`: the wire it speaks, `binance` (USD-M) or `bybit` (v5 linear)."""
        if exchange not in EXCHANGES:
            raise ValueError(f"exchange {exchange!r} is not simulated; use one of {', '.join(EXCHANGES)}")
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
        self.account = Account(self.specs, self.prices, self.clock, wallet=wallet, dual_side=dual_side)
        for symbol in isolated:
            self.account.set_margin_type(symbol, ISOLATED)
        self.funding = FundingSchedule(
            self.clock, list(self.specs), funding_interval_s, Decimal(funding_rate)
        )
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
        self.algos = AlgoBook(
            self.account
        )  # after the server's listener: a fill is pushed before its ALGO_UPDATE
        self.exchange = exchange
        self.dialect = self._dialect(exchange)

    def _dialect(self, exchange: str) -> Dialect | None:
        """The wire the simulator speaks: None for Binance's (its routes below), else the dialect's own."""
        if exchange == "bybit":
            from cockpit.sim.bybit import BybitDialect

            return BybitDialect(self, self.tick_interval)
        return None

    # ----- lifecycle --------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        if self.dialect is not None:
            self.dialect.register(app)
        else:
            self._register_binance(app)
        app.router.add_post("/_sim/faults", self._post_fault)
        app.router.add_delete("/_sim/faults", self._delete_faults)
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_get("/_sim/state", self._get_state)
        app.router.add_post("/_sim/firehose", self._post_firehose)
        app.router.add_get("/_sim/settings", self._get_settings)
        app.router.add_post("/_sim/settings", self._post_settings)
        app.router.add_post("/_sim/funding", self._post_funding)
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
        self._tasks.append(asyncio.create_task(self._funding_loop(), name="sim-funding"))
        if self.dialect is not None:
            self._tasks.extend(self.dialect.start())
        if self.activity:
            from cockpit.sim.trader import DemoTrader

            seed = self._rng.randrange(1 << 30)
            trader = (
                DemoTrader(self, seed, self.trader_pause_s, self.dialect.order_client)
                if self.dialect is not None
                else DemoTrader(self, seed, self.trader_pause_s)
            )
            self._tasks.append(asyncio.create_task(trader.run(), name="sim-trader"))
        if self.scenario:
            self._tasks.append(asyncio.create_task(self._scenario_loop(), name="sim-scenario"))
        return self.base_url

    def _register_binance(self, app: web.Application) -> None:
        self.rest.register(app)
        for prefix in ("", "/public", "/market"):
            app.router.add_get(prefix + "/ws", self.hub.handle_raw)
            app.router.add_get(prefix + "/ws/{streams:.*}", self.hub.handle_raw)
            app.router.add_get(prefix + "/stream", self.hub.handle_combined)
        app.router.add_get("/private/ws", self.hub.handle_private)
        app.router.add_get("/private/stream", self.hub.handle_private)

    async def _close_sockets(self, code: int, message: bytes) -> None:
        await self.hub.close_all(code=code, message=message)
        if self.dialect is not None:
            await self.dialect.close_sockets(code=code, message=message)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._close_sockets(code=1001, message=b"server shutdown")
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
            moved = self.prices.move(params["symbol"], float(params["pct"]))
            self.account.last_trade[params["symbol"]] = moved  # the jump trades: the contract price moves too
            self.account.on_prices()
            self._publish_prices()
        elif kind == "hostile" and params["target"] in hostile.STREAM_TARGETS:
            if self.dialect is not None:
                self.dialect.push_hostile(params, int(params["count"]))
            else:
                self._push_hostile(params, int(params["count"]))
            return fault  # served now, nothing left to serve later
        self.faults.add(fault)
        if kind in ("ws_drop", "maintenance"):
            await self._close_sockets(code=1001, message=b"going away")
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
                    "symbol": p.symbol,
                    "side": p.side,
                    "qty": fmt(p.qty),
                    "entry": fmt(p.entry),
                    "mark": fmt(acct.mark(p.symbol)),
                    "unrealized_pnl": fmt(acct.leg_unrealized(p)),
                    "margin_type": acct.margin_types[p.symbol],
                    "isolated_wallet": fmt(p.isolated_wallet),
                }
                for p in acct.open_legs()
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
                    "position_side": o.position_side,
                }
                for o in acct.open_orders()
            ],
            "algo_orders": [
                {
                    "algo_id": a.algo_id,
                    "client_algo_id": a.client_algo_id,
                    "symbol": a.symbol,
                    "side": a.side,
                    "type": a.type,
                    "qty": fmt(a.quantity),
                    "trigger_price": fmt(a.trigger_price),
                    "status": a.status,
                    "position_side": a.position_side,
                }
                for a in self.algos.open_orders()
            ],
            "dual_side": acct.dual_side,
            "next_funding_time": self.funding.next_time,
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
            "lastFundingRate": fmt_rate(self.funding.rates[symbol]),
            "interestRate": "0.00010000",
            "nextFundingTime": self.funding.next_time,
            "time": now,
        }

    def liquidation_price(self, symbol: str, side: str | None = None) -> Decimal:
        return self.account.liquidation_price(symbol, side)

    # ----- funding ----------------------------------------------------------------------------------
    def settle_funding(self) -> None:
        """Pay funding now on every open position (as at a funding time) and move on to the next one."""
        self.account.settle_funding(dict(self.funding.rates))
        self.funding.advance()

    def set_funding_rate(self, symbol: str, rate: Decimal) -> None:
        if symbol not in self.specs:
            raise FaultError(f"symbol {symbol!r} is not listed; use one of {list(self.specs)}")
        self.funding.rates[symbol] = Decimal(rate)

    def _restart_funding_loop(self) -> None:
        """The funding loop sleeps until the old schedule's next time: start it again on the new one."""
        for task in [t for t in self._tasks if t.get_name() == "sim-funding"]:
            task.cancel()
            self._tasks.remove(task)
        if self._runner is not None:
            self._tasks.append(asyncio.create_task(self._funding_loop(), name="sim-funding"))

    async def _funding_loop(self) -> None:
        while True:
            await asyncio.sleep(self.funding.seconds_to_next())
            if self.clock.now_ms() >= self.funding.next_time:
                self.settle_funding()

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
        """`{"symbol": "BTCUSDT", "count": N}`: N book frames (Binance's bookTicker, Bybit's orderbook.1) to
        its subscribers, flat out."""
        try:
            spec = orjson.loads(await request.read())
            symbol, count = str(spec["symbol"]).upper(), int(spec["count"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"firehose needs {{symbol, count}}: {exc}"}, status=400)
        if symbol not in self.specs:
            return web.json_response({"error": f"symbol {symbol!r} is not listed"}, status=400)
        if self.dialect is not None:
            return web.json_response({"sent": await self.dialect.blast(symbol, count)})
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

    def settings(self) -> dict[str, Any]:
        return {
            "dual_side": self.account.dual_side,
            "funding_interval_s": self.funding.interval_ms / 1000.0,
            "funding_rate": {s: fmt_rate(r) for s, r in self.funding.rates.items()},
            "margin_type": dict(self.account.margin_types),
        }

    def apply_settings(self, spec: dict[str, Any]) -> None:
        """Account settings as Binance's own endpoints change them (same refusals: -4059/-4067/-4068 for the
        position mode, -4046/-4047/-4048 for a margin type), plus the simulator's funding clock."""
        unknown = sorted(set(spec) - {"dual_side", "funding_interval_s", "funding_rate", "margin_type"})
        if unknown:
            raise FaultError(f"unknown setting(s) {unknown}")
        if "dual_side" in spec and bool(spec["dual_side"]) != self.account.dual_side:
            self.account.set_dual_side(bool(spec["dual_side"]))
        for symbol, margin_type in (spec.get("margin_type") or {}).items():
            wanted = ISOLATED if str(margin_type).lower() == ISOLATED else CROSS
            if self.account.margin_types.get(symbol) != wanted:
                self.account.set_margin_type(symbol, wanted)
        if "funding_interval_s" in spec:
            self.funding = _rescheduled(self.funding, self.clock, float(spec["funding_interval_s"]))
            self._restart_funding_loop()
        for symbol, rate in (spec.get("funding_rate") or {}).items():
            self.set_funding_rate(symbol, Decimal(str(rate)))

    async def _get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings())

    async def _post_settings(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            if not isinstance(spec, dict):
                raise FaultError("settings must be a JSON object")
            self.apply_settings(spec)
        except orjson.JSONDecodeError as exc:
            return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
        except (FaultError, ValueError, ArithmeticError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ApiError as exc:
            return web.json_response({"error": exc.msg, "code": exc.code}, status=400)
        return web.json_response({"ok": True, **self.settings()})

    async def _post_funding(self, request: web.Request) -> web.Response:
        self.settle_funding()
        return web.json_response({"ok": True, "next_funding_time": self.funding.next_time})

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
        self.account.last_trade[symbol] = price  # the contract price a CONTRACT_PRICE trigger watches
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


def fmt_rate(rate: Decimal) -> str:
    """A funding rate as Binance writes it: eight decimals ("0.00010000")."""
    return format(rate.quantize(Decimal("0.00000001")), "f")


def _rescheduled(schedule: FundingSchedule, clock: SimClock, interval_s: float) -> FundingSchedule:
    """A new funding clock at `interval_s` that keeps each symbol's rate."""
    fresh = FundingSchedule(clock, list(schedule.rates), interval_s)
    fresh.rates.update(schedule.rates)
    return fresh
