"""Attached cockpits: the engine's State, then every event that changes it, over the control socket.

A cockpit attaches by sending `{"cmd": "attach", "after": SEQ, "engine": ID}` on a control-socket connection
(`cockpit attach`, cockpit/ui/attached.py). The connection then carries lines from the engine only, one JSON
object each:

- `{"t": "hello", "engine": ID, "pid": …, "session": …, "kill_pct": …, "breaker_pct": …}` first: who answers.
  ID is new each time an engine starts (a restart, a restore), so a cockpit knows whether its State is still
  this engine's past.
- `{"t": "snapshot", "seq": S, "state": {…}, "recent": [events]}`: State through seq S (the same JSON as the
  session file's snapshots) and, for the event log only, the events just before it: after a restart, those
  the cockpit missed, read back from the session file. Sent on a first attach, when the engine is not the one
  the cockpit knew, when the cockpit's seq is older than what the engine keeps in memory (`RING`), and to
  resynchronise a cockpit that fell behind.
- `{"t": "events", "events": [events]}`: events in the order the engine folded them, each once: a cockpit
  folds them with the same `apply` and so holds exactly the engine's State. Seq 0 is an event folded
  unrecorded after the store failed (folded at the State's own seq). After a snapshot at S, only events
  after S.
- `{"t": "telemetry", …}` four times a second: the live figures (`Telemetry`), and the heartbeat.
- `{"t": "resync", "reason": …}`: a snapshot follows; `{"t": "bye", "reason": …}`: the engine is stopping.

A slow or stuck cockpit never slows the engine: an event costs the engine a deque append per cockpit (its JSON
is made once, shared by all); each cockpit's queue is bounded (`QUEUE_MAX`) and sent from its own task. A
cockpit that falls that far behind gets a fresh snapshot instead of the backlog; one that takes nothing for
`STUCK_S` is dropped (it re-attaches by itself when it wakes up).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from cockpit.core.domain import Event
from cockpit.core.snapshot import state_to_json

if TYPE_CHECKING:
    from cockpit.engine.context import BroadcastContext

log = logging.getLogger(__name__)

RING = 20_000  # recent events kept in memory, for a cockpit that re-attaches to the same engine
MISSED_WAIT_S = 2.0  # how long the missed events' log holds the live feed back (a cockpit: SILENT after 3 s)
MISSED_COMMIT_S = 15.0  # how long the rest of them, sent beside the feed, waits for the file
QUEUE_MAX = 20_000  # events waiting for one cockpit before it is sent a snapshot instead
TELEMETRY_S = 0.25  # live figures (and the heartbeat) this often
STUCK_S = 30.0  # a cockpit that takes no byte for this long is dropped
RECENT = 200  # events sent with a first snapshot, for the event log
MISSED_MAX = 5_000  # events read back from the session file for a cockpit that missed them
MESSAGE_EVENTS = 1_000  # events in one line at most: a slow link still hears from the engine between them


def event_line(event: Event) -> bytes:
    return orjson.dumps(event.to_json())


def _message(kind: str, **fields: Any) -> bytes:
    return orjson.dumps({"t": kind, **fields}) + b"\n"


def _events_message(lines: Iterable[bytes], kind: str = "events") -> bytes:
    return b'{"t":"%b","events":[' % kind.encode() + b",".join(lines) + b"]}\n"


def _chunks(lines: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(lines), MESSAGE_EVENTS):
        yield lines[start : start + MESSAGE_EVENTS]


class Attachment:
    """One attached cockpit: what is waiting for it, and from which seq on it needs events."""

    def __init__(self, writer: asyncio.StreamWriter, who: str) -> None:
        self.writer = writer
        self.who = who
        self.after = 0  # events with seq <= after are in the snapshot it was sent
        self.queue: deque[bytes] = deque()
        self.news: list[bytes] = []  # for its event log only (news about the store, before its commit)
        self.resync: str | None = None  # why it needs a snapshot before anything else
        self.wake = asyncio.Event()
        self.resyncs = 0

    def offer(self, seq: int, line: bytes) -> None:
        if self.resync is not None or (seq and seq <= self.after):
            return
        if len(self.queue) >= QUEUE_MAX:
            self.needs_snapshot(f"fell {QUEUE_MAX} events behind")
        else:
            self.queue.append(line)
        self.wake.set()

    def needs_snapshot(self, why: str) -> None:
        self.queue.clear()
        self.resync = why
        self.wake.set()


class Broadcast:
    """The engine's side of attach: every attached cockpit, fed from the core's `stream`."""

    def __init__(
        self, engine: BroadcastContext, kill_pct: float, breaker_pct: float, instance: str | None = None
    ) -> None:
        self.engine = engine
        self.instance = instance or os.urandom(8).hex()
        self.hello = {
            "engine": self.instance,
            "pid": os.getpid(),
            "session": str(engine.session_file),
            "kill_pct": kill_pct,
            "breaker_pct": breaker_pct,
        }
        self.ring: deque[Event] = deque(maxlen=RING)
        self.attached: set[Attachment] = set()
        self.closed = False
        self.unrecorded_at = -1  # the seq at which an event was last folded unrecorded (-1: never)
        self._telemetry_line: tuple[float, bytes] = (0.0, b"")
        self._unstream = engine.core.stream(self._on_event)
        self._unsubscribe = engine.core.subscribe(self._on_news)

    # ----- the engine's side: one deque append per cockpit ----------------------------------------------
    def _on_event(self, event: Event) -> None:
        if event.seq > self.engine.state.seq:  # the last of a file the session has left (a rotation)
            return
        if event.seq:
            self.ring.append(event)
        else:  # folded unrecorded: the store failed, and with it whatever was still pending
            self.unrecorded_at = self.engine.state.seq  # the ring cannot replay past this: a snapshot can
            for attachment in self.attached:
                attachment.needs_snapshot("the session file can no longer be written")
            return
        if self.attached:
            line = event_line(event)
            for attachment in self.attached:
                attachment.offer(event.seq, line)

    def _on_news(self, event: Event) -> None:
        """News about the store, told before its commit (seq 0): shown at once, folded at its commit."""
        if event.seq == 0 and not self.engine.core.store_failed and self.attached:
            line = event_line(event)
            for attachment in self.attached:
                attachment.news.append(line)
                attachment.wake.set()

    # ----- one cockpit ----------------------------------------------------------------------------------
    async def serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: dict[str, Any],
        who: str,
    ) -> None:
        """Feed one cockpit until it goes away, is dropped, or the engine stops."""
        if self.closed:
            return
        after = request.get("after")
        known = request.get("engine")
        after = after if isinstance(after, int) and after >= 0 else 0
        attachment = Attachment(writer, who)
        logged: asyncio.Future[None] | None = None
        writer.write(_message("hello", **self.hello))
        same = known == self.instance and not self.engine.core.store_failed
        recent_last = self._start(attachment, after if same else None)
        log.info("cockpit attached: %s (%d attached)", who, len(self.attached))
        closed = asyncio.ensure_future(reader.read(1))  # a cockpit says nothing more: b"" when it leaves
        try:
            # for the log: a cockpit of an engine before this one, the events it missed; any snapshot, the
            # events its State holds that were not committed yet when it was taken (not in its `recent`)
            since = after if not same and after > 0 else recent_last
            if since is not None and since < attachment.after:
                # in order, before the live events, what the file has within MISSED_WAIT_S (the cockpit
                # hears nothing meanwhile); the rest of a slow commit (an engine's start under load) later,
                # beside the feed, once the file has it: never a silence read as a lost engine, never a gap
                missed = await self._missed(since, attachment.after, MISSED_WAIT_S)
                if missed and not self.closed:
                    for chunk in _chunks([event_line(e) for e in missed]):
                        writer.write(_events_message(chunk, "log"))
                got = missed[-1].seq if missed else since
                if got < attachment.after:
                    logged = asyncio.ensure_future(self._send_missed(writer, got, attachment.after))
            await self._feed(attachment, closed)
        finally:
            if logged is not None:
                logged.cancel()
            closed.cancel()
            self.attached.discard(attachment)
            log.info("cockpit detached: %s (%d attached)", who, len(self.attached))

    def _start(self, attachment: Attachment, after: int | None) -> int | None:
        """Queue what the cockpit needs first, and attach it, without an await: from here on it is told every
        event after what it was sent. After a snapshot: the seq of the last event sent with it for the log
        (0: none); after the events only: None."""
        state = self.engine.state
        ring = self.ring
        if (
            after is not None
            and after > self.unrecorded_at
            and (after == state.seq or (ring and ring[0].seq <= after + 1 <= state.seq + 1))
        ):
            attachment.after = after  # the same engine, and everything since is in memory: the events only
            for chunk in _chunks([event_line(e) for e in ring if e.seq > after]):
                attachment.writer.write(_events_message(chunk))
            self.attached.add(attachment)
            return None
        recent = [e for e in list(ring)[-RECENT:] if e.seq <= state.seq]
        self._snapshot(attachment, recent)
        self.attached.add(attachment)
        return recent[-1].seq if recent else 0

    def _snapshot(self, attachment: Attachment, recent: list[Event]) -> None:
        state = self.engine.state
        attachment.after = state.seq
        attachment.queue.clear()
        attachment.writer.write(
            b'{"t":"snapshot","seq":%d,"recent":[%b],"state":%b}\n'
            % (state.seq, b",".join(event_line(e) for e in recent), state_to_json(state).encode())
        )

    async def _send_missed(self, writer: asyncio.StreamWriter, after: int, upto: int) -> None:
        """The events after `after` through `upto`, for the cockpit's log, once the file has them all — while
        the cockpit is fed live events and telemetry (a slow commit at an engine's start never reads as a
        silent engine, nor leaves a gap in its log)."""
        try:
            missed = await self._missed(after, upto, MISSED_COMMIT_S)
            if missed and not self.closed and not writer.is_closing():
                for chunk in _chunks([event_line(e) for e in missed]):
                    writer.write(_events_message(chunk, "log"))
        except (OSError, RuntimeError) as exc:  # the cockpit left meanwhile: its log with it
            log.info("missed events not sent to a cockpit that left: %s", exc)

    async def _missed(self, after: int, upto: int, within_s: float) -> list[Event]:
        """Events after `after` through `upto` from the session file, the newest MISSED_MAX at most, for the
        event log (the State came in the snapshot)."""
        start = max(after, upto - MISSED_MAX)
        if start >= upto:
            return []
        # the snapshot's State is through `upto`, and some of those events may still be on their way to the
        # file (they reach the ring, and the cockpits, only at their commit): read once they are all there
        await self.engine.core.committed_through(upto, within_s=within_s)
        try:
            events = await asyncio.to_thread(self.engine.store.read_events, start, upto - start)
        except Exception as exc:  # the log is nice to have; the snapshot is what counts
            log.warning("events after %d could not be read for a cockpit: %s", start, exc)
            return []
        return events

    async def _feed(self, attachment: Attachment, closed: asyncio.Future[bytes]) -> None:
        writer = attachment.writer
        next_telemetry = 0.0
        while not closed.done() and not writer.is_closing() and not self.closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(attachment.wake.wait(), TELEMETRY_S)
            attachment.wake.clear()
            if self.closed:
                return
            if attachment.news:
                news, attachment.news = attachment.news, []
                writer.write(_events_message(news, "log"))
            if attachment.resync is not None:
                attachment.resyncs += 1
                writer.write(_message("resync", reason=attachment.resync, **self.hello))
                attachment.resync = None
                self._snapshot(attachment, [])
            elif attachment.queue:
                lines = list(attachment.queue)
                attachment.queue.clear()
                for chunk in _chunks(lines):
                    writer.write(_events_message(chunk))
            now = time.monotonic()
            if now >= next_telemetry:
                next_telemetry = now + TELEMETRY_S
                writer.write(self._telemetry(now))
            if not await _drained(writer):
                log.warning("cockpit dropped: %s took nothing for %.0f s", attachment.who, STUCK_S)
                writer.transport.abort()
                return

    def _telemetry(self, now: float) -> bytes:
        """The live figures as a line, taken once per TELEMETRY_S for every cockpit."""
        taken, line = self._telemetry_line
        if now - taken >= TELEMETRY_S / 2 or not line:
            line = _message("telemetry", **dataclasses.asdict(self.engine.telemetry()))
            self._telemetry_line = (now, line)
        return line

    def rotated(self) -> None:
        """The session went on in a new file, its seqs from 1 again: every cockpit gets the State afresh,
        and one that re-attaches is told it is a new file (a new id)."""
        self.instance = os.urandom(8).hex()
        self.hello = {**self.hello, "engine": self.instance, "session": str(self.engine.session_file)}
        self.ring.clear()
        for attachment in self.attached:
            attachment.needs_snapshot("the session went on in a new file")

    async def close(self, reason: str) -> None:
        """The engine has stopped: what is queued, then `bye`, to every cockpit (they re-attach by themselves
        when an engine is back); those that do not take it within a second are closed all the same."""
        self.closed = True
        self._unstream()
        self._unsubscribe()
        attached, self.attached = list(self.attached), set()
        for attachment in attached:
            with contextlib.suppress(Exception):
                if attachment.resync is not None:  # due a snapshot: the State it stopped at, then bye
                    attachment.writer.write(_message("resync", reason=attachment.resync, **self.hello))
                    self._snapshot(attachment, [])
                elif attachment.queue:
                    attachment.writer.write(_events_message(attachment.queue))
                attachment.queue.clear()
                attachment.writer.write(_message("bye", reason=reason))
        if attached:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*(a.writer.drain() for a in attached), return_exceptions=True)
        for attachment in attached:
            transport = attachment.writer.transport
            if transport.get_write_buffer_size():  # it did not take it: do not wait on it any more
                transport.abort()
            else:
                attachment.writer.close()
            attachment.wake.set()


async def _drained(writer: asyncio.StreamWriter) -> bool:
    """Wait until the cockpit took what was written; False when it took nothing for STUCK_S (a slow one that
    keeps taking is waited for)."""
    transport = writer.transport
    while True:
        before = transport.get_write_buffer_size()
        try:
            await asyncio.wait_for(writer.drain(), STUCK_S)
            return True
        except TimeoutError:
            if transport.get_write_buffer_size() >= before:
                return False
        except (ConnectionError, OSError):
            return True  # gone: the loop ends on its own
