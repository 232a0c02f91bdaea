"""The simulator's records of the account — positions, orders, trades, conditional (algo) orders — apart from
the account model that changes them (account.py, algo.py) and the stream events that report them
(events.py), so those three import these and not each other."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cockpit.sim.numbers import ZERO

BOTH, LONG, SHORT = "BOTH", "LONG", "SHORT"
OPEN_STATUSES = ("NEW", "TRIGGERING")  # an algo order still waiting for its trigger


@dataclass
class SimPosition:
    """A position: the symbol's only one in one-way mode (`BOTH`), or its LONG or SHORT leg in hedge mode."""

    symbol: str
    side: str = BOTH
    qty: Decimal = ZERO  # signed: long > 0, short < 0; a LONG leg is never short, a SHORT leg never long
    entry: Decimal = ZERO
    update_time: int = 0
    isolated_wallet: Decimal = ZERO  # the margin an isolated position holds
    realized: Decimal = ZERO  # realized PnL accumulated ("cr")


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
    position_side: str = BOTH
    closing: bool = False  # it can only shrink its position: reduce-only, or a hedge-mode close
    orig_type: str = ""  # the conditional order's type when an algo order placed it
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    price_protect: bool = False
    expiry_reason: int = 0

    def __post_init__(self) -> None:
        self.orig_type = self.orig_type or self.type

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
    position_side: str = BOTH
    closed_qty: Decimal = ZERO  # of `qty`, what closed (part of) a position; the rest opened one


@dataclass
class AlgoOrder:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    position_side: str
    type: str
    quantity: Decimal  # 0 for a close-all (closePosition) order
    trigger_price: Decimal
    price: Decimal
    time_in_force: str
    working_type: str
    reduce_only: bool
    close_position: bool
    price_protect: bool
    create_time: int
    update_time: int
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    status: str = "NEW"
    trigger_time: int = 0
    actual_order_id: int | None = None
    actual_type: str = ""
    executed_qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    reject_reason: str = ""
    extreme: Decimal | None = None  # a trailing stop's best price since activation

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
