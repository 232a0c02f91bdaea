"""Each supported exchange's feeds, by ccxt exchange id: the stream dialect of its market feed and the
builder of its user stream. The market feed's machinery and the account's handlers are the same for every
exchange; only what is listed here differs.

- `binanceusdm`: combined market streams (`btcusdt@bookTicker`, `btcusdt@markPrice@1s`); the listenKey user
  stream (the key created and kept alive through the gateway).
- `bybit`: `/v5/public/linear` (`orderbook.1.BTCUSDT`, `tickers.BTCUSDT`); `/v5/private`, logged in with the
  account's API key (a refused login is a critical alert, the user stream's own trouble).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cockpit.core import events
from cockpit.feeds import UserFeed
from cockpit.feeds.bybit.market import BybitStreams
from cockpit.feeds.bybit.user import BybitUserFeed
from cockpit.feeds.connection import StatusSink
from cockpit.feeds.messages import UserEvent
from cockpit.feeds.rejects import RejectSink
from cockpit.feeds.streams import BinanceStreams, StreamDialect

if TYPE_CHECKING:
    from cockpit.engine.context import FeedContext

UserStream = UserFeed | BybitUserFeed


@dataclass(frozen=True)
class UserSinks:
    """Where a user stream delivers: the account's handlers, the feed status, bad data."""

    on_user_event: Callable[[UserEvent], None]
    on_status: StatusSink
    on_rejected: RejectSink


@dataclass(frozen=True)
class ExchangeFeeds:
    market_streams: Callable[[], StreamDialect]
    user_feed: Callable[[FeedContext, UserSinks], UserStream]


def _binance_user(engine: FeedContext, sinks: UserSinks) -> UserStream:
    return UserFeed(
        engine.ws_base,
        engine.gateway.create_listen_key,
        engine.gateway.keepalive_listen_key,
        on_user_event=sinks.on_user_event,
        on_status=sinks.on_status,
        on_rejected=sinks.on_rejected,
        backoff=engine.options.feed_backoff,
        connect_budget=engine.connect_budget,
    )


def _bybit_user(engine: FeedContext, sinks: UserSinks) -> UserStream:
    client: Any = engine.gateway.client  # the account's key: the socket logs in with it, as REST signs

    def on_auth(ok: bool, reason: str) -> None:
        """The private socket's login: its own trouble, said as the user stream's (an alert now; the stream's
        health and incident follow its reconnects) — never the exchange's health, which REST answers would
        clear while the socket is still refused, nor recovered by it."""
        if engine.stopping:
            return
        if ok:  # after a refusal: the login works again
            engine.emit(
                "alert", events.alert(message="the private stream logged in again"), "info", "user_stream"
            )
            return
        exchange = engine.config.exchange.id
        message = (
            f"the private stream's login was refused ({reason}): the account's fills and positions reach "
            f"cockpit by reconcile only — check the API key and secret (`cockpit keys check {exchange}`) "
            "and this machine's clock (`cockpit doctor`)"
        )
        engine.emit("alert", events.alert(message=message), "critical", "user_stream")

    return BybitUserFeed(
        engine.ws_base,
        str(client.apiKey or ""),
        str(client.secret or ""),
        on_user_event=sinks.on_user_event,
        on_status=sinks.on_status,
        on_rejected=sinks.on_rejected,
        on_auth=on_auth,
        # the login's expiry in the exchange's time: a clock behind it would read as a refused key
        now_ms=lambda: int(time.time() * 1000 + (engine.state.clock_offset_ms or 0.0)),
        backoff=engine.options.feed_backoff,
        connect_budget=engine.connect_budget,
    )


FEEDS: dict[str, ExchangeFeeds] = {
    "binanceusdm": ExchangeFeeds(BinanceStreams, _binance_user),
    "bybit": ExchangeFeeds(BybitStreams, _bybit_user),
}


def feeds_of(exchange_id: str) -> ExchangeFeeds:
    if exchange_id not in FEEDS:
        raise ValueError(f"exchange {exchange_id!r} has no feeds; supported: {', '.join(FEEDS)}")
    return FEEDS[exchange_id]
