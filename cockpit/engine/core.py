"""The event core: numbers events, folds them into State, persists them, and tells subscribers.

`emit()` gives an event the next seq, applies it to State at once (so the engine's own logic sees it), and
queues it for the store. Subscribers (the headless printer, the UI, the control socket) are told only after
the store committed it, in seq order: what anyone sees is already on disk. `record()` is `emit()` that also
waits for that commit — for operator actions, order intents, fills and the kill switch, which must be durable
before they are acted on. A kind outside the vocabulary (`EVENT_KINDS`) is a programming error: both raise
`UnknownEventKind`. A payload comes from its kind's builder in `cockpit/core/events.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, cast

from cockpit.core.domain import Event, Severity
from cockpit.core.errors import CockpitError
from cockpit.core.events import Payload, check_kind
from cockpit.core.snapshot import state_to_json
from cockpit.core.state import State, apply

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]
SNAPSHOT_EVERY = 1000


class EventStore(Protocol):
    """What the core needs of the session store."""

    def append_critical(self, event: Event) -> concurrent.futures.Future[None]: ...

    def put_snapshot(self, seq: int, ts: float, state_json: str) -> None: ...


class StoreFailed(CockpitError):
    """The store could not commit an event after all its retries."""


class EventCore:
    def __init__(self, store: EventStore, state: State, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.store = store
        self.state = state
        self._seq = state.seq
        self.subscribers: list[Subscriber] = []
        self._pending: deque[tuple[Event, concurrent.futures.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._notifier: asyncio.Task[None] | None = None
        self._delivered_early: set[int] = set()
        self.on_store_failure: Callable[[BaseException], None] | None = None
        self.store_failed = False

    # ----- lifecycle ------------------------------------------------------------------------------
    def load(self, state: State) -> None:
        """Continue from a restored state: the next event gets seq state.seq + 1."""
        if self._pending:
            raise RuntimeError("cannot load a state while events are pending")
        self.state = state
        self._seq = state.seq

    def start(self) -> None:
        if self._notifier is None:
            self._notifier = asyncio.create_task(self._notify_loop(), name="event-notifier")

    async def drain(self, within_s: float = 10.0) -> None:
        """Wait until every emitted event has been committed and delivered."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while self._pending and not self.store_failed:
                    self._wake.set()
                    await asyncio.sleep(0.01)

    async def stop(self) -> None:
        await self.drain()
        if self._notifier is not None:
            self._notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier
            self._notifier = None

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self.subscribers.append(subscriber)
        return lambda: self.subscribers.remove(subscriber) if subscriber in self.subscribers else None

    # ----- emitting -------------------------------------------------------------------------------
    def emit(
        self,
        kind: str,
        payload: Payload,
        severity: Severity = "info",
        source: str = "engine",
        immediate: bool = False,
    ) -> Event:
        """Emit an event. `immediate` delivers it to subscribers before its commit: only for news about the
        store itself (a write failing and being retried), which could not be shown otherwise."""
        event, _ = self._emit(kind, payload, severity, source)
        if immediate:
            self._delivered_early.add(event.seq)
            self.deliver(event)
        return event

    async def record(
        self,
        kind: str,
        payload: Payload,
        severity: Severity = "info",
        source: str = "engine",
    ) -> Event:
        """Emit and wait until the event is durable; raises StoreFailed if it cannot be."""
        event, future = self._emit(kind, payload, severity, source)
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise StoreFailed(f"event {event.seq} ({kind}) could not be committed: {exc}") from exc
        return event

    def _emit(
        self, kind: str, payload: Payload, severity: Severity, source: str
    ) -> tuple[Event, concurrent.futures.Future[None]]:
        check_kind(kind)
        if self.store_failed:
            raise StoreFailed("the session store has failed; no event can be recorded")
        self._seq += 1
        # a payload is a plain dict whatever its TypedDict (cockpit/core/events.py): stored as it is
        event = Event(self._seq, time.time(), kind, severity, source, cast(dict[str, Any], payload))
        self.state = apply(self.state, event)
        try:
            future = self.store.append_critical(event)
        except Exception as exc:  # the store refuses writes: the operator must still see this event
            future = concurrent.futures.Future()
            future.set_exception(exc)
            self.deliver(event)
            self._fail(exc)
            return event, future
        self._pending.append((event, future))
        self._wake.set()
        self._since_snapshot += 1
        if self._since_snapshot >= self._snapshot_every:
            self._since_snapshot = 0
            self.store.put_snapshot(event.seq, event.ts, state_to_json(self.state))
        return event, future

    # ----- delivery -------------------------------------------------------------------------------
    async def _notify_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                event, future = self._pending[0]
                try:
                    await asyncio.wrap_future(future)
                except Exception as exc:
                    self._fail(exc)
                    return
                self._pending.popleft()
                if event.seq in self._delivered_early:
                    self._delivered_early.discard(event.seq)
                    continue
                self.deliver(event)

    def apply_unrecorded(self, event: Event) -> None:
        """Fold an event the store can no longer take (it has failed) and tell every subscriber: State stays
        the fold of what happened, though the file cannot say so."""
        self.state = apply(self.state, event)
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        for subscriber in list(self.subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.kind)

    def _fail(self, exc: BaseException) -> None:
        if self.store_failed:
            return
        self.store_failed = True
        if self.on_store_failure is not None:
            self.on_store_failure(exc)
