"""What a market feed says to one exchange's sockets, and how it reads them: its stream dialect.

`MarketFeed` (market.py) owns the machinery — groups of streams per socket, staleness per stream, mark
plausibility and the REST mark fallback, runtime (un)subscription, reconnects — and asks its `StreamDialect`
for what differs: stream names, which socket a stream rides on, the URL, the (un)subscribe and ping requests,
and how a frame splits into its stream and data and reads as a typed message. `BinanceStreams` is Binance
USD-M's (combined streams: `btcusdt@bookTicker`, `btcusdt@markPrice@1s`); Bybit's is in `feeds/bybit/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import orjson

from cockpit.feeds.messages import MarketMessage
from cockpit.feeds.parse import combined_frame, market_event

PUBLIC_KINDS = ("bookTicker", "depth", "trade")  # Binance 2026: under /public; everything else under /market


class StreamDialect(Protocol):
    ping_every_s: float | None  # an application-level ping this often (None: the protocol's ping is enough)
    # the exchange sends a stream only when something in it changed: a silent one is asked again (its
    # snapshot) before it is called stale — a quiet market is no outage
    refresh_when_quiet: bool
    # figures refused inside a frame that was still read (a bad index price beside a good mark): the feed
    # reports each (bad data) and empties the list
    refusals: list[str]

    def normalize(self, stream: str) -> str:
        """The stream's name as the exchange spells it (ValueError for one that is no stream name)."""
        ...

    def book_stream(self, exchange_id: str) -> str: ...

    def mark_stream(self, exchange_id: str) -> str: ...

    def is_mark_stream(self, stream: str) -> bool: ...

    def symbol_of(self, stream: str) -> str:
        """The market (exchange id) a stream is about."""
        ...

    def route_of(self, stream: str) -> str:
        """The socket a stream rides on ("" when every stream shares one)."""
        ...

    def url(self, ws_base: str, route: str, streams: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        """The URL of a connect to `route` carrying `streams`, and the streams the URL itself subscribes
        (the others are asked for by message once it is open)."""
        ...

    def request(self, subscribe: bool, streams: Sequence[str]) -> str:
        """The message that subscribes (or unsubscribes) `streams` on an open socket."""
        ...

    def ping(self) -> str:
        """The application-level ping (sent every `ping_every_s` when that is set)."""
        ...

    def opened(self, route: str) -> None:
        """A socket on `route` (re)opened: what the dialect kept of its frames starts again."""
        ...

    def split(self, raw: bytes) -> tuple[str | None, Any]:
        """A frame as (stream, data); (None, reply) for a control frame (ack, pong, error). ValueError when
        it is no frame of this exchange's."""
        ...

    def message(self, stream: str, data: Any) -> MarketMessage | None:
        """The typed message a stream's data reads as (None: nothing cockpit uses); ValueError when bad."""
        ...

    def control_error(self, reply: Any) -> tuple[bool, str | None]:
        """(is this a reply the dialect knows, the error it reports if any)."""
        ...


class BinanceStreams:
    """Binance USD-M's combined streams. Routing: the 2026 split (`routing="split"`) opens one socket per
    route — `/public/stream` for bookTicker/depth/trade, `/market/stream` for aggTrade/markPrice/kline/ticker;
    `routing="single"` puts every stream on one `/stream` socket (the legacy path). Subscription is by URL
    (`/stream?streams=a/b`) or, with `subscribe="message"`, by a `SUBSCRIBE` message after each connect."""

    ping_every_s: float | None = None
    refresh_when_quiet = False  # bookTicker and markPrice@1s flow whatever the market does
    refusals: list[str] = []  # never filled: a Binance frame is read whole or refused whole

    def __init__(
        self, routing: Literal["split", "single"] = "split", subscribe: Literal["url", "message"] = "url"
    ) -> None:
        self.routing = routing
        self.subscribe = subscribe
        self._sub_id = 0
        self.split = combined_frame  # the hot path: the parsers themselves, no wrapper call
        self.message = _market_event

    def normalize(self, stream: str) -> str:
        return normalize_stream(stream)

    def book_stream(self, exchange_id: str) -> str:
        return book_stream(exchange_id)

    def mark_stream(self, exchange_id: str) -> str:
        return mark_stream(exchange_id)

    def is_mark_stream(self, stream: str) -> bool:
        return is_mark_stream(stream)

    def symbol_of(self, stream: str) -> str:
        return stream.partition("@")[0].upper()

    def route_of(self, stream: str) -> str:
        return route_of(stream) if self.routing == "split" else ""

    def url(self, ws_base: str, route: str, streams: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        base = f"{ws_base}{route}/stream"
        if self.subscribe == "message":
            return base, ()
        return f"{base}?streams={'/'.join(streams)}", tuple(streams)

    def request(self, subscribe: bool, streams: Sequence[str]) -> str:
        self._sub_id += 1
        method = "SUBSCRIBE" if subscribe else "UNSUBSCRIBE"
        return orjson.dumps({"method": method, "params": list(streams), "id": self._sub_id}).decode()

    def ping(self) -> str:
        raise NotImplementedError("Binance's sockets need no application-level ping")

    def opened(self, route: str) -> None:
        return None

    def control_error(self, reply: Any) -> tuple[bool, str | None]:
        if reply.get("error") is not None:
            return True, str(reply["error"])
        return "result" in reply, None


def _market_event(stream: str, data: Any) -> MarketMessage | None:
    return market_event(data)


def normalize_stream(stream: str) -> str:
    """`BTCUSDT@bookTicker` → `btcusdt@bookTicker` (Binance stream names have lower-case symbols)."""
    symbol, sep, kind = stream.partition("@")
    if not sep or not symbol or not kind:
        raise ValueError(f"stream {stream!r} is not '<symbol>@<kind>', e.g. 'btcusdt@bookTicker'")
    return f"{symbol.lower()}@{kind}"


def route_of(stream: str) -> str:
    kind = stream.partition("@")[2]
    return "/public" if kind.split("@")[0] in PUBLIC_KINDS else "/market"


def book_stream(exchange_id: str) -> str:
    """The best bid/ask stream of a market (`BTCUSDT` → `btcusdt@bookTicker`)."""
    return f"{exchange_id.lower()}@bookTicker"


def mark_stream(exchange_id: str) -> str:
    """The mark price stream of a market, once a second (`BTCUSDT` → `btcusdt@markPrice@1s`)."""
    return f"{exchange_id.lower()}@markPrice@1s"


def is_mark_stream(stream: str) -> bool:
    return stream.partition("@")[2].startswith("markPrice")
