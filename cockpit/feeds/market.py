"""Market streams (bookTicker, markPrice, aggTrade) → typed messages, with staleness and a REST mark fallback.

    feed = MarketFeed("wss://fstream.binance.com", ["btcusdt@bookTicker", "btcusdt@markPrice@1s"],
                      on_book_ticker=..., on_mark_price=..., on_status=..., fetch_marks=gateway.fetch_marks)
    await feed.start()
    ...
    await feed.stop()

What is the exchange's own — stream names, which socket a stream rides on, URLs, (un)subscribe and ping
requests, how frames read — is its stream dialect's (streams.py): Binance's by default (`routing` and
`subscribe` are its options, see `BinanceStreams`), another with `streams_dialect=` (e.g. Bybit's,
feeds/bybit/market.py). Every reconnect resubscribes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from websockets.asyncio.client import ClientConnection

from cockpit.feeds.backoff import (
    CRITICAL_AFTER_DOWN_S,
    CRITICAL_AFTER_FAILURES,
    DEFAULT_BACKOFF,
    reconnect_backoff,
)
from cockpit.feeds.budget import ConnectBudget
from cockpit.feeds.connection import StatusSink, StreamConnection, cancel_tasks, safe_call
from cockpit.feeds.messages import (
    AggTrade,
    BookTicker,
    FeedState,
    FeedStatus,
    MarketMessage,
    MarkPrice,
    Rejected,
    Severity,
)
from cockpit.feeds.rejects import MarkCheck, RejectLog, RejectSink
from cockpit.feeds.streams import (
    PUBLIC_KINDS,
    BinanceStreams,
    StreamDialect,
    book_stream,
    is_mark_stream,
    mark_stream,
    normalize_stream,
    route_of,
)

log = logging.getLogger(__name__)

FetchMarks = Callable[[Sequence[str]], Awaitable[Mapping[str, float]]]
__all__ = [
    "PUBLIC_KINDS",
    "FetchMarks",
    "MarketFeed",
    "book_stream",
    "is_mark_stream",
    "mark_stream",
    "normalize_stream",
    "route_of",
]


@dataclass
class _Group:
    """The streams carried by one socket and their freshness."""

    route: str
    streams: tuple[str, ...]
    conn: StreamConnection | None = None
    last_rx: dict[str, float] = field(default_factory=dict)
    stale: set[str] = field(default_factory=set)
    # reported stale and not yet reported flowing again: kept across a reconnect (which clears `stale`), so
    # the first frame after it says "flowing again" and the stream's stale status clears where it is shown
    reported_stale: set[str] = field(default_factory=set)
    # per mark stream, when its last believed mark arrived; and the mark streams that still deliver but whose
    # marks were all refused or held for the stale limit: marked by REST until a believed mark comes again
    last_good: dict[str, float] = field(default_factory=dict)
    starved: set[str] = field(default_factory=set)
    down: bool = False  # link reported down (after having tried); not set before the first attempt
    in_url: tuple[str, ...] = ()  # the streams named in the URL of the socket's current (or next) connect
    asked: dict[str, float] = field(default_factory=dict)  # a quiet stream asked again (loop time)


class MarketFeed:
    def __init__(
        self,
        ws_base: str,
        streams: Sequence[str],
        *,
        on_book_ticker: Callable[[BookTicker], None] | None = None,
        on_mark_price: Callable[[MarkPrice], None] | None = None,
        on_agg_trade: Callable[[AggTrade], None] | None = None,
        on_status: StatusSink | None = None,
        on_rejected: RejectSink | None = None,
        fetch_marks: FetchMarks | None = None,
        last_marks: Mapping[str, float] | None = None,
        rest_poll_s: float = 2.0,
        stale_after_s: float = 5.0,
        stale_after_overrides: Mapping[str, float] | None = None,
        silent_reconnect_s: float | None = None,
        routing: Literal["split", "single"] = "split",
        subscribe: Literal["url", "message"] = "url",
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        critical_after_failures: int = CRITICAL_AFTER_FAILURES,
        critical_down_s: float = CRITICAL_AFTER_DOWN_S,
        connect_budget: ConnectBudget | None = None,
        name: str = "market",
        streams_dialect: StreamDialect | None = None,
    ) -> None:
        if not streams:
            raise ValueError("MarketFeed needs at least one stream, e.g. 'btcusdt@bookTicker'")
        if stale_after_s <= 0 or rest_poll_s <= 0:
            raise ValueError(f"stale_after_s={stale_after_s} and rest_poll_s={rest_poll_s} must be positive")
        self._s: StreamDialect = streams_dialect or BinanceStreams(routing, subscribe)
        self.ws_base = ws_base.rstrip("/")
        self.streams = tuple(dict.fromkeys(self._s.normalize(s) for s in streams))
        self.name = name
        self.stale_after_s = stale_after_s
        self.silent_reconnect_s = 2 * stale_after_s if silent_reconnect_s is None else silent_reconnect_s
        self.rest_poll_s = rest_poll_s
        self._stale_overrides = {self._s.normalize(k): v for k, v in (stale_after_overrides or {}).items()}
        self._on_status = on_status
        self._on_mark_price = on_mark_price
        self._sinks: dict[type, Callable[..., None] | None] = {
            BookTicker: on_book_ticker,
            MarkPrice: on_mark_price,
            AggTrade: on_agg_trade,
        }
        self._fetch_marks = fetch_marks
        self._tasks: list[asyncio.Task[None]] = []
        self._asking: set[asyncio.Task[None]] = set()  # quiet streams being asked again
        self._rest_task: asyncio.Task[None] | None = None
        self._marks_down = asyncio.Event()
        self.rest_polls = 0
        self.rest_confirms = 0  # one-off REST reads asked for to confirm a held stream mark
        self._asked: set[str] = set()  # symbols whose held stream mark REST was asked about (this episode)
        self.parse_errors = 0
        self._on_rejected = on_rejected
        self._reject_log = RejectLog(log, name)
        # the last good mark per symbol (exchange id) known before this feed: the first mark is judged by it
        self.marks_check = MarkCheck(last=dict(last_marks or {}))

        self._schedule = reconnect_backoff(backoff)
        self._connection = functools.partial(
            StreamConnection,
            on_status=on_status,
            backoff=self._schedule,
            silent_reconnect_s=self.silent_reconnect_s,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            open_timeout_s=open_timeout_s,
            critical_after_failures=critical_after_failures,
            critical_down_s=critical_down_s,
            connect_budget=connect_budget,
            app_ping=self._s.ping if self._s.ping_every_s is not None else None,
            app_ping_every_s=self._s.ping_every_s,
        )
        self.groups: list[_Group] = []
        for route, ss in self._by_route(self.streams).items():
            self._add_group(route, ss)

    def _by_route(self, streams: Sequence[str]) -> dict[str, list[str]]:
        by_route: dict[str, list[str]] = {}
        for s in streams:
            by_route.setdefault(self._s.route_of(s), []).append(s)
        return by_route

    def _add_group(self, route: str, streams: Sequence[str]) -> _Group:
        group = _Group(route, tuple(streams))
        label = f"{self.name}:{route.strip('/')}" if route else self.name
        group.conn = self._connection(
            label,
            self._url_for(group),
            self._frame_handler(group),
            on_open=self._opener(group),
            on_link=self._link_handler(group),
        )
        self.groups.append(group)
        return group

    # ----- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        for group in self.groups:
            assert group.conn is not None  # noqa: S101 - built in __init__
            self._tasks.append(asyncio.create_task(group.conn.run(), name=f"{group.conn.name}-run"))
        self._tasks.append(asyncio.create_task(self._watch_staleness(), name=f"{self.name}-stale"))
        self._start_rest_fallback()

    def _start_rest_fallback(self) -> None:
        """Marks by REST while their streams are down, stale or bad: once running, for the first mark stream
        followed."""
        if not self._tasks or self._rest_task is not None or self._fetch_marks is None:
            return
        if any(self._s.is_mark_stream(s) for s in self.streams):
            self._rest_task = asyncio.create_task(self._rest_fallback(), name=f"{self.name}-rest")
            self._tasks.append(self._rest_task)

    async def stop(self) -> None:
        tasks, self._tasks = [*self._tasks, *self._asking], []
        self._rest_task = None
        await cancel_tasks(tasks)
        for conn in self.connections:
            conn.mark_stopped()

    async def __aenter__(self) -> MarketFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def dialect(self) -> StreamDialect:
        """The exchange's stream names and requests (streams.py)."""
        return self._s

    @property
    def connections(self) -> list[StreamConnection]:
        return [g.conn for g in self.groups if g.conn is not None]

    @property
    def connected(self) -> bool:
        return all(c.is_open for c in self.connections)

    async def wait_connected(self) -> None:
        """Until every socket of this feed is open (and subscribed)."""
        for conn in self.connections:
            await conn.open.wait()

    def stream_ages(self) -> dict[str, float | None]:
        """Seconds since each stream last delivered (None: its socket is down)."""
        now = asyncio.get_running_loop().time()
        ages: dict[str, float | None] = {}
        for g in self.groups:
            opened = g.conn.opened_at if g.conn is not None else None
            for s in g.streams:
                ages[s] = None if opened is None else now - max(g.last_rx.get(s, opened), opened)
        return ages

    # ----- sockets ----------------------------------------------------------------------------------------
    def _url_for(self, group: _Group) -> Callable[[], Awaitable[str]]:
        async def make() -> str:  # at each connect: streams subscribed at runtime are in the next URL
            url, group.in_url = self._s.url(self.ws_base, group.route, group.streams)
            return url

        return make

    def _opener(self, group: _Group) -> Callable[[ClientConnection], Awaitable[None]]:
        async def on_open(ws: ClientConnection) -> None:
            group.stale.clear()
            group.last_rx.clear()
            group.last_good.clear()  # `starved` stays: only a believed mark ends that
            self._s.opened(group.route)
            # by message: everything; by URL: what was subscribed while this connect was under way
            missing = [s for s in group.streams if s not in group.in_url]
            if missing:
                await self._send(ws, True, missing)

        return on_open

    async def _send(self, ws: ClientConnection, subscribe: bool, streams: Sequence[str]) -> None:
        await ws.send(self._s.request(subscribe, streams))

    # ----- streams added and removed while running -------------------------------------------------------
    async def subscribe(self, streams: Sequence[str]) -> list[str]:
        """Follow more streams while running: a subscribe request on the open socket of their route (a route
        with no socket yet gets one); every later reconnect carries them. Returns the streams that were
        new."""
        new = [s for s in dict.fromkeys(self._s.normalize(x) for x in streams) if s not in self.streams]
        if not new:
            return []
        self.streams = (*self.streams, *new)
        now = asyncio.get_running_loop().time()
        for route, added in self._by_route(new).items():
            group = next((g for g in self.groups if g.route == route), None)
            if group is None:
                group = self._add_group(route, added)
                if self._tasks and group.conn is not None:
                    self._tasks.append(asyncio.create_task(group.conn.run(), name=f"{group.conn.name}-run"))
                continue
            group.streams = (*group.streams, *added)
            for s in added:  # silent since the subscription, not since the socket opened
                group.last_rx[s] = now
                group.last_good[s] = now
            ws = group.conn.ws if group.conn is not None and group.conn.is_open else None
            if ws is not None:
                try:
                    await self._send(ws, True, added)
                except Exception as exc:  # the socket is going down: its reconnect subscribes them
                    log.info(
                        "%s: SUBSCRIBE %s not sent (%s); the next connect carries it", self.name, added, exc
                    )
        self._start_rest_fallback()
        return new

    async def unsubscribe(self, streams: Sequence[str]) -> list[str]:
        """Stop following streams while running (an unsubscribe request). Returns the streams that were
        followed."""
        gone = [s for s in dict.fromkeys(self._s.normalize(x) for x in streams) if s in self.streams]
        if not gone:
            return []
        self.streams = tuple(s for s in self.streams if s not in gone)
        for group in self.groups:
            mine = [s for s in group.streams if s in gone]
            if not mine:
                continue
            group.streams = tuple(s for s in group.streams if s not in mine)
            for s in mine:
                symbol = self._s.symbol_of(s)
                if self._s.is_mark_stream(s) and not any(
                    self._s.is_mark_stream(x) and self._s.symbol_of(x) == symbol for x in self.streams
                ):
                    self.marks_check.forget(symbol)
                    self._asked.discard(symbol)
                group.last_rx.pop(s, None)
                group.last_good.pop(s, None)
                group.asked.pop(s, None)
                group.starved.discard(s)
                group.stale.discard(s)
                group.reported_stale.discard(s)
            ws = group.conn.ws if group.conn is not None and group.conn.is_open else None
            if ws is not None:
                try:
                    await self._send(ws, False, mine)
                except Exception as exc:  # the socket is going down: its reconnect no longer names them
                    log.info("%s: UNSUBSCRIBE %s not sent (%s)", self.name, mine, exc)
        self._update_marks_down()
        return gone

    def _link_handler(self, group: _Group) -> Callable[[bool], None]:
        def on_link(up: bool) -> None:
            group.down = not up
            if not up:
                group.stale.clear()
            self._update_marks_down()

        return on_link

    def _frame_handler(self, group: _Group) -> Callable[[bytes], None]:
        sinks = self._sinks
        last_rx = group.last_rx
        stale = group.stale
        reported = group.reported_stale
        split, message = self._s.split, self._s.message
        refusals = self._s.refusals

        def on_frame(raw: bytes) -> None:
            stream: str | None = None
            try:
                stream, data = split(raw)
                if stream is None:
                    self._control_reply(group, data)
                    return
                msg: MarketMessage | None = message(stream, data)
                if refusals:
                    for reason in refusals:
                        self._reject("market_feed", reason, raw)
                    refusals.clear()
            except ValueError as exc:  # orjson.JSONDecodeError and ParseError are ValueErrors
                self.parse_errors += 1
                self._reject("market_feed", f"unparseable frame: {exc}", raw)
                if stream is None or stream not in last_rx and stream not in group.streams:
                    return
                msg = None  # the stream is alive (its data is bad: that is the "data" health item's news)
            conn = group.conn
            assert conn is not None  # noqa: S101 - set right after the handler is made
            last_rx[stream] = conn.last_rx  # the connection stamped this frame's arrival (loop time)
            if (stale and stream in stale) or (reported and stream in reported):
                stale.discard(stream)
                reported.discard(stream)
                self._update_marks_down()
                conn.emit(FeedState.CONNECTED, Severity.INFO, "data flowing again", stream=stream)
            if isinstance(msg, MarkPrice):
                if not self._mark_believed(msg):
                    return
                group.last_good[stream] = conn.last_rx
                if group.starved and stream in group.starved:
                    group.starved.discard(stream)
                    self._update_marks_down()
                    log.info(
                        "%s: good marks again on %s; REST marks no longer needed for it", self.name, stream
                    )
            if msg is not None:
                sink = sinks[type(msg)]
                if sink is not None:
                    safe_call(sink, msg)

        return on_frame

    def _reject(self, source: str, reason: str, raw: bytes | str = b"") -> None:
        self._reject_log(reason, raw)
        safe_call(self._on_rejected, Rejected(source, reason))

    def _mark_believed(self, mark: MarkPrice) -> bool:
        """A mark implausibly far from the last good one is held until the other source agrees (refused, and
        reported, when it is proven wrong); a held stream mark has REST asked at once, once per episode."""
        check, symbol = self.marks_check, mark.symbol
        disputed = symbol in check.disputed
        take, refused = check.judge(symbol, mark.mark, mark.source)
        if refused is not None:  # reported as bad data from the source that sent the refused mark
            self._reject("market_feed" if refused.source == "ws" else "rest_marks", refused.reason)
        held = check.held.get(symbol)
        if held is None or held[1] != "ws":
            self._asked.discard(symbol)  # the episode is over: the next held stream mark asks REST again
        elif symbol not in self._asked:
            self._asked.add(symbol)
            self._ask_rest(symbol)
        if (symbol in check.disputed) != disputed:
            self._update_marks_down()
            if disputed:
                log.info(
                    "%s: the stream agrees with REST on %s again; it marks the symbol again",
                    self.name,
                    symbol,
                )
            else:
                log.warning(
                    "%s: REST disagrees with the stream's mark for %s; its frames are refused and REST marks "
                    "it until the stream agrees again",
                    self.name,
                    symbol,
                )
        return take

    def _ask_rest(self, symbol: str) -> None:
        """One REST read of `symbol`'s mark, now: the independent source a held stream mark waits for."""
        if self._fetch_marks is None or not self._tasks:
            return  # no REST: the mark stays held (the symbol keeps its last good mark)
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(asyncio.create_task(self._confirm_by_rest(symbol), name=f"{self.name}-confirm"))

    async def _confirm_by_rest(self, symbol: str) -> None:
        assert self._fetch_marks is not None  # noqa: S101 - only asked with one
        try:
            marks = await self._fetch_marks([symbol])
        except Exception as exc:  # the mark stays held; the REST fallback asks again once the stream starves
            self._rest_failed(f"REST mark to confirm a held {symbol} mark failed (the mark stays held)", exc)
            return
        self.rest_confirms += 1
        held = self.marks_check.held.get(symbol)
        if symbol in marks and held is not None and held[1] == "ws":  # else the episode ended meanwhile
            self._rest_mark(symbol, marks[symbol])

    def _rest_mark(self, symbol: str, mark: float) -> None:
        rest = MarkPrice(symbol, float(mark), None, None, None, int(time.time() * 1000), source="rest")
        if self._mark_believed(rest):
            safe_call(self._on_mark_price, rest)

    def _rest_failed(self, what: str, exc: Exception) -> None:
        safe_call(
            self._on_status,
            FeedStatus(
                f"{self.name}:rest",
                FeedState.DISCONNECTED,
                Severity.WARNING,
                f"{what}: {type(exc).__name__}: {exc}",
            ),
        )

    def _control_reply(self, group: _Group, data: dict[str, object]) -> None:
        known, error = self._s.control_error(data)
        if error is not None and group.conn is not None:
            group.conn.emit(FeedState.CONNECTED, Severity.WARNING, f"subscription error: {error}")
        elif not known:
            log.debug("%s: ignoring frame without stream wrapper: %r", self.name, data)

    # ----- staleness --------------------------------------------------------------------------------------
    async def _watch_staleness(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self._stale_overrides
        tick = min(max(min((self.stale_after_s, *limits.values())) / 5, 0.05), 1.0)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for g in self.groups:
                conn = g.conn
                if conn is None or conn.opened_at is None:
                    continue
                for s in g.streams:
                    last = max(g.last_rx.get(s, conn.opened_at), conn.opened_at)
                    age = now - last
                    limit = limits.get(s, self.stale_after_s)
                    if age > limit and s not in g.stale and self._s.refresh_when_quiet:
                        asked = g.asked.get(s)
                        if asked is None or asked < last:  # silent since its last frame: ask again, once
                            g.asked[s] = now
                            task = asyncio.create_task(self._ask_again(g, s))
                            self._asking.add(task)
                            task.add_done_callback(self._asking.discard)
                            continue
                        if now - asked <= limit:
                            continue  # asked: its snapshot has the stale limit to come
                    if self._s.is_mark_stream(s) and age <= limit and s not in g.starved:  # delivering
                        self._watch_marks(
                            g, s, now - max(g.last_good.get(s, conn.opened_at), conn.opened_at), limit
                        )
                    if age > limit and s not in g.stale:
                        g.stale.add(s)
                        g.reported_stale.add(s)
                        self._update_marks_down()
                        conn.emit(
                            FeedState.STALE,
                            Severity.WARNING,
                            f"no message on {s} for {age:.1f} s (limit {limit} s)",
                            stream=s,
                            age_s=round(age, 3),
                        )

    async def _ask_again(self, group: _Group, stream: str) -> None:
        """A stream the exchange sends only on change has been silent for its stale limit: unsubscribe and
        subscribe it again, so that the exchange sends its snapshot — a quiet market answers at once, a dead
        stream does not (and is then called stale)."""
        conn = group.conn
        ws = conn.ws if conn is not None and conn.is_open else None
        if ws is None or stream not in group.streams:
            return
        try:
            await ws.send(self._s.request(False, [stream]))
            if stream in group.streams:  # not unsubscribed meanwhile
                await ws.send(self._s.request(True, [stream]))
        except Exception as exc:  # the socket is going down: its reconnect subscribes it again
            log.info("%s: could not ask for %s again (%s)", self.name, stream, exc)

    def _watch_marks(self, group: _Group, stream: str, age: float, limit: float) -> None:
        """A mark stream that delivers, but no mark believed for the stale limit (NaNs, marks held and never
        confirmed): not a stale stream — its link is fine — but its symbol is marked by REST meanwhile, so
        equity and drawdown keep following the market (the refusals are the "data" health item's news)."""
        if age <= limit or group.down:
            return
        group.starved.add(stream)
        self._update_marks_down()
        log.warning(
            "%s: no believable mark on %s for %.1f s (limit %s s) while it sends; marked by REST meanwhile",
            self.name,
            stream,
            age,
            limit,
        )

    # ----- REST fallback for marks -----------------------------------------------------------------------
    def _rest_mark_symbols(self) -> list[str]:
        """The symbols marked by REST: their mark stream is down, stale, delivers no believable mark, or was
        proven wrong by REST (until it agrees again)."""
        symbols: dict[str, None] = {}
        disputed = self.marks_check.disputed
        for g in self.groups:
            for s in g.streams:
                if not self._s.is_mark_stream(s):
                    continue
                symbol = self._s.symbol_of(s)
                if g.down or s in g.stale or s in g.starved or symbol in disputed:
                    symbols[symbol] = None
        return list(symbols)

    def _update_marks_down(self) -> None:
        if self._rest_mark_symbols():
            self._marks_down.set()
        else:
            self._marks_down.clear()

    async def _rest_fallback(self) -> None:
        assert self._fetch_marks is not None  # noqa: S101 - only started with one
        fetch = self._fetch_marks
        while True:
            await self._marks_down.wait()
            symbols = self._rest_mark_symbols()
            if symbols:
                try:
                    marks = await fetch(symbols)
                except Exception as exc:  # reported, then tried again next period
                    self._rest_failed("REST mark fallback failed", exc)
                else:
                    self.rest_polls += 1
                    for symbol, mark in marks.items():
                        if symbol in symbols:
                            self._rest_mark(symbol, mark)
            await asyncio.sleep(self.rest_poll_s)
