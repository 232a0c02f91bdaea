"""Binance USD-M REST endpoints (the paths and fields ccxt's binanceusdm uses), with auth and weights."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from cockpit.core.window import SlidingWindow
from cockpit.sim import hostile, views
from cockpit.sim.account import CROSS, ISOLATED, OrderRequest, SimOrder, fmt
from cockpit.sim.algo import ALGO_TYPES, AlgoRequest
from cockpit.sim.errors import BINANCE_ERRORS, MAINTENANCE_MESSAGE, ApiError

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue

WEIGHT_LIMIT_1M = 2400
ORDER_LIMIT_1M = 1200
ORDER_LIMIT_10S = 300
LISTEN_KEY_TTL_MS = 60 * 60 * 1000
MAX_RECV_WINDOW = 60_000
BODY = web.RequestKey("body", str)
SUCCESS = {"code": 200, "msg": "success"}
MARGIN_TYPES = {"ISOLATED": ISOLATED, "CROSSED": CROSS}
ORDER_ROUTES = {("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")}  # counted per account

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


class WeightWindow:
    """Request weight used in the rolling minute, as `X-MBX-USED-WEIGHT-1M` reports it."""

    def __init__(self, limit: int = WEIGHT_LIMIT_1M) -> None:
        self.limit = limit
        self._minute = SlidingWindow(60.0)

    @property
    def used(self) -> int:
        return self._minute.total(time.monotonic())

    def take(self, weight: int) -> float | None:
        """Count `weight`; return None, or the seconds to wait when it would exceed the limit."""
        now = time.monotonic()
        if not self._minute.fits(now, weight, self.limit):
            return max(1.0, self._minute.wait(now))
        self._minute.add(now, weight)
        return None


class OrderCount:
    """Orders placed on the account in the last 10 seconds and the last minute, as Binance reports them in
    `X-MBX-ORDER-COUNT-10S` / `X-MBX-ORDER-COUNT-1M`; beyond 300 / 1200 an order gets 429 -1015."""

    def __init__(self) -> None:
        self._ten_seconds = SlidingWindow(10.0)
        self._minute = SlidingWindow(60.0)

    def take(self) -> None:
        now = time.monotonic()
        for window, limit, interval in (
            (self._ten_seconds, ORDER_LIMIT_10S, "10 seconds"),
            (self._minute, ORDER_LIMIT_1M, "1 minute"),
        ):
            if not window.fits(now, 1, limit):
                msg = BINANCE_ERRORS[-1015][1].format(limit=limit, interval=interval)
                raise ApiError(
                    -1015, msg, status=429, headers={"Retry-After": str(int(window.wait(now) + 1))}
                )
        self._ten_seconds.add(now)
        self._minute.add(now)

    def headers(self) -> dict[str, str]:
        now = time.monotonic()
        return {
            "X-MBX-ORDER-COUNT-10S": str(self._ten_seconds.total(now)),
            "X-MBX-ORDER-COUNT-1M": str(self._minute.total(now)),
        }


class RestApi:
    """The REST half of the simulator. Routes are registered on the server's aiohttp app."""

    def __init__(self, sim: Venue) -> None:
        self.sim = sim
        self.weights = WeightWindow()
        self.order_count = OrderCount()
        self.requests_served = 0

    # ----- routing ----------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler, int, str]]:
        """(method, path, handler, weight, security) where security is NONE, KEY or SIGNED."""
        return [
            ("GET", "/fapi/v1/ping", self.ping, 1, "NONE"),
            ("GET", "/fapi/v1/time", self.time, 1, "NONE"),
            ("GET", "/fapi/v1/exchangeInfo", self.exchange_info, 1, "NONE"),
            ("GET", "/fapi/v1/ticker/bookTicker", self.book_ticker, 2, "NONE"),
            ("GET", "/fapi/v1/ticker/24hr", self.ticker_24hr, 1, "NONE"),
            ("GET", "/fapi/v1/ticker/price", self.ticker_price, 1, "NONE"),
            ("GET", "/fapi/v1/premiumIndex", self.premium_index, 1, "NONE"),
            ("GET", "/fapi/v1/depth", self.depth, 2, "NONE"),
            ("GET", "/fapi/v2/account", self.account, 5, "SIGNED"),
            ("GET", "/fapi/v3/account", self.account, 5, "SIGNED"),
            ("GET", "/fapi/v2/balance", self.balance, 5, "SIGNED"),
            ("GET", "/fapi/v3/balance", self.balance, 5, "SIGNED"),
            ("GET", "/fapi/v1/leverageBracket", self.leverage_bracket, 1, "SIGNED"),
            ("POST", "/fapi/v1/leverage", self.set_leverage, 1, "SIGNED"),
            ("GET", "/fapi/v1/symbolConfig", self.symbol_config, 5, "SIGNED"),
            ("GET", "/fapi/v1/positionSide/dual", self.position_mode, 30, "SIGNED"),
            ("POST", "/fapi/v1/positionSide/dual", self.set_position_mode, 1, "SIGNED"),
            ("POST", "/fapi/v1/marginType", self.set_margin_type, 1, "SIGNED"),
            ("POST", "/fapi/v1/positionMargin", self.position_margin, 1, "SIGNED"),
            ("GET", "/fapi/v2/positionRisk", self.position_risk, 5, "SIGNED"),
            ("GET", "/fapi/v3/positionRisk", self.position_risk, 5, "SIGNED"),
            ("GET", "/fapi/v1/income", self.income, 30, "SIGNED"),
            ("POST", "/fapi/v1/order", self.create_order, 1, "SIGNED"),
            ("GET", "/fapi/v1/order", self.get_order, 1, "SIGNED"),
            ("GET", "/fapi/v1/openOrder", self.get_open_order, 1, "SIGNED"),
            ("DELETE", "/fapi/v1/order", self.cancel_order, 1, "SIGNED"),
            ("DELETE", "/fapi/v1/allOpenOrders", self.cancel_all, 1, "SIGNED"),
            ("GET", "/fapi/v1/openOrders", self.open_orders, 1, "SIGNED"),
            ("GET", "/fapi/v1/allOrders", self.all_orders, 5, "SIGNED"),
            ("GET", "/fapi/v1/userTrades", self.user_trades, 5, "SIGNED"),
            ("POST", "/fapi/v1/algoOrder", self.create_algo_order, 0, "SIGNED"),
            ("GET", "/fapi/v1/algoOrder", self.get_algo_order, 1, "SIGNED"),
            ("DELETE", "/fapi/v1/algoOrder", self.cancel_algo_order, 1, "SIGNED"),
            ("GET", "/fapi/v1/openAlgoOrders", self.open_algo_orders, 1, "SIGNED"),
            ("GET", "/fapi/v1/allAlgoOrders", self.all_algo_orders, 5, "SIGNED"),
            ("DELETE", "/fapi/v1/algoOpenOrders", self.cancel_all_algo_orders, 1, "SIGNED"),
            ("POST", "/fapi/v1/listenKey", self.listen_key_new, 1, "KEY"),
            ("PUT", "/fapi/v1/listenKey", self.listen_key_keepalive, 1, "KEY"),
            ("DELETE", "/fapi/v1/listenKey", self.listen_key_close, 1, "KEY"),
        ]

    def register(self, app: web.Application) -> None:
        for method, path, handler, weight, security in self.routes():
            counted = (method, path) in ORDER_ROUTES
            app.router.add_route(method, path, self._wrap(handler, weight, security, path, counted))

    def _wrap(
        self, handler: Handler, weight: int, security: str, path: str, counted: bool = False
    ) -> Handler:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            self.requests_served += 1
            request[BODY] = (await request.text()) if request.body_exists else ""
            try:
                await self._gate(request, path)
                wait = self.weights.take(weight)
                if wait is not None:
                    raise ApiError(-1003, status=429, headers={"Retry-After": str(int(wait + 0.999))})
                if security != "NONE":
                    await self._authenticate(request, signed=security == "SIGNED")
                if counted:
                    self.order_count.take()
                response = await handler(request)
            except ApiError as exc:
                if exc.html is not None:
                    response = web.Response(
                        text=exc.html, status=exc.status, content_type="text/html", headers=exc.headers
                    )
                else:
                    response = _json(exc.body(), status=exc.status, headers=exc.headers)
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(self.weights.used)
            if counted:
                response.headers.update(self.order_count.headers())
            return response

        return endpoint

    async def _gate(self, request: web.Request, path: str) -> None:
        """Faults that act on every request, before it is looked at."""
        faults = self.sim.faults
        latency = faults.active("latency")
        if latency is not None:
            await asyncio.sleep(latency.params["ms"] / 1000.0)
        if faults.active("maintenance") is not None:
            raise ApiError(-1, MAINTENANCE_MESSAGE, status=503)
        ban = faults.active("ban")
        if ban is not None and ban.until is not None:
            left = max(1, int(ban.until - time.monotonic() + 0.999))
            until_ms = self.sim.clock.now_ms() + left * 1000
            raise ApiError(
                -1003,
                f"Way too many requests; IP(127.0.0.1) banned until {until_ms}. "
                "Please use the websocket for live updates to avoid bans.",
                status=418,
                headers={"Retry-After": str(left)},
            )
        limited = faults.consume("rate_limit")
        if limited is not None:
            retry = str(int(float(limited.params["retry_after_s"]) + 0.999))
            raise ApiError(-1003, status=429, headers={"Retry-After": retry})
        failing = faults.consume("http_error")
        if failing is not None:
            status = int(failing.params["status"])
            if status in (500, 503):
                raise ApiError(-1001, "Internal error; unable to process your request.", status=status)
            page = f"<html><head><title>{status}</title></head><body><h1>{status} Error</h1></body></html>"
            raise ApiError(-1000, status=status, html=page)

    async def _authenticate(self, request: web.Request, signed: bool) -> None:
        key = request.headers.get("X-MBX-APIKEY")
        if key != self.sim.api_key or self.sim.faults.active("auth_fail") is not None:
            raise ApiError(-2015)
        if not signed:
            return
        query = request.query_string
        payload, signature = _strip_signature(query, request[BODY])
        if signature is None:
            raise ApiError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        expected = hmac.new(self.sim.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise ApiError(-1022)
        params = await _params(request)
        try:
            ts = int(params["timestamp"])
            window = int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise ApiError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        if window > MAX_RECV_WINDOW:
            raise ApiError(-1102, "recvWindow must be less than 60000.")
        now = self.sim.clock.now_ms()
        if ts > now + 1000 or now - ts > window:
            raise ApiError(-1021)

    # ----- public -----------------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": self.sim.clock.now_ms()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        symbols = []
        for spec in self.sim.specs.values():
            symbols.append(
                {
                    "symbol": spec.symbol,
                    "pair": spec.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "maintMarginPercent": "2.5000",
                    "requiredMarginPercent": "5.0000",
                    "baseAsset": spec.base,
                    "quoteAsset": spec.quote,
                    "marginAsset": spec.quote,
                    "pricePrecision": spec.price_precision,
                    "quantityPrecision": spec.quantity_precision,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    "settlePlan": 0,
                    "triggerProtect": "0.0500",
                    "liquidationFee": "0.012500",
                    "marketTakeBound": "0.05",
                    "maxMoveOrderLimit": 10000,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt(spec.tick_size),
                            "maxPrice": "4529764",
                            "tickSize": fmt(spec.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "stepSize": fmt(spec.step_size),
                            "maxQty": fmt(spec.max_qty),
                            "minQty": fmt(spec.min_qty),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "stepSize": fmt(spec.step_size),
                            "maxQty": fmt(spec.market_max_qty),
                            "minQty": fmt(spec.min_qty),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                        {"filterType": "MIN_NOTIONAL", "notional": fmt(spec.min_notional)},
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": "1.0500",
                            "multiplierDown": "0.9500",
                            "multiplierDecimal": "4",
                        },
                    ],
                    "orderTypes": [
                        "LIMIT",
                        "MARKET",
                        "STOP",
                        "STOP_MARKET",
                        "TAKE_PROFIT",
                        "TAKE_PROFIT_MARKET",
                        "TRAILING_STOP_MARKET",
                    ],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                    "permissionSets": ["GRID", "COPY"],
                }
            )
        return _json(
            {
                "timezone": "UTC",
                "serverTime": self.sim.clock.now_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": WEIGHT_LIMIT_1M,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": ORDER_LIMIT_1M,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
                ],
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
                "symbols": symbols,
            }
        )

    def _symbols_from(self, params: dict[str, str]) -> list[str]:
        symbol = params.get("symbol")
        if symbol is None:
            return list(self.sim.specs)
        if symbol not in self.sim.specs:
            raise ApiError(-1121)
        return [symbol]

    def _one_or_all(self, params: dict[str, str], rows: list[dict[str, Any]]) -> web.Response:
        return _json(rows[0] if "symbol" in params else rows)

    async def book_ticker(self, request: web.Request) -> web.Response:
        params = await _params(request)
        rows = []
        for symbol in self._symbols_from(params):
            bid, ask = self.sim.prices.bid_ask(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "bidPrice": fmt(bid),
                    "bidQty": "10",
                    "askPrice": fmt(ask),
                    "askQty": "10",
                    "time": self.sim.clock.now_ms(),
                    "lastUpdateId": self.sim.update_id,
                }
            )
        return self._one_or_all(params, rows)

    async def ticker_24hr(self, request: web.Request) -> web.Response:
        params = await _params(request)
        rows = []
        now = self.sim.clock.now_ms()
        for symbol in self._symbols_from(params):
            last = self.sim.prices.prices[symbol]
            open_ = self.sim.specs[symbol].start_price
            change = last - open_
            rows.append(
                {
                    "symbol": symbol,
                    "priceChange": fmt(change),
                    "priceChangePercent": fmt(change / open_ * 100, 3),
                    "weightedAvgPrice": fmt(last),
                    "lastPrice": fmt(last),
                    "lastQty": "1",
                    "openPrice": fmt(open_),
                    "highPrice": fmt(max(last, open_)),
                    "lowPrice": fmt(min(last, open_)),
                    "volume": "1000",
                    "quoteVolume": fmt(last * 1000),
                    "openTime": now - 86_400_000,
                    "closeTime": now,
                    "firstId": 1,
                    "lastId": 1000,
                    "count": 1000,
                }
            )
        return self._one_or_all(params, rows)

    async def ticker_price(self, request: web.Request) -> web.Response:
        params = await _params(request)
        rows = [
            {"symbol": s, "price": fmt(self.sim.prices.prices[s]), "time": self.sim.clock.now_ms()}
            for s in self._symbols_from(params)
        ]
        return self._one_or_all(params, rows)

    async def premium_index(self, request: web.Request) -> web.Response:
        params = await _params(request)
        rows = [self.sim.mark_price_row(s) for s in self._symbols_from(params)]
        bad = self.sim.faults.take("hostile", target="premium")
        if bad is not None:
            return _json(hostile.served_rows(rows, bad.params) if "symbol" not in params else None)
        return self._one_or_all(params, rows)

    async def depth(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbols_from({"symbol": params.get("symbol", "")})[0]
        bid, ask = self.sim.prices.bid_ask(symbol)
        tick = self.sim.specs[symbol].tick_size
        now = self.sim.clock.now_ms()
        return _json(
            {
                "lastUpdateId": self.sim.update_id,
                "E": now,
                "T": now,
                "bids": [[fmt(bid - tick * i), "10"] for i in range(5)],
                "asks": [[fmt(ask + tick * i), "10"] for i in range(5)],
            }
        )

    # ----- account ----------------------------------------------------------------------------------
    async def account(self, request: web.Request) -> web.Response:
        """v2: fee tier and permissions, and every symbol's position; v3: only the positions held."""
        acct = self.sim.account
        row = views.balance_row(acct)
        v2 = request.path.startswith("/fapi/v2")
        if v2:
            positions = [views.account_position_v2(acct, p) for s in acct.specs for p in acct.legs_of(s)]
            answer: dict[str, Any] = {**views.account_v2_header(), **views.account_totals(row)}
        else:
            positions = [views.account_position_v3(acct, p) for p in acct.open_legs()]
            answer = views.account_totals(row)
        answer["assets"] = [row]
        answer["positions"] = positions
        bad = self.sim.faults.take("hostile", target="balance")
        if bad is not None:
            return _json(hostile.served(answer, bad.params))
        bad = self.sim.faults.take("hostile", target="positions")
        if bad is not None:
            answer["positions"] = hostile.served_rows(positions, bad.params)
        return _json(answer)

    async def balance(self, request: web.Request) -> web.Response:
        row = views.balance_row(self.sim.account)
        rows = [{"accountAlias": "SgsR", "balance": row["walletBalance"], **row}]
        bad = self.sim.faults.take("hostile", target="balance")
        return _json(hostile.served_rows(rows, bad.params) if bad is not None else rows)

    async def leverage_bracket(self, request: web.Request) -> web.Response:
        params = await _params(request)
        rows = []
        for symbol in self._symbols_from(params):
            max_lev = self.sim.specs[symbol].max_leverage
            rows.append(
                {
                    "symbol": symbol,
                    "notionalCoef": 1.0,
                    "brackets": [
                        {
                            "bracket": 1,
                            "initialLeverage": max_lev,
                            "notionalCap": 50000,
                            "notionalFloor": 0,
                            "maintMarginRatio": 0.004,
                            "cum": 0.0,
                        },
                        {
                            "bracket": 2,
                            "initialLeverage": 50,
                            "notionalCap": 10_000_000,
                            "notionalFloor": 50000,
                            "maintMarginRatio": 0.01,
                            "cum": 300.0,
                        },
                    ],
                }
            )
        return _json(rows)

    async def set_leverage(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        try:
            leverage = int(params["leverage"])
        except (KeyError, ValueError):
            raise ApiError(
                -1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed."
            ) from None
        if not 1 <= leverage <= self.sim.specs[symbol].max_leverage:
            raise ApiError(-4028, f"Leverage {leverage} is not valid")
        self.sim.account.leverage[symbol] = leverage
        return _json({"leverage": leverage, "maxNotionalValue": "50000", "symbol": symbol})

    async def symbol_config(self, request: web.Request) -> web.Response:
        """Each symbol's leverage and margin type (v3 positionRisk carries neither)."""
        params = await _params(request)
        acct = self.sim.account
        return _json(
            [
                {
                    "symbol": symbol,
                    "marginType": "ISOLATED" if acct.is_isolated(symbol) else "CROSSED",
                    "isAutoAddMargin": "false",
                    "leverage": acct.leverage[symbol],
                    "maxNotionalValue": views.MAX_NOTIONAL,
                }
                for symbol in self._symbols_from(params)
            ]
        )

    async def position_mode(self, request: web.Request) -> web.Response:
        return _json({"dualSidePosition": self.sim.account.dual_side})

    async def set_position_mode(self, request: web.Request) -> web.Response:
        params = await _params(request)
        self.sim.account.set_dual_side(_bool(params, "dualSidePosition", required=True))
        return _json(SUCCESS)

    async def set_margin_type(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        margin_type = MARGIN_TYPES.get(params.get("marginType", "").upper())
        if margin_type is None:
            raise ApiError(
                -1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed."
            )
        self.sim.account.set_margin_type(symbol, margin_type)
        return _json(SUCCESS)

    async def position_margin(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        acct = self.sim.account
        side = params.get("positionSide", "BOTH")
        if side not in acct.sides:
            raise ApiError(-4061)
        amount = _decimal(params, "amount")
        kind = params.get("type")
        if amount is None or kind not in ("1", "2"):
            raise ApiError(
                -1102, "Mandatory parameter 'amount' or 'type' was not sent, was empty/null, or malformed."
            )
        acct.move_isolated_margin(symbol, side, amount, add=kind == "1")
        return _json(
            {
                "amount": float(amount),
                "code": 200,
                "msg": "Successfully modify position margin.",
                "type": int(kind),
            }
        )

    async def position_risk(self, request: web.Request) -> web.Response:
        """v2: every symbol's position(s); v3: only those held, unless a symbol is asked for."""
        params = await _params(request)
        acct = self.sim.account
        v3 = request.path.startswith("/fapi/v3")
        rows = []
        for symbol in self._symbols_from(params):
            for pos in acct.legs_of(symbol):
                if v3 and pos.qty == 0 and "symbol" not in params:
                    continue
                liquidation = acct.liquidation_price(symbol, pos.side)
                shape = views.position_risk_v3 if v3 else views.position_risk_v2
                rows.append(shape(acct, pos, liquidation))
        bad = self.sim.faults.take("hostile", target="positions")
        return _json(hostile.served_rows(rows, bad.params) if bad is not None else rows)

    async def income(self, request: web.Request) -> web.Response:
        """Income history: REALIZED_PNL, COMMISSION and FUNDING_FEE entries, oldest first; the last 7 days
        unless a time range is given; `limit` (100, at most 1000) per `page`."""
        params = await _params(request)
        entries = self.sim.account.income.entries
        if "symbol" in params:
            symbol = self._symbol(params)
            entries = [e for e in entries if e.symbol == symbol]
        if "incomeType" in params:
            entries = [e for e in entries if e.income_type == params["incomeType"]]
        if "startTime" not in params and "endTime" not in params:
            week_ago = self.sim.clock.now_ms() - 7 * 24 * 3600 * 1000
            entries = [e for e in entries if e.time >= week_ago]
        entries = [e for e in entries if int(params.get("startTime", 0)) <= e.time]
        if "endTime" in params:
            entries = [e for e in entries if e.time <= int(params["endTime"])]
        limit = min(max(1, _int(params, "limit", 100)), 1000)
        page = max(1, _int(params, "page", 1))
        return _json([views.income_json(e) for e in entries[(page - 1) * limit : page * limit]])

    # ----- orders -----------------------------------------------------------------------------------
    async def create_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        req = _order_request(params, self.sim.specs)
        answer = params.get("newOrderRespType", "ACK")
        if answer not in ("ACK", "RESULT"):
            raise ApiError(-1136, "Invalid newOrderRespType.")
        faults = self.sim.faults
        rejected = faults.consume("reject_orders")
        if rejected is not None:
            raise ApiError(int(rejected.params["code"]))
        partial = faults.peek("partial_fill")
        ratio = Decimal(repr(partial.params["ratio"])) if partial is not None else None
        order = self.sim.account.place(req, partial_ratio=ratio)
        if order.starved:  # used only by an order it split: a refused or resting order leaves it in force
            faults.consume("partial_fill")
        if faults.consume("apply_then_fail") is not None:
            raise ApiError(-1007)
        return _json(views.order_json(order, query=False) if answer == "RESULT" else views.ack_json(order))

    async def get_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        order = self._find(params)
        if order is None:
            raise ApiError(-2013)
        return _json(views.order_json(order))

    async def get_open_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        order = self._find(params)
        if order is None or not order.is_open:
            raise ApiError(-2013)
        return _json(views.order_json(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        order_id, client_id = _order_ids(params)
        return _json(views.order_json(self.sim.account.cancel(symbol, order_id, client_id), query=False))

    async def cancel_all(self, request: web.Request) -> web.Response:
        params = await _params(request)
        self.sim.account.cancel_all(self._symbol(params))
        return _json({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def open_orders(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbols = set(self._symbols_from(params))
        return _json([views.order_json(o) for o in self.sim.account.open_orders() if o.symbol in symbols])

    async def all_orders(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        orders = [o for o in self.sim.account.orders.values() if o.symbol == symbol]
        return _json(
            [views.order_json(o) for o in _window(orders, params, lambda o: o.time, lambda o: o.order_id)]
        )

    async def user_trades(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        trades = [t for t in self.sim.account.trades if t.symbol == symbol]
        if "orderId" in params:
            trades = [t for t in trades if t.order_id == _int(params, "orderId", 0)]
        if "fromId" in params:
            trades = [t for t in trades if t.trade_id >= int(params["fromId"])]
        trades = _window(trades, params, lambda t: t.time, lambda t: t.trade_id)
        return _json([views.trade_json(t) for t in trades])

    def _find(self, params: dict[str, str]) -> SimOrder | None:
        symbol = self._symbol(params)
        order_id, client_id = _order_ids(params)
        return self.sim.account.find(symbol, order_id, client_id)

    def _symbol(self, params: dict[str, str]) -> str:
        return self._symbols_from({"symbol": params.get("symbol", "")})[0]

    # ----- algo orders (conditional: stop, take-profit, trailing stop) ------------------------------
    async def create_algo_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        if params.get("algoType") != "CONDITIONAL":
            raise ApiError(
                -1102, "Mandatory parameter 'algoType' was not sent, was empty/null, or malformed."
            )
        rejected = self.sim.faults.consume("reject_orders")
        if rejected is not None:
            raise ApiError(int(rejected.params["code"]))
        return _json(views.algo_json(self.sim.algos.place(_algo_request(params))))

    async def get_algo_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        algo = self.sim.algos.find(*_algo_ids(params))
        if algo is None:
            raise ApiError(-2013)
        return _json(views.algo_json(algo))

    async def cancel_algo_order(self, request: web.Request) -> web.Response:
        params = await _params(request)
        algo = self.sim.algos.cancel(*_algo_ids(params))
        return _json(
            {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}
        )

    async def open_algo_orders(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbols = set(self._symbols_from(params))
        return _json([views.algo_json(a) for a in self.sim.algos.open_orders() if a.symbol in symbols])

    async def all_algo_orders(self, request: web.Request) -> web.Response:
        params = await _params(request)
        symbol = self._symbol(params)
        algos = [a for a in self.sim.algos.orders.values() if a.symbol == symbol]
        return _json(
            [views.algo_json(a) for a in _window(algos, params, lambda a: a.create_time, lambda a: a.algo_id)]
        )

    async def cancel_all_algo_orders(self, request: web.Request) -> web.Response:
        params = await _params(request)
        self.sim.algos.cancel_all(self._symbol(params))
        return _json({"code": 200, "msg": "The operation of cancel all open order is done."})

    # ----- user data stream -------------------------------------------------------------------------
    async def listen_key_new(self, request: web.Request) -> web.Response:
        now = self.sim.clock.now_ms()
        live = [k for k, exp in self.sim.listen_keys.items() if exp > now]
        key = live[0] if live else secrets.token_urlsafe(48)
        self.sim.listen_keys[key] = now + LISTEN_KEY_TTL_MS
        return _json({"listenKey": key})

    async def listen_key_keepalive(self, request: web.Request) -> web.Response:
        params = await _params(request)
        key = params.get("listenKey") or next(iter(self.sim.listen_keys), None)
        if key is None or key not in self.sim.listen_keys:
            raise ApiError(-1125)
        self.sim.listen_keys[key] = self.sim.clock.now_ms() + LISTEN_KEY_TTL_MS
        return _json({"listenKey": key})

    async def listen_key_close(self, request: web.Request) -> web.Response:
        params = await _params(request)
        key = params.get("listenKey") or next(iter(self.sim.listen_keys), None)
        if key is not None and self.sim.listen_keys.pop(key, None) is not None:
            await self.sim.hub.close_listen_key(key)
        return _json({})


# ----- helpers ----------------------------------------------------------------------------------------
def _strip_signature(query: str, body: str) -> tuple[str, str | None]:
    """The signed payload (query string, then body) without the `signature` parameter, and the signature."""
    signature: str | None = None
    parts: list[str] = []
    for chunk in (query, body):
        kept = []
        for pair in chunk.split("&") if chunk else []:
            if pair.startswith("signature="):
                signature = pair[len("signature=") :]
            else:
                kept.append(pair)
        if kept:
            parts.append("&".join(kept))
    return "".join(parts), signature


async def _params(request: web.Request) -> dict[str, str]:
    params = dict(request.query)
    body = request.get(BODY, "")
    if body:
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    if name not in params:
        return None
    try:
        value = Decimal(params[name])
    except InvalidOperation:
        raise ApiError(-1102, f"Parameter '{name}' was malformed.") from None
    if not value.is_finite():
        raise ApiError(-1102, f"Parameter '{name}' was malformed.")
    return value


def _int(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name, default))
    except ValueError:
        raise ApiError(-1102, f"Parameter '{name}' was malformed.") from None


def _bool(params: dict[str, str], name: str, required: bool = False) -> bool:
    value = params.get(name)
    if value is None and not required:
        return False
    if value is None or value.lower() not in ("true", "false"):
        raise ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value.lower() == "true"


def _sent_bool(params: dict[str, str], name: str) -> bool | None:
    """A boolean parameter, or None when it was not sent at all."""
    return _bool(params, name) if name in params else None


def _order_request(params: dict[str, str], specs: dict[str, Any]) -> OrderRequest:
    symbol = params.get("symbol", "")
    if symbol not in specs:
        raise ApiError(-1121)
    side = params.get("side", "")
    if side not in ("BUY", "SELL"):
        raise ApiError(-1117)
    order_type = params.get("type", "")
    if order_type in ALGO_TYPES:
        raise ApiError(-4120)  # Binance moved conditional orders to the algo endpoints (December 2025)
    if order_type not in ("MARKET", "LIMIT"):
        raise ApiError(-1116)
    quantity = _decimal(params, "quantity")
    if quantity is None:
        raise ApiError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
    tif = params.get("timeInForce", "GTC")
    if order_type == "LIMIT" and "timeInForce" not in params:
        raise ApiError(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.")
    if order_type == "MARKET" and "price" in params:
        raise ApiError(-1106, "Parameter 'price' sent when not required.")
    return OrderRequest(
        symbol=symbol,
        side=side,
        type=order_type,
        quantity=quantity,
        price=_decimal(params, "price"),
        time_in_force=tif,
        reduce_only=_sent_bool(params, "reduceOnly"),
        client_order_id=params.get("newClientOrderId"),
        position_side=_position_side(params),
    )


def _position_side(params: dict[str, str]) -> str | None:
    side = params.get("positionSide")
    if side is not None and side not in ("BOTH", "LONG", "SHORT"):
        raise ApiError(-4060)
    return side


def _algo_request(params: dict[str, str]) -> AlgoRequest:
    return AlgoRequest(
        symbol=params.get("symbol", ""),
        side=params.get("side", ""),
        type=params.get("type", ""),
        quantity=_decimal(params, "quantity"),
        trigger_price=_decimal(params, "triggerPrice"),
        price=_decimal(params, "price"),
        position_side=_position_side(params),
        time_in_force=params.get("timeInForce", "GTC"),
        working_type=params.get("workingType", "CONTRACT_PRICE"),
        reduce_only=_sent_bool(params, "reduceOnly"),
        close_position=_bool(params, "closePosition"),
        price_protect=_bool(params, "priceProtect"),
        client_algo_id=params.get("clientAlgoId"),
        activate_price=_decimal(params, "activatePrice"),
        callback_rate=_decimal(params, "callbackRate"),
    )


def _algo_ids(params: dict[str, str]) -> tuple[int | None, str | None]:
    algo_id, client_id = params.get("algoId"), params.get("clientAlgoId")
    if algo_id is None and client_id is None:
        raise ApiError(-1102, "Param 'algoId' or 'clientAlgoId' must be sent, but both were empty/null!")
    return (_int(params, "algoId", 0) if algo_id is not None else None), client_id


def _order_ids(params: dict[str, str]) -> tuple[int | None, str | None]:
    order_id = params.get("orderId")
    client_id = params.get("origClientOrderId")
    if order_id is None and client_id is None:
        raise ApiError(
            -1102, "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!"
        )
    try:
        return (int(order_id) if order_id is not None else None), client_id
    except ValueError:
        raise ApiError(-1102, "Parameter 'orderId' was malformed.") from None


def _window(
    items: list[Any], params: dict[str, str], when: Callable[[Any], int], ident: Callable[[Any], int]
) -> list[Any]:
    if "startTime" in params:
        items = [i for i in items if when(i) >= int(params["startTime"])]
    if "endTime" in params:
        items = [i for i in items if when(i) <= int(params["endTime"])]
    items = sorted(items, key=ident)
    limit = min(int(params.get("limit", "500")), 1000)
    # Binance: from startTime or fromId, the oldest `limit` onwards; with neither, the newest `limit`
    return items[:limit] if "fromId" in params or "startTime" in params else items[-limit:]
