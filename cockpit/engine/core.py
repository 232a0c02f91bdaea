"""The event core: numbers events, folds them into State, persists them, and tells subscribers.

`emit()` gives an event the next seq, applies it to State at once (so the engine's own logic sees it), and
queues it for the store. Subscribers (the headless printer, the UI, the control socket) are told only after
the store committed it, in seq order: what anyone sees is already on disk. `record()` is `emit()` that also
waits for that commit — for operator actions, order intents, fills and the kill switch, which must be durable
before they are acted on. A kind outside the vocabulary (`EVENT_KINDS`) is a programming error: both raise
`UnknownEventKind`. A payload comes from its kind's builder in `cockpit/core/events.py`.

A seq is taken only by an event that was folded and queued: one the store will not take (a payload that is
not JSON) is refused, leaves its seq free and becomes an `event.refused` in its place (logged, counted, an
alert); one with a value the fold cannot take is kept but changes nothing (`_refused` in
`cockpit/core/state.py`; also logged here). Neither stops the engine.

Under disk trouble nothing is printed with a seq the file may never hold: news about the store itself (a
write failing and being retried, the kill switch engaged in memory when it failed) reaches subscribers at
once with seq 0 — "not in the session file" — and is not delivered again if it is committed later.
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
from cockpit.core.events import EventRefused as EventRefusedPayload
from cockpit.core.events import Payload, check_kind, event_refused
from cockpit.core.snapshot import state_to_json
from cockpit.core.state import State, apply, refusal
from cockpit.store.errors import EventRefused

log = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]
SNAPSHOT_EVERY = 1000


class EventStore(Protocol):
    """What the core needs of the session store."""

    def append_critical(self, event: Event) -> concurrent.futures.Future[None]: ...

    def put_snapshot(self, seq: int, ts: float, state_json: str) -> None: ...


class StoreFailed(CockpitError):
    """The store could not commit an event after all its retries."""


class EventNotRecorded(CockpitError):
    """`record` was asked for an event that was refused (see the module docstring)."""


class EventCore:
    def __init__(self, store: EventStore, state: State, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.store = store
        self.state = state
        self._seq = state.seq
        self.subscribers: list[Subscriber] = []
        self.streams: list[Subscriber] = []  # see `stream`
        self._pending: deque[tuple[Event, concurrent.futures.Future[None]]] = deque()
        self._wake = asyncio.Event()
        self._snapshot_every = snapshot_every
        self._since_snapshot = 0
        self._notifier: asyncio.Task[None] | None = None
        self._delivered_early: set[int] = set()
        self.on_store_failure: Callable[[BaseException], None] | None = None
        self.store_failed = False
        self.refused = 0  # events refused (by the store, or left unfolded by the fold), since this start

    # ----- lifecycle ------------------------------------------------------------------------------
    def load(self, state: State) -> None:
        """Continue from a restored state: the next event gets seq state.seq + 1."""
        if self._pending:
            raise RuntimeError("cannot load a state while events are pending")
        self.state = state
        self._seq = state.seq

    @property
    def pending(self) -> int:
        """Events emitted and not yet committed."""
        return len(self._pending)

    def switch_store(self, store: EventStore, state: State) -> None:
        """Go on in another store (a rotated session file), from `state` (its seq: the new file's, 0): the
        next event is state.seq + 1 there. Events still pending commit to the store they were queued to, and
        are delivered first."""
        self.store = store
        self.state = state
        self._seq = state.seq
        self._since_snapshot = 0

    def start(self) -> None:
        if self._notifier is None:
            self._notifier = asyncio.create_task(self._notify_loop(), name="event-notifier")

    async def committed_through(self, seq: int, within_s: float = 10.0) -> None:
        """Wait until every event up to `seq` has been committed (or `within_s` has passed, or the store has
        failed): a reader of the session file then finds them all."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while self._pending and self._pending[0][0].seq <= seq and not self.store_failed:
                    self._wake.set()
                    await asyncio.sleep(0.01)

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

    def stream(self, subscriber: Subscriber) -> Callable[[], None]:
        """Like `subscribe`, for a copy of State kept elsewhere (an attached cockpit): told exactly the events
        that made this State, in the order they were folded. Every committed event once, at its commit, news
        about the store included (a subscriber saw its early copy); and what was folded unrecorded after the
        store failed, with seq 0 (folded at the State's own seq, as `apply_unrecorded` does)."""
        self.streams.append(subscriber)
        return lambda: self.streams.remove(subscriber) if subscriber in self.streams else None

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
        if immediate and event.seq:  # seq 0: the store had failed, it was shown unrecorded already
            self._delivered_early.add(event.seq)
            self.deliver(unrecorded(event), early=True)
        return event

    async def record(
        self,
        kind: str,
        payload: Payload,
        severity: Severity = "info",
        source: str = "engine",
    ) -> Event:
        """Emit and wait until the event is durable; raises StoreFailed if it cannot be, EventNotRecorded if
        it was refused (an `event.refused` is recorded in its place): what needed it must not go ahead."""
        event, future = self._emit(kind, payload, severity, source)
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:
            raise StoreFailed(f"{kind} could not be committed: {exc}") from exc
        if event.kind != kind:
            refused = cast(EventRefusedPayload, event.payload)
            raise EventNotRecorded(
                f"{kind} was refused and not recorded",
                refused["reason"],
                "nothing was done; the event log has the event.refused",
            )
        return event

    def _emit(
        self, kind: str, payload: Payload, severity: Severity, source: str
    ) -> tuple[Event, concurrent.futures.Future[None]]:
        check_kind(kind)
        if self.store_failed:
            raise StoreFailed("the session store has failed; no event can be recorded")
        # a payload is a plain dict whatever its TypedDict (cockpit/core/events.py): stored as it is
        event = Event(self._seq + 1, time.time(), kind, severity, source, cast(dict[str, Any], payload))
        try:
            state = apply(self.state, event)  # the fold refuses a bad value rather than raise: a net only
            future = self.store.append_critical(event)
        except EventRefused as exc:  # nothing written, the seq still free: say so in its place
            return self._refuse(event, exc)
        except StoreFailed:
            raise
        except CockpitError as exc:  # the store refuses writes: shown unrecorded, the engine stops
            failed: concurrent.futures.Future[None] = concurrent.futures.Future()
            failed.set_exception(exc)
            shown = self.apply_unrecorded(kind, payload, severity, source)
            self._fail(exc)
            return shown, failed
        except Exception as exc:  # the fold raised after all: the event is refused, the engine goes on
            return self._refuse(event, exc)
        self._seq = event.seq
        if kind != "event.refused" and state.counters.refused > self.state.counters.refused:
            self.refused += 1
            log.error("event %d (%s) refused by the fold: %s", event.seq, kind, state.alerts[-1].message)
        self.state = state
        self._pending.append((event, future))
        self._wake.set()
        self._since_snapshot += 1
        if self._since_snapshot >= self._snapshot_every:
            self._since_snapshot = 0
            self.store.put_snapshot(event.seq, event.ts, state_to_json(self.state))
        return event, future

    def _refuse(self, event: Event, exc: BaseException) -> tuple[Event, concurrent.futures.Future[None]]:
        """`event` took no seq and changed nothing: an `event.refused` (a payload that is surely JSON) is
        emitted in its place, so the operator sees it and the file says so."""
        self.refused += 1
        reason = refusal(exc)
        log.error("event %s refused, its seq not used: %s", event.kind, reason)
        if event.kind == "event.refused":  # the refusal itself cannot be written: only the log can say it
            raise StoreFailed(f"an event.refused could not be recorded: {reason}") from exc
        return self._emit(
            "event.refused",
            event_refused(
                kind=event.kind,
                reason=reason,
                message=f"a {event.kind} event was refused and not recorded: {reason}",
            ),
            "critical",
            event.source,
        )

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
                    self._tell(self.streams, event)
                    continue
                self.deliver(event)

    def apply_unrecorded(self, kind: str, payload: Payload, severity: Severity, source: str) -> Event:
        """Fold an event the store can no longer take (it has failed) and tell every subscriber: State stays
        the fold of what happened, though the file cannot say so. It takes no seq (State keeps its own) and
        reaches subscribers with seq 0: not in the session file."""
        check_kind(kind)
        event = Event(self.state.seq, time.time(), kind, severity, source, cast(dict[str, Any], payload))
        self.state = apply(self.state, event)
        shown = unrecorded(event)
        self.deliver(shown)
        return shown

    def deliver(self, event: Event, early: bool = False) -> None:
        """Tell every subscriber; the streams too unless it is an early copy (they get it at its commit)."""
        self._tell(self.subscribers, event)
        if not early:
            self._tell(self.streams, event)

    @staticmethod
    def _tell(subscribers: list[Subscriber], event: Event) -> None:
        for subscriber in list(subscribers):
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


def unrecorded(event: Event) -> Event:
    """`event` as shown before (or without) its commit: seq 0, which no event in a session file has."""
    return Event(0, event.ts, event.kind, event.severity, event.source, event.payload)
