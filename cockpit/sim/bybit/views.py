"""Bybit v5 record shapes: instruments, tickers, orders, executions, positions and the unified wallet.

Decimals are strings — prices at the symbol's tick, quantities at its step, money to 8 places without
trailing zeros — times inside records are ms strings, and "" stands for no value (ccxt reads "" as
absent). A REST position row carries `avgPrice`, a pushed one `entryPrice` (as Bybit's do); no position row
carries `closedSize`, which marks closed-position history to ccxt. A market order's `price` is "0" (Bybit
shows a protection price whose rule it does not document). A fill's `closedSize` is the part of it that
closed a position (a break-even close too; a fill that flips a position closes only what was held).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cockpit.sim.account import MAINT_MARGIN_RATE, MAKER_FEE, TAKER_FEE, Account
from cockpit.sim.bybit.book import POSITION_IDX, Entry, trigger_direction
from cockpit.sim.market import SymbolSpec
from cockpit.sim.numbers import ZERO, fmt
from cockpit.sim.records import SimOrder, SimPosition, SimTrade

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue

CATEGORY = "linear"
STATUS = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
    "CANCELED": "Cancelled",
    "EXPIRED": "Cancelled",
    "EXPIRED_IN_MATCH": "Cancelled",
}
ALGO_STATUS = {
    "NEW": "Untriggered",
    "TRIGGERING": "Triggered",
    "CANCELED": "Deactivated",
    "REJECTED": "Rejected",
}
TIME_IN_FORCE = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "GTX": "PostOnly"}


@dataclass(frozen=True)
class FundingExec:
    """One funding payment on one leg, as Bybit lists it among executions (`execType: Funding`)."""

    exec_id: str
    symbol: str
    position_side: str
    size: Decimal  # signed: the leg's quantity when funding was paid
    mark: Decimal
    rate: Decimal
    paid: Decimal  # positive: the account paid; negative: it received
    time: int


# ----- numbers ----------------------------------------------------------------------------------------------
def px(spec: SymbolSpec, value: Decimal) -> str:
    """A price at the symbol's tick precision ("64000.0")."""
    return format(value.quantize(Decimal(1).scaleb(-spec.price_precision)), "f")


def qty(spec: SymbolSpec, value: Decimal) -> str:
    """A quantity at the symbol's step precision ("0.010"); none is "0", as Bybit writes it."""
    if value == 0:
        return "0"
    return format(abs(value).quantize(Decimal(1).scaleb(-spec.quantity_precision)), "f")


def money(value: Decimal) -> str:
    return fmt(value)


def side_name(side: str) -> str:
    return "Buy" if side == "BUY" else "Sell"


# ----- market -----------------------------------------------------------------------------------------------
def instrument(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": spec.base,
        "quoteCoin": spec.quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(spec.price_precision),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{spec.max_leverage}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": px(spec, spec.tick_size),
            "maxPrice": "1999999.80",
            "tickSize": fmt(spec.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": qty(spec, spec.max_qty),
            "minOrderQty": qty(spec, spec.min_qty),
            "qtyStep": fmt(spec.step_size),
            "postOnlyMaxOrderQty": qty(spec, spec.max_qty),
            "maxMktOrderQty": qty(spec, spec.market_max_qty),
            "minNotionalValue": fmt(spec.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": spec.quote,
        "copyTrading": "both",
        "upperFundingRate": "0.005",
        "lowerFundingRate": "-0.005",
        "isPreListing": False,
        "preListingInfo": None,
    }


def ticker(sim: Venue, symbol: str) -> dict[str, Any]:
    """A linear ticker: REST `/v5/market/tickers` row and the `tickers.{symbol}` snapshot."""
    spec = sim.specs[symbol]
    mark = sim.prices.prices[symbol]
    last = sim.account.contract_price(symbol)
    open_ = spec.start_price
    bid, ask = sim.prices.bid_ask(symbol)
    return {
        "symbol": symbol,
        "tickDirection": "PlusTick" if last >= open_ else "MinusTick",
        "price24hPcnt": fmt((last - open_) / open_, 6),
        "lastPrice": px(spec, last),
        "prevPrice24h": px(spec, open_),
        "highPrice24h": px(spec, max(last, open_)),
        "lowPrice24h": px(spec, min(last, open_)),
        "prevPrice1h": px(spec, open_),
        "markPrice": px(spec, mark),
        "indexPrice": px(spec, mark),
        "openInterest": "1000",
        "openInterestValue": money(mark * 1000),
        "turnover24h": money(last * 1000),
        "volume24h": "1000",
        "nextFundingTime": str(sim.funding.next_time),
        "fundingRate": fmt(sim.funding.rates[symbol]),
        "bid1Price": px(spec, bid),
        "bid1Size": "10",
        "ask1Price": px(spec, ask),
        "ask1Size": "10",
    }


# ----- orders -----------------------------------------------------------------------------------------------
def order(acct: Account, entry: Entry, ws: bool = False) -> dict[str, Any]:
    """An order record (`/v5/order/realtime` row; with `ws`, the `order` topic's, which adds the category,
    `closedPnl` and `feeCurrency`)."""
    spec = acct.specs[entry.symbol]
    placed, algo = entry.placed, entry.algo
    fee, pnl = _order_fees(acct, placed) if placed is not None else (ZERO, ZERO)
    filled = placed.executed_qty if placed is not None else ZERO
    if algo is not None:
        amount = algo.quantity
        limit = algo.price if algo.type in ("STOP", "TAKE_PROFIT") else ZERO
        order_type = "Limit" if limit else "Market"
        tif = TIME_IN_FORCE.get(algo.time_in_force, "GTC") if limit else "IOC"
        status = ALGO_STATUS.get(algo.status, "Triggered")
        if placed is not None and algo.status not in ("NEW", "CANCELED"):
            status = _status(placed)
        reduce_only = algo.reduce_only
        trigger = {
            "stopOrderType": "Stop",
            "triggerPrice": px(spec, algo.trigger_price),
            "triggerDirection": trigger_direction(algo),
            "triggerBy": "MarkPrice" if algo.working_type == "MARK_PRICE" else "LastPrice",
        }
        side, position_side, updated = algo.side, algo.position_side, algo.update_time
        if placed is not None:
            updated = max(updated, placed.update_time)
    else:
        assert placed is not None
        amount, limit = placed.orig_qty, placed.price
        order_type = "Limit" if placed.type == "LIMIT" else "Market"
        tif = TIME_IN_FORCE.get(placed.time_in_force, "GTC") if order_type == "Limit" else "IOC"
        status = _status(placed)
        reduce_only = placed.reduce_only
        trigger = {"stopOrderType": "", "triggerPrice": "", "triggerDirection": 0, "triggerBy": ""}
        side, position_side, updated = placed.side, placed.position_side, placed.update_time
    open_ = status in ("New", "PartiallyFilled", "Untriggered", "Triggered")
    leaves = amount - filled if open_ else ZERO
    row: dict[str, Any] = {
        "orderId": entry.order_id,
        "orderLinkId": entry.link_id,
        "blockTradeId": "",
        "symbol": entry.symbol,
        "price": px(spec, limit) if limit else "0",
        "qty": qty(spec, amount),
        "side": side_name(side),
        "isLeverage": "",
        "positionIdx": POSITION_IDX[position_side],
        "orderStatus": status,
        "createType": "CreateByUser",
        "cancelType": _cancel_type(placed, status),
        "rejectReason": "EC_NoError",
        "avgPrice": px(spec, placed.avg_price) if placed is not None and filled else "",
        "leavesQty": qty(spec, leaves),
        "leavesValue": money(leaves * limit),
        "cumExecQty": qty(spec, filled),
        "cumExecValue": money(placed.cum_quote) if placed is not None else "0",
        "cumExecFee": money(fee),
        "cumFeeDetail": {"USDT": money(fee)} if fee else {},
        "timeInForce": tif,
        "orderType": order_type,
        "orderIv": "",
        "marketUnit": "",
        **trigger,
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "lastPriceOnCreated": "",
        "basePrice": "",
        "reduceOnly": reduce_only,
        "closeOnTrigger": False,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "slippageToleranceType": "UNKNOWN",
        "slippageTolerance": "0",
        "extraFees": "",
        "createdTime": str(entry.created),
        "updatedTime": str(updated),
    }
    if ws:
        row.update(category=CATEGORY, closedPnl=money(pnl), feeCurrency="", parentOrderLinkId="")
    return row


def _status(placed: SimOrder) -> str:
    return STATUS.get(placed.status, "New")


def _cancel_type(placed: SimOrder | None, status: str) -> str:
    if status not in ("Cancelled", "Deactivated"):
        return "UNKNOWN"
    if placed is not None and placed.status == "EXPIRED" and placed.closing:
        return "CancelByReduceOnly"
    return "CancelByUser"


def _order_fees(acct: Account, placed: SimOrder) -> tuple[Decimal, Decimal]:
    fills = [t for t in acct.trades if t.order_id == placed.order_id]
    return sum((t.commission for t in fills), ZERO), sum((t.realized_pnl for t in fills), ZERO)


# ----- executions -------------------------------------------------------------------------------------------
def trade_execution(acct: Account, trade: SimTrade, entry: Entry, ws: bool = False) -> dict[str, Any]:
    spec = acct.specs[trade.symbol]
    placed = entry.placed
    order_price = placed.price if placed is not None else ZERO
    order_qty = placed.orig_qty if placed is not None else trade.qty
    row: dict[str, Any] = {
        "symbol": trade.symbol,
        "orderType": "Limit" if placed is not None and placed.type == "LIMIT" else "Market",
        "underlyingPrice": "",
        "orderLinkId": entry.link_id,
        "side": side_name(trade.side),
        "indexPrice": "",
        "orderId": entry.order_id,
        "stopOrderType": "Stop" if entry.algo is not None else "UNKNOWN",
        "leavesQty": qty(spec, placed.remaining) if placed is not None else "0",
        "execTime": str(trade.time),
        "feeCurrency": "",
        "isMaker": trade.maker,
        "execFee": money(trade.commission),
        "feeRate": fmt(MAKER_FEE if trade.maker else TAKER_FEE),
        "execId": str(trade.trade_id),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": px(spec, trade.price),
        "execPrice": px(spec, trade.price),
        "markIv": "",
        "orderQty": qty(spec, order_qty),
        "orderPrice": px(spec, order_price) if order_price else "0",
        "execValue": money(trade.qty * trade.price),
        "execType": "Trade",
        "execQty": qty(spec, trade.qty),
        "closedSize": qty(spec, trade.closed_qty),
        "extraFees": "",
        "seq": trade.trade_id,
        "createType": "CreateByUser",
        "marketUnit": "",
        "execPnl": money(trade.realized_pnl),
    }
    if ws:
        row["category"] = CATEGORY
    return row


def funding_execution(spec: SymbolSpec, funding: FundingExec, ws: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": funding.symbol,
        "orderType": "UNKNOWN",
        "underlyingPrice": "",
        "orderLinkId": "",
        "side": "Buy" if funding.size > 0 else "Sell",
        "indexPrice": "",
        "orderId": "",
        "stopOrderType": "UNKNOWN",
        "leavesQty": "0",
        "execTime": str(funding.time),
        "feeCurrency": "",
        "isMaker": False,
        "execFee": money(funding.paid),
        "feeRate": fmt(funding.rate),
        "execId": funding.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": px(spec, funding.mark),
        "execPrice": px(spec, funding.mark),
        "markIv": "",
        "orderQty": "0",
        "orderPrice": "0",
        "execValue": money(abs(funding.size) * funding.mark),
        "execType": "Funding",
        "execQty": qty(spec, funding.size),
        "closedSize": "0",
        "extraFees": "",
        "seq": 0,
        "createType": "",
        "marketUnit": "",
        "execPnl": "0",
    }
    if ws:
        row["category"] = CATEGORY
    return row


# ----- positions and wallet ---------------------------------------------------------------------------------
def position(acct: Account, pos: SimPosition, ws: bool = False) -> dict[str, Any]:
    """A position row (REST `/v5/position/list`; with `ws`, the `position` topic's)."""
    spec = acct.specs[pos.symbol]
    held = pos.qty != 0
    entry_price = px(spec, pos.entry) if held else "0"
    liquidation = acct.liquidation_price(pos.symbol, pos.side) if held else ZERO
    row: dict[str, Any] = {
        "positionIdx": POSITION_IDX[pos.side],
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": pos.symbol,
        "side": ("Buy" if pos.qty > 0 else "Sell") if held else "",
        "size": qty(spec, pos.qty),
        "avgPrice": entry_price,
        "positionValue": money(abs(pos.qty) * pos.entry),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if held else 0,
        "leverage": str(acct.leverage[pos.symbol]),
        # an isolated position's own margin (the account's margin mode is isolated); "" on a cross one
        "positionBalance": money(pos.isolated_wallet) if held and acct.is_isolated(pos.symbol) else "",
        "markPrice": px(spec, acct.mark(pos.symbol)),
        "liqPrice": px(spec, liquidation) if liquidation else "",
        "bustPrice": "",
        "positionMM": money(acct.maint_margin(pos)),
        "positionMMByMp": money(acct.maint_margin(pos)),
        "positionIM": money(acct.leg_margin(pos)),
        "positionIMByMp": money(acct.leg_margin(pos)),
        "tpslMode": "Full",
        "takeProfit": "",
        "stopLoss": "",
        "trailingStop": "0",
        "unrealisedPnl": money(acct.leg_unrealized(pos)),
        "curRealisedPnl": money(pos.realized),
        "cumRealisedPnl": money(pos.realized),
        "breakEvenPrice": entry_price,
        "seq": pos.update_time,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(pos.update_time),
        "updatedTime": str(pos.update_time),
    }
    if ws:
        row["category"] = CATEGORY
        row["entryPrice"] = row.pop("avgPrice")
    return row


def wallet(acct: Account) -> dict[str, Any]:
    """The unified account (`/v5/account/wallet-balance` list item, and the `wallet` topic's record)."""
    upl = acct.total_unrealized()
    equity = acct.wallet + upl
    position_im = acct.total_position_margin()
    order_im = acct.open_order_margin()
    mm = sum((abs(p.qty) * acct.mark(p.symbol) * MAINT_MARGIN_RATE for p in acct.open_legs()), ZERO)
    realized = sum((e.income for e in acct.income.entries), ZERO)
    im_rate = fmt((position_im + order_im) / equity, 4) if equity > 0 else "0"
    mm_rate = fmt(mm / equity, 4) if equity > 0 else "0"
    return {
        "accountType": "UNIFIED",
        "accountIMRate": im_rate,
        "accountIMRateByMp": im_rate,
        "accountMMRate": mm_rate,
        "accountMMRateByMp": mm_rate,
        "totalEquity": money(equity),
        "totalWalletBalance": money(acct.wallet),
        "totalMarginBalance": money(equity),
        "totalAvailableBalance": money(acct.available()),
        "totalPerpUPL": money(upl),
        "totalInitialMargin": money(position_im + order_im),
        "totalInitialMarginByMp": money(position_im + order_im),
        "totalMaintenanceMargin": money(mm),
        "totalMaintenanceMarginByMp": money(mm),
        "accountLTV": "0",
        "coin": [
            {
                "coin": "USDT",
                "equity": money(equity),
                "usdValue": money(equity),
                "walletBalance": money(acct.wallet),
                "free": "",
                "locked": "0",
                "spotHedgingQty": "0",
                "borrowAmount": "0",
                "accruedInterest": "0",
                "totalOrderIM": money(order_im),
                "totalPositionIM": money(position_im),
                "totalPositionMM": money(mm),
                "unrealisedPnl": money(upl),
                "cumRealisedPnl": money(realized),
                "bonus": "0",
                "collateralSwitch": True,
                "marginCollateral": True,
                "availableToWithdraw": "",
                "availableToBorrow": "",
                "spotBorrow": "0",
            }
        ],
    }
