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

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from cockpit.core import plausible
from cockpit.feeds.messages import BookTicker, MarketMessage, MarkPrice

PATH = "/v5/public/linear"
PING_EVERY_S = 20.0
MARK_AGAIN_MS = 1000  # an unchanged mark is given again this often while the ticker sends deltas
BOOK, TICKERS = "orderbook.1.", "tickers."
BOOK_LEN = len(BOOK)


class BybitStreams:
    ping_every_s: float | None = PING_EVERY_S
    refresh_when_quiet = True  # tickers and orderbook.1 push only what changed (the book: again after 3 s)

    def __init__(self) -> None:
        self.refusals: list[str] = []
        self._tickers: dict[str, dict[str, Any]] = {}  # symbol → the ticker as snapshot + deltas left it
        self._marked: dict[str, int] = {}  # symbol → ts of the last mark given
        self._books: dict[str, tuple[Level | None, Level | None]] = {}  # symbol → best bid, ask
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
        if stream.startswith(BOOK):  # the busiest first
            return self._book(stream, data)
        if stream.startswith(TICKERS):
            return self._ticker(stream, data)
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
        if refused and "markPrice" in data and "markPrice" not in good:
            raise ValueError(f"{topic}: refused {'; '.join(refused)}")  # no mark in this frame
        if refused:  # said (bad data), and the good mark beside it still given
            self.refusals.append(f"{topic}: refused {'; '.join(refused)}")
        changed = "markPrice" in data
        mark = _mark(topic, symbol, merged, ts) if merged.get("markPrice") not in (None, "") else None
        if mark is None or (not changed and ts - self._marked.get(symbol, 0) < MARK_AGAIN_MS):
            return None
        self._marked[symbol] = ts
        return mark

    def _book(self, topic: str, msg: Mapping[str, Any]) -> BookTicker | None:
        data = msg.get("data")
        if type(data) is not dict:
            raise ValueError(f"{topic} data is not an object")
        symbol = topic[BOOK_LEN:]
        ts = msg.get("ts")
        if type(ts) is not int:
            ts = _ms(ts, topic, "ts")
        books = self._books
        if msg.get("type") == "snapshot" or data.get("u") == 1:
            bid = _level(topic, "b", data.get("b"), None)
            ask = _level(topic, "a", data.get("a"), None)
        else:
            held = books.get(symbol)
            if held is None:
                return None  # a delta before its snapshot
            bid = _level(topic, "b", data.get("b"), held[0])
            ask = _level(topic, "a", data.get("a"), held[1])
        books[symbol] = (bid, ask)
        if bid is None or ask is None:
            return None
        update = data.get("u")
        cts = msg.get("cts", ts)
        return BookTicker(
            symbol,
            bid[2],
            bid[3],
            ask[2],
            ask[3],
            update if type(update) is int else 0,
            cts if type(cts) is int else _ms(cts, topic, "cts"),
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


Level = tuple[str, str, float, float]  # price and size as sent, and as read (once, when it arrived)


def _level(topic: str, side: str, rows: Any, current: Level | None) -> Level | None:
    """The best level of one side after a frame's rows for it (a size of 0 removes a price). Each figure is
    read once, when its level arrives; the side a frame leaves alone keeps its figures as read."""
    if rows is None or (not rows and type(rows) is list):  # none, or an empty list: the side is as it was
        return current
    if type(rows) is not list:
        raise ValueError(f"{topic} {side} is not a list of levels")
    best = current
    for row in rows:
        if not (type(row) is list and len(row) == 2 and type(row[0]) is str and type(row[1]) is str):
            raise ValueError(f"{topic} {side} level {row!r} is not [price, size]")
        price, size = row
        price_f = _quick(price)
        if not 0.0 < price_f < plausible.PRICE_LIMIT_FLOAT:  # refused, naming why (or an edge it allows)
            price_f = plausible.price_float(price, f"{topic} {side} price")
        size_f = _quick(size)
        if not 0.0 <= size_f < plausible.QUANTITY_LIMIT_FLOAT:
            size_f = plausible.size_float(size, f"{topic} {side} size")
        if size_f == 0:
            if best is not None and best[0] == price:
                best = None
        else:
            best = (price, size, price_f, size_f)
    return best


def _quick(text: str) -> float:
    """A decimal string as a float; NaN for one float() cannot read (the checked path then names it)."""
    if len(text) > plausible.FIGURE_TEXT_MAX:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def _ms(value: Any, what: str, field: str = "") -> int:
    if type(value) is int:
        return value
    what = f"{what} {field}" if field else what
    if isinstance(value, bool):
        raise ValueError(f"{what} is not a whole number of ms: {value!r}")
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"{what} is not a whole number of ms: {value!r}") from None
