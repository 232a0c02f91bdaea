"""User-data-stream events in Binance USD-M's format: ORDER_TRADE_UPDATE, ACCOUNT_UPDATE and ALGO_UPDATE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cockpit.sim.numbers import fmt

if TYPE_CHECKING:
    from cockpit.sim.records import AlgoOrder, SimOrder, SimPosition, SimTrade

UserEvent = dict[str, Any]


def order_update(order: SimOrder, execution: str, now: int, trade: SimTrade | None = None) -> UserEvent:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now,
        "T": now,
        "o": {
            "s": order.symbol,
            "c": order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fmt(order.orig_qty),
            "p": fmt(order.price),
            "ap": fmt(order.avg_price),
            "sp": fmt(order.stop_price),
            "x": execution,
            "X": order.status,
            "i": order.order_id,
            "l": fmt(trade.qty) if trade else "0",
            "z": fmt(order.executed_qty),
            "L": fmt(trade.price) if trade else "0",
            "N": "USDT",
            "n": fmt(trade.commission) if trade else "0",
            "T": order.update_time,
            "t": trade.trade_id if trade else 0,
            "b": "0",
            "a": "0",
            "m": trade.maker if trade else False,
            "R": order.reduce_only,
            "wt": order.working_type,
            "ot": order.orig_type,
            "ps": order.position_side,
            "cp": order.close_position,
            "rp": fmt(trade.realized_pnl) if trade else "0",
            "pP": order.price_protect,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
            "er": str(order.expiry_reason),
        },
    }


def position_row(position: SimPosition, unrealized: str, margin_type: str) -> dict[str, Any]:
    return {
        "s": position.symbol,
        "pa": fmt(position.qty),
        "ep": fmt(position.entry),
        "bep": fmt(position.entry),
        "cr": fmt(position.realized),
        "up": unrealized,
        "mt": margin_type,
        "iw": fmt(position.isolated_wallet),
        "ps": position.side,
        "ma": "USDT",
    }


def account_update(
    reason: str, now: int, wallet: str, cross_wallet: str, positions: list[dict[str, Any]], change: str = "0"
) -> UserEvent:
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now,
        "T": now,
        "a": {
            "m": reason,
            "B": [{"a": "USDT", "wb": wallet, "cw": cross_wallet, "bc": change}],
            "P": positions,
        },
    }


def algo_update(algo: AlgoOrder, now: int) -> UserEvent:
    triggered = algo.actual_order_id is not None
    return {
        "e": "ALGO_UPDATE",
        "T": now,
        "E": now,
        "o": {
            "caid": algo.client_algo_id,
            "aid": algo.algo_id,
            "at": "CONDITIONAL",
            "o": algo.type,
            "s": algo.symbol,
            "S": algo.side,
            "ps": algo.position_side,
            "f": algo.time_in_force,
            "q": fmt(algo.quantity),
            "X": algo.status,
            "ai": str(algo.actual_order_id) if triggered else "",
            "ap": fmt(algo.avg_price) if triggered else "0",
            "aq": fmt(algo.executed_qty) if triggered else "0",
            "act": algo.actual_type if triggered else "0",
            "tp": fmt(algo.trigger_price),
            "p": fmt(algo.price),
            "V": "EXPIRE_MAKER",
            "wt": algo.working_type,
            "pm": "NONE",
            "cp": algo.close_position,
            "pP": algo.price_protect,
            "R": algo.reduce_only,
            "tt": algo.trigger_time,
            "gtd": 0,
            "rm": algo.reject_reason,
        },
    }
