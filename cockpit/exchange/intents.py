"""What cockpit asks an exchange to do with an order, and what it answers: the same on every exchange."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from cockpit.core.domain import Leg, closes_leg


@dataclass(frozen=True)
class OrderIntent:
    symbol: str  # ccxt unified symbol, e.g. BTC/USDT:USDT
    side: str  # buy | sell
    type: str  # market | limit
    amount: Decimal
    price: Decimal | None = None
    reduce_only: bool = False
    time_in_force: str | None = None
    client_order_id: str | None = None
    leg: Leg = "both"  # a hedge-mode leg (long | short): sent as its position side, never reduce-only

    @property
    def closes(self) -> bool:
        """Whether the exchange lets this order only shrink a position: reduce-only, or the closing side of a
        hedge leg (sell on LONG, buy on SHORT)."""
        return self.reduce_only or closes_leg(self.leg, self.side)


@dataclass(frozen=True)
class OrderAck:
    client_order_id: str
    order_id: str
    symbol: str
    side: str
    type: str
    status: str  # ccxt unified: open | closed | canceled | expired | rejected
    amount: Decimal  # what was sent, at the exchange's precision
    filled: Decimal
    average: Decimal | None
    price: Decimal | None
    reduce_only: bool
    resolved_by_lookup: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


def new_client_order_id() -> str:
    """27 characters of [a-z0-9-]: within Binance's 36 of [.A-Z:/a-z0-9_-] and Bybit's 36 (orderLinkId)."""
    return "ck-" + secrets.token_hex(12)
