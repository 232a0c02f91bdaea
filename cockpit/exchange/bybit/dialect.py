"""Bybit's dialect (v5, linear USDT perpetuals on a unified trading account): its answers read (reports.py),
its order parameters, and the calls only it has — funding in the execution history, the position mode read
from the positions, conditional orders in the same order book under `orderFilter=StopOrder`.

Its request budget is not Binance's weight per minute: Bybit limits each endpoint per second and each IP to
600 requests per 5 s. Until cockpit models that, every call costs 1 of the limiter's budget (40 calls a second
at most), well inside the IP limit."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import ccxt

from cockpit.exchange.bybit import reports
from cockpit.exchange.bybit.client import bybit_client
from cockpit.exchange.dialect import Caller
from cockpit.exchange.intents import OrderIntent
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
    "fetch_open_conditional_orders",
    "cancel_conditional_order",
    "cancel_all_conditional_orders",
)
WEIGHTS: dict[str, int] = dict.fromkeys(OPS, 1)
WS_BASE, WS_TESTNET = "wss://stream.bybit.com", "wss://stream-testnet.bybit.com"
TRADES_PAGE = 100  # Bybit's largest execution-list page
FUNDING_PAGES_MAX = 50
PROBE_SYMBOL = "BTCUSDT"  # the position list of one symbol answers with every leg, flat or not: the mode


class Bybit:
    id = "bybit"
    weights: Mapping[str, int] = WEIGHTS
    trades_page = TRADES_PAGE
    trades_params: Mapping[str, Any] = {"paginate": True}  # ccxt follows Bybit's cursor through the pages
    open_orders_params: Mapping[str, Any] = {"orderFilter": "Order"}  # conditional ones are read apart

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
        if base_url is not None:
            return ws_of(base_url)
        return WS_TESTNET if testnet else WS_BASE

    # ----- answers as reports ---------------------------------------------------------------------------
    def market_reports(self, answer: Any) -> dict[str, MarketReport]:
        return reports.market_reports(answer)

    def position_reports(self, answer: Any) -> list[PositionReport]:
        return reports.position_reports(answer)

    def balance_report(self, answer: Any) -> BalanceReport:
        return reports.balance_report(answer)

    def fill_report(self, answer: Any) -> FillReport:
        return reports.fill_report(answer)

    def order_report(self, answer: Any, sent_quantity: Decimal | None = None) -> OrderReport:
        return reports.order_report(answer, sent_quantity=sent_quantity)

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

    def lookup_params(self, client_order_id: str) -> dict[str, Any]:
        return {"orderLinkId": client_order_id}

    def next_trades_page(self, page: list[FillReport]) -> dict[str, Any] | None:
        return None  # ccxt followed the cursor already (`paginate`)

    # ----- calls only Bybit has -----------------------------------------------------------------------------
    async def fetch_mark_prices(self, gateway: Caller, symbols: list[str]) -> dict[str, Decimal]:
        """`GET /v5/market/tickers` (ccxt's fetch_tickers): each symbol's markPrice."""
        await gateway.ensure_markets()
        rows: Any = await gateway.call("fetch_mark_prices", gateway.client.fetch_tickers, symbols)
        return gateway.read("fetch_mark_prices", lambda r: reports.mark_prices(r, symbols), rows)

    async def fetch_leverages(self, gateway: Caller) -> dict[str, int]:
        return {}  # Bybit's positions carry their leverage

    async def fetch_funding(self, gateway: Caller, since_ms: int) -> list[FundingReport]:
        """Every funding payment from `since_ms`, oldest first: the execution list's Funding rows
        (`GET /v5/execution/list?execType=Funding`, read raw: ccxt's parse makes floats), cursor by cursor."""
        found: list[FundingReport] = []
        cursor = ""
        for _ in range(FUNDING_PAGES_MAX):
            params: dict[str, Any] = {"category": "linear", "execType": "Funding", "startTime": since_ms}
            params["limit"] = TRADES_PAGE
            if cursor:
                params["cursor"] = cursor
            answer: Any = await gateway.call(
                "fetch_funding", gateway.client.privateGetV5ExecutionList, params
            )
            result = answer.get("result") if isinstance(answer, Mapping) else None
            rows = result.get("list") if isinstance(result, Mapping) else None
            found.extend(gateway.read("fetch_funding", reports.funding_reports, rows))
            cursor = str(result.get("nextPageCursor") or "") if isinstance(result, Mapping) else ""
            if not cursor or not rows:
                break
        unique = {f.income_id: f for f in found}
        return sorted(unique.values(), key=lambda f: (f.time_ms, f.income_id))

    async def fetch_hedge_mode(self, gateway: Caller) -> bool:
        """Bybit has no position-mode read: one symbol's position list holds every leg, flat or not
        (positionIdx 0 one-way; 1 and 2 in hedge mode)."""
        params = {"category": "linear", "symbol": PROBE_SYMBOL}
        answer: Any = await gateway.call(
            "fetch_position_mode", gateway.client.privateGetV5PositionList, params
        )
        return gateway.read("fetch_position_mode", reports.hedge_mode, answer)

    async def fetch_open_conditional_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]:
        """`GET /v5/order/realtime?orderFilter=StopOrder`: the conditional orders not yet triggered."""
        await gateway.ensure_markets()
        rows: Any = await gateway.call(
            "fetch_open_conditional_orders",
            gateway.client.fetch_open_orders,
            symbol,
            None,
            None,
            {"orderFilter": "StopOrder"},
        )
        return [gateway.read("fetch_open_conditional_orders", reports.order_report, row) for row in rows]

    async def cancel_conditional_order(
        self, gateway: Caller, order_id: str, symbol: str, gone_ok: bool
    ) -> bool:
        """`POST /v5/order/cancel` (the same endpoint as any order); 110001 once it triggered or went."""
        await gateway.ensure_markets()
        try:
            await gateway.call(
                "cancel_conditional_order",
                gateway.client.cancel_order,
                order_id,
                symbol,
                {"orderFilter": "StopOrder"},
                answers=(ccxt.OrderNotFound,) if gone_ok else (),
            )
        except ccxt.OrderNotFound:
            if not gone_ok:
                raise
            return False
        return True

    async def cancel_all_conditional_orders(self, gateway: Caller, symbol: str) -> None:
        """`POST /v5/order/cancel-all` with `orderFilter=StopOrder`."""
        await gateway.ensure_markets()
        with contextlib.suppress(ccxt.OrderNotFound):
            await gateway.call(
                "cancel_all_conditional_orders",
                gateway.client.cancel_all_orders,
                symbol,
                {"orderFilter": "StopOrder"},
                answers=(ccxt.OrderNotFound,),
            )


BYBIT = Bybit()
