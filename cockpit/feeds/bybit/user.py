"""Bybit v5's private socket: the account's order, execution, position and wallet pushes → typed events.

    feed = BybitUserFeed("wss://stream.bybit.com", key, secret, on_user_event=..., on_status=...,
                         on_auth=...)
    await feed.start()

Each connect to `/v5/private` logs in first — `{"op": "auth", "args": [key, expires_ms,
hex(HMAC_SHA256(secret, "GET/realtime" + expires_ms))]}` — and subscribes `order`, `execution`, `position`
and `wallet` only once the reply says it succeeded. A refused login is an auth failure: `on_auth(False,
reason)` (the engine makes it critical, like a refused key on REST), and the socket reconnects with the same
backoff as any (`on_auth(True, "")` after the next login that succeeds). The socket wants `{"op": "ping"}`
every 20 s (protocol pings do not count); its pong is a frame, so a socket that stops answering for
`silent_after_s` is reconnected. Frames are read by `PrivateParser` (parse.py); one cockpit cannot read is
refused whole and counted (`Rejected("user_stream", …)`), never half-applied.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection

from cockpit.feeds.backoff import (
    CRITICAL_AFTER_DOWN_S,
    CRITICAL_AFTER_FAILURES,
    DEFAULT_BACKOFF,
    reconnect_backoff,
)
from cockpit.feeds.budget import ConnectBudget
from cockpit.feeds.bybit.parse import PrivateParser
from cockpit.feeds.connection import StatusSink, StreamConnection, safe_call
from cockpit.feeds.messages import Rejected, UserEvent
from cockpit.feeds.rejects import RejectLog, RejectSink
from cockpit.feeds.socketfeed import SocketFeed

log = logging.getLogger(__name__)

PATH = "/v5/private"
TOPICS = ("order", "execution", "position", "wallet")
PING_EVERY_S = 20.0
EXPIRES_IN_MS = 10_000  # how long a login signature stays good


class AuthRefused(Exception):
    """The private socket refused the login (a bad key or secret, or a clock too far off)."""


def auth_args(api_key: str, api_secret: str, now_ms: int, expires_in_ms: int = EXPIRES_IN_MS) -> list[Any]:
    expires = now_ms + expires_in_ms
    sign = hmac.new(api_secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    return [api_key, expires, sign]


class BybitUserFeed(SocketFeed):
    def __init__(
        self,
        ws_base: str,
        api_key: str,
        api_secret: str,
        *,
        on_user_event: Callable[[UserEvent], None] | None = None,
        on_status: StatusSink | None = None,
        on_rejected: RejectSink | None = None,
        on_auth: Callable[[bool, str], None] | None = None,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        ping_every_s: float = PING_EVERY_S,
        silent_after_s: float | None = None,
        reply_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        critical_after_failures: int = CRITICAL_AFTER_FAILURES,
        critical_down_s: float = CRITICAL_AFTER_DOWN_S,
        connect_budget: ConnectBudget | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        name: str = "user",
    ) -> None:
        super().__init__()
        self.ws_base = ws_base.rstrip("/")
        self.name = name
        self.parse_errors = 0
        self.logins = 0
        self.refusals = 0  # logins refused in a row
        self._key, self._secret = api_key, api_secret
        self._now_ms = now_ms
        self._reply_timeout_s = reply_timeout_s
        self._on_user_event = on_user_event
        self._on_rejected = on_rejected
        self._on_auth = on_auth
        self._reject_log = RejectLog(log, name)
        self._parser = PrivateParser()
        self.conn = StreamConnection(
            name,
            self._url,
            self._on_frame,
            on_status=on_status,
            backoff=reconnect_backoff(backoff),
            on_open=self._login,
            healthy_on_open=True,
            silent_reconnect_s=2 * ping_every_s + 5 if silent_after_s is None else silent_after_s,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            open_timeout_s=open_timeout_s,
            critical_after_failures=critical_after_failures,
            critical_down_s=critical_down_s,
            connect_budget=connect_budget,
            app_ping=lambda: '{"op":"ping"}',
            app_ping_every_s=ping_every_s,
        )

    # ----- internals --------------------------------------------------------------------------------------
    async def _url(self) -> str:
        return self.ws_base + PATH

    async def _login(self, ws: ClientConnection) -> None:
        """Log in, then subscribe; the socket counts as open only after both succeeded."""
        args = auth_args(self._key, self._secret, self._now_ms())
        await ws.send(orjson.dumps({"req_id": "auth", "op": "auth", "args": args}).decode())
        reply = await self._reply(ws, "auth")
        if reply.get("success") is not True:
            self.refusals += 1
            reason = f"private socket login refused: {reply.get('ret_msg') or reply}"
            if self.refusals == 1:  # said once per episode: the reconnects that follow are its backoff
                safe_call(self._tell_auth, (False, reason))
            raise AuthRefused(reason)
        self.logins += 1
        if self.refusals:
            self.refusals = 0
            safe_call(self._tell_auth, (True, ""))
        await ws.send(orjson.dumps({"req_id": "subscribe", "op": "subscribe", "args": list(TOPICS)}).decode())
        reply = await self._reply(ws, "subscribe")
        if reply.get("success") is not True:
            raise ConnectionError(f"private topics refused: {reply.get('ret_msg') or reply}")

    def _tell_auth(self, outcome: tuple[bool, str]) -> None:
        if self._on_auth is not None:
            self._on_auth(*outcome)

    async def _reply(self, ws: ClientConnection, op: str) -> dict[str, Any]:
        """The reply to `op` (a push that comes first is handled as any frame)."""
        async with asyncio.timeout(self._reply_timeout_s):
            while True:
                raw = await ws.recv(decode=False)
                frame = raw if isinstance(raw, bytes) else raw.encode()
                try:
                    msg = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    msg = None
                if isinstance(msg, dict) and msg.get("op") == op and "topic" not in msg:
                    return msg
                self._on_frame(frame)

    def _on_frame(self, raw: bytes) -> None:
        try:
            msg = orjson.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError(f"not a JSON object: {raw[:80]!r}")
            if msg.get("topic") is None:
                self._reply_seen(msg)
                return
            events = self._parser.frame(msg)
        except ValueError as exc:
            self.parse_errors += 1
            reason = f"unparseable user event: {exc}"
            self._reject_log(reason, raw)
            safe_call(self._on_rejected, Rejected("user_stream", reason))
            return
        for event in events:
            safe_call(self._on_user_event, event)

    def _reply_seen(self, msg: dict[str, Any]) -> None:
        if msg.get("op") in ("pong", "ping") or msg.get("success") is not False:
            return  # a pong, or an ack
        log.warning("%s: request refused: %s", self.name, msg.get("ret_msg") or msg)
