"""Bybit v5 stream frames → cockpit's typed feed messages (cockpit/feeds/messages.py), the same the engine
reads from Binance's streams.

(The public streams are read by the market feed's Bybit dialect: cockpit/feeds/bybit/market.py.)

Private (`/v5/private`): `order` rows → `OrderUpdate` (NEW, CANCELED, EXPIRED, REJECTED; a fill is reported by
its `execution` row, not again by the order's Filled status) or, for a conditional order (Untriggered,
Triggered, Deactivated), `AlgoUpdate`; `execution` rows → `OrderUpdate` TRADE (a Funding row → an
`AccountUpdate` FUNDING_FEE, which asks for the income read); `position` rows → `AccountUpdate` positions;
`wallet` → `AccountUpdate` balances (USDT). Bybit's execution rows do not say the hedge leg: `PrivateParser`
remembers each order's positionIdx from its `order` rows (which Bybit sends first) and gives the fill its leg.

Every figure is checked (cockpit/core/plausible.py); a frame cockpit cannot read raises ValueError naming the
field, and the feed refuses it whole (counted, never half-applied).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cockpit.core import plausible
from cockpit.feeds.messages import (
    AccountUpdate,
    AlgoUpdate,
    BalanceUpdate,
    OrderUpdate,
    PositionUpdate,
    UserEvent,
)

POSITION_SIDES = {"0": "BOTH", "1": "LONG", "2": "SHORT"}
ORDER_STATUS = {  # Bybit's order status → Binance's execution type, for the statuses not reported as fills
    "New": "NEW",
    "Cancelled": "CANCELED",
    "PartiallyFilledCanceled": "CANCELED",
    "Rejected": "REJECTED",
    "Expired": "EXPIRED",
}
# the executions that move a position: trades, and the exchange's own (auto-deleveraging, liquidation,
# delivery, a position moved between accounts); Funding pays, Settle settles: neither moves one
FILL_TYPES = ("Trade", "AdlTrade", "BustTrade", "Delivery", "MovePosition")
ALGO_STATUS = {
    "Untriggered": "NEW",
    "Deactivated": "CANCELED",
    "Triggered": "TRIGGERED",
    "Rejected": "REJECTED",
}
ORDERS_REMEMBERED = 10_000
ZERO = Decimal(0)


def _dec(row: Mapping[str, Any], key: str, what: str, default: str | None = None) -> Decimal:
    raw = row.get(key)
    if raw is None or raw == "":
        if default is None:
            raise ValueError(f"{what} has no {key}")
        raw = default
    try:
        return plausible.money(raw, f"{what} {key}")
    except plausible.BadFigure as exc:
        raise ValueError(str(exc)) from exc


def _ms(row: Mapping[str, Any], key: str, what: str) -> int:
    raw = row.get(key)
    try:
        return int(str(raw))
    except ValueError:
        raise ValueError(f"{what} {key} is not a whole number of ms: {raw!r}") from None


def _rows(msg: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = msg.get("data")
    rows: list[Any] = data if isinstance(data, list) else [data]
    if not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"{msg.get('topic')} data is not a list of objects")
    return rows


# ----- private ----------------------------------------------------------------------------------------------
class PrivateParser:
    def __init__(self) -> None:
        # order id → (positionIdx, reduce-only), from its order rows: Bybit's executions say neither
        self._orders: OrderedDict[str, tuple[str, bool]] = OrderedDict()
        self._hedged: set[str] = set()  # symbols whose position pushes name a hedge leg (positionIdx 1, 2)

    def frame(self, msg: Mapping[str, Any]) -> list[UserEvent]:
        topic = str(msg.get("topic") or "").split(".")[0]
        if not topic:
            return []  # a reply (auth, subscribe, pong)
        at = _ms(msg, "creationTime", topic) if msg.get("creationTime") is not None else 0
        out: list[UserEvent] = []
        for row in _rows(msg):
            event = self._row(topic, row, at)
            if event is not None:
                out.append(event)
        return out

    def _row(self, topic: str, row: Mapping[str, Any], at: int) -> UserEvent | None:
        if topic == "order":
            return self._order(row, at)
        if topic == "execution":
            return self._execution(row, at)
        if topic == "position":
            position = _position(row)
            if position.position_side != "BOTH":
                self._hedged.add(position.symbol)
            else:  # back to one-way
                self._hedged.discard(position.symbol)
            return AccountUpdate("ORDER", (), (position,), at, at)
        if topic == "wallet":
            return _wallet(row, at)
        return None

    def _leg(self, row: Mapping[str, Any], known: tuple[str, bool] | None, side: str, what: str) -> str:
        """The fill's hedge leg: its order's, else (an order never seen on this socket) from its side and
        `closedSize` on a symbol known to be in hedge mode; BOTH on a one-way account."""
        if known is not None:
            return POSITION_SIDES.get(known[0], "BOTH")
        if str(row.get("symbol") or "") in self._hedged:
            return _closing_leg(side, _dec(row, "closedSize", what, "0"))
        return "BOTH"

    def _remember(self, order_id: str, idx: str, reduce_only: bool) -> None:
        self._orders[order_id] = (idx, reduce_only)
        self._orders.move_to_end(order_id)
        while len(self._orders) > ORDERS_REMEMBERED:
            self._orders.popitem(last=False)

    def _order(self, row: Mapping[str, Any], at: int) -> UserEvent | None:
        what = f"order {row.get('orderId')}"
        order_id = str(row.get("orderId") or "")
        if not order_id:
            raise ValueError("an order row has no orderId")
        idx = str(row.get("positionIdx", "0"))
        if idx not in POSITION_SIDES:
            raise ValueError(f"{what} positionIdx {idx!r} is none of 0, 1, 2")
        self._remember(order_id, idx, bool(row.get("reduceOnly")) or bool(row.get("closeOnTrigger")))
        status = str(row.get("orderStatus") or "")
        symbol = str(row.get("symbol") or "")
        side = str(row.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"{what} side {row.get('side')!r} is neither Buy nor Sell")
        updated = _ms(row, "updatedTime", what) if row.get("updatedTime") else at
        stop = str(row.get("stopOrderType") or "") not in ("", "UNKNOWN")
        if status in ("Untriggered", "Deactivated", "Triggered") or (stop and status == "Rejected"):
            return AlgoUpdate(
                symbol=symbol,
                client_algo_id=str(row.get("orderLinkId") or order_id),
                algo_id=order_id,
                order_type=("STOP" if row.get("orderType") == "Limit" else "STOP_MARKET"),
                side=side,
                position_side=POSITION_SIDES[idx],
                quantity=_dec(row, "qty", what),
                status=ALGO_STATUS[status],
                trigger_price=_dec(row, "triggerPrice", what, "0"),
                price=_dec(row, "price", what, "0"),
                close_position=bool(row.get("closeOnTrigger")),
                reduce_only=bool(row.get("reduceOnly")),
                placed_order_id=order_id if status == "Triggered" else "",  # Bybit keeps the id
                reason=str(row.get("rejectReason") or "") if status == "Rejected" else "",
                event_time=updated,
            )
        execution = ORDER_STATUS.get(status)
        if execution is None:
            return None  # Filled / PartiallyFilled: the execution rows report the fills
        filled = _dec(row, "cumExecQty", what, "0")
        return OrderUpdate(
            symbol=symbol,
            client_order_id=str(row.get("orderLinkId") or order_id),
            order_id=order_id,
            side=side,
            type=str(row.get("orderType") or "").upper(),
            status=execution if execution != "NEW" else "NEW",
            execution_type=execution,
            time_in_force=str(row.get("timeInForce") or ""),
            orig_qty=_dec(row, "qty", what),
            price=_dec(row, "price", what, "0"),
            avg_price=_dec(row, "avgPrice", what, "0"),
            executed_qty=filled,
            last_fill_qty=ZERO,
            last_fill_price=ZERO,
            commission=ZERO,
            commission_asset=None,
            realized_pnl=ZERO,
            reduce_only=bool(row.get("reduceOnly")),
            position_side=POSITION_SIDES[idx],
            is_maker=False,
            trade_id=0,
            event_time=updated,
            transaction_time=updated,
        )

    def _execution(self, row: Mapping[str, Any], at: int) -> UserEvent | None:
        what = f"execution {row.get('execId')}"
        kind = row.get("execType")
        if kind == "Funding":  # which payment, and how much: the income read says (exactly, once)
            return AccountUpdate("FUNDING_FEE", (), (), at, at)
        if kind not in FILL_TYPES:
            return None  # a settlement moves no position
        order_id = str(row.get("orderId") or "")
        side = str(row.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"{what} side {row.get('side')!r} is neither Buy nor Sell")
        qty = _dec(row, "execQty", what)
        order_qty = _dec(row, "orderQty", what, str(qty))
        leaves = _dec(row, "leavesQty", what, "0")
        price = _dec(row, "execPrice", what)
        if not qty > 0 or not price > 0:
            raise ValueError(f"{what} execQty {qty} at {price} is not a fill")
        time = _ms(row, "execTime", what)
        known = self._orders.get(order_id)
        return OrderUpdate(
            symbol=str(row.get("symbol") or ""),
            client_order_id=str(row.get("orderLinkId") or order_id),
            order_id=order_id,
            side=side,
            type=str(row.get("orderType") or "").upper(),
            status="FILLED" if leaves == 0 else "PARTIALLY_FILLED",
            execution_type="TRADE",
            time_in_force="",
            orig_qty=order_qty,
            price=_dec(row, "orderPrice", what, "0"),
            avg_price=price,
            executed_qty=order_qty - leaves,
            last_fill_qty=qty,
            last_fill_price=price,
            commission=_dec(row, "execFee", what, "0"),
            commission_asset=str(row.get("feeCurrency") or "USDT"),
            realized_pnl=_dec(row, "execPnl", what, "0"),
            reduce_only=known[1] if known is not None else False,
            position_side=self._leg(row, known, side, what),
            is_maker=bool(row.get("isMaker")),
            trade_id=str(row.get("execId") or ""),
            event_time=time,
            transaction_time=time,
        )


def _closing_leg(side: str, closed: Decimal) -> str:
    """On a hedge account: a buy that closed nothing opened the LONG leg, one that closed reduced the SHORT
    (and the other way round for a sell)."""
    if side == "BUY":
        return "SHORT" if closed else "LONG"
    return "LONG" if closed else "SHORT"


def _position(row: Mapping[str, Any]) -> PositionUpdate:
    what = f"position {row.get('symbol')}"
    idx = str(row.get("positionIdx", "0"))
    if idx not in POSITION_SIDES:
        raise ValueError(f"{what} positionIdx {idx!r} is none of 0, 1, 2")
    size = _dec(row, "size", what)
    side = row.get("side")
    if size and side not in ("Buy", "Sell"):
        raise ValueError(f"{what} side {side!r} of an open position is neither Buy nor Sell")
    entry_key = "entryPrice" if row.get("entryPrice") not in (None, "") else "avgPrice"
    return PositionUpdate(
        symbol=str(row.get("symbol") or ""),
        amount=(size if side == "Buy" else -size) if size else ZERO,
        entry_price=_dec(row, entry_key, what, "0") if size else ZERO,
        breakeven_price=_dec(row, "breakEvenPrice", what, "0"),
        accumulated_realized=_dec(row, "cumRealisedPnl", what, "0"),
        unrealized_pnl=_dec(row, "unrealisedPnl", what, "0"),
        margin_type="isolated" if str(row.get("tradeMode", "0")) == "1" else "cross",
        isolated_wallet=_dec(row, "positionIM", what, "0") if str(row.get("tradeMode", "0")) == "1" else ZERO,
        position_side=POSITION_SIDES[idx],
    )


def _wallet(row: Mapping[str, Any], at: int) -> AccountUpdate:
    coins = row.get("coin") or []
    balances = []
    for coin in coins:
        if isinstance(coin, Mapping) and coin.get("coin") == "USDT":
            wallet = _dec(coin, "walletBalance", "wallet USDT")
            balances.append(BalanceUpdate("USDT", wallet, wallet, ZERO))
    return AccountUpdate("WALLET", tuple(balances), (), at, at)
