"""WebSocket streams in Binance USD-M's format: market streams and the listenKey user data stream.

Paths served: raw `/ws/<stream>[/<stream>…]`, `/public/ws/…`, `/market/ws/…`; combined
`/stream?streams=a/b` (also under `/public` and `/market`), wrapped as `{"stream", "data"}`; user data on
`/private/ws?listenKey=…` and `/ws/<listenKey>`, or `/private/ws` (and any `/ws`) opened without one and then
sent `SUBSCRIBE` with the listenKey as a parameter, as Binance's current SDKs do. `SUBSCRIBE` /
`UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` work on any connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from cockpit.sim.faults import FaultBoard

SEND_QUEUE = 10_000  # a client this far behind is cut off, as Binance does with slow consumers


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    combined: bool
    streams: set[str] = field(default_factory=set)
    listen_key: str | None = None
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))


class StreamHub:
    """Every open socket, what it listens to, and the fan-out of messages to them."""

    def __init__(self, faults: FaultBoard, listen_keys: dict[str, int]) -> None:
        self._faults = faults
        self._listen_keys = listen_keys
        self.connections: set[Connection] = set()
        self.messages_sent = 0

    # ----- publishing -------------------------------------------------------------------------------
    def publish(self, stream: str, data: Any) -> None:
        raw: bytes | None = None
        wrapped: bytes | None = None
        for conn in self.connections:
            if stream not in conn.streams:
                continue
            if conn.combined:
                wrapped = wrapped or orjson.dumps({"stream": stream, "data": data})
                self._enqueue(conn, wrapped)
            else:
                raw = raw or orjson.dumps(data)
                self._enqueue(conn, raw)

    def publish_user(self, event: Any) -> None:
        payload: bytes | None = None
        for conn in self.connections:
            if conn.listen_key is None:
                continue
            payload = payload or orjson.dumps(event)
            self._enqueue(conn, payload)

    async def blast(self, stream: str, frames: list[dict[str, Any]], count: int) -> int:
        """Send `count` frames (cycling `frames`) to every subscriber of `stream` as fast as the sockets take
        them, bypassing the paced queue: the firehose for throughput benchmarks."""
        targets = [c for c in self.connections if stream in c.streams]
        raw = [orjson.dumps(f).decode() for f in frames]
        wrapped = [orjson.dumps({"stream": stream, "data": f}).decode() for f in frames]
        sent = 0
        for conn in targets:
            texts = wrapped if conn.combined else raw
            for i in range(count):
                await conn.ws.send_str(texts[i % len(texts)])
            sent += count
        return sent

    def has_subscribers(self, stream: str) -> bool:
        return any(stream in c.streams for c in self.connections)

    def _enqueue(self, conn: Connection, payload: bytes) -> None:
        if self._faults.active("ws_stall") is not None:
            return
        try:
            conn.queue.put_nowait(payload)
        except asyncio.QueueFull:
            conn.queue = asyncio.Queue(1)
            conn.queue.put_nowait(None)  # writer closes the socket

    # ----- connection control -----------------------------------------------------------------------
    async def close_all(self, code: int = 1001, message: bytes = b"going away") -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=message)

    async def close_listen_key(self, key: str) -> None:
        for conn in list(self.connections):
            if conn.listen_key == key:
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=1000, message=b"listenKey closed")

    def refused(self) -> str | None:
        if self._faults.active("maintenance") is not None:
            return "System is under maintenance."
        if self._faults.active("ws_drop") is not None:
            return "Service unavailable."
        return None

    # ----- handlers ---------------------------------------------------------------------------------
    async def handle_raw(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info.get("streams", "")
        if path in self._listen_keys:
            return await self._serve(request, combined=False, listen_key=path)
        return await self._serve(request, combined=False, streams=_split(path))

    async def handle_combined(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, combined=True, streams=_split(request.query.get("streams", "")))

    async def handle_private(self, request: web.Request) -> web.StreamResponse:
        """`?listenKey=…` in the URL, or none: then the key comes later in a SUBSCRIBE."""
        key = request.query.get("listenKey")
        if key is not None and key not in self._listen_keys:
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
        return await self._serve(request, combined="stream" in request.path, listen_key=key)

    async def _serve(
        self,
        request: web.Request,
        combined: bool,
        streams: set[str] | None = None,
        listen_key: str | None = None,
    ) -> web.StreamResponse:
        reason = self.refused()
        if reason is not None:
            return web.json_response({"code": -1, "msg": reason}, status=503)
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, compress=False)
        await ws.prepare(request)
        conn = Connection(ws=ws, combined=combined, streams=set(streams or ()), listen_key=listen_key)
        self.connections.add(conn)
        writer = asyncio.create_task(self._writer(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = self._control(conn, msg.data)
                    if reply is not None:
                        await ws.send_str(orjson.dumps(reply).decode())
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.connections.discard(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _writer(self, conn: Connection) -> None:
        try:
            while True:
                payload = await conn.queue.get()
                if payload is None:
                    await conn.ws.close(code=1008, message=b"client too slow")
                    return
                await conn.ws.send_str(payload.decode())
                self.messages_sent += 1
        except (ConnectionResetError, RuntimeError):
            return

    def _control(self, conn: Connection, text: str) -> dict[str, Any] | None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}}
        if not isinstance(msg, dict):
            return {"error": {"code": 3, "msg": "Invalid request"}}
        method, params, req_id = msg.get("method"), msg.get("params") or [], msg.get("id")
        names = [str(p) for p in params]
        if method == "SUBSCRIBE":
            for name in names:
                if name in self._listen_keys:
                    conn.listen_key = name  # the user data stream of that listenKey
                else:
                    conn.streams.add(name)
            return {"result": None, "id": req_id}
        if method == "UNSUBSCRIBE":
            if conn.listen_key in names:
                conn.listen_key = None
            conn.streams.difference_update(names)
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            held = sorted(conn.streams) + ([conn.listen_key] if conn.listen_key else [])
            return {"result": held, "id": req_id}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": req_id}


def _split(path: str) -> set[str]:
    return {s for s in path.split("/") if s}
