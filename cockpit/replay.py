"""Replay of a session file: its stored events through the same `apply` and the same panes, read-only.

Seeking is instant: the session's snapshots (and checkpoints this replay takes as it goes) mean at most a
few thousand events are folded to reach any point.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson

from cockpit.domain import Event, Telemetry
from cockpit.engine.backups import BackupInfo
from cockpit.errors import CockpitError
from cockpit.snapshot import state_from_json
from cockpit.state import State, apply
from cockpit.store import DeadLetterRow, SessionFileError
from cockpit.store.files import check_duckdb_magic
from cockpit.store.schema import check_session, read_meta

CHECKPOINT_EVERY = 2000


class SessionLocked(CockpitError):
    """Another process (a running engine) holds the session file."""


SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def load_events(path: Path) -> tuple[list[Event], dict[int, str], dict[str, str]]:
    """Every event, the stored snapshots (seq → JSON) and the meta of a session file, read-only."""
    if not path.is_file():
        raise SessionFileError(f"no session file at {path}", "nothing to replay", "check the path")
    check_duckdb_magic(path)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise SessionLocked(
                f"{path.name} is held by a running engine",
                "DuckDB lets one process hold a file; replay never fights that lock",
                "take a consistent copy with `cockpit backup --config F` and replay the backup",
            ) from None
        raise SessionFileError(
            f"DuckDB cannot open {path}", str(exc), "verify it with `cockpit doctor`"
        ) from None
    try:
        meta = read_meta(con)
        check_session(path, meta)
        rows = con.execute(
            "SELECT seq, ts, kind, severity, source, payload FROM events ORDER BY seq"
        ).fetchall()
        snaps = con.execute("SELECT seq, state FROM snapshots ORDER BY seq").fetchall()
    finally:
        con.close()
    if not rows:
        raise CockpitError(
            f"session {path.name} has no events", "there is nothing to replay", "pick another file"
        )
    events = [Event(int(r[0]), float(r[1]), str(r[2]), r[3], str(r[4]), orjson.loads(r[5])) for r in rows]
    return events, {int(s): str(j) for s, j in snaps}, dict(meta or {})


@dataclass
class ReplaySession:
    path: Path
    events: list[Event]
    snapshots: dict[int, str]
    position: int = 0  # how many events have been applied
    state: State = field(default_factory=State)
    _checkpoints: dict[int, State] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> ReplaySession:
        events, snapshots, _ = load_events(path)
        return cls(path, events, snapshots)

    @property
    def total(self) -> int:
        return len(self.events)

    @property
    def current_ts(self) -> float:
        return self.events[self.position - 1].ts if self.position else self.events[0].ts

    def __post_init__(self) -> None:
        self._seqs = [e.seq for e in self.events]
        self._times = [e.ts for e in self.events]
        self._incidents = [i + 1 for i, e in enumerate(self.events) if e.severity != "info"]

    def incidents(self) -> list[int]:
        """Positions (1-based counts) of warning and critical events."""
        return self._incidents

    def position_at(self, ts: float) -> int:
        """How many events happened at or before `ts`."""
        return bisect.bisect_right(self._times, ts)

    def step(self, count: int = 1) -> list[Event]:
        """Apply the next `count` events; returns them."""
        end = min(self.total, self.position + count)
        applied = self.events[self.position : end]
        state = self.state
        for event in applied:
            state = apply(state, event)
        self.state = state
        self.position = end
        if end % CHECKPOINT_EVERY == 0:
            self._checkpoints[end] = state
        return applied

    def seek(self, position: int) -> None:
        """Jump to just after event number `position` (0 = before the first)."""
        position = max(0, min(self.total, position))
        base_pos, base_state = 0, State()
        candidates = [p for p in self._checkpoints if p <= position]
        snap_seqs = [s for s in self.snapshots if s <= self._seq_at(position)]
        if candidates:
            base_pos = max(candidates)
            base_state = self._checkpoints[base_pos]
        if snap_seqs:
            snap_pos = self._pos_of_seq(max(snap_seqs))
            if snap_pos > base_pos:
                base_pos, base_state = snap_pos, state_from_json(self.snapshots[max(snap_seqs)])
        self.position, self.state = base_pos, base_state
        self.step(position - base_pos)

    def seek_time(self, ts: float) -> None:
        self.seek(self.position_at(ts))

    def _seq_at(self, position: int) -> int:
        return self.events[position - 1].seq if position else 0

    def _pos_of_seq(self, seq: int) -> int:
        return bisect.bisect_right(self._seqs, seq)


class ReplayBackend:
    """A replay as the app's backend: the state at the replay's position; no action reaches an exchange."""

    read_only = True

    def __init__(self, session: ReplaySession) -> None:
        self.session = session
        self.label = f"REPLAY {session.path.name}"
        self._pending: list[Event] = []
        self.reset = False  # set after a seek: the app clears its event log

    @property
    def state(self) -> State:
        return replace(self.session.state, mode="replay")  # what is shown is marked REPLAY everywhere

    def telemetry(self) -> Telemetry:
        return Telemetry(now=self.session.current_ts)

    def take_events(self) -> list[Event]:
        events, self._pending = self._pending, []
        return events

    def advance(self, count: int) -> None:
        self._pending.extend(self.session.step(count))

    def seek(self, position: int) -> None:
        self.session.seek(position)
        self._pending = self.session.events[max(0, self.session.position - 200) : self.session.position]
        self.reset = True

    async def act(self, request: dict[str, Any]) -> Any:
        from cockpit.backend import ReadOnly

        raise ReadOnly("REPLAY: actions are disabled", f"{request.get('cmd')} would touch an exchange")

    async def backups(self) -> list[BackupInfo]:
        return []

    async def dead_letters(self) -> list[DeadLetterRow]:
        return []

    async def restore(self, backup: Path) -> None:
        from cockpit.backend import ReadOnly

        raise ReadOnly("REPLAY: actions are disabled", "restore needs a live engine")


def live_copy(session_file: Path) -> Path:
    """Ask the engine running on `session_file` for a verified backup (a consistent copy) and return it."""
    import asyncio

    from cockpit.engine.control import request, socket_path_for

    reply = asyncio.run(request(socket_path_for(session_file), {"cmd": "backup", "by": "replay"}))
    if not reply.get("ok"):
        detail, fix = str(reply.get("detail") or ""), str(reply.get("fix") or "")
        raise CockpitError(str(reply.get("error")), detail, fix)
    return Path(reply["result"]["path"])


def replay_command(args: Any) -> int:
    from cockpit.replay_app import ReplayApp

    started = time.perf_counter()
    path = Path(args.session)
    try:
        session = ReplaySession.open(path)
    except SessionLocked:
        path = live_copy(path)  # the engine writes a consistent, verified copy; replay that
        session = ReplaySession.open(path)
    session.seek(session.total if args.end else 0)
    app = ReplayApp(ReplayBackend(session), load_seconds=time.perf_counter() - started)
    return int(app.run() or 0)
