"""One resilient WebSocket: connect, read, detect silence, reconnect with backoff, report every change.

`StreamConnection.run()` loops for ever (until cancelled):

    connect ──ok──> [connected] read frames … socket closes (clean 1000/1001 too), errors, or goes silent
       ^                                                                │
       └── sleep backoff(attempt) <── [reconnecting attempt n] <────────┘   (also on 503 / refused / timeout)

A reconnect *attempt* fails when the handshake fails, or when the socket closes before it became healthy
(healthy = first frame received, or simply open when `healthy_on_open`). Consecutive failures pick the delay
(2, 4, 8, 8 … s by default) and turn the status CRITICAL from the 3rd failure on, or once the socket has
been down longer than `critical_down_s`. A healthy connection resets the count.

An exchange that wants an application-level ping (Bybit: `{"op": "ping"}` every 20 s; the protocol's pings do
not count) gets `app_ping()` sent every `app_ping_every_s` while the socket is open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cockpit.core.retry import Backoff
from cockpit.feeds.backoff import CRITICAL_AFTER_DOWN_S, CRITICAL_AFTER_FAILURES, reconnect_backoff
from cockpit.feeds.budget import ConnectBudget
from cockpit.feeds.messages import FeedState, FeedStatus, Severity

log = logging.getLogger(__name__)
YIELD_EVERY_FRAMES = 128  # frames handled back to back before the reader lets other tasks run

StatusSink = Callable[[FeedStatus], None]
FrameSink = Callable[[bytes], None]
SILENT_CLOSE_CODE = 4000  # our own close code when the watchdog gives up on a silent socket
KICK_CLOSE_CODE = 4001  # …and when the owner asks for a reconnect (e.g. listenKey expired)
T = TypeVar("T")


def describe(exc: BaseException) -> tuple[str, int | None]:
    """A one-line reason and the close code (if the server sent one) for a connection failure."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        if frame is not None:
            kind = "closed cleanly" if frame.code in (1000, 1001) else "closed with error"
            return f"{kind} by server: {frame.code} {frame.reason}".rstrip(), frame.code
        return f"connection lost without close frame: {exc}", None
    if isinstance(exc, InvalidStatus):
        body = exc.response.body or b""
        text = body[:200].decode("utf-8", "replace").strip()
        return f"handshake refused: HTTP {exc.response.status_code} {text}".rstrip(), None
    if isinstance(exc, TimeoutError):
        return "handshake timed out", None
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__), None


def safe_call(sink: Callable[[T], None] | None, message: T) -> None:
    """Deliver to a callback; a failing callback is logged with its traceback and does not kill the feed."""
    if sink is None:
        return
    try:
        sink(message)
    except Exception:
        log.exception("feed callback %r failed on %r", sink, message)


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class StreamConnection:
    """One socket that keeps itself connected. The owner parses frames and decides what they mean."""

    def __init__(
        self,
        name: str,
        url: Callable[[], Awaitable[str]],
        on_frame: FrameSink,
        *,
        on_status: StatusSink | None = None,
        backoff: Backoff | None = None,
        on_open: Callable[[ClientConnection], Awaitable[None]] | None = None,
        on_link: Callable[[bool], None] | None = None,
        on_handshake_error: Callable[[BaseException], bool] | None = None,
        healthy_on_open: bool = False,
        silent_reconnect_s: float | None = None,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        critical_after_failures: int = CRITICAL_AFTER_FAILURES,
        critical_down_s: float = CRITICAL_AFTER_DOWN_S,
        connect_budget: ConnectBudget | None = None,
        app_ping: Callable[[], str] | None = None,
        app_ping_every_s: float | None = None,
    ) -> None:
        if app_ping is not None and (app_ping_every_s is None or app_ping_every_s <= 0):
            raise ValueError(f"an application ping needs a positive period, got {app_ping_every_s}")
        if silent_reconnect_s is not None and silent_reconnect_s <= 0:
            raise ValueError(f"silent_reconnect_s must be positive seconds or None, got {silent_reconnect_s}")
        self.name = name
        self._url = url
        self._on_frame = on_frame
        self._on_status = on_status
        self._backoff = backoff or reconnect_backoff()
        self._on_open = on_open
        self._on_link = on_link
        self._on_handshake_error = on_handshake_error
        self._healthy_on_open = healthy_on_open
        self._silent_reconnect_s = silent_reconnect_s
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._budget = connect_budget
        self._critical_after_failures = critical_after_failures
        self._critical_down_s = critical_down_s
        self._app_ping = app_ping
        self._app_ping_every_s = app_ping_every_s

        self.state = FeedState.CONNECTING
        self.failures = 0  # consecutive failed attempts
        self.connects = 0  # successful handshakes, ever
        self.last_rx = 0.0  # loop.time() of the last frame
        self.opened_at: float | None = None  # loop.time() when the current socket opened; None while down
        self.open = asyncio.Event()
        self._healthy = False
        self._down_since: float | None = None  # loop.time() of the first failure since the last healthy one
        self._skip_delay = False
        self._link_down = False
        self._kick: asyncio.Event = asyncio.Event()
        self._kick_reason = ""
        self._ws: ClientConnection | None = None

    # ----- public -----------------------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    @property
    def ws(self) -> ClientConnection | None:
        return self._ws

    def reconnect(self, reason: str, immediate: bool = False) -> None:
        """Drop the current socket (if any) and connect again; `immediate` skips the backoff delay once."""
        self._kick_reason = reason
        self._skip_delay = self._skip_delay or immediate
        self._kick.set()

    def down_for(self) -> float | None:
        if self._down_since is None:
            return None
        return asyncio.get_running_loop().time() - self._down_since

    def mark_stopped(self) -> None:
        """The feed was stopped on purpose: the socket is down and says so once."""
        self.opened_at = None
        self.state = FeedState.DISCONNECTED
        self.emit(FeedState.DISCONNECTED, Severity.INFO, "stopped")

    def emit(
        self,
        state: FeedState,
        severity: Severity,
        reason: str = "",
        *,
        stream: str | None = None,
        attempt: int = 0,
        failures: int = 0,
        retry_in_s: float | None = None,
        retry_at: float | None = None,
        age_s: float | None = None,
        down_for_s: float | None = None,
        close_code: int | None = None,
    ) -> None:
        status = FeedStatus(
            self.name,
            state,
            severity,
            reason,
            stream=stream,
            attempt=attempt,
            failures=failures,
            retry_in_s=retry_in_s,
            retry_at=retry_at,
            age_s=age_s,
            down_for_s=down_for_s,
            close_code=close_code,
        )
        safe_call(self._on_status, status)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reason, code = "", None
        self.emit(FeedState.CONNECTING, Severity.INFO, "first connect")
        retry = False  # the first connect is attempt 0; reconnect attempts count from 1
        while True:
            if retry:
                await self._wait_before_retry(reason, code)
            self._kick.clear()
            if self._budget is not None:
                waited = await self._budget.acquire()
                if waited:
                    log.warning(
                        "%s: connection attempt waited %.1f s for the connect budget", self.name, waited
                    )
            try:
                url = await self._url()
                ws = await connect(
                    url,
                    ping_interval=self._ping_interval_s,
                    ping_timeout=self._ping_timeout_s,
                    open_timeout=self._open_timeout_s,
                    close_timeout=self._close_timeout_s,
                    compression=None,
                    max_queue=1024,
                )
            except Exception as exc:  # any failure to open is one failed attempt; CancelledError passes
                reason, code = describe(exc)
                if retry:
                    self.failures += 1
                retry = True
                self._went_down(loop)
                retry_now = self._on_handshake_error is not None and self._on_handshake_error(exc)
                if retry_now and self.failures <= 1:  # e.g. a dead listenKey: renew and retry at once, once
                    self._skip_delay = True
                continue
            reason, code = await self._serve(loop, ws)
            if retry and not self._healthy:
                self.failures += 1
            retry = True
            self._went_down(loop)
            self.emit(
                FeedState.DISCONNECTED, Severity.WARNING, reason, close_code=code, failures=self.failures
            )

    # ----- internals --------------------------------------------------------------------------------------
    async def _wait_before_retry(self, reason: str, code: int | None) -> None:
        self.state = FeedState.RECONNECTING
        attempt = self.failures + 1
        delay = 0.0 if self._skip_delay else self._backoff.delay(attempt)
        self._skip_delay = False
        down = self.down_for() or 0.0
        critical = self.failures >= self._critical_after_failures or down > self._critical_down_s
        self.emit(
            FeedState.RECONNECTING,
            Severity.CRITICAL if critical else Severity.WARNING,
            reason,
            attempt=attempt,
            failures=self.failures,
            retry_in_s=delay,
            retry_at=time.time() + delay,
            down_for_s=round(down, 3),
            close_code=code,
        )
        if delay > 0:
            await asyncio.sleep(delay)

    def _went_down(self, loop: asyncio.AbstractEventLoop) -> None:
        self.opened_at = None
        self._ws = None
        self.open.clear()
        if self._down_since is None:
            self._down_since = loop.time()
        self.state = FeedState.RECONNECTING
        if self._on_link is not None and not self._link_down:
            self._link_down = True
            safe_call(self._on_link, False)

    async def _serve(self, loop: asyncio.AbstractEventLoop, ws: ClientConnection) -> tuple[str, int | None]:
        now = loop.time()
        self._ws = ws
        self.opened_at = now
        self.last_rx = now
        self._healthy = False
        self.connects += 1
        self.state = FeedState.CONNECTED
        down = self.down_for()
        try:
            if self._on_open is not None:
                await self._on_open(ws)
            self.open.set()
            if down is None:
                note = "connected"
            else:
                note = (
                    f"reconnected after {self.failures} failed attempt(s)" if self.failures else "reconnected"
                )
            self.emit(
                FeedState.CONNECTED,
                Severity.INFO,
                note,
                failures=self.failures,
                down_for_s=None if down is None else round(down, 3),
            )
            self._link_down = False
            safe_call(self._on_link, True)
            if self._healthy_on_open:
                self._mark_healthy()
            tasks = [
                asyncio.create_task(self._read(loop, ws), name=f"{self.name}-read"),
                asyncio.create_task(self._kick.wait(), name=f"{self.name}-kick"),
            ]
            if self._silent_reconnect_s is not None:
                tasks.append(asyncio.create_task(self._watch_silence(loop), name=f"{self.name}-silence"))
            if self._app_ping is not None:
                tasks.append(asyncio.create_task(self._ping(ws), name=f"{self.name}-ping"))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            finished = done.pop()
            if finished is tasks[0]:
                exc = finished.exception()
                return describe(exc) if exc is not None else ("reader stopped", None)
            if finished is tasks[1]:
                await ws.close(KICK_CLOSE_CODE, self._kick_reason[:120])
                return f"reconnect requested: {self._kick_reason}", None
            silent = loop.time() - self.last_rx
            await ws.close(SILENT_CLOSE_CODE, "silent")
            limit = self._silent_reconnect_s
            return f"socket silent for {silent:.1f} s (limit {limit} s); forced reconnect", None
        except Exception as exc:  # closed while subscribing, or the owner's on_open failed
            return describe(exc)
        finally:
            await ws.close()

    def _mark_healthy(self) -> None:
        self._healthy = True
        self.failures = 0
        self._down_since = None

    async def _read(self, loop: asyncio.AbstractEventLoop, ws: ClientConnection) -> None:
        on_frame = self._on_frame
        frames = 0
        while True:
            raw = await ws.recv(decode=False)  # raises ConnectionClosedOK on a clean close: a disconnect too
            self.last_rx = loop.time()
            if not self._healthy:
                self._mark_healthy()
            try:
                on_frame(raw if isinstance(raw, bytes) else raw.encode())
            except Exception:
                log.exception("%s: frame handler failed on %r", self.name, raw[:200])
            frames += 1
            if frames % YIELD_EVERY_FRAMES == 0:
                # recv() does not suspend while frames are queued (up to max_queue): after a burst, let the
                # rest of the loop in — the UI's keys and repaints, timers, the other stream.
                await asyncio.sleep(0)

    async def _ping(self, ws: ClientConnection) -> None:
        """The application-level ping, for as long as the socket is open (a failed send: the reader sees
        the socket close; this waits for that)."""
        assert self._app_ping is not None and self._app_ping_every_s is not None  # noqa: S101 - only then
        while True:
            await asyncio.sleep(self._app_ping_every_s)
            try:
                await ws.send(self._app_ping())
            except Exception as exc:  # closing: the reader reports why
                log.debug("%s: application ping not sent (%s)", self.name, exc)
                await asyncio.Event().wait()

    async def _watch_silence(self, loop: asyncio.AbstractEventLoop) -> None:
        limit = self._silent_reconnect_s
        assert limit is not None  # noqa: S101 - only started with a limit
        while True:
            remaining = self.last_rx + limit - loop.time()
            if remaining < 0:
                return
            await asyncio.sleep(remaining + 0.01)
