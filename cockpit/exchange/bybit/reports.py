"""Bybit v5 answers (linear USDT perpetuals, a unified trading account), as ccxt's bybit returns them, mapped
into cockpit's reports.

The one place that knows Bybit's field names (`info.size`, `info.positionIdx`, `walletBalance`, `execQty`,
`orderLinkId`, …). Bybit's own figure (in `info`, exact decimal strings; "" for none) wins over ccxt's
float. A figure cockpit needs that is missing, unreadable or implausible raises `MalformedReport`, and the
whole answer is refused (the gateway reports bad data; the read is retried), never read as empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from cockpit.core import plausible
from cockpit.core.domain import Leg
from cockpit.exchange import fields
from cockpit.exchange.fields import checked, lenient, number, required, step
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
LEGS: dict[str, Leg] = {"0": "both", "1": "long", "2": "short"}  # positionIdx: one-way, hedge buy, hedge sell
# Bybit's open statuses of a conditional order that has not triggered
CONDITIONAL_STATUSES = ("Untriggered", "Deactivated")


def _info(row: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise MalformedReport(f"{what} is not an object: {type(row).__name__}")
    info = row.get("info") or {}
    if not isinstance(info, Mapping):
        raise MalformedReport(f"{what}'s info is not an object: {type(info).__name__}")
    return info


def _blank(value: Any) -> bool:
    return value is None or value == ""


# ----- markets ----------------------------------------------------------------------------------------------
def market_reports(markets: Mapping[str, Mapping[str, Any]]) -> dict[str, MarketReport]:
    """ccxt's `load_markets()` (instruments-info, linear): precision mode TICK_SIZE, so `precision.price` is
    the tick and `precision.amount` the quantity step."""
    out: dict[str, MarketReport] = {}
    for symbol, market in markets.items():
        precision = market.get("precision") or {}
        out[symbol] = MarketReport(
            symbol=symbol,
            exchange_id=str(market.get("id") or ""),
            contract=bool(market.get("contract") or market.get("swap")),
            price_step=step(precision.get("price")),
            amount_step=step(precision.get("amount")),
        )
    return out


def mark_prices(tickers: Mapping[str, Mapping[str, Any]], symbols: Iterable[str]) -> dict[str, Decimal]:
    """ccxt's `fetch_tickers()` (`GET /v5/market/tickers`): each asked-for symbol's `markPrice`."""
    if not isinstance(tickers, Mapping):
        raise MalformedReport(f"the tickers are not a table by symbol: {type(tickers).__name__}")
    wanted = set(symbols)
    out: dict[str, Decimal] = {}
    for symbol, row in tickers.items():
        info = row.get("info") if isinstance(row, Mapping) else None
        raw = info.get("markPrice") if isinstance(info, Mapping) else None
        if symbol in wanted and not _blank(raw):
            out[symbol] = checked(plausible.price, raw, f"{symbol} markPrice")
    return out


# ----- account ----------------------------------------------------------------------------------------------
def position_reports(rows: Any, account_margin: str | None = None) -> list[PositionReport]:
    """ccxt's `fetch_positions()` (`GET /v5/position/list`): one row per symbol on a one-way account
    (positionIdx 0), one per leg in hedge mode (1 long, 2 short). Any other shape, or one unreadable row,
    fails the whole answer. `account_margin`: a unified account's margin mode ("isolated" | "cross", from
    `account_margin`), which its rows do not say."""
    if not isinstance(rows, list):
        raise MalformedReport(f"the positions answer is not a list: {type(rows).__name__}")
    return [position_report(row, account_margin) for row in rows]


def account_margin(answer: Any) -> str | None:
    """`GET /v5/account/info`'s `marginMode`: a unified account's margin mode is the whole account's —
    ISOLATED_MARGIN "isolated"; REGULAR_MARGIN and PORTFOLIO_MARGIN "cross" (positions share the wallet);
    None for one cockpit does not know (each row's `tradeMode` then says, as on a classic account)."""
    result = answer.get("result") if isinstance(answer, Mapping) else None
    mode = result.get("marginMode") if isinstance(result, Mapping) else None
    if mode == "ISOLATED_MARGIN":
        return "isolated"
    return "cross" if mode in ("REGULAR_MARGIN", "PORTFOLIO_MARGIN") else None


def position_report(row: Mapping[str, Any], account_margin: str | None = None) -> PositionReport:
    info = _info(row, "a position row")
    symbol = row.get("symbol") or info.get("symbol")
    if not symbol or not isinstance(symbol, str):
        raise MalformedReport("a position without a symbol")
    leg = LEGS.get(str(info.get("positionIdx", "0")))
    if leg is None:
        raise MalformedReport(f"{symbol} positionIdx {info.get('positionIdx')!r} is none of 0, 1, 2")
    size = checked(plausible.size, info.get("size"), f"{symbol} size") if "size" in info else None
    if size is None:
        raise MalformedReport(f"{symbol} size is missing")
    side = info.get("side")
    if size and side not in ("Buy", "Sell"):
        raise MalformedReport(f"{symbol} side {side!r} of an open position is neither Buy nor Sell")
    quantity = size if side == "Buy" else -size
    raw_entry = info.get("avgPrice") if not _blank(info.get("avgPrice")) else info.get("entryPrice")
    entry = checked(plausible.price, raw_entry, f"{symbol} avgPrice") if size else lenient(raw_entry)
    leverage = lenient(info.get("leverage"))
    # a unified account's mode is the account's; a classic account's row says it (tradeMode 1: isolated)
    isolated = account_margin == "isolated" or str(info.get("tradeMode", "")) == "1"
    # an isolated position's own margin: positionBalance when the row gives it, else its initial margin
    own = info.get("positionBalance") if not _blank(info.get("positionBalance")) else info.get("positionIM")
    liquidation = lenient(info.get("liqPrice")) if not _blank(info.get("liqPrice")) else Decimal(0)
    return PositionReport(
        symbol=str(symbol),
        quantity=quantity if size else Decimal(0),
        entry_price=entry if entry is not None else Decimal(0),
        leverage=int(leverage) if leverage is not None and leverage > 0 else None,
        liquidation_price=liquidation,
        margin_mode="isolated" if isolated else "cross",
        isolated_margin=lenient(own) if isolated and size else None,
        leg=leg,
    )


def balance_report(balance: Mapping[str, Any]) -> BalanceReport:
    """ccxt's `fetch_balance()` (`GET /v5/account/wallet-balance?accountType=UNIFIED`): USDT's wallet
    balance; free margin is the account's `totalAvailableBalance` (in USD, which a USDT-only account holds),
    else ccxt's free USDT."""
    info = _info(balance, "the balance")
    accounts = ((info.get("result") or {}).get("list")) or []
    if not isinstance(accounts, list) or not accounts or not isinstance(accounts[0], Mapping):
        raise MalformedReport("the wallet balance has no account")
    account = accounts[0]
    coins = account.get("coin") or []
    usdt = next((c for c in coins if isinstance(c, Mapping) and c.get("coin") == SETTLEMENT_ASSET), None)
    wallet = number(usdt.get("walletBalance"), "USDT walletBalance") if usdt is not None else None
    raw_available = account.get("totalAvailableBalance")
    available: Decimal | None
    if not _blank(raw_available):
        available = number(raw_available, "totalAvailableBalance")
    else:
        free = (balance.get(SETTLEMENT_ASSET) or {}).get("free")
        available = number(free, "USDT free") if free is not None else None
    held = sorted(
        str(c.get("coin"))
        for c in coins
        if isinstance(c, Mapping) and not _blank(c.get("walletBalance")) and lenient(c.get("walletBalance"))
    )
    return BalanceReport(wallet=wallet, available=available, assets_held=tuple(held))


def page(answer: Any) -> tuple[list[Mapping[str, Any]], str]:
    """A v5 list answer's rows and its `nextPageCursor` ("" on the last page)."""
    result = answer.get("result") if isinstance(answer, Mapping) else None
    rows = result.get("list") if isinstance(result, Mapping) else None
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise MalformedReport(f"the answer has no list of rows: {str(answer)[:120]}")
    return rows, str(result.get("nextPageCursor") or "") if isinstance(result, Mapping) else ""


# the executions that move a position (Funding pays, Settle settles: neither does)
FILL_TYPES = ("Trade", "AdlTrade", "BustTrade", "Delivery", "MovePosition")


def execution_fill(row: Mapping[str, Any], hedged: bool) -> FillReport:
    """One position-moving row of `GET /v5/execution/list`, exactly. `execPnl` is the realized PnL of a
    closing execution (0 when it opens or adds). On a symbol in hedge mode (`hedged`) the leg follows from
    the side and `closedSize`, as Bybit's rows do not say it: a buy that closed nothing opened the LONG leg,
    one that closed reduced the SHORT leg (and the other way round for a sell)."""
    trade_id = required(row, "execId", "a trade")
    where = f"trade {trade_id}"
    side = str(row.get("side") or "").lower()
    if side not in ("buy", "sell"):
        raise MalformedReport(f"{where} side {row.get('side')!r} is neither Buy nor Sell")
    leg: Leg = "both"
    if hedged:
        closed = number(row.get("closedSize") or "0", f"{where} closedSize")
        leg = ("short" if closed else "long") if side == "buy" else ("long" if closed else "short")
    raw_time = row.get("execTime")
    try:
        time_ms = int(str(raw_time))
    except ValueError:
        raise MalformedReport(f"{where} execTime is not a whole number of ms: {raw_time!r}") from None
    order_type = str(row.get("orderType") or "").lower()
    return FillReport(
        trade_id=trade_id,
        order_id=str(row.get("orderId") or ""),
        side=side,
        order_type=order_type if order_type in ("market", "limit") else None,
        quantity=checked(plausible.size, row.get("execQty"), f"{where} execQty"),
        price=checked(plausible.price, row.get("execPrice"), f"{where} execPrice"),
        fee=number(row.get("execFee") or "0", f"{where} execFee"),
        realized_pnl=number(row.get("execPnl") or "0", f"{where} execPnl"),
        timestamp_ms=time_ms,
        leg=leg,
    )


ORDER_STATUSES = {
    "New": "open",
    "PartiallyFilled": "open",
    "Untriggered": "open",
    "Triggered": "open",
    "Active": "open",
    "Created": "open",
    "Filled": "closed",
    "PartiallyFilledCanceled": "canceled",
    "Cancelled": "canceled",
    "Deactivated": "canceled",
    "Rejected": "rejected",
}


def order_report(order: Mapping[str, Any], sent_quantity: Decimal | None = None) -> OrderReport:
    """One order as ccxt's bybit parses it (create, cancel, `GET /v5/order/realtime`). A create or cancel
    answer carries only the ids: `sent_quantity` (what was sent; 0 for a cancel) stands in for its quantity,
    and it has no status."""
    info = _info(order, "an order")
    order_id = required(order, "id", "an order")
    where = f"order {order_id}"
    link = info.get("orderLinkId") or order.get("clientOrderId")
    raw_qty = info.get("qty")
    status = info.get("orderStatus")
    if not _blank(raw_qty):
        quantity = number(raw_qty, f"{where} qty")
    elif _blank(status):  # an acknowledgement (create, cancel): the ids only
        quantity = sent_quantity if sent_quantity is not None else Decimal(0)
    else:
        raise MalformedReport(f"{where} has no quantity (qty)")
    trigger = lenient(info.get("triggerPrice")) if not _blank(info.get("triggerPrice")) else None
    # a conditional order until it triggers (and its cancel, Deactivated); once triggered it is an order
    # like any other, under the same id
    conditional = status in CONDITIONAL_STATUSES
    side = str(info.get("side") or order.get("side") or "").lower()
    symbol = order.get("symbol")
    if not symbol:
        raise MalformedReport(f"{where} has no symbol")
    average = lenient(info.get("avgPrice")) if not _blank(info.get("avgPrice")) else None
    return OrderReport(
        order_id=order_id,
        client_order_id=str(link) if link else None,
        symbol=str(symbol),
        side=side or str(order.get("side") or ""),
        type=_order_type(info, order, conditional),
        status=ORDER_STATUSES.get(str(status), str(order.get("status")))
        if status or order.get("status")
        else None,
        quantity=quantity,
        price=number(info.get("price") or "0", f"{where} price")
        if not _blank(info.get("price"))
        else Decimal(0),
        filled=number(info.get("cumExecQty") or "0", f"{where} cumExecQty"),
        average_price=average if average else None,
        reduce_only=bool(info.get("reduceOnly")) or bool(info.get("closeOnTrigger")),
        trigger_price=trigger if trigger else None,
        conditional=conditional,
        leg=LEGS.get(str(info.get("positionIdx", "0")), "both"),
    )


def _limit_price(info: Mapping[str, Any], where: str) -> Decimal:
    """A limit order's price; 0 for a market order (Bybit shows its protection price there, not a limit)."""
    if str(info.get("orderType") or "") == "Market" or _blank(info.get("price")):
        return Decimal(0)
    return number(info.get("price"), f"{where} price")


def _order_type(info: Mapping[str, Any], order: Mapping[str, Any], conditional: bool) -> str:
    """market | limit, or a conditional order's stop_market / stop (Bybit's Market / Limit with a trigger)."""
    kind = str(info.get("orderType") or order.get("type") or "unknown").lower()
    if conditional and kind in ("market", "limit"):
        return "stop_market" if kind == "market" else "stop"
    return kind


def funding_reports(rows: Any) -> list[FundingReport]:
    """`GET /v5/execution/list?execType=Funding`'s rows, raw: Bybit's `execFee` is what the account paid
    (> 0 paid, < 0 received); cockpit's amount is the other way round (paid < 0)."""
    out = []
    for info in fields.rows(rows, "funding"):
        income_id = required(info, "execId", "a funding row")
        where = f"funding {income_id}"
        out.append(
            FundingReport(
                income_id=income_id,
                symbol=required(info, "symbol", where),
                amount=-number(info.get("execFee"), f"{where} execFee"),
                asset=SETTLEMENT_ASSET,
                time_ms=fields.whole_ms(info, "execTime", where),
            )
        )
    return out


def hedge_mode(answer: Any) -> bool:
    """Bybit says the position mode only through its positions: one symbol's list (`GET /v5/position/list`
    with a symbol) holds every leg, flat or not — positionIdx 0 one-way, 1 and 2 in hedge mode."""
    result = answer.get("result") if isinstance(answer, Mapping) else None
    rows = result.get("list") if isinstance(result, Mapping) else None
    if not isinstance(rows, list):
        raise MalformedReport(f"the position list has no list: {str(answer)[:120]}")
    return any(str(r.get("positionIdx", "0")) in ("1", "2") for r in rows if isinstance(r, Mapping))
