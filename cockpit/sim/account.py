"""The simulator's margin account: wallet, positions, orders, fills, and the user-stream events they emit.

One cross-margin USDT account in one-way mode (positionSide BOTH). Quantities and prices are Decimals on the
symbol's grid; nothing here is float.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cockpit.sim.clock import SimClock
from cockpit.sim.errors import BINANCE_ERRORS, ApiError
from cockpit.sim.market import PriceWalk, SymbolSpec

ZERO = Decimal(0)
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")
DEFAULT_LEVERAGE = 20

UserEvent = dict[str, Any]
UserListener = Callable[[UserEvent], None]


def fmt(value: Decimal, places: int = 8) -> str:
    """Decimal → Binance-style string without exponent or float noise."""
    q = value.quantize(Decimal(1).scaleb(-places)) if places >= 0 else value
    text = format(q.normalize(), "f")
    return "0" if text in ("-0", "") else text


@dataclass
class SimPosition:
    symbol: str
    qty: Decimal = ZERO  # signed: long > 0, short < 0
    entry: Decimal = ZERO
    update_time: int = 0


@dataclass
class SimOrder:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # MARKET | LIMIT
    orig_qty: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    time: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    starved: bool = (
        False  # a partial_fill fault ate the liquidity at its price: the rest waits to be canceled
    )

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class SimTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str = "GTC"
    reduce_only: bool = False
    client_order_id: str | None = None


@dataclass
class Account:
    """The account's books. Every change is announced to user-stream listeners in Binance's format."""

    specs: dict[str, SymbolSpec]
    prices: PriceWalk
    clock: SimClock
    wallet: Decimal = Decimal("10000")
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    trades: list[SimTrade] = field(default_factory=list)
    leverage: dict[str, int] = field(default_factory=dict)
    listeners: list[UserListener] = field(default_factory=list)
    update_time: int = 0

    def __post_init__(self) -> None:
        self._order_ids = itertools.count(8_389_765_000)
        self._trade_ids = itertools.count(5_000_000)
        self.update_time = self.clock.now_ms()
        for symbol in self.specs:
            self.positions.setdefault(symbol, SimPosition(symbol))
            self.leverage.setdefault(symbol, DEFAULT_LEVERAGE)

    # ----- figures -------------------------------------------------------------------------------------
    def mark(self, symbol: str) -> Decimal:
        return self.prices.prices[symbol]

    def unrealized(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return pos.qty * (self.mark(symbol) - pos.entry) if pos.qty else ZERO

    def total_unrealized(self) -> Decimal:
        return sum((self.unrealized(s) for s in self.positions), ZERO)

    def position_margin(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return abs(pos.qty) * self.mark(symbol) / self.leverage[symbol]

    def open_order_margin(self) -> Decimal:
        total = ZERO
        for order in self.orders.values():
            if order.is_open and not order.reduce_only:
                total += order.remaining * order.price / self.leverage[order.symbol]
        return total

    def total_position_margin(self) -> Decimal:
        return sum((self.position_margin(s) for s in self.positions), ZERO)

    def available(self) -> Decimal:
        return self.wallet + self.total_unrealized() - self.total_position_margin() - self.open_order_margin()

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    # ----- orders --------------------------------------------------------------------------------------
    def place(self, req: OrderRequest, partial_ratio: Decimal | None = None) -> SimOrder:
        """Place an order; with `partial_ratio`, an order that fills on arrival fills only that part (at least
        one step, never all) and `starved` says so. A resting order or a one-step order is not split."""
        spec = self._spec(req.symbol)
        self._check_quantity(spec, req)
        price = self._order_price(spec, req)
        qty = req.quantity
        position = self.positions[req.symbol].qty
        sign = 1 if req.side == "BUY" else -1
        if req.reduce_only:
            if position == 0 or (position > 0) == (sign > 0):
                raise ApiError(-2022)
            qty = min(qty, abs(position))
        elif qty * price < spec.min_notional:
            msg = BINANCE_ERRORS[-4164][1].format(min_notional=fmt(spec.min_notional))
            raise ApiError(-4164, msg)
        if not req.reduce_only:
            increase = (
                qty if position == 0 or (position > 0) == (sign > 0) else max(ZERO, qty - abs(position))
            )
            if increase * price / self.leverage[req.symbol] > self.available():
                raise ApiError(-2019)
        bid, ask = self.prices.bid_ask(req.symbol)
        touch = ask if sign > 0 else bid
        marketable = req.type == "MARKET" or (price >= ask if sign > 0 else price <= bid)
        if req.type == "LIMIT" and req.time_in_force == "GTX" and marketable:
            raise ApiError(-5022)
        now = self.clock.now_ms()
        order = SimOrder(
            order_id=next(self._order_ids),
            client_order_id=req.client_order_id or _client_order_id(),
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            orig_qty=qty,
            price=price if req.type == "LIMIT" else ZERO,
            time_in_force=req.time_in_force,
            reduce_only=req.reduce_only,
            time=now,
            update_time=now,
        )
        if any(o.client_order_id == order.client_order_id and o.is_open for o in self.orders.values()):
            raise ApiError(-4015, "Client order id is not valid.")
        self.orders[order.order_id] = order
        self._emit_order(order, "NEW")
        if marketable:
            fill_qty = qty
            if partial_ratio is not None and qty > spec.step_size:  # one step cannot fill in part
                fill_qty = spec.step_size * int(qty * partial_ratio / spec.step_size)
                fill_qty = min(max(fill_qty, spec.step_size), qty - spec.step_size)  # some, never all
                order.starved = True
            self._fill(order, fill_qty, touch, maker=False)
            if order.remaining > 0 and (req.type == "MARKET" or req.time_in_force in ("IOC", "FOK")):
                self._finish(order, "EXPIRED")
        elif req.time_in_force in ("IOC", "FOK"):
            self._finish(order, "EXPIRED")
        return order

    def cancel(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder:
        order = self.find(symbol, order_id, client_order_id)
        if order is None or not order.is_open:
            raise ApiError(-2011)
        self._finish(order, "CANCELED")
        return order

    def cancel_all(self, symbol: str) -> list[SimOrder]:
        self._spec(symbol)
        canceled = self.open_orders(symbol)
        for order in canceled:
            self._finish(order, "CANCELED")
        return canceled

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> SimOrder | None:
        for order in self.orders.values():
            if order.symbol != symbol:
                continue
            if order_id is not None and order.order_id == order_id:
                return order
            if client_order_id is not None and order.client_order_id == client_order_id:
                return order
        return None

    def on_prices(self) -> None:
        """Fill resting limit orders the new prices cross (as maker, at their limit price)."""
        for order in list(self.orders.values()):
            if not order.is_open or order.type != "LIMIT" or order.starved:
                continue
            bid, ask = self.prices.bid_ask(order.symbol)
            if (order.side == "BUY" and ask <= order.price) or (order.side == "SELL" and bid >= order.price):
                qty = order.remaining
                if order.reduce_only:
                    position = self.positions[order.symbol].qty
                    reduces = position != 0 and (position > 0) != (order.side == "BUY")
                    qty = min(qty, abs(position)) if reduces else ZERO
                    if qty == 0:
                        self._finish(order, "EXPIRED")
                        continue
                self._fill(order, qty, order.price, maker=True)

    # ----- faults that act on the books -------------------------------------------------------------
    def ghost_position(self, symbol: str, side: str, qty: Decimal, *, pushed: bool = False) -> None:
        """A position appears with no order and no trade; with no user-stream event, or (`pushed`) with only
        the position's (ACCOUNT_UPDATE), as when a fill's order update is lost."""
        self._spec(symbol)
        pos = self.positions[symbol]
        sign = Decimal(1) if side.upper() in ("LONG", "BUY") else Decimal(-1)
        new_qty = pos.qty + sign * qty
        if pos.qty == 0 or (pos.qty > 0) == (sign > 0):
            pos.entry = (abs(pos.qty) * pos.entry + qty * self.mark(symbol)) / abs(new_qty)
        elif new_qty == 0:
            pos.entry = ZERO
        elif (new_qty > 0) != (pos.qty > 0):
            pos.entry = self.mark(symbol)
        pos.qty = new_qty
        pos.update_time = self.clock.now_ms()
        if pushed:
            self._emit_account(symbol)

    # ----- internals ----------------------------------------------------------------------------------
    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise ApiError(-1121)
        return spec

    @staticmethod
    def _check_quantity(spec: SymbolSpec, req: OrderRequest) -> None:
        qty = req.quantity
        if qty <= 0:
            raise ApiError(-4003)
        if -qty.normalize().as_tuple().exponent > spec.quantity_precision:  # type: ignore[operator]
            raise ApiError(-1111)
        if qty % spec.step_size != 0:
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        limit = spec.market_max_qty if req.type == "MARKET" else spec.max_qty
        if qty > limit:
            raise ApiError(-4005)

    def _order_price(self, spec: SymbolSpec, req: OrderRequest) -> Decimal:
        if req.type == "MARKET":
            bid, ask = self.prices.bid_ask(req.symbol)
            return ask if req.side == "BUY" else bid
        if req.price is None or req.price <= 0:
            raise ApiError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if -req.price.normalize().as_tuple().exponent > spec.price_precision:  # type: ignore[operator]
            raise ApiError(-1111)
        if req.price % spec.tick_size != 0:
            raise ApiError(-4014)
        return req.price

    def _fill(self, order: SimOrder, qty: Decimal, price: Decimal, maker: bool) -> None:
        now = self.clock.now_ms()
        sign = Decimal(1) if order.side == "BUY" else Decimal(-1)
        pos = self.positions[order.symbol]
        realized = ZERO
        if pos.qty == 0 or (pos.qty > 0) == (sign > 0):
            new_qty = pos.qty + sign * qty
            pos.entry = (abs(pos.qty) * pos.entry + qty * price) / abs(new_qty)
        else:
            closing = min(qty, abs(pos.qty))
            realized = closing * (price - pos.entry) * (1 if pos.qty > 0 else -1)
            new_qty = pos.qty + sign * qty
            if new_qty == 0:
                pos.entry = ZERO
            elif qty > closing:
                pos.entry = price
        pos.qty = new_qty
        pos.update_time = now
        commission = qty * price * (MAKER_FEE if maker else TAKER_FEE)
        self.wallet += realized - commission
        self.update_time = now
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.update_time = now
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        trade = SimTrade(
            trade_id=next(self._trade_ids),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            commission=commission,
            realized_pnl=realized,
            maker=maker,
            time=now,
        )
        self.trades.append(trade)
        # Binance pushes the position (ACCOUNT_UPDATE) before the fill (ORDER_TRADE_UPDATE) more often than
        # not, with the same event time: clients must not assume the fill comes first
        self._emit_account(order.symbol)
        self._emit_order(order, "TRADE", trade)

    def _finish(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.update_time = self.clock.now_ms()
        self._emit_order(order, status)

    def _emit_order(self, order: SimOrder, execution: str, trade: SimTrade | None = None) -> None:
        now = self.clock.now_ms()
        event: UserEvent = {
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
                "sp": "0",
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
                "wt": "CONTRACT_PRICE",
                "ot": order.type,
                "ps": "BOTH",
                "cp": False,
                "rp": fmt(trade.realized_pnl) if trade else "0",
                "pP": False,
                "si": 0,
                "ss": 0,
                "V": "NONE",
                "pm": "NONE",
                "gtd": 0,
            },
        }
        self._publish(event)

    def _emit_account(self, symbol: str) -> None:
        now = self.clock.now_ms()
        pos = self.positions[symbol]
        event: UserEvent = {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": "ORDER",
                "B": [{"a": "USDT", "wb": fmt(self.wallet), "cw": fmt(self.wallet), "bc": "0"}],
                "P": [
                    {
                        "s": symbol,
                        "pa": fmt(pos.qty),
                        "ep": fmt(pos.entry),
                        "bep": fmt(pos.entry),
                        "cr": "0",
                        "up": fmt(self.unrealized(symbol)),
                        "mt": "cross",
                        "iw": "0",
                        "ps": "BOTH",
                        "ma": "USDT",
                    }
                ],
            },
        }
        self._publish(event)

    def _publish(self, event: UserEvent) -> None:
        for listener in list(self.listeners):
            listener(event)


def _client_order_id() -> str:
    return "web_" + secrets.token_hex(10)
