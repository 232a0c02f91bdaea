"""The account's orders as Bybit sees them: one list of regular and conditional orders, each under one id.

A Bybit conditional order (`triggerPrice` + `triggerDirection`) is the simulator's algo order (algo.py): it
waits `Untriggered`, then places a regular order and keeps its own id, so the regular order it placed is
never listed apart from it. `triggerDirection` 1 (rise) fires when the trigger price (last, or mark for
`triggerBy` MarkPrice/IndexPrice: the simulator's index is its mark) reaches the order's price from below,
2 (fall) from above; which maps a buy or sell onto the algo book's STOP / TAKE_PROFIT kinds.

An order placed without `orderLinkId` gets a hidden client id (a `~` prefix no Bybit link id can have) and
is shown with `orderLinkId: ""`. Link ids must be unique across every order the account ever placed
(110072). The account model's Binance refusals are translated to retCodes (errors.py). A PostOnly order
that would take liquidity is refused (10001) rather than accepted and then cancelled as Bybit does.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cockpit.sim.account import Account, OrderRequest
from cockpit.sim.algo import ALGO_TYPES, AlgoBook, AlgoRequest
from cockpit.sim.bybit.errors import RET_MESSAGES, BybitError, translate
from cockpit.sim.errors import ApiError
from cockpit.sim.records import BOTH, LONG, SHORT, AlgoOrder, SimOrder

HIDDEN = "~"
LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
POSITION_IDX = {BOTH: 0, LONG: 1, SHORT: 2}
SIDE_OF_IDX = {0: BOTH, 1: LONG, 2: SHORT}
TIME_IN_FORCE = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "PostOnly": "GTX"}
WORKING_TYPE = {"LastPrice": "CONTRACT_PRICE", "MarkPrice": "MARK_PRICE", "IndexPrice": "MARK_PRICE"}
RISE, FALL = 1, 2


@dataclass
class Entry:
    """One order as Bybit lists it: a regular order, or a conditional one (`algo`) with the regular order
    it placed once triggered (`placed`)."""

    placed: SimOrder | None
    algo: AlgoOrder | None = None

    @property
    def order_id(self) -> str:
        if self.algo is not None:
            return str(self.algo.algo_id)
        assert self.placed is not None
        return str(self.placed.order_id)

    @property
    def link_id(self) -> str:
        raw = self.algo.client_algo_id if self.algo is not None else self.placed.client_order_id  # type: ignore[union-attr]
        return "" if raw.startswith(HIDDEN) else raw

    @property
    def symbol(self) -> str:
        return self.algo.symbol if self.algo is not None else self.placed.symbol  # type: ignore[union-attr]

    @property
    def untriggered(self) -> bool:
        return self.algo is not None and self.algo.is_open

    @property
    def is_open(self) -> bool:
        if self.untriggered:
            return True
        return self.placed is not None and self.placed.is_open

    @property
    def created(self) -> int:
        return self.algo.create_time if self.algo is not None else self.placed.time  # type: ignore[union-attr]


def trigger_direction(algo: AlgoOrder) -> int:
    stop = algo.type in ("STOP", "STOP_MARKET")
    return RISE if stop == (algo.side == "BUY") else FALL


class OrderBook:
    def __init__(self, account: Account, algos: AlgoBook) -> None:
        self.account = account
        self.algos = algos
        self._hidden = itertools.count(1)

    # ----- listing ------------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every order the account placed, newest first."""
        out = [self.of_algo(a) for a in self.algos.orders.values()]
        out += [Entry(o) for o in self.account.orders.values() if o.orig_type not in ALGO_TYPES]
        return sorted(out, key=lambda e: (e.created, int(e.order_id)), reverse=True)

    def of_algo(self, algo: AlgoOrder) -> Entry:
        placed = self.account.orders.get(algo.actual_order_id) if algo.actual_order_id else None
        return Entry(placed, algo)

    def of_order(self, order: SimOrder) -> Entry:
        """The entry a regular order shows under: its conditional order's when one placed it."""
        if order.orig_type in ALGO_TYPES:
            for algo in reversed(list(self.algos.orders.values())):
                if algo.client_algo_id == order.client_order_id:
                    return Entry(order, algo)
        return Entry(order)

    def find(self, order_id: str | None, link_id: str | None) -> Entry | None:
        """By `order_id` when given (Bybit's priority: an orderLinkId beside it is not looked at), else by
        `link_id`."""
        for entry in self.entries():
            if (entry.order_id == order_id) if order_id else (link_id and entry.link_id == link_id):
                return entry
        return None

    # ----- placing ------------------------------------------------------------------------------------
    def place(self, params: dict[str, Any], partial_ratio: Decimal | None = None) -> Entry:
        req = self._parse(params)
        try:
            if params.get("triggerPrice") not in (None, "", "0"):
                return self.of_algo(self._place_conditional(params, req))
            return Entry(self.account.place(req, partial_ratio=partial_ratio))
        except ApiError as exc:
            raise translate(exc) from None

    def _parse(self, params: dict[str, Any]) -> OrderRequest:
        """The order as the account model takes it (a conditional order's fields are read apart)."""
        symbol = str(params.get("symbol", ""))
        if symbol not in self.account.specs:
            raise BybitError(10001, "Not supported symbols")
        side = params.get("side")
        if side not in ("Buy", "Sell"):
            raise BybitError(10001, "Side invalid")
        order_type = params.get("orderType")
        if order_type not in ("Market", "Limit"):
            raise BybitError(10001, "OrderType invalid")
        price = _decimal(params, "price") if order_type == "Limit" else None
        if order_type == "Limit" and price is None:
            raise BybitError(10001, "price invalid")
        tif = str(params.get("timeInForce") or ("GTC" if order_type == "Limit" else "IOC"))
        if tif not in TIME_IN_FORCE:
            raise BybitError(10001, "TimeInForce invalid")
        position_side = self._position_side(params)
        reduce_only = _flag(params, "reduceOnly") or _flag(params, "closeOnTrigger")
        if position_side != BOTH and reduce_only and (position_side == LONG) == (side == "Buy"):
            raise BybitError(110017)  # reduce-only on the leg this side would open
        return OrderRequest(
            symbol=symbol,
            side="BUY" if side == "Buy" else "SELL",
            type=str(order_type).upper(),
            quantity=_required_decimal(params, "qty"),
            price=price,
            time_in_force=TIME_IN_FORCE[tif] if order_type == "Limit" else "IOC",
            # hedge mode: closing is the side against the leg; the model refuses reduceOnly sent at all
            reduce_only=(reduce_only or None) if position_side == BOTH else None,
            client_order_id=self._link_id(params),
            position_side=None if position_side == BOTH else position_side,
        )

    def _place_conditional(self, params: dict[str, Any], req: OrderRequest) -> AlgoOrder:
        trigger = _required_decimal(params, "triggerPrice")
        try:
            direction = int(params.get("triggerDirection", 0))
        except (TypeError, ValueError):
            direction = 0
        if direction not in (RISE, FALL):
            raise BybitError(10001, "TriggerDirection invalid")
        working = WORKING_TYPE.get(str(params.get("triggerBy") or "LastPrice"))
        if working is None:
            raise BybitError(10001, "TriggerBy invalid")
        acct = self.account
        current = acct.mark(req.symbol) if working == "MARK_PRICE" else acct.contract_price(req.symbol)
        if direction == RISE and trigger <= current:
            raise BybitError(110092, RET_MESSAGES[110092].format(trigger=trigger, current=current))
        if direction == FALL and trigger >= current:
            raise BybitError(110093, RET_MESSAGES[110093].format(trigger=trigger, current=current))
        kind = "STOP" if (direction == RISE) == (req.side == "BUY") else "TAKE_PROFIT"
        limit = req.type == "LIMIT"
        return self.algos.place(
            AlgoRequest(
                symbol=req.symbol,
                side=req.side,
                type=kind if limit else kind + "_MARKET",
                quantity=req.quantity,
                trigger_price=trigger,
                price=req.price,
                position_side=req.position_side,
                time_in_force=req.time_in_force if limit else "GTC",
                working_type=working,
                reduce_only=req.reduce_only,
                client_algo_id=req.client_order_id,
            )
        )

    def _position_side(self, params: dict[str, Any]) -> str:
        raw = params.get("positionIdx", 0)
        try:
            idx = int(raw if raw not in (None, "") else 0)
        except (TypeError, ValueError):
            idx = -1
        side = SIDE_OF_IDX.get(idx)
        if side is None or (side == BOTH) == self.account.dual_side:
            raise BybitError(10001, "position idx not match position mode")
        return side

    def _link_id(self, params: dict[str, Any]) -> str:
        link = params.get("orderLinkId")
        if link in (None, ""):
            return f"{HIDDEN}{next(self._hidden)}"
        link = str(link)
        if not LINK_ID.match(link):
            raise BybitError(10001, "orderLinkId invalid")
        if self.find(None, link) is not None:
            raise BybitError(110072)
        return link

    # ----- canceling ----------------------------------------------------------------------------------
    def cancel(self, symbol: str, order_id: str | None, link_id: str | None) -> Entry:
        if not order_id and not link_id:
            raise BybitError(10001, "orderId or orderLinkId is required")
        entry = self.find(order_id, link_id)
        if entry is None or entry.symbol != symbol or not entry.is_open:
            raise BybitError(110001)
        self._cancel(entry)
        return entry

    def cancel_all(self, symbols: list[str], order_filter: str | None) -> list[Entry]:
        """Open orders of `symbols`: regular ones (`Order`), untriggered conditional ones (`StopOrder`), or
        both (no filter: Bybit cancels every kind)."""
        canceled = []
        for entry in self.entries():
            if entry.symbol not in symbols or not entry.is_open:
                continue
            if order_filter is not None and order_filter != kind(entry):
                continue
            self._cancel(entry)
            canceled.append(entry)
        return canceled

    def _cancel(self, entry: Entry) -> None:
        try:
            if entry.untriggered and entry.algo is not None:
                self.algos.cancel(entry.algo.algo_id, None)
            elif entry.placed is not None:
                self.account.cancel(entry.placed.symbol, entry.placed.order_id, None)
        except ApiError as exc:
            raise translate(exc) from None


def kind(entry: Entry) -> str:
    """`StopOrder` while a conditional order waits for its trigger, `Order` otherwise (Bybit's filter)."""
    return "StopOrder" if entry.untriggered else "Order"


def _decimal(params: dict[str, Any], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise BybitError(10001, f"{name} invalid") from None
    if not value.is_finite() or value <= 0:
        raise BybitError(10001, f"{name} invalid")
    return value


def _required_decimal(params: dict[str, Any], name: str) -> Decimal:
    value = _decimal(params, name)
    if value is None:
        raise BybitError(10001, f"{name} is required")
    return value


def _flag(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    return value is True or (isinstance(value, str) and value.lower() == "true")
