"""Bybit v5 REST routes (the paths and fields ccxt's `bybit` uses for linear perpetuals), with auth, the
per-endpoint budgets and the faults in Bybit's terms.

Every answer is Bybit's envelope `{retCode, retMsg, result, retExtInfo, time}`, HTTP 200 for errors too.
Faults: `latency` delays every answer; `maintenance` answers HTTP 503 with a plain page (no retCode, so a
client sees the service as unavailable); `ban` answers HTTP 403 "access too frequent" (Bybit's IP limit);
`rate_limit` answers retCode 10006 with the budget headers spent; `http_error` answers a proxy's page with
its status; `auth_fail` answers 10003; `reject_orders` answers its code on the next order (a Bybit retCode
as is, a Binance one translated); `apply_then_fail` places the order and answers 10016 "Request timeout"
(the outcome is unknown to the client); `hostile` serves its bad value on `/v5/position/list` rows
(`positions`), the wallet record (`balance`) and `/v5/market/tickers` rows (`premium`). An unknown `/v5/`
path answers HTTP 404 with 10017.

Bybit switches the position mode per symbol or per settle coin; the simulator's account has one mode, so
either switches the whole account. Leverage is one whole number per symbol: `buyLeverage` must equal
`sellLeverage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from cockpit.sim import hostile
from cockpit.sim.bybit import auth, views
from cockpit.sim.bybit.book import Entry, OrderBook, kind
from cockpit.sim.bybit.errors import TIMEOUT_MESSAGE, BybitError, fault_code, translate
from cockpit.sim.bybit.executions import Executions
from cockpit.sim.bybit.limits import EndpointBudgets, headers
from cockpit.sim.errors import ApiError

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]
MAX_OPEN_ROWS, MAX_CLOSED_ROWS = 50, 500
MAINTENANCE_PAGE = "<html><body><h1>503 Service Temporarily Unavailable</h1>System maintenance.</body></html>"


def answer(result: Any, now_ms: int, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}


def _json(data: Any, status: int = 200, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=extra
    )


class BybitRest:
    def __init__(self, sim: Venue, book: OrderBook, executions: Executions) -> None:
        self.sim = sim
        self.book = book
        self.executions = executions
        self.budgets = EndpointBudgets()
        self.requests_served = 0

    def routes(self) -> list[tuple[str, str, Handler, bool]]:
        """(method, path, handler, private)."""
        return [
            ("GET", "/v5/market/time", self.time, False),
            ("GET", "/v5/market/instruments-info", self.instruments, False),
            ("GET", "/v5/market/tickers", self.tickers, False),
            ("GET", "/v5/account/wallet-balance", self.wallet_balance, True),
            ("GET", "/v5/account/info", self.account_info, True),
            ("POST", "/v5/account/set-margin-mode", self.set_margin_mode, True),
            ("GET", "/v5/user/query-api", self.query_api, True),
            ("GET", "/v5/position/list", self.positions, True),
            ("GET", "/v5/order/realtime", self.open_orders, True),
            ("GET", "/v5/execution/list", self.execution_list, True),
            ("POST", "/v5/order/create", self.create_order, True),
            ("POST", "/v5/order/cancel", self.cancel_order, True),
            ("POST", "/v5/order/cancel-all", self.cancel_all, True),
            ("POST", "/v5/position/switch-mode", self.switch_mode, True),
            ("POST", "/v5/position/set-leverage", self.set_leverage, True),
        ]

    def register(self, app: web.Application) -> None:
        for method, path, handler, private in self.routes():
            app.router.add_route(method, path, self._wrap(handler, path, private))
        app.router.add_route("*", "/v5/{tail:.*}", self._not_found)

    async def _not_found(self, request: web.Request) -> web.Response:
        return _json(answer({}, self.sim.clock.now_ms(), 10017, "Route not found."), status=404)

    def _wrap(
        self, handler: Handler, path: str, private: bool
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            self.requests_served += 1
            body = (await request.text()) if request.body_exists else ""
            budget: dict[str, str] = {}
            try:
                await self._gate()
                if private:
                    budget = self._admit(request, path, body)
                result = await handler(_params(request, body))
                response = _json(answer(result, self.sim.clock.now_ms()))
            except BybitError as exc:
                budget = {**budget, **exc.headers}
                if exc.text is not None:
                    return web.Response(text=exc.text, status=exc.status, content_type="text/html")
                response = _json(answer({}, self.sim.clock.now_ms(), exc.code, exc.msg), status=exc.status)
            response.headers.update(budget)
            return response

        return endpoint

    async def _gate(self) -> None:
        """Faults that act on every request before it is looked at."""
        faults = self.sim.faults
        latency = faults.active("latency")
        if latency is not None:
            await asyncio.sleep(latency.params["ms"] / 1000.0)
        if faults.active("maintenance") is not None:
            raise BybitError(10016, status=503, text=MAINTENANCE_PAGE)
        if faults.active("ban") is not None:
            raise BybitError(10009, status=403, text="403, access too frequent")
        failing = faults.consume("http_error")
        if failing is not None:
            status = int(failing.params["status"])
            page = f"<html><head><title>{status}</title></head><body><h1>{status} Error</h1></body></html>"
            raise BybitError(10016, status=status, text=page)
        limited = faults.consume("rate_limit")
        if limited is not None:
            reset = self.sim.clock.now_ms() + int(float(limited.params["retry_after_s"]) * 1000)
            raise BybitError(10006, headers=headers(10, 0, reset))

    def _admit(self, request: web.Request, path: str, body: str) -> dict[str, str]:
        """Authenticate a private request and count it against its endpoint's budget: the budget headers."""
        sim = self.sim
        payload = body if request.method == "POST" else request.rel_url.raw_query_string
        now = sim.clock.now_ms()
        if sim.faults.active("auth_fail") is not None:
            raise BybitError(10003)
        auth.check_request(dict(request.headers), payload, sim.api_key, sim.api_secret, now)
        allowed, budget = self.budgets.take(path, now)
        if not allowed:
            raise BybitError(10006, headers=budget)
        return budget

    # ----- market -------------------------------------------------------------------------------------
    async def time(self, params: Params) -> Any:
        now = self.sim.clock.now_ms()
        return {"timeSecond": str(now // 1000), "timeNano": str(now * 1_000_000)}

    async def instruments(self, params: Params) -> Any:
        rows = []
        if params.get("category") == views.CATEGORY and params.get("status") in (None, "", "Trading"):
            rows = [views.instrument(s) for s in self.sim.specs.values() if _wanted(params, s.symbol)]
        return {"category": params.get("category", ""), "list": rows, "nextPageCursor": ""}

    async def tickers(self, params: Params) -> Any:
        self._category(params)
        if params.get("symbol") and params["symbol"] not in self.sim.specs:
            raise BybitError(10001, "Not supported symbols")
        rows = [views.ticker(self.sim, s) for s in self.sim.specs if _wanted(params, s)]
        bad = self.sim.faults.take("hostile", target="premium")
        return {"category": views.CATEGORY, "list": hostile.served_rows(rows, bad.params) if bad else rows}

    # ----- account ------------------------------------------------------------------------------------
    async def wallet_balance(self, params: Params) -> Any:
        if params.get("accountType") != "UNIFIED":
            raise BybitError(10001, "accountType only support UNIFIED")
        record = views.wallet(self.sim.account)
        bad = self.sim.faults.take("hostile", target="balance")
        return {"list": [hostile.served(record, bad.params) if bad else record]}

    async def account_info(self, params: Params) -> Any:
        acct = self.sim.account
        isolated = all(acct.is_isolated(symbol) for symbol in self.sim.specs)
        return {
            "marginMode": "ISOLATED_MARGIN" if isolated else "REGULAR_MARGIN",
            "updatedTime": str(self.sim.clock.now_ms()),
            "unifiedMarginStatus": 6,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    async def query_api(self, params: Params) -> Any:
        return {
            "id": "13770661",
            "note": "cockpit sim",
            "apiKey": self.sim.api_key,
            "readOnly": 0,
            "secret": "",
            "permissions": {"ContractTrade": ["Order", "Position"], "Wallet": ["AccountTransfer"]},
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 83,
            "expiredAt": "",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
        }

    async def positions(self, params: Params) -> Any:
        """With `symbol`: its rows whatever their size (two in hedge mode); with only `settleCoin`: the rows
        held."""
        self._category(params)
        acct = self.sim.account
        if params.get("symbol"):
            legs = acct.legs_of(self._symbol(params))
        elif params.get("settleCoin") or params.get("baseCoin"):
            legs = [p for s in acct.specs if _coin_match(params, acct.specs[s].base) for p in acct.legs_of(s)]
            legs = [p for p in legs if p.qty != 0]
        else:
            raise BybitError(10001, "symbol or settleCoin is required")
        rows = [views.position(acct, p) for p in legs]
        bad = self.sim.faults.take("hostile", target="positions")
        if bad is not None:
            rows = hostile.served_rows(rows, bad.params)
        return {"category": views.CATEGORY, "list": rows, "nextPageCursor": ""}

    async def set_margin_mode(self, params: Params) -> Any:
        """A unified account's margin mode is the whole account's: every linear position cross
        (REGULAR_MARGIN) or isolated (ISOLATED_MARGIN; portfolio margin is not simulated). Only with no
        position and no open order, as the account model refuses a symbol's change."""
        mode = str(params.get("setMarginMode", ""))
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN"):
            raise BybitError(10001, f"setMarginMode {mode!r} invalid: ISOLATED_MARGIN or REGULAR_MARGIN")
        acct = self.sim.account
        if acct.open_legs() or acct.open_orders() or acct.open_algos(None):
            raise BybitError(3400045, "Set margin mode failed: close every position and cancel every order")
        for symbol in self.sim.specs:
            acct.margin_types[symbol] = "isolated" if mode == "ISOLATED_MARGIN" else "cross"
        return {"reasons": []}

    async def switch_mode(self, params: Params) -> Any:
        self._category(params)
        if not params.get("symbol") and not params.get("coin"):
            raise BybitError(10001, "symbol or coin is required")
        if params.get("symbol"):
            self._symbol(params)
        mode = str(params.get("mode", ""))
        if mode not in ("0", "3"):
            raise BybitError(10001, "mode invalid")
        try:
            self.sim.account.set_dual_side(mode == "3")
        except ApiError as exc:
            raise translate(exc) from None
        return {}

    async def set_leverage(self, params: Params) -> Any:
        self._category(params)
        symbol = self._symbol(params)
        buy, sell = str(params.get("buyLeverage", "")), str(params.get("sellLeverage", ""))
        try:
            leverage = Decimal(buy)
        except ArithmeticError:
            raise BybitError(10001, "buyLeverage invalid") from None
        max_leverage = self.sim.specs[symbol].max_leverage
        if buy != sell or leverage != leverage.to_integral_value() or not 1 <= leverage <= max_leverage:
            raise BybitError(
                10001, f"leverage invalid: must be a whole number 1..{max_leverage} for both sides"
            )
        if self.sim.account.leverage[symbol] == int(leverage):
            raise BybitError(110043)
        self.sim.account.leverage[symbol] = int(leverage)
        return {}

    # ----- orders -------------------------------------------------------------------------------------
    async def create_order(self, params: Params) -> Any:
        self._category(params)
        faults = self.sim.faults
        rejected = faults.consume("reject_orders")
        if rejected is not None:
            raise fault_code(int(rejected.params["code"]))
        partial = faults.peek("partial_fill")
        ratio = Decimal(repr(partial.params["ratio"])) if partial is not None else None
        entry = self.book.place(params, partial_ratio=ratio)
        if entry.placed is not None and entry.placed.starved:
            faults.consume("partial_fill")
        if faults.consume("apply_then_fail") is not None:
            raise BybitError(10016, TIMEOUT_MESSAGE)
        return _ids(entry)

    async def cancel_order(self, params: Params) -> Any:
        self._category(params)
        symbol = self._symbol(params)
        entry = self.book.cancel(symbol, _text(params, "orderId"), _text(params, "orderLinkId"))
        return _ids(entry)

    async def cancel_all(self, params: Params) -> Any:
        self._category(params)
        acct = self.sim.account
        if params.get("symbol"):
            symbols = [self._symbol(params)]
        elif params.get("baseCoin") or params.get("settleCoin"):
            symbols = [s for s in acct.specs if _coin_match(params, acct.specs[s].base)]
        else:
            raise BybitError(10001, "symbol, baseCoin or settleCoin is required")
        order_filter = _text(params, "orderFilter")
        if order_filter not in (None, "Order", "StopOrder"):
            raise BybitError(10001, "orderFilter invalid")
        canceled = self.book.cancel_all(symbols, order_filter)
        return {"list": [_ids(e) for e in canceled], "success": "1"}

    async def open_orders(self, params: Params) -> Any:
        """Open orders (`openOnly` 0, the default) or the latest closed ones (`openOnly` 1); an order asked
        for by `orderId` / `orderLinkId` is found open or among the latest 500 closed, whatever the filter."""
        self._category(params)
        acct = self.sim.account
        order_id, link_id = _text(params, "orderId"), _text(params, "orderLinkId")
        entries = self.book.entries()
        if order_id or link_id:
            found = self.book.find(order_id, link_id)
            entries = [found] if found is not None and _recent(entries, found) else []
        else:
            if params.get("symbol"):
                symbols = {self._symbol(params)}
            elif params.get("baseCoin") or params.get("settleCoin"):
                symbols = {s for s in acct.specs if _coin_match(params, acct.specs[s].base)}
            else:
                raise BybitError(10001, "symbol, baseCoin or settleCoin is required")
            closed = str(params.get("openOnly", "0")) == "1"
            entries = [e for e in entries if e.symbol in symbols and e.is_open != closed]
            if closed:
                entries = entries[:MAX_CLOSED_ROWS]
            order_filter = _text(params, "orderFilter")
            if order_filter in ("Order", "StopOrder"):
                entries = [e for e in entries if kind(e) == order_filter]
        try:
            limit = min(max(int(params.get("limit") or 20), 1), MAX_OPEN_ROWS)
            offset = int(params.get("cursor") or 0)
        except ValueError:
            raise BybitError(10001, "limit or cursor invalid") from None
        page = entries[offset : offset + limit]
        more = offset + limit < len(entries)
        return {
            "category": views.CATEGORY,
            "list": [views.order(acct, e) for e in page],
            "nextPageCursor": str(offset + limit) if more else "",
        }

    async def execution_list(self, params: Params) -> Any:
        self._category(params)
        if params.get("symbol"):
            self._symbol(params)
        rows, cursor = self.executions.rows(params, self.sim.clock.now_ms())
        return {"category": views.CATEGORY, "list": rows, "nextPageCursor": cursor}

    # ----- helpers ------------------------------------------------------------------------------------
    def _symbol(self, params: Params) -> str:
        symbol = str(params.get("symbol") or "")
        if symbol not in self.sim.specs:
            raise BybitError(10001, "Not supported symbols")
        return symbol

    @staticmethod
    def _category(params: Params) -> None:
        if params.get("category") != views.CATEGORY:
            raise BybitError(10001, "Illegal category: the simulator lists linear contracts only")


def _params(request: web.Request, body: str) -> Params:
    if request.method != "POST":
        return dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    if not body:
        return {}
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BybitError(10001, "request body is not JSON") from None
    if not isinstance(params, dict):
        raise BybitError(10001, "request body must be a JSON object")
    return params


def _text(params: Params, name: str) -> str | None:
    value = params.get(name)
    return None if value in (None, "") else str(value)


def _wanted(params: Params, symbol: str) -> bool:
    return not params.get("symbol") or params["symbol"] == symbol


def _coin_match(params: Params, base: str) -> bool:
    """A symbol settles in USDT; `baseCoin` narrows to one base."""
    if params.get("baseCoin"):
        return bool(params["baseCoin"] == base)
    return params.get("settleCoin") == "USDT"


def _recent(entries: list[Entry], entry: Entry) -> bool:
    """Open, or among the latest 500 closed orders."""
    if entry.is_open:
        return True
    closed = [e for e in entries if not e.is_open][:MAX_CLOSED_ROWS]
    return any(e is entry or e.order_id == entry.order_id for e in closed)


def _ids(entry: Entry) -> dict[str, str]:
    return {"orderId": entry.order_id, "orderLinkId": entry.link_id}
