"""Conditional orders through Binance's Algo Service (`/fapi/v1/algoOrder`): stops, take-profits, trailing.

Since December 2025 Binance USD-M takes STOP_MARKET, STOP, TAKE_PROFIT, TAKE_PROFIT_MARKET and
TRAILING_STOP_MARKET only on the algo endpoints (`POST /fapi/v1/order` answers -4120). An algo order waits
(NEW) until its trigger price is touched on the mark price (`MARK_PRICE`) or the last traded price
(`CONTRACT_PRICE`, the default); then it is TRIGGERING, places a regular MARKET order (a LIMIT one for
STOP/TAKE_PROFIT) that fills as any other (TRIGGERED, with its order id), and is FINISHED once that order is
done. An order the matching engine refuses (margin, nothing to reduce) makes it REJECTED. Every step is an
ALGO_UPDATE.

Trigger rules (Binance's): STOP/STOP_MARKET buy when price >= trigger, sell when price <= trigger;
TAKE_PROFIT/TAKE_PROFIT_MARKET buy when price <= trigger, sell when price >= trigger; TRAILING_STOP_MARKET
sells once the highest price since activation falls back by `callbackRate` %, buys once the lowest rises by
it.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cockpit.sim import events
from cockpit.sim.account import Account, OrderRequest
from cockpit.sim.errors import ApiError
from cockpit.sim.numbers import ZERO
from cockpit.sim.records import BOTH, LONG, SHORT, AlgoOrder

ALGO_TYPES = ("STOP_MARKET", "STOP", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
LIMIT_TYPES = ("STOP", "TAKE_PROFIT")
CLOSE_ALL_TYPES = ("STOP_MARKET", "TAKE_PROFIT_MARKET")
WORKING_TYPES = ("MARK_PRICE", "CONTRACT_PRICE")
DONE_ORDER_STATUSES = ("FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")
MIN_CALLBACK, MAX_CALLBACK = Decimal("0.1"), Decimal("10")


@dataclass
class AlgoRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal | None = None
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    position_side: str | None = None
    time_in_force: str = "GTC"
    working_type: str = "CONTRACT_PRICE"
    reduce_only: bool | None = None  # None: not sent
    close_position: bool = False
    price_protect: bool = False
    client_algo_id: str | None = None
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None


class AlgoBook:
    """The account's algo orders and their triggering as prices move."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.orders: dict[int, AlgoOrder] = {}
        self._ids = itertools.count(2_148_719_000)
        self._working: dict[int, AlgoOrder] = {}  # regular order id -> the triggered algo order it came from
        account.price_watchers.append(self.on_prices)
        account.listeners.append(self._on_user_event)
        account.open_algos = self.count_open

    # ----- queries ------------------------------------------------------------------------------------
    def count_open(self, symbol: str | None = None) -> int:
        return len(self.open_orders(symbol))

    def open_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.orders.values() if a.is_open and (symbol is None or a.symbol == symbol)]

    def find(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder | None:
        if algo_id is not None:
            return self.orders.get(algo_id)
        matches = [a for a in self.orders.values() if a.client_algo_id == client_algo_id]
        return matches[-1] if matches else None

    # ----- placing and canceling ----------------------------------------------------------------------
    def place(self, req: AlgoRequest) -> AlgoOrder:
        acct = self.account
        spec = acct.specs.get(req.symbol)
        if spec is None:
            raise ApiError(-1121)
        if req.side not in ("BUY", "SELL"):
            raise ApiError(-1117)
        if req.type not in ALGO_TYPES:
            raise ApiError(-1116)
        if req.working_type not in WORKING_TYPES:
            raise ApiError(-4031)
        position_side = self._position_side(req)
        quantity = self._quantity(req)
        trigger = self._trigger_price(req)
        price = _tick_checked(req.price, spec.tick_size, "price") if req.type in LIMIT_TYPES else ZERO
        if req.type in LIMIT_TYPES and not price:
            raise ApiError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if req.client_algo_id and any(a.client_algo_id == req.client_algo_id for a in self.open_orders()):
            raise ApiError(-4015)
        now = acct.clock.now_ms()
        algo = AlgoOrder(
            algo_id=next(self._ids),
            client_algo_id=req.client_algo_id or secrets.token_urlsafe(16)[:22],
            symbol=req.symbol,
            side=req.side,
            position_side=position_side,
            type=req.type,
            quantity=quantity,
            trigger_price=trigger,
            price=price,
            time_in_force=req.time_in_force,
            working_type=req.working_type,
            reduce_only=bool(req.reduce_only) or req.close_position,
            close_position=req.close_position,
            price_protect=req.price_protect,
            create_time=now,
            update_time=now,
            activate_price=req.activate_price,
            callback_rate=req.callback_rate,
        )
        if self._would_trigger_now(algo):
            raise ApiError(-2021)
        if algo.type == "TRAILING_STOP_MARKET" and algo.activate_price is None:
            algo.extreme = self._reference_price(algo)  # active at once: it trails from the latest price
        self.orders[algo.algo_id] = algo
        self._emit(algo)
        return algo

    def cancel(self, algo_id: int | None, client_algo_id: str | None) -> AlgoOrder:
        algo = self.find(algo_id, client_algo_id)
        if algo is None or not algo.is_open:
            raise ApiError(-2011)
        self._set_status(algo, "CANCELED")
        return algo

    def cancel_all(self, symbol: str) -> list[AlgoOrder]:
        if symbol not in self.account.specs:
            raise ApiError(-1121)
        canceled = self.open_orders(symbol)
        for algo in canceled:
            self._set_status(algo, "CANCELED")
        return canceled

    # ----- triggering ---------------------------------------------------------------------------------
    def on_prices(self) -> None:
        for algo in self.open_orders():
            if algo.status == "NEW" and self._touched(algo, self._reference_price(algo)):
                self._trigger(algo)

    def _reference_price(self, algo: AlgoOrder) -> Decimal:
        if algo.working_type == "MARK_PRICE":
            return self.account.mark(algo.symbol)
        return self.account.contract_price(algo.symbol)

    def _touched(self, algo: AlgoOrder, price: Decimal) -> bool:
        buy = algo.side == "BUY"
        if algo.type in ("STOP", "STOP_MARKET"):
            return price >= algo.trigger_price if buy else price <= algo.trigger_price
        if algo.type in ("TAKE_PROFIT", "TAKE_PROFIT_MARKET"):
            return price <= algo.trigger_price if buy else price >= algo.trigger_price
        return self._trailing_touched(algo, price)

    @staticmethod
    def _trailing_touched(algo: AlgoOrder, price: Decimal) -> bool:
        buy = algo.side == "BUY"
        if algo.extreme is None:
            activation = algo.activate_price
            if activation is not None and (price > activation if buy else price < activation):
                return False  # not activated yet
            algo.extreme = price
        algo.extreme = min(algo.extreme, price) if buy else max(algo.extreme, price)
        rate = (algo.callback_rate or ZERO) / 100
        return price >= algo.extreme * (1 + rate) if buy else price <= algo.extreme * (1 - rate)

    def _would_trigger_now(self, algo: AlgoOrder) -> bool:
        price = self._reference_price(algo)
        if algo.type != "TRAILING_STOP_MARKET":
            return self._touched(algo, price)
        # Binance: a buy's activation price must be below the latest price, a sell's above it
        activation = algo.activate_price
        return activation is not None and (activation >= price if algo.side == "BUY" else activation <= price)

    def _trigger(self, algo: AlgoOrder) -> None:
        acct = self.account
        algo.trigger_time = acct.clock.now_ms()
        self._set_status(algo, "TRIGGERING")
        quantity = algo.quantity
        if algo.close_position:
            held = acct.leg(algo.symbol, algo.position_side).qty
            reduces = held != 0 and (held > 0) != (algo.side == "BUY")
            quantity = abs(held) if reduces else ZERO
        if quantity == 0:
            algo.reject_reason = "Reduce Only reject"
            self._set_status(algo, "REJECTED")
            return
        limit = algo.type in LIMIT_TYPES
        request = OrderRequest(
            symbol=algo.symbol,
            side=algo.side,
            type="LIMIT" if limit else "MARKET",
            quantity=quantity,
            price=algo.price if limit else None,
            time_in_force=algo.time_in_force if limit else "GTC",
            reduce_only=(algo.reduce_only or None) if not acct.dual_side else None,
            client_order_id=algo.client_algo_id,
            position_side=algo.position_side if acct.dual_side else None,
            orig_type=algo.type,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            close_position=algo.close_position,
            price_protect=algo.price_protect,
        )
        try:
            order = acct.place(request)
        except ApiError as exc:
            algo.reject_reason = exc.msg
            self._set_status(algo, "REJECTED")
            return
        algo.actual_order_id, algo.actual_type = order.order_id, order.type
        algo.executed_qty, algo.avg_price = order.executed_qty, order.avg_price
        self._set_status(algo, "TRIGGERED")
        if order.is_open:
            self._working[order.order_id] = algo
        else:
            self._set_status(algo, "FINISHED")

    def _on_user_event(self, event: dict[str, Any]) -> None:
        """A triggered algo order is FINISHED when the order it placed is filled, canceled or expired."""
        if event.get("e") != "ORDER_TRADE_UPDATE":
            return
        update = event["o"]
        algo = self._working.get(update["i"])
        if algo is None or update["X"] not in DONE_ORDER_STATUSES:
            return
        del self._working[update["i"]]
        algo.executed_qty, algo.avg_price = Decimal(update["z"]), Decimal(update["ap"])
        self._set_status(algo, "FINISHED")

    # ----- internals ----------------------------------------------------------------------------------
    def _position_side(self, req: AlgoRequest) -> str:
        dual = self.account.dual_side
        if req.position_side not in (None, BOTH, LONG, SHORT):
            raise ApiError(-4060)
        if dual:
            if req.position_side not in (LONG, SHORT):
                raise ApiError(-4061)
            if req.reduce_only is not None:
                raise ApiError(-1106, "Parameter 'reduceonly' sent when not required.")
            if req.close_position and (req.position_side, req.side) in ((LONG, "BUY"), (SHORT, "SELL")):
                raise ApiError(-4061)
            return req.position_side
        if req.position_side not in (None, BOTH):
            raise ApiError(-4061)
        return BOTH

    def _quantity(self, req: AlgoRequest) -> Decimal:
        if req.close_position:
            if req.type not in CLOSE_ALL_TYPES:
                raise ApiError(-1106, "Parameter 'closePosition' sent when not required.")
            if req.quantity is not None:
                raise ApiError(-4137)
            if req.reduce_only:
                raise ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
            return ZERO
        if req.quantity is None:
            raise ApiError(
                -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
            )
        spec = self.account.specs[req.symbol]
        self.account._check_quantity(spec, OrderRequest(req.symbol, req.side, "LIMIT", req.quantity))
        return req.quantity

    def _trigger_price(self, req: AlgoRequest) -> Decimal:
        spec = self.account.specs[req.symbol]
        if req.type == "TRAILING_STOP_MARKET":
            rate = req.callback_rate
            if rate is None or not MIN_CALLBACK <= rate <= MAX_CALLBACK:
                raise ApiError(-1102, "Parameter 'callbackRate' must be between 0.1 and 10.")
            if req.activate_price is not None:
                _tick_checked(req.activate_price, spec.tick_size, "activatePrice")
            return ZERO
        if req.trigger_price is None:
            raise ApiError(
                -1102, "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed."
            )
        return _tick_checked(req.trigger_price, spec.tick_size, "triggerPrice")

    def _set_status(self, algo: AlgoOrder, status: str) -> None:
        algo.status = status
        algo.update_time = self.account.clock.now_ms()
        self._emit(algo)

    def _emit(self, algo: AlgoOrder) -> None:
        self.account._publish(events.algo_update(algo, self.account.clock.now_ms()))


def _tick_checked(value: Decimal | None, tick: Decimal, name: str) -> Decimal:
    if value is None:
        return ZERO
    if value <= 0:
        raise ApiError(-1102, f"Parameter '{name}' was malformed.")
    if value % tick != 0:
        raise ApiError(-4014)
    return value
