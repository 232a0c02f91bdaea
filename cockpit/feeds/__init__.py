"""Market and user WebSocket feeds: typed messages out, resilient sockets underneath (no Textual, no ccxt)."""

from cockpit.core.retry import Backoff
from cockpit.feeds.backoff import (
    CRITICAL_AFTER_DOWN_S,
    CRITICAL_AFTER_FAILURES,
    DEFAULT_BACKOFF,
    reconnect_backoff,
)
from cockpit.feeds.budget import ConnectBudget
from cockpit.feeds.connection import StreamConnection
from cockpit.feeds.market import FetchMarks, MarketFeed, book_stream, mark_stream
from cockpit.feeds.messages import (
    AccountUpdate,
    AggTrade,
    AlgoUpdate,
    BalanceUpdate,
    BookTicker,
    FeedState,
    FeedStatus,
    MarketMessage,
    MarkPrice,
    OrderUpdate,
    OtherUserEvent,
    PositionUpdate,
    Rejected,
    Severity,
    UserEvent,
)
from cockpit.feeds.parse import ParseError
from cockpit.feeds.user import ListenKeyInvalid, UserFeed

__all__ = [
    "CRITICAL_AFTER_DOWN_S",
    "CRITICAL_AFTER_FAILURES",
    "DEFAULT_BACKOFF",
    "AccountUpdate",
    "AggTrade",
    "AlgoUpdate",
    "Backoff",
    "reconnect_backoff",
    "ConnectBudget",
    "BalanceUpdate",
    "BookTicker",
    "FeedState",
    "FeedStatus",
    "FetchMarks",
    "ListenKeyInvalid",
    "MarkPrice",
    "MarketFeed",
    "MarketMessage",
    "OrderUpdate",
    "OtherUserEvent",
    "ParseError",
    "PositionUpdate",
    "Rejected",
    "Severity",
    "StreamConnection",
    "UserEvent",
    "UserFeed",
    "book_stream",
    "mark_stream",
]
