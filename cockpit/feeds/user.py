"""The listenKey user data stream: ORDER_TRADE_UPDATE / ACCOUNT_UPDATE → typed events with exact Decimals.

    feed = UserFeed("wss://fstream.binance.com", create_listen_key=gw.create_listen_key,
                    keepalive_listen_key=gw.keepalive_listen_key, on_user_event=..., on_status=...)
    await feed.start()

A listenKey is created on the first connect and reused; it is kept alive every `keepalive_every_s` (30 min;
Binance expires keys after 60). When the key dies — a `listenKeyExpired` event, a handshake refused with -1125
(or HTTP 400), or the keep-alive raising `ListenKeyInvalid` — the feed forgets it, creates a new one and
reconnects at once (the first time; repeated failures follow the normal backoff).

The user stream is silent when nothing happens on the account, so it has no staleness watchdog: liveness is
the WebSocket ping/pong (`ping_interval_s` / `ping_timeout_s`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import quote

import orjson
from websockets.exceptions import InvalidStatus

from cockpit.feeds.backoff import (
    CRITICAL_AFTER_DOWN_S,
    CRITICAL_AFTER_FAILURES,
    DEFAULT_BACKOFF,
    reconnect_backoff,
)
from cockpit.feeds.budget import ConnectBudget
from cockpit.feeds.connection import StatusSink, StreamConnection, safe_call
from cockpit.feeds.messages import Rejected, Severity, UserEvent
from cockpit.feeds.parse import user_event
from cockpit.feeds.rejects import RejectLog, RejectSink
from cockpit.feeds.socketfeed import Loop, SocketFeed

log = logging.getLogger(__name__)

DEFAULT_USER_PATH = "/private/ws?listenKey={key}"  # Binance 2026 routing; the legacy form is "/ws/{key}"


class ListenKeyInvalid(Exception):
    """Raised by a keep-alive (or create) callable when the exchange says the listenKey is gone (-1125)."""


class UserFeed(SocketFeed):
    def __init__(
        self,
        ws_base: str,
        create_listen_key: Callable[[], Awaitable[str]],
        keepalive_listen_key: Callable[[str], Awaitable[None]],
        *,
        on_user_event: Callable[[UserEvent], None] | None = None,
        on_status: StatusSink | None = None,
        on_rejected: RejectSink | None = None,
        keepalive_every_s: float = 30 * 60.0,
        path: str = DEFAULT_USER_PATH,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        critical_after_failures: int = CRITICAL_AFTER_FAILURES,
        critical_down_s: float = CRITICAL_AFTER_DOWN_S,
        connect_budget: ConnectBudget | None = None,
        name: str = "user",
    ) -> None:
        if "{key}" not in path:
            raise ValueError(f"user stream path {path!r} must contain '{{key}}', e.g. {DEFAULT_USER_PATH!r}")
        if keepalive_every_s <= 0:
            raise ValueError(f"keepalive_every_s must be positive seconds, got {keepalive_every_s}")
        super().__init__()
        self.ws_base = ws_base.rstrip("/")
        self.name = name
        self.keepalive_every_s = keepalive_every_s
        self.listen_key: str | None = None
        self.keys_created = 0
        self.keepalives = 0
        self.parse_errors = 0
        self._on_rejected = on_rejected
        self._reject_log = RejectLog(log, name)
        self._path = path
        self._create = create_listen_key
        self._keepalive = keepalive_listen_key
        self._on_user_event = on_user_event
        self.conn = StreamConnection(
            name,
            self._url,
            self._on_frame,
            on_status=on_status,
            backoff=reconnect_backoff(backoff),
            on_handshake_error=self._on_handshake_error,
            healthy_on_open=True,
            silent_reconnect_s=None,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            open_timeout_s=open_timeout_s,
            critical_after_failures=critical_after_failures,
            critical_down_s=critical_down_s,
            connect_budget=connect_budget,
        )

    # ----- lifecycle (socketfeed.py) -------------------------------------------------------------------
    def _loops(self) -> dict[str, Loop]:
        return {"keepalive": self._keepalive_loop}

    def renew(self, reason: str) -> None:
        """Forget the listenKey and reconnect now with a fresh one."""
        log.info("%s: renewing listenKey (%s)", self.name, reason)
        self.listen_key = None
        self.conn.reconnect(reason, immediate=True)

    # ----- internals --------------------------------------------------------------------------------------
    async def _url(self) -> str:
        if self.listen_key is None:
            self.listen_key = await self._create()
            self.keys_created += 1
        return self.ws_base + self._path.format(key=quote(self.listen_key, safe=""))

    def _on_handshake_error(self, exc: BaseException) -> bool:
        if isinstance(exc, ListenKeyInvalid) or (
            isinstance(exc, InvalidStatus)
            and (b"-1125" in (exc.response.body or b"") or exc.response.status_code == 400)
        ):
            self.listen_key = None  # the next attempt creates a new one
            return True
        return False

    def _on_frame(self, raw: bytes) -> None:
        try:
            msg = orjson.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError(f"not a JSON object: {raw[:80]!r}")
            if msg.get("e") == "listenKeyExpired":
                self.renew("listenKeyExpired event")
                return
            event = user_event(msg)
        except ValueError as exc:
            self.parse_errors += 1
            reason = f"unparseable user event: {exc}"
            self._reject_log(reason, raw)
            safe_call(self._on_rejected, Rejected("user_stream", reason))
            return
        safe_call(self._on_user_event, event)

    async def _keepalive_loop(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive_every_s)
            key = self.listen_key
            if key is None:
                continue
            try:
                await self._keepalive(key)
            except ListenKeyInvalid as exc:
                if self.listen_key == key:
                    self.renew(f"keep-alive says listenKey is gone: {exc}")
            except Exception as exc:  # reported; the next period tries again (the key lives 60 min)
                self.conn.emit(
                    self.conn.state,
                    Severity.WARNING,
                    f"listenKey keep-alive failed: {type(exc).__name__}: {exc}",
                )
            else:
                self.keepalives += 1
