"""REST answers in the shapes Binance USD-M documents: orders, trades, algo orders, positions (v2 and v3),
accounts (v2 and v3) and income. Decimals are strings, ids and times integers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cockpit.sim.account import Account, SimOrder, SimPosition, SimTrade
from cockpit.sim.income import IncomeEntry
from cockpit.sim.numbers import ZERO, fmt
from cockpit.sim.records import AlgoOrder

MAX_NOTIONAL = "50000"


# ----- orders and trades ----------------------------------------------------------------------------------
def order_json(order: SimOrder, *, query: bool = True) -> dict[str, Any]:
    """An order as a query answers it (with `time`), or as a new order's or a cancel's answer does (with
    `cumQty`, without `time`)."""
    row: dict[str, Any] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "avgPrice": fmt(order.avg_price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "cumQuote": fmt(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": order.position_side,
        "stopPrice": fmt(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": order.price_protect,
        "origType": order.orig_type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "updateTime": order.update_time,
    }
    if query:
        row["time"] = order.time
    else:
        row["cumQty"] = fmt(order.executed_qty)
    return row


def ack_json(order: SimOrder) -> dict[str, Any]:
    """A new order's default (ACK) answer: the order as accepted, before any fill."""
    row = order_json(order, query=False)
    row.update(
        status="NEW",
        avgPrice="0",
        executedQty="0",
        cumQty="0",
        cumQuote="0",
        updateTime=order.time,
    )
    return row


def trade_json(trade: SimTrade) -> dict[str, Any]:
    return {
        "buyer": trade.side == "BUY",
        "commission": fmt(trade.commission),
        "commissionAsset": "USDT",
        "id": trade.trade_id,
        "maker": trade.maker,
        "orderId": trade.order_id,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.price * trade.qty),
        "realizedPnl": fmt(trade.realized_pnl),
        "marginAsset": "USDT",
        "side": trade.side,
        "positionSide": trade.position_side,
        "symbol": trade.symbol,
        "time": trade.time,
    }


def algo_json(algo: AlgoOrder) -> dict[str, Any]:
    row: dict[str, Any] = {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": algo.position_side,
        "timeInForce": algo.time_in_force,
        "quantity": fmt(algo.quantity),
        "algoStatus": algo.status,
        "actualOrderId": str(algo.actual_order_id) if algo.actual_order_id is not None else "",
        "actualPrice": fmt(algo.avg_price),
        "triggerPrice": fmt(algo.trigger_price),
        "price": fmt(algo.price),
        "icebergQuantity": None,
        "tpTriggerPrice": "0",
        "tpPrice": "0",
        "slTriggerPrice": "0",
        "slPrice": "0",
        "tpOrderType": "",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": algo.price_protect,
        "reduceOnly": algo.reduce_only,
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": 0,
    }
    if algo.type == "TRAILING_STOP_MARKET":
        row["activatePrice"] = fmt(algo.activate_price) if algo.activate_price is not None else ""
        row["callbackRate"] = fmt(algo.callback_rate or ZERO)
    return row


def income_json(entry: IncomeEntry) -> dict[str, Any]:
    return {
        "symbol": entry.symbol,
        "incomeType": entry.income_type,
        "income": fmt(entry.income),
        "asset": entry.asset,
        "info": entry.income_type,
        "time": entry.time,
        "tranId": entry.tran_id,
        "tradeId": str(entry.trade_id) if entry.trade_id is not None else "",
    }


# ----- positions ------------------------------------------------------------------------------------------
def _isolated_figures(acct: Account, pos: SimPosition) -> tuple[str, str]:
    """(isolatedMargin, isolatedWallet): the wallet plus the unrealized PnL, and the wallet."""
    if not acct.is_isolated(pos.symbol) or pos.qty == 0:
        return "0", "0"
    return fmt(pos.isolated_wallet + acct.leg_unrealized(pos)), fmt(pos.isolated_wallet)


def position_risk_v2(acct: Account, pos: SimPosition, liquidation: Decimal) -> dict[str, Any]:
    mark = acct.mark(pos.symbol)
    isolated_margin, isolated_wallet = _isolated_figures(acct, pos)
    return {
        "symbol": pos.symbol,
        "positionAmt": fmt(pos.qty),
        "entryPrice": fmt(pos.entry),
        "breakEvenPrice": fmt(pos.entry),
        "markPrice": fmt(mark),
        "unRealizedProfit": fmt(acct.leg_unrealized(pos)),
        "liquidationPrice": fmt(liquidation),
        "leverage": str(acct.leverage[pos.symbol]),
        "maxNotionalValue": MAX_NOTIONAL,
        "marginType": acct.margin_types[pos.symbol],
        "isolatedMargin": isolated_margin,
        "isAutoAddMargin": "false",
        "positionSide": pos.side,
        "notional": fmt(pos.qty * mark),
        "isolatedWallet": isolated_wallet,
        "updateTime": pos.update_time,
    }


def position_risk_v3(acct: Account, pos: SimPosition, liquidation: Decimal) -> dict[str, Any]:
    mark = acct.mark(pos.symbol)
    margin = acct.leg_margin(pos)
    isolated_margin, isolated_wallet = _isolated_figures(acct, pos)
    return {
        "symbol": pos.symbol,
        "positionSide": pos.side,
        "positionAmt": fmt(pos.qty),
        "entryPrice": fmt(pos.entry),
        "breakEvenPrice": fmt(pos.entry),
        "markPrice": fmt(mark),
        "unRealizedProfit": fmt(acct.leg_unrealized(pos)),
        "liquidationPrice": fmt(liquidation),
        "isolatedMargin": isolated_margin,
        "notional": fmt(pos.qty * mark),
        "marginAsset": "USDT",
        "isolatedWallet": isolated_wallet,
        "initialMargin": fmt(margin),
        "maintMargin": fmt(acct.maint_margin(pos)),
        "positionInitialMargin": fmt(margin),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "updateTime": pos.update_time,
    }


# ----- account --------------------------------------------------------------------------------------------
def balance_row(acct: Account) -> dict[str, Any]:
    upnl = acct.total_unrealized()
    margin = acct.total_position_margin()
    open_margin = acct.open_order_margin()
    available = acct.available()
    maint = sum((acct.maint_margin(p) for p in acct.open_legs()), ZERO)
    return {
        "asset": "USDT",
        "walletBalance": fmt(acct.wallet),
        "unrealizedProfit": fmt(upnl),
        "marginBalance": fmt(acct.wallet + upnl),
        "maintMargin": fmt(maint),
        "initialMargin": fmt(margin + open_margin),
        "positionInitialMargin": fmt(margin),
        "openOrderInitialMargin": fmt(open_margin),
        "crossWalletBalance": fmt(acct.cross_wallet()),
        "crossUnPnl": fmt(acct.cross_unrealized()),
        "availableBalance": fmt(available),
        "maxWithdrawAmount": fmt(max(available, ZERO)),
        "marginAvailable": True,
        "updateTime": acct.update_time,
    }


def account_totals(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalInitialMargin": row["initialMargin"],
        "totalMaintMargin": row["maintMargin"],
        "totalWalletBalance": row["walletBalance"],
        "totalUnrealizedProfit": row["unrealizedProfit"],
        "totalMarginBalance": row["marginBalance"],
        "totalPositionInitialMargin": row["positionInitialMargin"],
        "totalOpenOrderInitialMargin": row["openOrderInitialMargin"],
        "totalCrossWalletBalance": row["crossWalletBalance"],
        "totalCrossUnPnl": row["crossUnPnl"],
        "availableBalance": row["availableBalance"],
        "maxWithdrawAmount": row["maxWithdrawAmount"],
    }


def account_v2_header() -> dict[str, Any]:
    return {
        "feeTier": 0,
        "feeBurn": False,
        "canTrade": True,
        "canDeposit": True,
        "canWithdraw": True,
        "updateTime": 0,  # "reserved property, please ignore"
        "multiAssetsMargin": False,
        "tradeGroupId": -1,
    }


def account_position_v2(acct: Account, pos: SimPosition) -> dict[str, Any]:
    """v2 lists every symbol's position (BOTH in one-way mode, LONG and SHORT in hedge mode)."""
    margin = acct.leg_margin(pos)
    return {
        "symbol": pos.symbol,
        "initialMargin": fmt(margin),
        "maintMargin": fmt(acct.maint_margin(pos)),
        "unrealizedProfit": fmt(acct.leg_unrealized(pos)),
        "positionInitialMargin": fmt(margin),
        "openOrderInitialMargin": "0",
        "leverage": str(acct.leverage[pos.symbol]),
        "isolated": acct.is_isolated(pos.symbol),
        "entryPrice": fmt(pos.entry),
        "maxNotional": MAX_NOTIONAL,
        "bidNotional": "0",
        "askNotional": "0",
        "positionSide": pos.side,
        "positionAmt": fmt(pos.qty),
        "updateTime": pos.update_time,
    }


def account_position_v3(acct: Account, pos: SimPosition) -> dict[str, Any]:
    """v3 lists only the positions held."""
    isolated_margin, isolated_wallet = _isolated_figures(acct, pos)
    return {
        "symbol": pos.symbol,
        "positionSide": pos.side,
        "positionAmt": fmt(pos.qty),
        "unrealizedProfit": fmt(acct.leg_unrealized(pos)),
        "isolatedMargin": isolated_margin,
        "notional": fmt(pos.qty * acct.mark(pos.symbol)),
        "isolatedWallet": isolated_wallet,
        "initialMargin": fmt(acct.leg_margin(pos)),
        "maintMargin": fmt(acct.maint_margin(pos)),
        "updateTime": pos.update_time,
    }
