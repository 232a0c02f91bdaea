"""Binance USD-M answers, as ccxt's binanceusdm returns them, mapped into cockpit's reports.

The one place that knows Binance's field names (`info.positionAmt`, `totalWalletBalance`, `realizedPnl`, …)
and which of ccxt's unified fields stand in when one is missing. Binance's own figure (in `info`, exact
decimal strings) wins over ccxt's float. A figure cockpit needs that is missing, unreadable or implausible
(not finite, a bool, out of range, a price at or below zero: `cockpit/core/plausible.py`) raises
`MalformedReport`, and the whole answer is refused: the gateway reports it as bad data and the read as failed
(retried at the next poll), never as an empty answer — a positions answer cockpit cannot read is not "no
positions".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from cockpit.core import plausible
from cockpit.core.domain import leg_of
from cockpit.exchange.fields import checked as _checked
from cockpit.exchange.fields import lenient as _lenient
from cockpit.exchange.fields import number as _number
from cockpit.exchange.fields import required as _required
from cockpit.exchange.fields import rows as _rows
from cockpit.exchange.fields import step as _step
from cockpit.exchange.fields import whole_ms as _whole_ms
from cockpit.exchange.reports import (
    BalanceReport,
    FillReport,
    FundingReport,
    MalformedReport,
    MarketReport,
    OrderReport,
    PositionReport,
)

SETTLEMENT_ASSET = "USDT"


# ----- markets ----------------------------------------------------------------------------------------------
def market_reports(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, MarketReport]:
    """ccxt's `load_markets()`, by unified symbol."""
    return {symbol: market_report(symbol, market) for symbol, market in markets.items()}


def market_report(symbol: str, market: Mapping[str, Any]) -> MarketReport:
    """binanceusdm's precision mode is TICK_SIZE (ccxt 4.5): `precision.price` is PRICE_FILTER.tickSize and
    `precision.amount` LOT_SIZE.stepSize, as floats. A step that is missing or unreadable is None (the market
    is then not described, as before), never an error: one odd market must not fail the whole list."""
    precision = market.get("precision") or {}
    return MarketReport(
        symbol=symbol,
        exchange_id=str(market.get("id") or ""),
        contract=bool(market.get("contract") or market.get("swap")),
        price_step=_step(precision.get("price")),
        amount_step=_step(precision.get("amount")),
    )


def mark_prices(rows: Mapping[str, Mapping[str, Any]], symbols: Iterable[str]) -> dict[str, Decimal]:
    """ccxt's `fetch_mark_prices()` (premiumIndex): Binance's mark price of each asked-for symbol."""
    wanted = set(symbols)
    out: dict[str, Decimal] = {}
    if not isinstance(rows, Mapping):
        raise MalformedReport(f"the mark prices are not a table by symbol: {type(rows).__name__}")
    for symbol, row in rows.items():
        info = row.get("info") if isinstance(row, Mapping) else None
        raw = info.get("markPrice") if isinstance(info, Mapping) else None
        if symbol in wanted and raw is not None:
            out[symbol] = _checked(plausible.price, raw, f"{symbol} markPrice")
    return out


# ----- account ----------------------------------------------------------------------------------------------
def position_reports(rows: Any) -> list[PositionReport]:
    """ccxt's `fetch_positions()`: a list of rows. Any other shape, or one unreadable row, fails the whole
    answer: reading it as fewer positions would make every missing one a ghost."""
    if not isinstance(rows, list):
        raise MalformedReport(f"the positions answer is not a list: {type(rows).__name__}")
    return [position_report(row) for row in rows]


def position_report(row: Mapping[str, Any]) -> PositionReport:
    """One row of ccxt's `fetch_positions()` (positionRisk). Binance's signed `positionAmt` is the quantity;
    without it, ccxt's unsigned `contracts` signed by its `side`. The quantity must be readable (and an open
    position's entry); an unreadable leverage or liquidation price, or a flat row's entry, is None or 0
    (unknown), never a failure of the whole answer: flatten and reconcile need the quantities."""
    if not isinstance(row, Mapping):
        raise MalformedReport(f"a position row is not an object: {type(row).__name__}")
    info = row.get("info") or {}
    if not isinstance(info, Mapping):
        raise MalformedReport(f"a position's info is not an object: {type(info).__name__}")
    symbol = row.get("symbol") or info.get("symbol")
    if not symbol or not isinstance(symbol, str):
        raise MalformedReport("a position without a symbol")
    quantity = _signed_quantity(row, info, str(symbol))
    raw_entry = info.get("entryPrice") or row.get("entryPrice") or 0
    entry = (
        _checked(plausible.price, raw_entry, f"{symbol} entryPrice")
        if quantity
        else _lenient(raw_entry) or Decimal(0)
    )
    leverage = _lenient(row.get("leverage") or info.get("leverage"))
    mode = row.get("marginMode") or info.get("marginType")
    margin_mode = str(mode).lower() if str(mode).lower() in ("cross", "isolated") else None
    return PositionReport(
        symbol=str(symbol),
        quantity=quantity,
        entry_price=entry,
        leverage=int(leverage) if leverage is not None else None,
        liquidation_price=_lenient(info.get("liquidationPrice")),
        margin_mode=margin_mode,
        isolated_margin=_lenient(info.get("isolatedWallet")) if margin_mode == "isolated" else None,
        leg=leg_of(info.get("positionSide")),
    )


def _signed_quantity(row: Mapping[str, Any], info: Mapping[str, Any], symbol: str) -> Decimal:
    amount = info.get("positionAmt")
    if amount is not None:
        return _checked(plausible.quantity, amount, f"{symbol} positionAmt")
    if row.get("contracts") is None:  # a row without its size is unreadable, not flat (or it makes ghosts)
        raise MalformedReport(f"{symbol} positionAmt is missing")
    contracts = _checked(plausible.size, row.get("contracts"), f"{symbol} contracts")
    return contracts if row.get("side") == "long" else -contracts


def balance_report(balance: Mapping[str, Any]) -> BalanceReport:
    """ccxt's `fetch_balance()` (/fapi/v2/account): Binance's account totals, else ccxt's USDT figures."""
    if not isinstance(balance, Mapping):
        raise MalformedReport(f"the balance is not an object: {type(balance).__name__}")
    info = balance.get("info") or {}
    usdt = balance.get(SETTLEMENT_ASSET) or {}
    if not isinstance(info, Mapping) or not isinstance(usdt, Mapping):
        raise MalformedReport("the balance's account totals are not an object")
    wallet = info.get("totalWalletBalance")
    available = info.get("availableBalance")
    if wallet is None:
        wallet = usdt.get("total")  # ccxt's float
    if available is None:
        available = usdt.get("free")
    totals = balance.get("total") or {}
    return BalanceReport(
        wallet=_number(wallet, "totalWalletBalance") if wallet is not None else None,
        available=_number(available, "availableBalance") if available is not None else None,
        assets_held=tuple(sorted(str(asset) for asset, amount in totals.items() if amount)),
    )


def fill_report(trade: Mapping[str, Any]) -> FillReport:
    """One trade of ccxt's `fetch_my_trades()` (userTrades): Binance's exact figures, else ccxt's."""
    info = trade.get("info") or {}
    trade_id = _required(trade, "id", "a trade")
    where = f"trade {trade_id}"
    order_type = trade.get("type")
    return FillReport(
        trade_id=trade_id,
        order_id=str(trade.get("order") or info.get("orderId") or ""),
        side=_required(trade, "side", where),
        order_type=str(order_type) if order_type else None,
        quantity=_checked(plausible.size, info.get("qty") or trade.get("amount"), f"{where} qty"),
        price=_checked(plausible.price, info.get("price") or trade.get("price"), f"{where} price"),
        fee=_number(info.get("commission") or "0", f"{where} commission"),
        realized_pnl=_number(info.get("realizedPnl") or "0", f"{where} realizedPnl"),
        timestamp_ms=int(trade.get("timestamp") or 0),
        leg=leg_of(info.get("positionSide")),
    )


def order_report(order: Mapping[str, Any], sent_quantity: Decimal | None = None) -> OrderReport:
    """One order as ccxt parses it (create, lookup, cancel, open orders). `sent_quantity` stands in for an
    answer that does not repeat the quantity (only create_order knows it)."""
    info = order.get("info") or {}
    order_id = _required(order, "id", "an order")
    where = f"order {order_id}"
    client_id = order.get("clientOrderId")
    status = order.get("status")
    return OrderReport(
        order_id=order_id,
        client_order_id=str(client_id) if client_id else None,
        symbol=_required(order, "symbol", where),
        side=_required(order, "side", where),
        type=str(order.get("type") or "unknown"),  # shown only; the side and quantities are what count
        status=str(status) if status is not None else None,
        quantity=_order_quantity(
            info.get("origQty") or info.get("quantity") or order.get("amount"), sent_quantity, where
        ),
        price=_number(info.get("price") or order.get("price") or "0", f"{where} price"),
        filled=_number(info.get("executedQty") or order.get("filled") or "0", f"{where} executedQty"),
        average_price=_average_price(info, order, where),
        reduce_only=bool(order.get("reduceOnly")) or info.get("closePosition") in (True, "true"),
        trigger_price=_trigger(info, order, where),
        conditional="algoId" in info,  # the Algo Service's (Binance USD-M conditional orders since 2025-12)
        leg=leg_of(info.get("positionSide")),
    )


def _trigger(info: Mapping[str, Any], order: Mapping[str, Any], where: str) -> Decimal | None:
    """A conditional order's trigger price (Binance's triggerPrice or stopPrice; "0" on a plain order)."""
    for raw in (info.get("triggerPrice"), info.get("stopPrice"), order.get("triggerPrice")):
        if raw in (None, ""):
            continue
        price = _number(raw, f"{where} triggerPrice")
        if price:
            return price
    return None


def _order_quantity(raw: Any, sent_quantity: Decimal | None, where: str) -> Decimal:
    if raw is not None:
        return _number(raw, f"{where} origQty")
    if sent_quantity is None:
        raise MalformedReport(f"{where} has no quantity (origQty)")
    return sent_quantity


def _average_price(info: Mapping[str, Any], order: Mapping[str, Any], where: str) -> Decimal | None:
    """Binance's avgPrice ("0" before the first fill), else ccxt's average; None while nothing filled."""
    for raw in (info.get("avgPrice"), order.get("average")):
        if raw in (None, ""):
            continue
        price = _number(raw, f"{where} avgPrice")
        if price:
            return price
    return None


# ----- Binance's own calls ----------------------------------------------------------------------------------
def hedge_mode(answer: Any) -> bool:
    """`GET /fapi/v1/positionSide/dual`'s dualSidePosition: true in hedge mode (LONG and SHORT legs)."""
    value = answer.get("dualSidePosition") if isinstance(answer, Mapping) else None
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise MalformedReport(f"the position mode answer has no dualSidePosition: {str(answer)[:120]}")
    return value


def funding_reports(rows: Any) -> list[FundingReport]:
    """`GET /fapi/v1/income?incomeType=FUNDING_FEE`: Binance's rows, read exactly (ccxt's parse turns the
    amount into a float)."""
    out = []
    for row in _rows(rows, "income"):
        income_id = _required(row, "tranId", "an income row")
        where = f"income {income_id}"
        out.append(
            FundingReport(
                income_id=income_id,
                symbol=_required(row, "symbol", where),
                amount=_number(row.get("income"), f"{where} income"),
                asset=str(row.get("asset") or "USDT"),
                time_ms=_whole_ms(row, "time", where),
            )
        )
    return out


def leverages(rows: Any) -> dict[str, int]:
    """`GET /fapi/v1/symbolConfig`: each symbol's leverage setting, by the exchange's id. A row without a
    readable leverage is left out (shown as unknown), never a failure of the rest."""
    if not isinstance(rows, list):
        raise MalformedReport(f"the symbol configuration answer is not a list: {type(rows).__name__}")
    out: dict[str, int] = {}
    for row in rows:
        if not isinstance(row, Mapping) or not row.get("symbol"):
            continue
        leverage = _lenient(row.get("leverage"))
        if leverage is not None and leverage > 0:
            out[str(row["symbol"])] = int(leverage)
    return out
