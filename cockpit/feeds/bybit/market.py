"""Bybit v5's public linear socket as a `MarketFeed` stream dialect (cockpit/feeds/streams.py).

One socket, `/v5/public/linear`, for every stream; topics are subscribed by `{"op": "subscribe", "args":
[...]}` on each open and at runtime, and the socket wants `{"op": "ping"}` every 20 s (protocol pings do not
count). `orderbook.1.BTCUSDT` (snapshot, then deltas of the side that changed, a snapshot again after 3 s
unchanged) gives the top of the book → `BookTicker`; `tickers.BTCUSDT` (snapshot, then deltas of the fields
that changed) gives the mark → `MarkPrice`. A ticker delta that leaves the mark unchanged says the mark is
still the merged one: it is given again at most once a second (as Binance's `markPrice@1s` does), so a mark
that does not move is not taken for a stream that sends no mark. What a socket merged is dropped when it
reopens (its snapshots come again). A figure cockpit refuses leaves the merged state as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from cockpit.core import plausible
from cockpit.feeds.messages import BookTicker, MarketMessage, MarkPrice

PATH = "/v5/public/linear"
PING_EVERY_S = 20.0
MARK_AGAIN_MS = 1000  # an unchanged mark is given again this often while the ticker sends deltas
BOOK, TICKERS = "orderbook.1.", "tickers."


class BybitStreams:
    ping_every_s: float | None = PING_EVERY_S
    refresh_when_quiet = True  # tickers and orderbook.1 push only what changed (the book: again after 3 s)

    def __init__(self) -> None:
        self._tickers: dict[str, dict[str, Any]] = {}  # symbol → the ticker as snapshot + deltas left it
        self._marked: dict[str, int] = {}  # symbol → ts of the last mark given
        self._books: dict[str, tuple[list[str] | None, list[str] | None]] = {}  # symbol → best bid, ask
        self._req = 0

    # ----- names ----------------------------------------------------------------------------------------
    def normalize(self, stream: str) -> str:
        for prefix in (BOOK, TICKERS):
            if stream.startswith(prefix) and len(stream) > len(prefix):
                return prefix + stream[len(prefix) :].upper()
        raise ValueError(
            f"stream {stream!r} is not a Bybit topic, e.g. 'orderbook.1.BTCUSDT', 'tickers.BTCUSDT'"
        )

    def book_stream(self, exchange_id: str) -> str:
        return f"{BOOK}{exchange_id.upper()}"

    def mark_stream(self, exchange_id: str) -> str:
        return f"{TICKERS}{exchange_id.upper()}"

    def is_mark_stream(self, stream: str) -> bool:
        return stream.startswith(TICKERS)

    def symbol_of(self, stream: str) -> str:
        return stream.rpartition(".")[2]

    def route_of(self, stream: str) -> str:
        return ""

    # ----- requests -------------------------------------------------------------------------------------
    def url(self, ws_base: str, route: str, streams: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        return f"{ws_base}{PATH}", ()

    def request(self, subscribe: bool, streams: Sequence[str]) -> str:
        self._req += 1
        op = "subscribe" if subscribe else "unsubscribe"
        return orjson.dumps({"req_id": str(self._req), "op": op, "args": list(streams)}).decode()

    def ping(self) -> str:
        return '{"op":"ping"}'

    def opened(self, route: str) -> None:
        self._tickers.clear()
        self._marked.clear()
        self._books.clear()

    # ----- frames ---------------------------------------------------------------------------------------
    def split(self, raw: bytes) -> tuple[str | None, Any]:
        obj = orjson.loads(raw)
        if not isinstance(obj, dict):
            raise ValueError(f"frame is not a JSON object: {raw[:80]!r}")
        topic = obj.get("topic")
        if topic is None:
            return None, obj
        return str(topic), obj

    def control_error(self, reply: Any) -> tuple[bool, str | None]:
        if reply.get("success") is False:
            return True, str(reply.get("ret_msg") or "refused")
        return "op" in reply or "success" in reply, None

    def message(self, stream: str, data: Any) -> MarketMessage | None:
        if stream.startswith(TICKERS):
            return self._ticker(stream, data)
        if stream.startswith(BOOK):
            return self._book(stream, data)
        return None

    def _ticker(self, topic: str, msg: Mapping[str, Any]) -> MarkPrice | None:
        data = msg.get("data")
        if not isinstance(data, Mapping):
            raise ValueError(f"{topic} data is not an object")
        symbol = topic.removeprefix(TICKERS)
        ts = _ms(msg.get("ts"), f"{topic} ts")
        if msg.get("type") == "snapshot":
            base: dict[str, Any] = {}
        elif symbol in self._tickers:
            base = self._tickers[symbol]
        else:
            return None  # a delta before its snapshot: nothing to merge it into (the next snapshot resets)
        # field by field: a refused figure is left out (the one before it stands), the good ones are kept —
        # one bad index price must not hold back every mark after it, nor a good funding time beside it
        good, refused = _checked_fields(topic, data)
        merged = {**base, **good}
        self._tickers[symbol] = merged
        if refused:
            raise ValueError(f"{topic}: refused {'; '.join(refused)}")
        changed = "markPrice" in data
        mark = _mark(topic, symbol, merged, ts) if merged.get("markPrice") not in (None, "") else None
        if mark is None or (not changed and ts - self._marked.get(symbol, 0) < MARK_AGAIN_MS):
            return None
        self._marked[symbol] = ts
        return mark

    def _book(self, topic: str, msg: Mapping[str, Any]) -> BookTicker | None:
        data = msg.get("data")
        if not isinstance(data, Mapping):
            raise ValueError(f"{topic} data is not an object")
        symbol = topic.removeprefix(BOOK)
        ts = _ms(msg.get("ts"), f"{topic} ts")
        snapshot = msg.get("type") == "snapshot" or data.get("u") == 1
        if not snapshot and symbol not in self._books:
            return None
        bid, ask = (None, None) if snapshot else self._books[symbol]
        bid = _level(topic, "b", data.get("b"), bid)
        ask = _level(topic, "a", data.get("a"), ask)
        self._books[symbol] = (bid, ask)
        if bid is None or ask is None:
            return None
        update = data.get("u")
        return BookTicker(
            symbol,
            plausible.price_float(bid[0], f"{topic} bid price"),
            plausible.size_float(bid[1], f"{topic} bid size"),
            plausible.price_float(ask[0], f"{topic} ask price"),
            plausible.size_float(ask[1], f"{topic} ask size"),
            update if isinstance(update, int) and not isinstance(update, bool) else 0,
            _ms(msg.get("cts", ts), f"{topic} cts"),
            ts,
        )


MARK_FIELDS = {"markPrice": "price", "indexPrice": "price", "fundingRate": "rate", "nextFundingTime": "ms"}


def _checked_fields(topic: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The frame's fields, those a mark reads checked one by one: (the good ones, what was refused)."""
    good: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in data.items():
        kind = MARK_FIELDS.get(key)
        try:
            if kind is not None and value not in (None, ""):
                if kind == "price":
                    plausible.price_float(value, f"{topic} {key}")
                elif kind == "rate":
                    plausible.rate_float(value, f"{topic} {key}")
                else:
                    _ms(value, f"{topic} {key}")
        except ValueError as exc:
            refused.append(str(exc))
            continue
        good[key] = value
    return good, refused


def _mark(topic: str, symbol: str, ticker: Mapping[str, Any], ts: int) -> MarkPrice:
    def opt(key: str) -> float | None:
        value = ticker.get(key)
        if value in (None, ""):
            return None
        if key == "fundingRate":
            return plausible.rate_float(value, f"{topic} {key}")
        return plausible.price_float(value, f"{topic} {key}")

    next_time = ticker.get("nextFundingTime")
    return MarkPrice(
        symbol,
        plausible.price_float(ticker["markPrice"], f"{topic} markPrice"),
        opt("indexPrice"),
        opt("fundingRate"),
        None if next_time in (None, "") else _ms(next_time, f"{topic} nextFundingTime"),
        ts,
    )


def _level(topic: str, side: str, rows: Any, current: list[str] | None) -> list[str] | None:
    """The best level of one side after a frame's rows for it (a size of 0 removes a price)."""
    if rows is None:
        return current
    if not isinstance(rows, list):
        raise ValueError(f"{topic} {side} is not a list of levels")
    best = current
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) for x in row)):
            raise ValueError(f"{topic} {side} level {row!r} is not [price, size]")
        price, size = row
        plausible.price_float(price, f"{topic} {side} price")
        if plausible.size_float(size, f"{topic} {side} size") == 0:
            if best is not None and best[0] == price:
                best = None
        else:
            best = [price, size]
    return best


def _ms(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a whole number of ms: {value!r}")
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"{what} is not a whole number of ms: {value!r}") from None
