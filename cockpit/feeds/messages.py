"""Typed messages the feeds deliver: market ticks (floats, for speed), user events (Decimal, exact), status.

Every message is a small frozen dataclass with slots, except the busiest, `BookTicker`: a NamedTuple, as
immutable and a third of the cost to build (tens of thousands a second; `bench/ingest.py` measures the path).
Field names are the cockpit's words; the Binance letter each one comes from is noted where it is not obvious.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, NamedTuple


class FeedState(StrEnum):
    CONNECTING = "connecting"  # first handshake under way
    CONNECTED = "connected"  # socket open and subscribed (or, with `stream` set: that stream flows again)
    RECONNECTING = "reconnecting"  # socket down; `attempt` and `retry_in_s` say what happens next
    STALE = "stale"  # socket open but `stream` (or the whole socket, stream=None) silent for `age_s`
    DISCONNECTED = "disconnected"  # socket lost (a reconnecting status follows) or feed stopped


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """What a feed (one socket) or one of its streams is doing, and why."""

    feed: str  # e.g. "market:public", "market:market", "user"
    state: FeedState
    severity: Severity
    reason: str = ""  # close code and text, exception text, "stopped", …
    stream: str | None = None  # set for per-stream statuses (stale / resumed)
    attempt: int = 0  # reconnect attempt about to be made (1-based), for RECONNECTING
    failures: int = 0  # consecutive failed reconnect attempts so far
    retry_in_s: float | None = None  # delay before that attempt
    retry_at: float | None = None  # wall-clock (epoch seconds) of that attempt
    age_s: float | None = None  # silence so far, for STALE
    down_for_s: float | None = None  # socket down this long (RECONNECTING; CONNECTED after a drop)
    close_code: int | None = None  # WebSocket close code when the server closed the socket
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input a feed refused (an unparseable frame, a bad figure, a mark held for confirmation): dropped."""

    source: str  # market_feed | user_stream | rest_marks
    reason: str  # names the event, the field and the value
    ts: float = field(default_factory=time.time)


# ----- market data (floats) -------------------------------------------------------------------------------
class BookTicker(NamedTuple):
    symbol: str
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    update_id: int
    event_time: int  # ms
    transaction_time: int  # ms


@dataclass(frozen=True, slots=True)
class MarkPrice:
    symbol: str
    mark: float
    index: float | None
    funding_rate: float | None
    next_funding_time: int | None  # ms
    event_time: int  # ms
    source: Literal["ws", "rest"] = "ws"


@dataclass(frozen=True, slots=True)
class AggTrade:
    symbol: str
    agg_id: int
    price: float
    qty: float
    first_trade_id: int
    last_trade_id: int
    trade_time: int  # ms
    buyer_is_maker: bool
    event_time: int  # ms


MarketMessage = BookTicker | MarkPrice | AggTrade


# ----- user data (Decimal) --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """ORDER_TRADE_UPDATE."""

    symbol: str
    client_order_id: str
    order_id: int | str  # Binance: a number; Bybit: a string (a UUID on the real exchange)
    side: str  # BUY / SELL
    type: str  # MARKET, LIMIT, …
    status: str  # X: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, …
    execution_type: str  # x: NEW, TRADE, CANCELED, EXPIRED, AMENDMENT, …
    time_in_force: str
    orig_qty: Decimal  # q
    price: Decimal  # p
    avg_price: Decimal  # ap
    executed_qty: Decimal  # z (cumulative)
    last_fill_qty: Decimal  # l
    last_fill_price: Decimal  # L
    commission: Decimal  # n (for the last fill)
    commission_asset: str | None  # N
    realized_pnl: Decimal  # rp (for the last fill)
    reduce_only: bool  # R
    position_side: str  # ps
    is_maker: bool  # m
    trade_id: int | str  # t (0 when no fill); Bybit's execId is a string
    event_time: int  # E, ms
    transaction_time: int  # T (outer), ms


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    asset: str  # a
    wallet_balance: Decimal  # wb
    cross_wallet_balance: Decimal  # cw
    balance_change: Decimal  # bc (except PnL and commission)


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    symbol: str  # s
    amount: Decimal  # pa (signed)
    entry_price: Decimal  # ep
    breakeven_price: Decimal  # bep
    accumulated_realized: Decimal  # cr
    unrealized_pnl: Decimal  # up
    margin_type: str  # mt
    isolated_wallet: Decimal  # iw
    position_side: str  # ps


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """ACCOUNT_UPDATE."""

    reason: str  # m: ORDER, FUNDING_FEE, DEPOSIT, …
    balances: tuple[BalanceUpdate, ...]
    positions: tuple[PositionUpdate, ...]
    event_time: int
    transaction_time: int


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    """ALGO_UPDATE: a conditional order of Binance USD-M's Algo Service (stop, take-profit, trailing)."""

    symbol: str  # s
    client_algo_id: str  # caid
    algo_id: int | str  # aid; Bybit: the conditional order's own id
    order_type: str  # o: STOP_MARKET, TAKE_PROFIT, …
    side: str  # S
    position_side: str  # ps
    quantity: Decimal  # q ("0" with close-all)
    status: str  # X: NEW, CANCELED, TRIGGERING, TRIGGERED, FINISHED, REJECTED, EXPIRED
    trigger_price: Decimal  # tp
    price: Decimal  # p ("0": a market order once triggered)
    close_position: bool  # cp
    reduce_only: bool  # R
    placed_order_id: str  # ai: the order placed in the matching engine once triggered ("" before)
    reason: str  # rm: why it failed
    event_time: int  # E, ms


@dataclass(frozen=True, slots=True)
class OtherUserEvent:
    """A user-stream event with no type here yet (MARGIN_CALL, TRADE_LITE, …): passed on, not lost."""

    event: str
    event_time: int
    raw: dict[str, Any]


UserEvent = OrderUpdate | AccountUpdate | AlgoUpdate | OtherUserEvent
