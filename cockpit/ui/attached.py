"""An engine running elsewhere (a service, another pane, another machine through SSH) as the app's backend.

`AttachedBackend` attaches to the engine's control socket (the protocol: cockpit/engine/broadcast.py), folds
the snapshot and then every event with the same `apply` the engine uses, so what it shows is exactly the
engine's State; actions are the typed commands `cockpit ctl` sends, each on its own connection.

Engine lost and found: when the connection ends (the engine stopped, was killed, the SSH tunnel dropped) the
backend is UNREACHABLE at once: actions are refused, the last State stays, dated; it tries again every
`RETRY_S` and, when an engine answers, catches up from its last seq (the same engine: the events it missed;
an engine started since: a fresh snapshot, and the missed events from the session file for the log). An
engine that says nothing for `SILENT_S` (not even the four-a-second telemetry) is shown SILENT: its State may
be behind, but it may still act, so actions stay on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from cockpit.core.commands import Answer, Asks, DlqList, ReadCopy
from cockpit.core.domain import Event, Telemetry
from cockpit.core.errors import CockpitError
from cockpit.core.snapshot import state_from_json
from cockpit.core.state import State, apply, fold
from cockpit.engine.backups import BackupInfo, list_backups
from cockpit.engine.control import ask, check_server, peer_of, socket_path_for
from cockpit.engine.live_copy import discard
from cockpit.store import DeadLetterRow
from cockpit.ui.backend import StatsSource

log = logging.getLogger(__name__)

RETRY_S = 0.5  # how often an unreachable engine is tried again
SILENT_S = 3.0  # no byte from the engine for this long: SILENT (its telemetry comes four times a second)
GIVE_UP_S = 12.0  # no byte for this long: the link is dropped and attached again
READ_LIMIT = 256 << 20  # one line from the engine: a snapshot of a big State, or many missed events
CHUNK = 1 << 16
TELEMETRY_FIELDS = frozenset(f.name for f in dataclasses.fields(Telemetry))
CONNECT_S = 3.0
STOP_TRIES = 50  # cancels sent to the link at stop, 0.1 s apart


class EngineUnreachable(CockpitError):
    """An action while the engine cannot be reached."""


def event_from_json(data: dict[str, Any]) -> Event:
    return Event(
        int(data["seq"]),
        float(data["ts"]),
        str(data["kind"]),
        data["severity"],
        str(data["source"]),
        data.get("payload") or {},
    )


class AttachedBackend:
    """The app's backend over a running engine's control socket."""

    read_only = False

    def __init__(
        self,
        path: Path,
        label: str = "",
        find_socket: Callable[[], Path] | None = None,
        stop_engine: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self.find_socket = find_socket  # asked again before each retry: a restarted engine may move
        self.stop_engine = stop_engine  # the demo's: its own engine stops with the cockpit
        self.detaches = stop_engine is None
        self.label = label or f"attached {path.name}"
        self._state = State()
        self._telemetry = Telemetry()
        self._events: list[Event] = []
        self.engine_id: str | None = None  # the engine this State is the fold of (None: ask for a snapshot)
        self._hello_engine: str | None = None  # the engine that answered last
        self._news: set[tuple[float, str]] = set()  # shown early (news about the store): not shown twice
        self.engine_pid: int | None = None
        self.session_file: Path | None = None
        self.socket_moved = False  # the engine named a new session: its socket is looked up before an action
        self.kill_pct: float | None = None
        self.breaker_pct: float | None = None
        self.attached = asyncio.Event()  # set while attached and caught up
        self.unreachable_since: float | None = None  # set while the engine cannot be reached
        self.why_unreachable = ""
        self.last_heard: float = 0.0  # monotonic
        self.attaches = 0  # successful attaches, the first included
        self.snapshots = 0  # snapshots taken (first attach, engine restarted, fell behind)
        self.seqs_seen: list[int] = []  # seq of every event folded, for tests of "no event missed"
        self.keep_seqs = False
        self.on_change: Callable[[], None] | None = None  # told when events arrive (the app repaints soon)
        self._link: asyncio.Task[None] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    # ----- the link ---------------------------------------------------------------------------------
    async def start(self, within_s: float = 10.0) -> None:
        """Attach; raise why when no engine answers, or none sends its State within `within_s` (the first
        time only: later losses are shown and retried by themselves)."""
        try:
            await self._attach_once()
        except CockpitError:
            raise
        except (OSError, ValueError, TimeoutError) as exc:
            raise _no_engine(self.path, exc) from None
        reading = asyncio.create_task(self._read_lines())
        settled = asyncio.create_task(self.attached.wait())
        done, _ = await asyncio.wait(
            {reading, settled}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED
        )
        if settled not in done:
            settled.cancel()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            error = None if reading.cancelled() else reading.exception()
            if isinstance(error, CockpitError):
                raise error
            raise CockpitError(
                f"the engine at {self.path} did not send its State within {within_s:.0f} s",
                f"{type(error).__name__}: {error}" if error else "",
                "check the engine's log; attach again",
            )
        self._link = asyncio.create_task(self._keep_attached(reading), name="attached-engine")

    async def stop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            # Asked again until it ends: a cancel that meets a read completing at that moment could be
            # swallowed (3.11's `asyncio.wait_for`, once used by `_read_lines`): the link read on forever.
            for _ in range(STOP_TRIES):
                link.cancel()
                await asyncio.wait({link}, timeout=0.1)
                if link.done():
                    break
            if link.done() and not link.cancelled():
                link.exception()  # retrieved: nothing is left to log at exit
            elif not link.done():
                log.warning(
                    "the link to the engine at %s still runs after %d cancels: left behind",
                    self.path,
                    STOP_TRIES,
                )
        if self._writer is not None:
            self._writer.close()
        if self.stop_engine is not None:
            self.stop_engine()

    async def _attach_once(self) -> None:
        """Connect and ask to be attached (a wrong engine user is refused here); the answers are read by
        `_keep_attached`."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(self.path), limit=READ_LIMIT), CONNECT_S
        )
        try:
            check_server(peer_of(writer.get_extra_info("socket")), self.path)
        except CockpitError:
            writer.close()
            raise
        after = self._state.seq if self.engine_id else 0
        request = {"cmd": "attach", "after": after, "engine": self.engine_id, "by": "ui"}
        writer.write(orjson.dumps(request) + b"\n")
        await writer.drain()
        self._reader, self._writer = reader, writer

    def keep_trying(self, error: CockpitError) -> None:
        """The first attach failed (`start` raised `error`): show the engine UNREACHABLE and keep trying every
        RETRY_S, as after a loss (a fleet shows its other engines meanwhile)."""
        self.unreachable_since = time.time()
        self.why_unreachable = f"{error.title} ({error.detail})" if error.detail else error.title
        self._link = asyncio.create_task(self._keep_attached(None), name="attached-engine")

    async def _keep_attached(self, reading: asyncio.Task[None] | None) -> None:
        """Read the engine until the link ends, however it ends; then try again every RETRY_S, forever (an
        engine may be down for hours: the banner says so and for how long). Nothing escapes this loop."""
        while True:
            try:
                if reading is not None:
                    await reading
                    self._lost("the engine closed the connection")
            except CockpitError as exc:  # refused: not our user's engine, or it does not serve cockpits
                self._lost(f"{exc.title}: {exc.detail}")
            except TimeoutError:
                self._lost(f"the engine sent nothing for {GIVE_UP_S:.0f} s")
            except Exception as exc:  # a broken link, or a line this cockpit cannot read: attach afresh
                self._lost(f"{type(exc).__name__}: {exc}")
            if self._writer is not None:
                self._writer.close()
            while True:
                await asyncio.sleep(RETRY_S)
                try:
                    if self.find_socket is not None:
                        self.path = self.find_socket()
                    if self.socket_moved:  # a rotation: the socket beside the new session file
                        self.path = self.locate()
                    await self._attach_once()
                    break
                except CockpitError as exc:
                    self.why_unreachable = exc.title
                except (OSError, ValueError, TimeoutError) as exc:
                    self.why_unreachable = f"nothing answers on {self.path} ({type(exc).__name__})"
                except Exception as exc:
                    self.why_unreachable = f"{type(exc).__name__}: {exc}"
            reading = asyncio.create_task(self._read_lines())

    async def _read_lines(self) -> None:
        """Lines from the engine, as they come. Any byte received is a sign of life (a big line over a slow
        SSH tunnel takes a while); nothing at all for GIVE_UP_S ends the link."""
        reader = self._reader
        assert reader is not None
        pending = bytearray()
        while True:
            try:
                async with asyncio.timeout(SILENT_S):  # never swallows a cancel (3.11's `wait_for` can)
                    chunk = await reader.read(CHUNK)
            except TimeoutError:
                if time.monotonic() - self.last_heard > GIVE_UP_S:
                    raise
                continue  # silent but connected: the engine may be busy; the banner says SILENT
            if not chunk:
                return
            self.last_heard = time.monotonic()
            pending += chunk
            if b"\n" not in chunk:
                if len(pending) > READ_LIMIT:
                    raise ValueError(f"a line from the engine over {READ_LIMIT} bytes")
                continue
            *lines, rest = bytes(pending).split(b"\n")
            pending = bytearray(rest)
            for line in lines:
                if line:
                    self._take(orjson.loads(line))
            if self._events and self.on_change is not None:
                self.on_change()

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "events":
            self._fold([event_from_json(e) for e in message["events"]])
        elif kind == "log":  # events for the log only: already in the State (missed while away, or news)
            shown = [event_from_json(e) for e in message["events"]]
            self._news.update((e.ts, e.kind) for e in shown if e.seq == 0)
            self._events.extend(shown)
            if self.keep_seqs:
                self.seqs_seen.extend(e.seq for e in shown if e.seq)
        elif kind == "telemetry":
            self._telemetry = Telemetry(**{k: v for k, v in message.items() if k in TELEMETRY_FIELDS})
            self._settled()
        elif kind == "snapshot":
            self._state = state_from_json(orjson.dumps(message["state"]).decode())
            self.engine_id = self._hello_engine  # only now is this cockpit's State that engine's
            self.snapshots += 1
            recent = [event_from_json(e) for e in message.get("recent", [])]
            self._events.extend(recent)
            if self.keep_seqs:
                self.seqs_seen.extend(e.seq for e in recent if e.seq)
            self._settled()
        elif kind in ("hello", "resync"):
            self._hello(message)
        elif kind == "bye":
            self.why_unreachable = str(message.get("reason") or "the engine stopped")
        elif "ok" in message and message.get("ok") is False:  # refused: not ours, or no attach here
            raise CockpitError(
                str(message.get("error")), str(message.get("detail") or ""), str(message.get("fix") or "")
            )

    def _hello(self, message: dict[str, Any]) -> None:
        """Who answers (`resync`: the same, before a snapshot). An engine other than the one this State came
        from is adopted only with its snapshot: a link lost in between re-attaches asking for a snapshot."""
        if message.get("t") == "resync":
            log.warning("attached engine resynchronises this cockpit: %s", message.get("reason"))
        engine = str(message.get("engine") or "")
        self._hello_engine = engine
        if engine != self.engine_id:
            self.engine_id = None
        if message.get("pid") is not None:
            self.engine_pid = int(message["pid"])
        if message.get("session"):
            session = Path(str(message["session"]))
            if self.session_file is not None and session != self.session_file:
                self.socket_moved = True  # a rotation: the engine's socket moves beside its new file
            self.session_file = session
        if message.get("kill_pct") is not None:
            self.kill_pct = float(message["kill_pct"])
        if message.get("breaker_pct") is not None:
            self.breaker_pct = float(message["breaker_pct"])

    def _settled(self) -> None:
        if not self.attached.is_set():
            self.attaches += 1
            self.attached.set()
            self.unreachable_since = None
            self.why_unreachable = ""

    def _lost(self, why: str) -> None:
        if self.attached.is_set():
            self.attached.clear()
            self.unreachable_since = time.time()
            self.why_unreachable = self.why_unreachable or why
        log.warning("attached engine unreachable: %s", why)

    def _fold(self, events: list[Event]) -> None:
        """Fold what the engine folded, in its order. A gap (an event after one this State never had) means
        this State is not the engine's any more: nothing is folded and the link starts again from a
        snapshot, rather than show a State that drifts."""
        state = self._state
        recorded: list[Event] = []
        expected = state.seq + 1
        for event in events:
            if event.seq == 0:  # folded unrecorded by the engine, at its State's own seq
                state = fold(recorded, state) if recorded else state
                recorded = []
                at_seq = Event(state.seq, event.ts, event.kind, event.severity, event.source, event.payload)
                state = apply(state, at_seq)
            elif event.seq == expected:
                recorded.append(event)
                expected += 1
            elif event.seq > expected:
                self.engine_id = None  # the next attach asks for a snapshot
                raise ValueError(f"event {event.seq} came after event {expected - 1}: attaching afresh")
        self._state = fold(recorded, state) if recorded else state
        if self._news:  # news shown before its commit is not shown again at its commit
            shown_early = {(e.ts, e.kind) for e in events} & self._news
            events = [e for e in events if (e.ts, e.kind) not in shown_early]
            self._news -= shown_early
            if len(self._news) > 1000:  # never committed (the store failed): forget them
                self._news.clear()
        self._events.extend(events)
        if self.keep_seqs:
            self.seqs_seen.extend(e.seq for e in events if e.seq)

    # ----- what the app reads -----------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    def telemetry(self) -> Telemetry:
        return self._telemetry

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def link_problem(self, now: float | None = None) -> str | None:
        """What the banner says about the link to the engine, or None when all is well."""
        if self.unreachable_since is not None:
            since = (now or time.time()) - self.unreachable_since
            return f"ENGINE UNREACHABLE for {since:.0f} s ({self.why_unreachable})"
        if self.last_heard and time.monotonic() - self.last_heard > SILENT_S:
            return f"ENGINE SILENT for {time.monotonic() - self.last_heard:.0f} s (its State may be behind)"
        return None

    # ----- actions: the same typed commands as `cockpit ctl` ----------------------------------------------
    async def act(self, command: Asks[Answer]) -> Answer:
        if not self.attached.is_set():
            raise EngineUnreachable(
                "ENGINE UNREACHABLE: actions are disabled",
                f"{command.cmd} was not sent: {self.why_unreachable or 'the engine cannot be reached'}",
                "cockpit re-attaches by itself when the engine is back; check the engine's service "
                "(`systemctl --user status cockpit-…`, `journalctl --user -u cockpit-…`)",
            )
        return await self.ask(command)

    async def ask(self, command: Asks[Answer], wait_s: float = 120.0) -> Answer:
        """Send `command` on a connection of its own. The link streams on its old connection after a session
        rotation, while the engine's socket moves beside the new file: the socket is looked up again when the
        engine named a new session, and when nothing answers where it was (then the command is sent once
        more, where it is now; nothing was sent the first time)."""
        if self.socket_moved:
            self.path = self.locate()
        path = self.path
        try:
            return await ask(path, command, wait_s)
        except CockpitError as exc:
            if not exc.title.startswith("no engine"):
                raise
            found = self.locate()
            if found == path:
                raise
            self.path = found
            return await ask(found, command, wait_s)

    def locate(self) -> Path:
        """Where the engine's control socket is now: the finder's (a config's engine: its newest session's),
        else the one beside the session file the engine named last (a rotated session's socket moves there),
        the first that exists; else where it was."""
        beside: Path | None = None
        if self.session_file is not None:
            with contextlib.suppress(Exception):  # a path too long here: an engine on another machine
                beside = socket_path_for(self.session_file)
        candidates: list[Path] = []
        if self.find_socket is not None:
            with contextlib.suppress(Exception):  # its pointer file unreadable, no session yet: not here
                candidates.append(self.find_socket())
        if beside is not None:
            candidates.append(beside)
        for candidate in candidates:
            if candidate.exists():
                if candidate == beside:
                    self.socket_moved = False  # found beside the engine's session: until its next rotation
                return candidate
        return self.path

    async def backups(self) -> list[BackupInfo]:
        if self.session_file is None or not self.session_file.exists():
            return []  # an engine on another machine: its backups are there
        return await asyncio.to_thread(list_backups, self.session_file, True)

    async def restore(self, backup: Path) -> Path:
        raise CockpitError(
            "restore stops the engine: do it where the engine runs",
            "an attached cockpit does not stop the engine it watches",
            "stop the engine (e.g. `systemctl --user stop cockpit-…`), run `cockpit restore --config F "
            "--list` and `cockpit restore --config F PATH`, then start the engine again",
        )

    async def dead_letters(self) -> list[DeadLetterRow]:
        letters = await self.act(DlqList(by="ui"))
        return [
            DeadLetterRow(
                id=d.id,
                ts=d.ts,
                op=d.op,
                params=dict(d.params),
                error_class=d.error_class,
                error_type=d.error_type,
                reason=d.reason,
                attempts=d.attempts,
                status=d.status,  # type: ignore[arg-type]
            )
            for d in letters.letters
        ]

    @asynccontextmanager
    async def stats_source(self) -> AsyncIterator[StatsSource]:
        result = await self.act(ReadCopy(by="ui"))
        copy = Path(result.path)
        if not await asyncio.to_thread(copy.exists):
            raise CockpitError(
                "the session's read copy is on the engine's machine",
                str(copy),
                "run `cockpit report` there, or copy the file here",
            )
        name = self.session_file.name if self.session_file is not None else copy.name
        try:
            yield StatsSource(copy, name)
        finally:
            await asyncio.to_thread(discard, copy)


def _no_engine(path: Path, exc: BaseException) -> CockpitError:
    return CockpitError(
        "no engine is running for this session",
        f"nothing answers on {path} ({type(exc).__name__})",
        "start one (`cockpit run --config F --headless`, or its service), then attach again",
    )
