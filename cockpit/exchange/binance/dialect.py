"""Binance USD-M's dialect: its weights, its answers read (reports.py), its order parameters, and the calls
only it has — the symbols' leverage settings, the income history (funding), the position mode, and the Algo
Service that holds conditional orders since December 2025."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import ccxt

from cockpit.core.domain import exchange_side
from cockpit.exchange.binance import reports
from cockpit.exchange.binance.client import binance_usdm_client
from cockpit.exchange.classify import is_ban, is_maintenance
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

# Binance USD-M request weights by ccxt method (the documented weight of the endpoint each one calls).
ENDPOINT_WEIGHTS: dict[str, int] = {
    "load_markets": 1,
    "fetch_time": 1,
    "fetch_balance": 5,
    "fetch_positions": 5,
    "fetch_open_orders": 1,
    "fetch_open_orders_all": 40,
    "fetch_ticker": 1,
    "fetch_mark_prices": 10,
    "fetch_my_trades": 5,
    "fetch_order": 1,
    "create_order": 1,
    "cancel_order": 1,
    "cancel_all_orders": 1,
    "fetch_position_mode": 30,  # GET /fapi/v1/positionSide/dual
    "fetch_funding": 30,  # GET /fapi/v1/income
    "fetch_leverages": 5,  # GET /fapi/v1/symbolConfig
    "fetch_open_conditional_orders": 40,  # GET /fapi/v1/openAlgoOrders without a symbol
    "cancel_conditional_order": 1,
    "cancel_all_conditional_orders": 1,
    "listen_key": 1,
}
WS_BASE = "wss://fstream.binance.com"
TRADES_PAGE = 1000  # Binance's largest userTrades page
INCOME_PAGE = 1000  # Binance's largest income page
INCOME_PAGES_MAX = 50  # funding is 3 a day per symbol: 50 000 payments is far past any session's gap


class BinanceUsdm:
    id = "binanceusdm"
    weights: Mapping[str, int] = ENDPOINT_WEIGHTS
    limits = LimitModel(limit=2400, window_s=60.0)  # request weight per IP per rolling minute
    conditional_params: Mapping[str, Any] = {"trigger": True}  # ccxt: the Algo Service's endpoints
    ban_probe_s = 60.0  # Binance's 418 names its end ("banned until …"): this only when it does not
    trades_page = TRADES_PAGE

    def make_client(
        self,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None,
        timeout_ms: int,
        testnet: bool,
    ) -> Any:
        return binance_usdm_client(api_key, api_secret, base_url, timeout_ms, testnet)

    def ws_base(self, base_url: str | None, testnet: bool) -> str:
        """Production's host whatever `testnet` says (as cockpit always did), or `base_url`'s."""
        return WS_BASE if base_url is None else ws_of(base_url)

    def limit_reading(self, headers: Mapping[str, str] | None) -> LimitReading:
        """The weight the IP used in the rolling minute, as the exchange counts it."""
        return LimitReading(used=header(headers, "X-MBX-USED-WEIGHT-1M"))

    # ----- answers as reports ---------------------------------------------------------------------------
    def market_reports(self, answer: Any) -> dict[str, MarketReport]:
        return reports.market_reports(answer)

    def position_reports(self, answer: Any, account_margin: str | None = None) -> list[PositionReport]:
        return reports.position_reports(answer)  # each row says its symbol's margin type

    def balance_report(self, answer: Any) -> BalanceReport:
        return reports.balance_report(answer)

    def order_report(self, answer: Any, sent_quantity: Decimal | None = None) -> OrderReport:
        return reports.order_report(answer, sent_quantity=sent_quantity)

    # ----- what the exchange's refusals mean --------------------------------------------------------
    def is_ban(self, exc: BaseException) -> bool:
        """HTTP 418: the IP banned until the time the answer names."""
        return is_ban(exc)

    def is_endpoint_limit(self, exc: BaseException) -> bool:
        return False  # Binance's limits are the IP's weight and its order counts: a 429 holds every request

    def is_maintenance(self, exc: BaseException) -> bool:
        return is_maintenance(exc)

    # ----- what the gateway sends -------------------------------------------------------------------------
    def order_params(self, intent: OrderIntent, client_order_id: str) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if intent.leg != "both":  # hedge mode: the leg says it; Binance refuses reduceOnly there
            params["positionSide"] = exchange_side(intent.leg)
        elif intent.reduce_only:
            params["reduceOnly"] = True
        if intent.time_in_force:
            params["timeInForce"] = intent.time_in_force
        return params

    # ----- calls only Binance has ---------------------------------------------------------------------------
    async def fetch_open_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]:
        """`GET /fapi/v1/openOrders`: weight 1 with a symbol, 40 without; every open order in one answer."""
        op_weight = self.weights["fetch_open_orders" if symbol else "fetch_open_orders_all"]
        rows: list[dict[str, Any]] = await gateway.call(
            "fetch_open_orders", gateway.client.fetch_open_orders, symbol, weight=op_weight
        )
        return [gateway.read("fetch_open_orders", reports.order_report, row) for row in rows]

    async def fetch_trades(self, gateway: Caller, symbol: str, since_ms: int | None) -> list[FillReport]:
        """userTrades from `since_ms`, oldest first, page after page by trade id."""
        fills = await self._trades_page(gateway, symbol, since_ms)
        page = fills
        while len(page) == self.trades_page:
            after = max(int(f.trade_id) for f in page) + 1
            page = await self._trades_page(gateway, symbol, None, {"fromId": after})
            fills.extend(page)
        return fills

    async def _trades_page(
        self, gateway: Caller, symbol: str, since_ms: int | None, *params: dict[str, Any]
    ) -> list[FillReport]:
        rows: list[dict[str, Any]] = await gateway.call(
            "fetch_my_trades", gateway.client.fetch_my_trades, symbol, since_ms, self.trades_page, *params
        )
        return [gateway.read("fetch_my_trades", reports.fill_report, row) for row in rows]

    async def lookup_order(self, gateway: Caller, symbol: str, client_order_id: str) -> OrderReport | None:
        """`GET /fapi/v1/order?origClientOrderId=…`; None when Binance does not know it."""
        try:
            order: dict[str, Any] = await gateway.call(
                "fetch_order",
                gateway.client.fetch_order,
                None,
                symbol,
                {"origClientOrderId": client_order_id},
                answers=(ccxt.OrderNotFound,),
            )
        except ccxt.OrderNotFound:
            return None
        return gateway.read("fetch_order", reports.order_report, order)

    async def fetch_mark_prices(self, gateway: Caller, symbols: list[str]) -> dict[str, Decimal]:
        """premiumIndex (ccxt's fetch_mark_prices): the REST marks while the market stream is down."""
        await gateway.ensure_markets()
        rows: Any = await gateway.call("fetch_mark_prices", gateway.client.fetch_mark_prices, symbols)
        return gateway.read("fetch_mark_prices", lambda r: reports.mark_prices(r, symbols), rows)

    async def fetch_account_margin(self, gateway: Caller) -> str | None:
        return None  # per symbol, in each position row (marginType)

    async def fetch_leverages(self, gateway: Caller) -> dict[str, int]:
        """Each symbol's leverage setting (`GET /fapi/v1/symbolConfig`), by unified symbol: Binance's
        positionRisk v3, which ccxt reads, no longer carries it."""
        rows: Any = await gateway.call("fetch_leverages", gateway.client.fapiPrivateGetSymbolConfig, {})
        by_id = gateway.read("fetch_leverages", reports.leverages, rows)
        return {gateway.client.safe_symbol(i, None, None, "swap"): v for i, v in by_id.items()}

    async def fetch_funding(self, gateway: Caller, since_ms: int) -> list[FundingReport]:
        """Every funding payment from `since_ms`, oldest first (`GET /fapi/v1/income`, FUNDING_FEE, paged)."""
        found: list[FundingReport] = []
        page = 1
        while True:
            params = {"incomeType": "FUNDING_FEE", "startTime": since_ms, "limit": INCOME_PAGE, "page": page}
            rows: Any = await gateway.call("fetch_funding", gateway.client.fapiPrivateGetIncome, params)
            batch = gateway.read("fetch_funding", reports.funding_reports, rows)
            found.extend(batch)
            if len(batch) < INCOME_PAGE or page >= INCOME_PAGES_MAX:
                break
            page += 1
        unique = {f.income_id: f for f in found}  # a page boundary moved by a new payment: no double count
        return sorted(unique.values(), key=lambda f: (f.time_ms, f.income_id))

    async def fetch_hedge_mode(self, gateway: Caller) -> bool:
        """`GET /fapi/v1/positionSide/dual`: dualSidePosition."""
        answer: Any = await gateway.call(
            "fetch_position_mode", gateway.client.fapiPrivateGetPositionSideDual, {}
        )
        return gateway.read("fetch_position_mode", reports.hedge_mode, answer)

    async def fetch_open_conditional_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]:
        """`GET /fapi/v1/openAlgoOrders`: weight 1 with a symbol, 40 without."""
        await gateway.ensure_markets()
        client = gateway.client
        params = {"symbol": client.market_id(symbol)} if symbol is not None else {}
        rows: Any = await gateway.call(
            "fetch_open_conditional_orders",
            client.fapiPrivateGetOpenAlgoOrders,
            params,
            weight=1 if symbol is not None else None,
        )
        orders = rows.get("orders", rows) if isinstance(rows, dict) else rows  # a list on Binance
        parsed: list[dict[str, Any]] = client.parse_orders(orders)
        return [gateway.read("fetch_open_conditional_orders", reports.order_report, row) for row in parsed]


BINANCE_USDM = BinanceUsdm()
