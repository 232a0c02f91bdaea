"""Bybit's dialect (v5, linear USDT perpetuals on a unified trading account): its answers read (reports.py),
its order parameters, and the calls only it has — funding in the execution history, the position mode read
from the positions, conditional orders in the same order book under `orderFilter=StopOrder`.

Its request budget is not Binance's weight per minute: every request counts against the IP's 600 per 5 s, and
each private endpoint has a budget per account per second (`ENDPOINT_LIMITS`, Bybit's documented defaults for
linear contracts), which its answers state (`X-Bapi-Limit*`): the limiter paces each endpoint to the limit
the account really has, and a refusal (10006) holds that endpoint alone until its reset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt

from cockpit.exchange.bybit import reports
from cockpit.exchange.bybit.client import bybit_client
from cockpit.exchange.classify import is_maintenance, is_rate_limit
from cockpit.exchange.dialect import Caller
from cockpit.exchange.intents import OrderIntent
from cockpit.exchange.ratelimit import LimitModel, LimitReading, header
from cockpit.exchange.reports import (
    BalanceReport,
    FillReport,
    FundingReport,
    MarketReport,
    OrderReport,
    PositionReport,
)
from cockpit.exchange.urls import ws_of

OPS = (
    "load_markets",
    "fetch_time",
    "fetch_balance",
    "fetch_positions",
    "fetch_open_orders",
    "fetch_open_orders_all",
    "fetch_mark_prices",
    "fetch_my_trades",
    "fetch_order",
    "create_order",
    "cancel_order",
    "cancel_all_orders",
    "fetch_position_mode",
    "fetch_funding",
    "fetch_leverages",
    "fetch_account_margin",
    "fetch_open_conditional_orders",
    "cancel_conditional_order",
    "cancel_all_conditional_orders",
)
WEIGHTS: dict[str, int] = dict.fromkeys(OPS, 1)
# the private endpoint each operation calls (the public ones — markets, time, tickers — count for the IP only)
ENDPOINT_OF: dict[str, str] = {
    "fetch_balance": "account/wallet-balance",
    "fetch_account_margin": "account/info",
    "fetch_positions": "position/list",
    "fetch_position_mode": "position/list",
    "fetch_open_orders": "order/realtime",
    "fetch_open_orders_all": "order/realtime",
    "fetch_open_conditional_orders": "order/realtime",
    "fetch_order": "order/realtime",
    "fetch_my_trades": "execution/list",
    "fetch_funding": "execution/list",
    "create_order": "order/create",
    "cancel_order": "order/cancel",
    "cancel_conditional_order": "order/cancel",
    "cancel_all_orders": "order/cancel-all",
    "cancel_all_conditional_orders": "order/cancel-all",
}
# requests per second per account, Bybit's defaults for linear contracts (an answer's X-Bapi-Limit says the
# account's own, e.g. a PRO account's)
ENDPOINT_LIMITS: dict[str, int] = {
    "order/create": 10,
    "order/cancel": 10,
    "order/cancel-all": 10,
    "order/realtime": 50,
    "position/list": 50,
    "execution/list": 50,
    "account/wallet-balance": 50,
    "account/info": 50,
}
EXECUTIONS_PAGE = 100  # Bybit's largest execution-list page
ORDERS_PAGE = 50  # Bybit's largest open-orders page
PAGES_MAX = 200  # per window: 20 000 rows, far past any account's week
WINDOW_MS = 7 * 24 * 3600 * 1000  # the execution list answers at most 7 days at a time
PROBE_SYMBOL = "BTCUSDT"  # without a position held anywhere: the one symbol probed for the position mode
HEDGE_IDX = ("1", "2")
ENDPOINT_REFUSAL = re.compile(r'"retCode"\s*:\s*10006\b')
WS_BASE, WS_TESTNET = "wss://stream.bybit.com", "wss://stream-testnet.bybit.com"


class Bybit:
    id = "bybit"
    weights: Mapping[str, int] = WEIGHTS
    limits = LimitModel(limit=600, window_s=5.0, endpoints=ENDPOINT_LIMITS, endpoint_of=ENDPOINT_OF)
    conditional_params: Mapping[str, Any] = {"orderFilter": "StopOrder"}  # the same endpoints, filtered
    ban_probe_s = 10.0  # Bybit's 403 names no end: one request every 10 s sees the ban lifted

    def make_client(
        self,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None,
        timeout_ms: int,
        testnet: bool,
    ) -> Any:
        return bybit_client(api_key, api_secret, base_url, timeout_ms, testnet)

    def ws_base(self, base_url: str | None, testnet: bool) -> str:
        """Bybit's own hosts, or a regional one's streams beside its API (`https://api.bybit.kz` →
        `wss://stream.bybit.kz`), or a simulator's own host with ws://. (Demo trading serves its private
        stream on its own host but its market data on mainnet's: one base cannot say both; not supported.)"""
        if base_url is None:
            return WS_TESTNET if testnet else WS_BASE
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        if parts.scheme == "https" and host.startswith("api."):
            return f"wss://stream{host[len('api') :]}"
        return ws_of(base_url)

    def limit_reading(self, headers: Mapping[str, str] | None) -> LimitReading:
        """The called endpoint's budget: its limit, what is left, and when it resets (exchange time, ms)."""
        return LimitReading(
            endpoint_limit=header(headers, "X-Bapi-Limit"),
            endpoint_left=header(headers, "X-Bapi-Limit-Status"),
            endpoint_reset_ms=header(headers, "X-Bapi-Limit-Reset-Timestamp"),
        )

    # ----- answers as reports ---------------------------------------------------------------------------
    def market_reports(self, answer: Any) -> dict[str, MarketReport]:
        return reports.market_reports(answer)

    def position_reports(self, answer: Any, account_margin: str | None = None) -> list[PositionReport]:
        return reports.position_reports(answer, account_margin)

    def balance_report(self, answer: Any) -> BalanceReport:
        return reports.balance_report(answer)

    def order_report(self, answer: Any, sent_quantity: Decimal | None = None) -> OrderReport:
        return reports.order_report(answer, sent_quantity=sent_quantity)

    # ----- what the exchange's refusals mean --------------------------------------------------------
    def is_ban(self, exc: BaseException) -> bool:
        """Bybit's IP limit (600 requests per 5 s) answers HTTP 403 "access too frequent" and holds the IP
        for at least 10 minutes: a ban, not one endpoint's limit (retCode 10006)."""
        return is_rate_limit(exc) and (" 403 " in str(exc) or "access too frequent" in str(exc))

    def is_endpoint_limit(self, exc: BaseException) -> bool:
        """retCode 10006 "Too many visits!": one endpoint's per-second budget, not the IP's."""
        return is_rate_limit(exc) and ENDPOINT_REFUSAL.search(str(exc)) is not None

    def is_maintenance(self, exc: BaseException) -> bool:
        """ccxt's OnMaintenance, or the HTTP 503 page Bybit's gateway answers while it is down."""
        return is_maintenance(exc) or (isinstance(exc, ccxt.ExchangeNotAvailable) and " 503 " in str(exc))

    # ----- what the gateway sends -------------------------------------------------------------------------
    def order_params(self, intent: OrderIntent, client_order_id: str) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": client_order_id}  # ccxt sends it as orderLinkId
        if intent.leg != "both":  # hedge mode: the leg's positionIdx; its closing side can only reduce it
            params["positionIdx"] = 1 if intent.leg == "long" else 2
        elif intent.reduce_only:
            params["reduceOnly"] = True
        if intent.time_in_force:
            params["timeInForce"] = intent.time_in_force
        return params

    # ----- reads, page by page (ccxt's own paging stops at 10 pages and cuts to its limit) ----------------
    async def _pages(
        self, gateway: Caller, op: str, fn: Any, params: dict[str, Any]
    ) -> list[Mapping[str, Any]]:
        """Every row of a v5 list answer, following `nextPageCursor`."""
        rows: list[Mapping[str, Any]] = []
        cursor = ""
        for _ in range(PAGES_MAX):
            answer: Any = await gateway.call(op, fn, {**params, **({"cursor": cursor} if cursor else {})})
            page, cursor = gateway.read(op, reports.page, answer)
            rows.extend(page)
            if not cursor or not page:
                break
        return rows

    async def _orders(self, gateway: Caller, op: str, symbol: str | None, kind: str) -> list[OrderReport]:
        client = gateway.client
        params: dict[str, Any] = {"category": "linear", "orderFilter": kind, "limit": ORDERS_PAGE}
        if symbol is not None:
            params["symbol"] = client.market_id(symbol)
        else:
            params["settleCoin"] = reports.SETTLEMENT_ASSET
        rows = await self._pages(gateway, op, client.privateGetV5OrderRealtime, params)
        parsed: list[dict[str, Any]] = client.parse_orders(rows)
        return [gateway.read(op, reports.order_report, row) for row in parsed]

    async def fetch_open_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]:
        """`GET /v5/order/realtime?orderFilter=Order`: the plain open orders (conditional ones apart)."""
        return await self._orders(gateway, "fetch_open_orders", symbol, "Order")

    async def fetch_open_conditional_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]:
        """`GET /v5/order/realtime?orderFilter=StopOrder`: the conditional orders not yet triggered."""
        await gateway.ensure_markets()
        return await self._orders(gateway, "fetch_open_conditional_orders", symbol, "StopOrder")

    async def _windows(
        self, gateway: Caller, op: str, params: dict[str, Any], since_ms: int | None
    ) -> list[Mapping[str, Any]]:
        """The execution list from `since_ms` up to now, seven days at a time (Bybit answers a window of at
        most 7 days: a `startTime` alone reads [start, start + 7 days] and would miss everything after)."""
        now = int(gateway.client.milliseconds())
        rows: list[Mapping[str, Any]] = []
        start = since_ms
        fn = gateway.client.privateGetV5ExecutionList
        while True:
            window = dict(params)
            if start is not None:
                window.update(startTime=start, endTime=min(start + WINDOW_MS - 1, now))
            rows.extend(await self._pages(gateway, op, fn, window))
            if start is None or start + WINDOW_MS > now:
                return rows
            start += WINDOW_MS

    async def fetch_trades(self, gateway: Caller, symbol: str, since_ms: int | None) -> list[FillReport]:
        """`GET /v5/execution/list`'s fills — trades, and the exchange's own (auto-deleveraging, liquidation,
        delivery) that move a position as well — every page of every 7-day window up to now, oldest
        first. Bybit's executions do not say the hedge leg: on a symbol in hedge mode it follows from the
        side and `closedSize` (a buy that closed nothing opened the LONG leg; one that closed, the SHORT)."""
        market_id = gateway.client.market_id(symbol)
        params = {"category": "linear", "symbol": market_id, "limit": EXECUTIONS_PAGE}
        every = await self._windows(gateway, "fetch_my_trades", params, since_ms)
        rows = [r for r in every if r.get("execType") in reports.FILL_TYPES]  # not funding, not settlement
        hedged = bool(rows) and await self._hedged(gateway, market_id)
        fills = [
            gateway.read("fetch_my_trades", lambda r: reports.execution_fill(r, hedged), r) for r in rows
        ]
        unique = {f.trade_id: f for f in fills}  # a row on a window's edge: once
        return sorted(unique.values(), key=lambda f: (f.timestamp_ms, f.trade_id))

    async def _hedged(self, gateway: Caller, market_id: str) -> bool:
        """Whether `market_id` is in hedge mode: its position list holds every leg, flat or not."""
        params = {"category": "linear", "symbol": market_id}
        answer: Any = await gateway.call(
            "fetch_position_mode", gateway.client.privateGetV5PositionList, params
        )
        return gateway.read("fetch_position_mode", reports.hedge_mode, answer)

    async def lookup_order(self, gateway: Caller, symbol: str, client_order_id: str) -> OrderReport | None:
        """By its orderLinkId alone (ccxt's fetch_order would send `orderId=None`, which Bybit looks up
        first): open, else among the latest closed ones (`openOnly=1`); None when Bybit does not know it."""
        client = gateway.client
        for open_only in ("0", "1"):
            params = {
                "category": "linear",
                "symbol": client.market_id(symbol),
                "orderLinkId": client_order_id,
                "openOnly": open_only,
            }
            answer: Any = await gateway.call("fetch_order", client.privateGetV5OrderRealtime, params)
            rows, _ = gateway.read("fetch_order", reports.page, answer)
            if rows:
                parsed: dict[str, Any] = client.parse_order(rows[0])
                return gateway.read("fetch_order", reports.order_report, parsed)
        return None

    # ----- calls only Bybit has -----------------------------------------------------------------------------
    async def fetch_mark_prices(self, gateway: Caller, symbols: list[str]) -> dict[str, Decimal]:
        """`GET /v5/market/tickers` (ccxt's fetch_tickers): each symbol's markPrice."""
        await gateway.ensure_markets()
        rows: Any = await gateway.call("fetch_mark_prices", gateway.client.fetch_tickers, symbols)
        return gateway.read("fetch_mark_prices", lambda r: reports.mark_prices(r, symbols), rows)

    async def fetch_account_margin(self, gateway: Caller) -> str | None:
        """A unified account's margin mode, the whole account's (`GET /v5/account/info`)."""
        answer: Any = await gateway.call("fetch_account_margin", gateway.client.privateGetV5AccountInfo, {})
        return gateway.read("fetch_account_margin", reports.account_margin, answer)

    async def fetch_leverages(self, gateway: Caller) -> dict[str, int]:
        return {}  # Bybit's positions carry their leverage

    async def fetch_funding(self, gateway: Caller, since_ms: int) -> list[FundingReport]:
        """Every funding payment from `since_ms`, oldest first: the execution list's Funding rows (raw: ccxt's
        parse makes floats), every page of every 7-day window up to now."""
        params = {"category": "linear", "execType": "Funding", "limit": EXECUTIONS_PAGE}
        rows = await self._windows(gateway, "fetch_funding", params, since_ms)
        found = gateway.read("fetch_funding", reports.funding_reports, rows)
        unique = {f.income_id: f for f in found}
        return sorted(unique.values(), key=lambda f: (f.time_ms, f.income_id))

    async def fetch_hedge_mode(self, gateway: Caller) -> bool:
        """Bybit has no account-wide position-mode read (it is set per symbol or per coin): the positions
        held say it (a leg with positionIdx 1 or 2); with none held, one symbol's list (every leg, flat or
        not) does."""
        await gateway.ensure_markets()
        client = gateway.client
        params = {"category": "linear", "settleCoin": reports.SETTLEMENT_ASSET}
        answer: Any = await gateway.call("fetch_position_mode", client.privateGetV5PositionList, params)
        held, _ = gateway.read("fetch_position_mode", reports.page, answer)
        if held:
            return any(str(r.get("positionIdx", "0")) in HEDGE_IDX for r in held)
        ids = [str(m.get("id")) for m in client.markets.values() if m.get("linear")]
        return await self._hedged(gateway, PROBE_SYMBOL if PROBE_SYMBOL in ids or not ids else ids[0])


BYBIT = Bybit()
