"""Bybit v5 websockets: `/v5/public/linear` (tickers, level-1 order book) and `/v5/private` (the account's
order, execution, position and wallet pushes after `auth`).

Requests are `{"req_id"?, "op": "subscribe" | "unsubscribe" | "ping" | "auth", "args": [...]}`. Public:
`tickers.{symbol}` sends a snapshot, then deltas with only the fields that changed; `orderbook.1.{symbol}`
sends a snapshot, deltas when the top of the book moves, and a new snapshot after 3 s without change. An
unknown topic or symbol is refused (`success: false`). Private: `auth` with `[key, expires, sign]`; topics
`order`, `execution`, `position`, `wallet` (or `order.linear` etc.) only once authenticated. Pushes are
`{id, topic, creationTime, data: [...]}`. Bybit does not document the refusal of a private subscription
before `auth`; the simulator answers `success: false` with "Request not authorized".

Application-level `{"op": "ping"}` is answered in each socket's own pong shape and keeps the socket alive;
one without a ping for `idle_s` seconds (600 by default, Bybit's 10 minutes; a private URL may shorten it
with `?max_active_time=30s`..`600s`) is closed. The `ws_drop` and `maintenance` faults close every socket
and refuse new ones while they last; `ws_stall` stops every push; a `hostile` fault on `mark` serves its
bad value in the next ticker frame of its symbol (its `field` a path into the frame: `data.markPrice`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from cockpit.sim import hostile
from cockpit.sim.bybit import auth, views

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue

PUBLIC_PATH, PRIVATE_PATH = "/v5/public/linear", "/v5/private"
PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
IDLE_S = 600.0
BOOK_RESNAPSHOT_MS = 3000
SEND_QUEUE = 10_000
ACTIVE_TIME = re.compile(r"^(\d+)([sm])$")


@dataclass(eq=False)
class Socket:
    ws: web.WebSocketResponse
    private: bool
    idle_s: float
    conn_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    topics: set[str] = field(default_factory=set)
    authed: bool = False
    last_ping: float = field(default_factory=time.monotonic)
    tickers: dict[str, dict[str, str]] = field(default_factory=dict)  # symbol -> the ticker as last sent
    books: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # symbol -> (bid, ask, sent ms)
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))


class BybitStreams:
    def __init__(self, sim: Venue, idle_s: float = IDLE_S) -> None:
        self.sim = sim
        self.idle_s = idle_s
        self.sockets: set[Socket] = set()
        self.messages_sent = 0
        self._push_ids = itertools.count(1)
        self._update_ids = itertools.count(1_000_000)

    def register(self, app: web.Application) -> None:
        app.router.add_get(PUBLIC_PATH, self.handle_public)
        app.router.add_get(PRIVATE_PATH, self.handle_private)

    async def close_all(self, code: int = 1001, message: bytes = b"going away") -> None:
        for sock in list(self.sockets):
            with contextlib.suppress(Exception):
                await sock.ws.close(code=code, message=message)

    # ----- pushes -------------------------------------------------------------------------------------
    def push_private(
        self, topic: str, data: list[dict[str, Any]], served: dict[str, Any] | None = None
    ) -> None:
        """Push `data` on a private topic to every authenticated subscriber (as a hostile fault serves it
        when `served` gives the fault's params)."""
        now = self.sim.clock.now_ms()
        for sock in self.sockets:
            if not sock.authed:
                continue
            name = (
                topic
                if topic in sock.topics
                else f"{topic}.linear"
                if f"{topic}.linear" in sock.topics
                else None
            )
            if name is None:
                continue
            message: Any = {"id": f"{next(self._push_ids)}", "topic": name, "creationTime": now, "data": data}
            if served is not None:
                message = hostile.served(message, served)
            self._enqueue(sock, orjson.dumps(message))

    def publish_market(self) -> None:
        """One market tick: ticker deltas and order-book changes to public subscribers."""
        now = self.sim.clock.now_ms()
        for sock in self.sockets:
            if sock.private:
                continue
            for topic in sorted(sock.topics):
                kind, symbol = topic.rsplit(".", 1)
                if kind == "tickers":
                    self._ticker(sock, symbol, now, snapshot=False)
                else:
                    self._book(sock, symbol, now, snapshot=False)

    def _ticker(self, sock: Socket, symbol: str, now: int, snapshot: bool) -> None:
        fresh = {k: str(v) for k, v in views.ticker(self.sim, symbol).items()}
        bad = self.sim.faults.take("hostile", target="mark", symbol=symbol)
        if snapshot:
            data: dict[str, Any] = fresh
        else:
            last = sock.tickers.get(symbol, {})
            data = {k: v for k, v in fresh.items() if last.get(k) != v}
            if not data and bad is None:
                return
            data = {"symbol": symbol, **data}
            if bad is not None:
                data.setdefault("markPrice", fresh["markPrice"])
        sock.tickers[symbol] = fresh
        message: Any = {
            "topic": f"tickers.{symbol}",
            "type": "snapshot" if snapshot else "delta",
            "data": data,
            "cs": next(self._update_ids),
            "ts": now,
        }
        if bad is not None:
            message = hostile.served(message, bad.params)
        self._enqueue(sock, orjson.dumps(message))

    def _book(self, sock: Socket, symbol: str, now: int, snapshot: bool) -> None:
        spec = self.sim.specs[symbol]
        bid, ask = (views.px(spec, p) for p in self.sim.prices.bid_ask(symbol))
        last = sock.books.get(symbol)
        if last is not None and not snapshot and (bid, ask) == last[:2]:
            if now - last[2] < BOOK_RESNAPSHOT_MS:
                return
            snapshot = True  # three seconds without a change: Bybit sends the level again
        if snapshot or last is None:
            bids, asks, kind = [[bid, "10"]], [[ask, "10"]], "snapshot"
        else:
            bids = [[bid, "10"]] if bid != last[0] else []
            asks = [[ask, "10"]] if ask != last[1] else []
            kind = "delta"
        sock.books[symbol] = (bid, ask, now)
        seq = next(self._update_ids)
        message = {
            "topic": f"orderbook.1.{symbol}",
            "type": kind,
            "ts": now,
            "data": {"s": symbol, "b": bids, "a": asks, "u": seq, "seq": seq},
            "cts": now,
        }
        self._enqueue(sock, orjson.dumps(message))

    async def blast(self, symbol: str, count: int) -> int:
        """Send `count` `orderbook.1` deltas of `symbol` (the best bid and ask moving a tick in turn) to every
        public socket subscribed to it, as fast as the sockets take them, bypassing the paced queue: the
        firehose for throughput benchmarks."""
        spec = self.sim.specs[symbol]
        topic = f"orderbook.1.{symbol}"
        bid, ask = self.sim.prices.bid_ask(symbol)
        now = self.sim.clock.now_ms()
        frames = []
        for i in range(1000):
            moved = spec.tick_size * (i % 10)
            levels = {"b": [[views.px(spec, bid - moved), "10"]], "a": []} if i % 2 else {
                "b": [], "a": [[views.px(spec, ask + moved), "10"]]}  # fmt: skip
            data = {"s": symbol, **levels, "u": i + 2, "seq": i + 2}
            message = {"topic": topic, "type": "delta", "ts": now + i, "data": data, "cts": now + i}
            frames.append(orjson.dumps(message).decode())
        sent = 0
        for sock in [s for s in self.sockets if not s.private and topic in s.topics]:
            for i in range(count):
                await sock.ws.send_str(frames[i % len(frames)])
            sent += count
        return sent

    def _enqueue(self, sock: Socket, payload: bytes, control: bool = False) -> None:
        """Queue a frame for the socket's writer; a stalled stream (`ws_stall`) drops pushes, not replies."""
        if not control and self.sim.faults.active("ws_stall") is not None:
            return
        try:
            sock.queue.put_nowait(payload)
        except asyncio.QueueFull:
            sock.queue = asyncio.Queue(1)
            sock.queue.put_nowait(None)

    # ----- sockets ------------------------------------------------------------------------------------
    async def handle_public(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, private=False, idle_s=self.idle_s)

    async def handle_private(self, request: web.Request) -> web.StreamResponse:
        idle = self.idle_s
        wanted = ACTIVE_TIME.match(request.query.get("max_active_time", ""))
        if wanted is not None:
            seconds = int(wanted.group(1)) * (60 if wanted.group(2) == "m" else 1)
            idle = min(idle, float(min(max(seconds, 30), 600)))
        return await self._serve(request, private=True, idle_s=idle)

    async def _serve(self, request: web.Request, private: bool, idle_s: float) -> web.StreamResponse:
        faults = self.sim.faults
        if faults.active("maintenance") is not None or faults.active("ws_drop") is not None:
            return web.Response(status=503, text="503 Service Temporarily Unavailable")
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, compress=False)
        await ws.prepare(request)
        sock = Socket(ws=ws, private=private, idle_s=idle_s)
        self.sockets.add(sock)
        writer = asyncio.create_task(self._writer(sock))
        try:
            while True:
                left = sock.last_ping + sock.idle_s - time.monotonic()
                if left <= 0:
                    await ws.close(code=1000, message=b"idle")
                    break
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    continue
                if msg.type != WSMsgType.TEXT:
                    break
                replies, subscribed = self._control(sock, msg.data)
                for reply in replies:
                    self._enqueue(sock, orjson.dumps(reply), control=True)
                self._snapshots(sock, subscribed)
        finally:
            self.sockets.discard(sock)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _writer(self, sock: Socket) -> None:
        try:
            while True:
                payload = await sock.queue.get()
                if payload is None:
                    await sock.ws.close(code=1008, message=b"client too slow")
                    return
                await sock.ws.send_str(payload.decode())
                self.messages_sent += 1
        except (ConnectionResetError, RuntimeError):
            return

    # ----- requests -----------------------------------------------------------------------------------
    def _control(self, sock: Socket, text: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The replies to one request, and the topics it subscribed (whose snapshots follow the ack)."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict):
            return [self._ack(sock, "", "", False, "error:invalid op")], []
        op, req_id, args = str(msg.get("op", "")), str(msg.get("req_id", "") or ""), msg.get("args") or []
        if op == "ping":
            sock.last_ping = time.monotonic()
            if sock.private:
                server_ms = str(self.sim.clock.now_ms())
                return [{"req_id": req_id, "op": "pong", "args": [server_ms], "conn_id": sock.conn_id}], []
            return [self._ack(sock, op, req_id, True, "pong")], []
        if op == "auth" and sock.private:
            if sock.authed:
                return [self._ack(sock, op, req_id, False, "Request already authorized")], []
            now = self.sim.clock.now_ms()
            sock.authed = auth.check_ws_auth(args, self.sim.api_key, self.sim.api_secret, now)
            return [self._ack(sock, op, req_id, sock.authed, "" if sock.authed else "Params Error")], []
        if op in ("subscribe", "unsubscribe") and isinstance(args, list):
            topics = [str(a) for a in args]
            refused = self._refused(sock, topics) if op == "subscribe" else None
            if refused is not None:
                return [self._ack(sock, op, req_id, False, refused)], []
            if op == "unsubscribe":
                sock.topics.difference_update(topics)
                return [self._ack(sock, op, req_id, True, "")], []
            sock.topics.update(topics)
            return [self._ack(sock, op, req_id, True, "" if sock.private else "subscribe")], topics
        return [self._ack(sock, op, req_id, False, "error:invalid op")], []

    def _refused(self, sock: Socket, topics: list[str]) -> str | None:
        if sock.private:
            if not sock.authed:
                return "Request not authorized"
            bad = [
                t
                for t in topics
                if t not in PRIVATE_TOPICS and t.removesuffix(".linear") not in PRIVATE_TOPICS
            ]
            return f"Invalid topic :[{', '.join(bad)}]" if bad else None
        for topic in topics:
            kind, _, symbol = topic.rpartition(".")
            if kind not in ("tickers", "orderbook.1"):
                return f"Invalid topic :[{topic}]"
            if symbol not in self.sim.specs:
                return f"Invalid symbol :[{symbol}]"
        return None

    def _snapshots(self, sock: Socket, topics: list[str]) -> None:
        """A public subscription starts with a snapshot, sent after the ack (queued behind it)."""
        if sock.private:
            return
        now = self.sim.clock.now_ms()
        for topic in topics:
            kind, _, symbol = topic.rpartition(".")
            if kind == "tickers":
                self._ticker(sock, symbol, now, snapshot=True)
            else:
                self._book(sock, symbol, now, snapshot=True)

    @staticmethod
    def _ack(sock: Socket, op: str, req_id: str, success: bool, ret_msg: str) -> dict[str, Any]:
        return {"success": success, "ret_msg": ret_msg, "conn_id": sock.conn_id, "req_id": req_id, "op": op}
