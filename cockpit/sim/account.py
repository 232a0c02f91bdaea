"""The simulator's margin account: wallet, positions, orders, fills, funding, and the user-stream events.

One USDT wallet. One-way mode (a `BOTH` position per symbol) or hedge mode (a `LONG` and a `SHORT` leg per
symbol, `dual_side`), switched only while the account is flat with no open order, as on Binance. Each symbol
is cross or isolated margin; an isolated position holds its margin in its own wallet. Quantities and prices
are Decimals on the symbol's grid; nothing here is float.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cockpit.sim import events
from cockpit.sim.clock import SimClock
from cockpit.sim.errors import BINANCE_ERRORS, ApiError
from cockpit.sim.income import COMMISSION, FUNDING_FEE, REALIZED_PNL, IncomeLedger
from cockpit.sim.market import PriceWalk, SymbolSpec
from cockpit.sim.numbers import ZERO, fmt
from cockpit.sim.records import BOTH, LONG, SHORT, SimOrder, SimPosition, SimTrade

__all__ = [
    "BOTH",
    "LONG",
    "SHORT",
    "ZERO",
    "Account",
    "OrderRequest",
    "SimOrder",
    "SimPosition",
    "SimTrade",
    "fmt",
]

TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")
MAINT_MARGIN_RATE = Decimal("0.004")
DEFAULT_LEVERAGE = 20
CROSS, ISOLATED = "cross", "isolated"
# Binance's expiry reasons ("er") for what the simulator expires
EXPIRED_IOC, EXPIRED_MARKET, EXPIRED_FOK = 2, 9, 10

UserEvent = dict[str, Any]
UserListener = Callable[[UserEvent], None]


@dataclass
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str = "GTC"
    reduce_only: bool | None = None  # None: not sent (hedge mode refuses it sent at all)
    client_order_id: str | None = None
    position_side: str | None = None  # None: not sent
    orig_type: str | None = None  # set when an algo order places it
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    price_protect: bool = False


@dataclass
class Account:
    """The account's books. Every change is announced to user-stream listeners in Binance's format."""

    specs: dict[str, SymbolSpec]
    prices: PriceWalk
    clock: SimClock
    wallet: Decimal = Decimal("10000")
    dual_side: bool = False
    legs: dict[tuple[str, str], SimPosition] = field(default_factory=dict)
    orders: dict[int, SimOrder] = field(default_factory=dict)
    trades: list[SimTrade] = field(default_factory=list)
    leverage: dict[str, int] = field(default_factory=dict)
    margin_types: dict[str, str] = field(default_factory=dict)
    last_trade: dict[str, Decimal] = field(default_factory=dict)  # the contract price: the last fill
    income: IncomeLedger = field(default_factory=IncomeLedger)
    listeners: list[UserListener] = field(default_factory=list)
    price_watchers: list[Callable[[], None]] = field(default_factory=list)  # after resting orders fill
    open_algos: Callable[[str | None], int] = lambda symbol: (
        0
    )  # the algo book's open orders (for mode changes)
    update_time: int = 0

    def __post_init__(self) -> None:
        self._order_ids = itertools.count(8_389_765_000)
        self._trade_ids = itertools.count(5_000_000)
        self.update_time = self.clock.now_ms()
        for symbol in self.specs:
            for side in (BOTH, LONG, SHORT):
                self.legs.setdefault((symbol, side), SimPosition(symbol, side))
            self.leverage.setdefault(symbol, DEFAULT_LEVERAGE)
            self.margin_types.setdefault(symbol, CROSS)

    # ----- positions ----------------------------------------------------------------------------------
    @property
    def positions(self) -> dict[str, SimPosition]:
        """Each symbol's one-way (`BOTH`) position; in hedge mode use `leg(symbol, "LONG" | "SHORT")`."""
        return {symbol: self.legs[(symbol, BOTH)] for symbol in self.specs}

    @property
    def sides(self) -> tuple[str, ...]:
        return (LONG, SHORT) if self.dual_side else (BOTH,)

    def leg(self, symbol: str, side: str = BOTH) -> SimPosition:
        return self.legs[(symbol, side)]

    def legs_of(self, symbol: str) -> list[SimPosition]:
        return [self.legs[(symbol, side)] for side in self.sides]

    def open_legs(self, symbol: str | None = None) -> list[SimPosition]:
        return [p for p in self.legs.values() if p.qty != 0 and (symbol is None or p.symbol == symbol)]

    # ----- figures -------------------------------------------------------------------------------------
    def mark(self, symbol: str) -> Decimal:
        return self.prices.prices[symbol]

    def contract_price(self, symbol: str) -> Decimal:
        return self.last_trade.get(symbol, self.mark(symbol))

    def is_isolated(self, symbol: str) -> bool:
        return self.margin_types[symbol] == ISOLATED

    def leg_unrealized(self, pos: SimPosition) -> Decimal:
        return pos.qty * (self.mark(pos.symbol) - pos.entry) if pos.qty else ZERO

    def unrealized(self, symbol: str, side: str | None = None) -> Decimal:
        legs = [self.legs[(symbol, side)]] if side else self.open_legs(symbol)
        return sum((self.leg_unrealized(p) for p in legs), ZERO)

    def total_unrealized(self) -> Decimal:
        return sum((self.leg_unrealized(p) for p in self.open_legs()), ZERO)

    def leg_margin(self, pos: SimPosition) -> Decimal:
        """Initial margin at the mark."""
        return abs(pos.qty) * self.mark(pos.symbol) / self.leverage[pos.symbol]

    def maint_margin(self, pos: SimPosition) -> Decimal:
        return abs(pos.qty) * self.mark(pos.symbol) * MAINT_MARGIN_RATE

    def position_margin(self, symbol: str) -> Decimal:
        return sum((self.leg_margin(p) for p in self.open_legs(symbol)), ZERO)

    def total_position_margin(self) -> Decimal:
        return sum((self.leg_margin(p) for p in self.open_legs()), ZERO)

    def open_order_margin(self) -> Decimal:
        total = ZERO
        for order in self.orders.values():
            if order.is_open and not order.closing:
                total += order.remaining * order.price / self.leverage[order.symbol]
        return total

    def isolated_wallets(self) -> Decimal:
        return sum((p.isolated_wallet for p in self.legs.values()), ZERO)

    def cross_wallet(self) -> Decimal:
        return self.wallet - self.isolated_wallets()

    def _cross_legs(self) -> list[SimPosition]:
        return [p for p in self.open_legs() if not self.is_isolated(p.symbol)]

    def cross_unrealized(self) -> Decimal:
        return sum((self.leg_unrealized(p) for p in self._cross_legs()), ZERO)

    def available(self) -> Decimal:
        cross_margin = sum((self.leg_margin(p) for p in self._cross_legs()), ZERO)
        return self.cross_wallet() + self.cross_unrealized() - cross_margin - self.open_order_margin()

    def liquidation_price(self, symbol: str, side: str | None = None) -> Decimal:
        """Where the position's margin falls to its maintenance margin: the isolated wallet for an isolated
        position, the cross wallet plus the other cross positions' PnL (held fixed) for a cross one."""
        if side is None:
            opened = self.open_legs(symbol)
            if not opened:
                return ZERO
            pos = opened[0]
        else:
            pos = self.legs[(symbol, side)]
        if pos.qty == 0:
            return ZERO
        if self.is_isolated(symbol):
            backing = pos.isolated_wallet
        else:
            others = [p for p in self._cross_legs() if p is not pos]
            backing = self.cross_wallet() + sum((self.leg_unrealized(p) for p in others), ZERO)
        price = (pos.qty * pos.entry - backing) / (pos.qty - abs(pos.qty) * MAINT_MARGIN_RATE)
        return max(price, ZERO)

    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    # ----- account settings ---------------------------------------------------------------------------
    def set_dual_side(self, dual_side: bool) -> None:
        """Hedge mode on or off, for every symbol: only with no open order and no position."""
        if dual_side == self.dual_side:
            raise ApiError(-4059)
        if self.open_orders() or self.open_algos(None):
            raise ApiError(-4067)
        if self.open_legs():
            raise ApiError(-4068)
        self.dual_side = dual_side

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """`cross` or `isolated` for one symbol: only with no open order and no position on it."""
        self._spec(symbol)
        if self.margin_types[symbol] == margin_type:
            raise ApiError(-4046)
        if self.open_orders(symbol) or self.open_algos(symbol):
            raise ApiError(-4047)
        if self.open_legs(symbol):
            raise ApiError(-4048)
        self.margin_types[symbol] = margin_type

    def move_isolated_margin(self, symbol: str, side: str, amount: Decimal, add: bool) -> None:
        """Add margin to an isolated position from the cross wallet, or take some back."""
        self._spec(symbol)
        if not self.is_isolated(symbol):
            raise ApiError(-4049)
        if amount <= 0:
            raise ApiError(-4055)
        pos = self.legs[(symbol, side)]
        if pos.qty == 0:
            raise ApiError(-4054)
        if add and amount > self.available():
            raise ApiError(-4050)
        if not add and pos.isolated_wallet + min(self.leg_unrealized(pos), ZERO) - amount < self.leg_margin(
            pos
        ):
            raise ApiError(-4051)
        pos.isolated_wallet += amount if add else -amount
        self._emit_account(pos, reason="MARGIN_TRANSFER")

    # ----- orders --------------------------------------------------------------------------------------
    def place(self, req: OrderRequest, partial_ratio: Decimal | None = None) -> SimOrder:
        """Place an order; with `partial_ratio`, an order that fills on arrival fills only that part (at least
        one step, never all) and `starved` says so. A resting order or a one-step order is not split."""
        spec = self._spec(req.symbol)
        position_side = self._position_side(req)
        self._check_quantity(spec, req)
        price = self._order_price(spec, req)
        pos = self.legs[(req.symbol, position_side)]
        sign = 1 if req.side == "BUY" else -1
        closing = bool(req.reduce_only) or (position_side, req.side) in ((LONG, "SELL"), (SHORT, "BUY"))
        qty = req.quantity
        if closing:
            if pos.qty == 0 or (pos.qty > 0) == (sign > 0):
                raise ApiError(-2022)
            qty = min(qty, abs(pos.qty))
        elif qty * price < spec.min_notional:
            msg = BINANCE_ERRORS[-4164][1].format(min_notional=fmt(spec.min_notional))
            raise ApiError(-4164, msg)
        if not closing:
            same_way = pos.qty == 0 or (pos.qty > 0) == (sign > 0)
            increase = qty if same_way else max(ZERO, qty - abs(pos.qty))
            if increase * price / self.leverage[req.symbol] > self.available():
                raise ApiError(-2019)
        bid, ask = self.prices.bid_ask(req.symbol)
        touch = ask if sign > 0 else bid
        marketable = req.type == "MARKET" or (price >= ask if sign > 0 else price <= bid)
        if req.type == "LIMIT" and req.time_in_force == "GTX" and marketable:
            raise ApiError(-5022)
        order = self._new_order(req, qty, price, position_side, closing)
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
                self._expire_unfilled(order)
        elif req.time_in_force in ("IOC", "FOK"):
            self._expire_unfilled(order)
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
        """Fill resting limit orders the new prices cross (as maker, at their limit price), then let the
        price watchers (the algo book) see the new prices."""
        for order in list(self.orders.values()):
            if not order.is_open or order.type != "LIMIT" or order.starved:
                continue
            bid, ask = self.prices.bid_ask(order.symbol)
            if (order.side == "BUY" and ask <= order.price) or (order.side == "SELL" and bid >= order.price):
                qty = order.remaining
                if order.closing:
                    held = self.legs[(order.symbol, order.position_side)].qty
                    reduces = held != 0 and (held > 0) != (order.side == "BUY")
                    qty = min(qty, abs(held)) if reduces else ZERO
                    if qty == 0:
                        self._finish(order, "EXPIRED")
                        continue
                self._fill(order, qty, order.price, maker=True)
        for watcher in list(self.price_watchers):
            watcher()

    # ----- funding ------------------------------------------------------------------------------------
    def settle_funding(self, rates: dict[str, Decimal]) -> None:
        """Pay funding on every open position: notional at the mark times the rate; longs pay shorts when the
        rate is positive. Each payment is income (FUNDING_FEE) and an ACCOUNT_UPDATE."""
        now = self.clock.now_ms()
        for pos in self.open_legs():
            rate = rates.get(pos.symbol)
            if rate is None:
                continue
            fee = (-pos.qty * self.mark(pos.symbol) * rate).quantize(Decimal("0.00000001"))
            self.wallet += fee
            if self.is_isolated(pos.symbol):
                pos.isolated_wallet += fee
            self.update_time = now
            self.income.record(pos.symbol, FUNDING_FEE, fee, now, position_side=pos.side)
            # Binance: a cross position's funding pushes the balance only; an isolated one adds its position
            rows = [self._position_row(pos)] if self.is_isolated(pos.symbol) else []
            self._publish(
                events.account_update(
                    "FUNDING_FEE", now, fmt(self.wallet), fmt(self.cross_wallet()), rows, change=fmt(fee)
                )
            )

    # ----- faults that act on the books -------------------------------------------------------------
    def ghost_position(self, symbol: str, side: str, qty: Decimal, *, pushed: bool = False) -> None:
        """A position appears with no order and no trade; with no user-stream event, or (`pushed`) with only
        the position's (ACCOUNT_UPDATE), as when a fill's order update is lost."""
        self._spec(symbol)
        sign = Decimal(1) if side.upper() in ("LONG", "BUY") else Decimal(-1)
        pos = self.legs[(symbol, (LONG if sign > 0 else SHORT) if self.dual_side else BOTH)]
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
            self._emit_account(pos)

    # ----- internals ----------------------------------------------------------------------------------
    def _spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise ApiError(-1121)
        return spec

    def _position_side(self, req: OrderRequest) -> str:
        """The position an order acts on; Binance refuses a side that does not match the account's mode."""
        sent = req.position_side
        if self.dual_side:
            if sent not in (LONG, SHORT):
                raise ApiError(-4061)
            if req.reduce_only is not None:
                raise ApiError(-1106, "Parameter 'reduceonly' sent when not required.")
            return sent
        if sent not in (None, BOTH):
            raise ApiError(-4061)
        return BOTH

    def _new_order(
        self, req: OrderRequest, qty: Decimal, price: Decimal, position_side: str, closing: bool
    ) -> SimOrder:
        now = self.clock.now_ms()
        return SimOrder(
            order_id=next(self._order_ids),
            client_order_id=req.client_order_id or _client_order_id(),
            symbol=req.symbol,
            side=req.side,
            type=req.type,
            orig_qty=qty,
            price=price if req.type == "LIMIT" else ZERO,
            time_in_force=req.time_in_force,
            reduce_only=bool(req.reduce_only),
            time=now,
            update_time=now,
            position_side=position_side,
            closing=closing,
            orig_type=req.orig_type or req.type,
            stop_price=req.stop_price,
            working_type=req.working_type,
            close_position=req.close_position,
            price_protect=req.price_protect,
        )

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
        pos = self.legs[(order.symbol, order.position_side)]
        sign = Decimal(1) if order.side == "BUY" else Decimal(-1)
        closed = min(qty, abs(pos.qty)) if pos.qty and (pos.qty > 0) != (sign > 0) else Decimal(0)
        realized = self._move_position(pos, sign, qty, price)
        pos.update_time = now
        commission = qty * price * (MAKER_FEE if maker else TAKER_FEE)
        self.wallet += realized - commission
        self.update_time = now
        self.last_trade[order.symbol] = price
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
            position_side=order.position_side,
            closed_qty=closed,
        )
        self.trades.append(trade)
        if realized != 0:
            self.income.record(order.symbol, REALIZED_PNL, realized, now, trade.trade_id)
        self.income.record(order.symbol, COMMISSION, -commission, now, trade.trade_id)
        # Binance pushes the position (ACCOUNT_UPDATE) before the fill (ORDER_TRADE_UPDATE) more often than
        # not, with the same event time: clients must not assume the fill comes first
        self._emit_account(pos)
        self._emit_order(order, "TRADE", trade)

    def _move_position(self, pos: SimPosition, sign: Decimal, qty: Decimal, price: Decimal) -> Decimal:
        """Apply a fill of `qty` at `price` (`sign` +1 buys, -1 sells) to a position; the realized PnL. An
        isolated position takes the margin of what it opens from the cross wallet and frees its share of
        the margin of what it closes."""
        realized = ZERO
        isolated = self.is_isolated(pos.symbol)
        opened = qty
        if pos.qty == 0 or (pos.qty > 0) == (sign > 0):
            new_qty = pos.qty + sign * qty
            pos.entry = (abs(pos.qty) * pos.entry + qty * price) / abs(new_qty)
        else:
            closing = min(qty, abs(pos.qty))
            opened = qty - closing
            realized = closing * (price - pos.entry) * (1 if pos.qty > 0 else -1)
            if isolated:
                pos.isolated_wallet -= pos.isolated_wallet * closing / abs(pos.qty)
            new_qty = pos.qty + sign * qty
            if new_qty == 0:
                pos.entry = ZERO
            elif opened > 0:
                pos.entry = price
        if isolated and opened > 0:
            pos.isolated_wallet += opened * price / self.leverage[pos.symbol]
        if new_qty == 0:
            pos.isolated_wallet = ZERO
        pos.qty = new_qty
        pos.realized += realized
        return realized

    def _expire_unfilled(self, order: SimOrder) -> None:
        order.expiry_reason = (
            EXPIRED_MARKET
            if order.type == "MARKET"
            else EXPIRED_FOK
            if order.time_in_force == "FOK"
            else EXPIRED_IOC
        )
        self._finish(order, "EXPIRED")

    def _finish(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.update_time = self.clock.now_ms()
        self._emit_order(order, status)

    def _emit_order(self, order: SimOrder, execution: str, trade: SimTrade | None = None) -> None:
        self._publish(events.order_update(order, execution, self.clock.now_ms(), trade))

    def _position_row(self, pos: SimPosition) -> dict[str, Any]:
        return events.position_row(pos, fmt(self.leg_unrealized(pos)), self.margin_types[pos.symbol])

    def _emit_account(self, pos: SimPosition, reason: str = "ORDER") -> None:
        self._publish(
            events.account_update(
                reason,
                self.clock.now_ms(),
                fmt(self.wallet),
                fmt(self.cross_wallet()),
                [self._position_row(pos)],
            )
        )

    def _publish(self, event: UserEvent) -> None:
        for listener in list(self.listeners):
            listener(event)


def _client_order_id() -> str:
    return "web_" + secrets.token_hex(10)
