"""What the exchange reports, in cockpit's words: the gateway's answers, typed and exact.

The gateway returns these and nothing else, so the engine never reads an exchange's (or ccxt's) own field
names. Each exchange has one module that maps its answers into them (`binance/reports.py` for Binance USD-M
through ccxt): a second exchange plugs in there. Prices and quantities are exact `Decimal`s. Each report holds
what the engine reads, no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cockpit.core.domain import Leg


class MalformedReport(ValueError):
    """An exchange answer lacks a field cockpit needs, or holds one it cannot read."""


@dataclass(frozen=True, slots=True)
class MarketReport:
    """One market the exchange lists."""

    symbol: str  # unified, e.g. BTC/USDT:USDT
    exchange_id: str  # the exchange's own name for it, e.g. BTCUSDT ("" when it gave none)
    contract: bool  # a futures or perpetual contract (not spot)
    price_step: Decimal | None  # the price tick; None when the exchange does not say
    amount_step: Decimal | None  # the quantity step; None when the exchange does not say


@dataclass(frozen=True, slots=True)
class PositionReport:
    """One position as the exchange holds it: one per symbol on a one-way account, one per leg in hedge
    mode."""

    symbol: str  # unified; the exchange id when the client could not unify it
    quantity: Decimal  # signed: > 0 long, < 0 short, 0 flat
    entry_price: Decimal  # 0 when flat or not given
    leverage: int | None
    liquidation_price: Decimal | None  # as the exchange says it (Binance: 0 when there is none)
    margin_mode: str | None = None  # cross | isolated (None: not said)
    isolated_margin: Decimal | None = None  # an isolated position's own margin (its isolated wallet)
    leg: Leg = "both"  # long | short: a hedge-mode leg (its quantity still signed: a short leg's < 0)


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """The futures wallet, in the settlement asset (USDT)."""

    wallet: Decimal | None  # wallet balance: deposits and realized PnL, without unrealized PnL
    available: Decimal | None  # free for new margin
    assets_held: tuple[str, ...]  # every asset with a non-zero balance, sorted


@dataclass(frozen=True, slots=True)
class FundingReport:
    """One funding payment (the exchange's income history): paid < 0, received > 0."""

    income_id: str  # Binance's tranId
    symbol: str  # the exchange's id (BTCUSDT)
    amount: Decimal
    asset: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class FillReport:
    """One trade on the account (a fill of one of its orders)."""

    trade_id: str
    order_id: str  # "" when the exchange does not say
    side: str  # buy | sell
    order_type: str | None  # market | limit …; None when the exchange does not say (Binance never does)
    quantity: Decimal
    price: Decimal
    fee: Decimal  # commission, in the settlement asset
    realized_pnl: Decimal  # 0 for a fill that opens or adds
    timestamp_ms: int  # 0 when the exchange does not say
    leg: Leg = "both"  # the hedge-mode leg the trade was on (long | short)


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One order as the exchange knows it."""

    order_id: str
    client_order_id: str | None  # None when the exchange does not say
    symbol: str  # unified
    side: str  # buy | sell
    type: str  # market | limit …
    status: str | None  # open | closed | canceled | expired | rejected
    quantity: Decimal  # what the order is for
    price: Decimal  # the limit price; 0 when it has none (a market order)
    filled: Decimal
    average_price: Decimal | None  # of its fills; None before the first
    reduce_only: bool
    trigger_price: Decimal | None = None  # a conditional order's trigger
    conditional: bool = False  # held by the exchange's conditional (algo) service, canceled through it
    leg: Leg = "both"  # the hedge-mode leg the order is on (long | short)
