"""Delivery through apprise, off the engine's hot path: one courier per target, each with its own bounded
queue and task; a send runs in a worker thread with a timeout, is retried with backoff, and a target that
keeps failing is reported (never raised): the engine goes on whatever a target does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cockpit.notify.messages import Message

log = logging.getLogger(__name__)

QUEUE_MAX = 200  # messages waiting per target; beyond, the oldest is dropped (and counted)
SEND_TIMEOUT_S = 30.0
RETRY_DELAYS_S = (2.0, 5.0, 15.0)  # after the first failure, the second, the third; then it is failed


# sends run here, not in the event loop's default pool: a target that hangs past its timeout keeps a thread,
# and the engine's own work (rotation, backups, the archive, DNS) must never queue behind it
SENDERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="notify")


class DeliveryFailed(Exception):
    """A send that did not go through; the reason never carries the target's URL."""


Send = Callable[[str, Message], None]  # (url, message); raises DeliveryFailed


def apprise_send(url: str, message: Message) -> None:
    """One message through apprise (blocking: run in a thread). Apprise logs why a send failed; that reason is
    taken from its log, with the URL and its parts scrubbed."""
    import apprise

    notify_type = {
        "critical": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
    }.get(message.severity, apprise.NotifyType.INFO)
    sender = apprise.Apprise()
    if not sender.add(url):
        raise DeliveryFailed("apprise does not understand the target's URL")
    said = _ThisThread()  # apprise logs to one logger for every target: only this send's lines
    logger = logging.getLogger("apprise")
    logger.addHandler(said)
    try:
        ok = sender.notify(body=message.body, title=message.title, notify_type=notify_type)
    finally:
        logger.removeHandler(said)
    if not ok:
        raise DeliveryFailed(scrub(said.lines[-1] if said.lines else "apprise reported a failed send", url))


class _ThisThread(logging.Handler):
    """The warnings and errors apprise logs from the thread that made this handler."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(record.getMessage().strip())


def scrub(text: str, url: str) -> str:
    """`text` without the URL or any of its longer parts (tokens, passwords, hosts with keys)."""
    text = text.replace(url, "<url>")
    for part in sorted(set(re.split(r"[/:@?&=#]+", url)), key=len, reverse=True):
        if len(part) >= 6:
            text = text.replace(part, "…")
    return text[:300]


@dataclass
class TargetHealth:
    ok: bool = True
    delivered: int = 0
    failures: int = 0  # messages that failed for good
    dropped: int = 0  # messages dropped from a full queue
    last_error: str = ""
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=1000))  # queued -> delivered, s


class Courier:
    """Delivers one target's messages in order. `on_health(name, ok, reason)` is called when the target starts
    failing (a message failed after every retry) and when it delivers again."""

    def __init__(
        self,
        name: str,
        url: str,
        on_health: Callable[[str, bool, str], None],
        send: Send = apprise_send,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
        timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self.name = name
        self._url = url
        self._send = send
        self._on_health = on_health
        self.retry_delays_s = retry_delays_s
        self.timeout_s = timeout_s
        self.health = TargetHealth()
        self._queue: deque[tuple[Message, float]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()

    def __repr__(self) -> str:  # never the URL
        return f"Courier({self.name!r})"

    def post(self, message: Message) -> None:
        """Queue `message`; never blocks. A full queue drops its oldest message."""
        if len(self._queue) >= QUEUE_MAX:
            self._queue.popleft()
            self.health.dropped += 1
        self._queue.append((message, time.monotonic()))
        self.idle.clear()
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"notify-{self.name}")

    async def stop(self, flush_s: float = 5.0) -> None:
        """Deliver what is queued for up to `flush_s`, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(flush_s):
                await self.idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self.idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            message, queued = self._queue[0]
            try:
                await self._deliver(message)
            except asyncio.CancelledError:
                raise
            except DeliveryFailed as exc:
                self.health.failures += 1
                self.health.last_error = str(exc)
                if self.health.ok:
                    self.health.ok = False
                    self._tell(False, str(exc))
            except Exception as exc:  # a bug in a plugin must not end the courier
                log.exception("notification to %s failed", self.name)
                self.health.failures += 1
                self.health.last_error = type(exc).__name__
                if self.health.ok:
                    self.health.ok = False
                    self._tell(False, type(exc).__name__)
            else:
                self.health.delivered += 1
                self.health.latencies.append(time.monotonic() - queued)
                if not self.health.ok:
                    self.health.ok = True
                    self.health.last_error = ""
                    self._tell(True, "")
            finally:
                if self._queue and self._queue[0][0] is message:
                    self._queue.popleft()

    async def _deliver(self, message: Message) -> None:
        """Send, retrying after each delay; a target already failing gets one try per message (no backlog of
        retries behind a dead server)."""
        delays = self.retry_delays_s if self.health.ok else ()
        for attempt in range(len(delays) + 1):
            try:
                loop = asyncio.get_running_loop()
                sending = loop.run_in_executor(SENDERS, self._send, self._url, message)
                await asyncio.wait_for(sending, self.timeout_s)
                return
            except TimeoutError:
                error = DeliveryFailed(f"no answer within {self.timeout_s:g} s")
            except DeliveryFailed as exc:
                error = exc
            if attempt == len(delays):
                raise error
            await asyncio.sleep(delays[attempt])

    def _tell(self, ok: bool, reason: str) -> None:
        try:
            self._on_health(self.name, ok, reason)
        except Exception:
            log.exception("notify health callback failed")
