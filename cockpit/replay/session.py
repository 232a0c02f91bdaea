"""Replay of a session file: its stored events through the same `apply` and the same panes, read-only.

Seeking is instant: the session's snapshots (and checkpoints this replay takes as it goes) mean at most a
few thousand events are folded to reach any point.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from cockpit.analytics.episodes import read_incidents
from cockpit.analytics.reading import damaged, open_for_reading
from cockpit.core import events as ev
from cockpit.core.domain import ROUTINE_KEPT, ROUTINE_KINDS, Event
from cockpit.core.incidents import Incident
from cockpit.core.snapshot import state_from_json
from cockpit.core.state import MARKS_KIND, Fold, State

CHECKPOINT_EVERY = 2000


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch of rows becomes events and is folded: the batch allocates
    tens of thousands of acyclic objects (rows, payload dicts, States) that the collector would traverse
    again and again for nothing — about a sixth of replay's time. Collection resumes after the batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class ReplaySession:
    """A session file opened for replay. Events are gap-free from seq 1, so a position is a seq: the replay
    is "after event `position`". Only timestamps, incidents and snapshot seqs are held in memory; events are
    read from the file in ranges as the replay moves, so a million-event session opens in a fraction of a
    second and seeks by folding at most one snapshot interval."""

    path: Path
    con: duckdb.DuckDBPyConnection
    times: list[float]
    incident_list: list[tuple[int, str]]  # (first seq, severity) of each incident, in order
    snapshot_seqs: list[int]
    # the incidents themselves (cockpit.core.incidents)
    episodes: list[Incident] = field(default_factory=list)
    position: int = 0
    state: State = field(default_factory=State)
    _checkpoints: dict[int, State] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> ReplaySession:
        """SessionInUse when a running engine holds the file (replay never fights that lock: replay the
        verified copy it writes, `cockpit.engine.live_copy`); SessionFileError for anything else unusable,
        EmptySessionError if no event was ever written."""
        con = open_for_reading(path).con
        try:
            times = [float(t) for (t,) in con.execute("SELECT ts FROM events ORDER BY seq").fetchall()]
            incidents, _ = read_incidents(con)
            snaps = [int(s) for (s,) in con.execute("SELECT seq FROM snapshots ORDER BY seq").fetchall()]
        except duckdb.Error as exc:
            con.close()
            raise damaged(path, exc) from exc
        except BaseException:
            con.close()
            raise
        return cls(path, con, times, [(i.first_seq, i.severity) for i in incidents], snaps, incidents)

    def close(self) -> None:
        self.con.close()

    @property
    def total(self) -> int:
        return len(self.times)

    @property
    def first_ts(self) -> float:
        return self.times[0]

    @property
    def current_ts(self) -> float:
        return self.times[self.position - 1] if self.position else self.times[0]

    def incidents(self) -> list[int]:
        """Where each incident starts: the position just after its first symptom, in time order."""
        return [seq for seq, _ in self.incident_list]

    def position_at(self, ts: float) -> int:
        """How many events happened at or before `ts`."""
        return bisect.bisect_right(self.times, ts)

    def events_between(self, after: int, upto: int) -> list[Event]:
        """Events with after < seq <= upto, from the file."""
        loads = orjson.loads
        return [
            Event(seq, ts, kind, severity, source, loads(payload))
            for seq, ts, kind, severity, source, payload in self._rows(after, upto)
        ]

    def _rows(self, after: int, upto: int) -> list[tuple[Any, ...]]:
        return self.con.execute(
            "SELECT seq, ts, kind, severity, source, payload FROM events "
            "WHERE seq > ? AND seq <= ? ORDER BY seq",
            [after, upto],
        ).fetchall()

    def snapshot(self, seq: int) -> State:
        (text,) = self.con.execute("SELECT state FROM snapshots WHERE seq = ?", [seq]).fetchall()[0]
        return state_from_json(str(text))

    def step(self, count: int = 1) -> list[Event]:
        """Apply the next `count` events. Returns the ones the event log would keep: every event but the
        info mark updates before the step's last ROUTINE_KEPT routine events, which are folded straight from
        their rows (a step of 10 000 events at full speed is mostly marks nobody will read)."""
        if self.position == 0 and count > 0 and self.snapshot_seqs[:1] == [1]:
            # a rotated session's file starts with the State carried over: its snapshot at seq 1
            first = self.events_between(0, 1)
            self.state, self.position = self.snapshot(1), 1
            return first + self.step(count - 1)
        end = min(self.total, self.position + count)
        rows = self._rows(self.position, end)
        first_kept = _first_kept_routine_seq(rows, ROUTINE_KEPT)
        loads, shown, checkpoints = orjson.loads, [], self._checkpoints
        marks: list[tuple[int, float, ev.MarketMarks]] = []  # a run of mark updates, folded as one
        with gc_paused(), Fold(self.state) as folding:
            for seq, ts, kind, severity, source, text in rows:
                payload = loads(text)
                if kind == MARKS_KIND and severity == "info":
                    marks.append((seq, ts, payload))
                    if seq >= first_kept:
                        shown.append(Event(seq, ts, kind, severity, source, payload))
                else:
                    if marks:
                        folding.marks(marks)
                        marks = []
                    shown.append(Event(seq, ts, kind, severity, source, payload))
                    folding.event(shown[-1])
                if seq % CHECKPOINT_EVERY == 0:
                    if marks:
                        folding.marks(marks)
                        marks = []
                    checkpoints[seq] = folding.state
            if marks:
                folding.marks(marks)
        self.state = folding.state
        self.position = end
        return shown

    def seek(self, position: int) -> None:
        """Jump to just after event `position` (0 = before the first)."""
        position = max(0, min(self.total, position))
        base_pos, base_state = 0, State()
        checkpoints = [p for p in self._checkpoints if p <= position]
        if checkpoints:
            base_pos = max(checkpoints)
            base_state = self._checkpoints[base_pos]
        index = bisect.bisect_right(self.snapshot_seqs, position)
        if index and self.snapshot_seqs[index - 1] > base_pos:
            base_pos = self.snapshot_seqs[index - 1]
            base_state = self.snapshot(base_pos)
        self.position, self.state = base_pos, base_state
        self.step(position - base_pos)

    def seek_time(self, ts: float) -> None:
        self.seek(self.position_at(ts))


def _first_kept_routine_seq(rows: list[tuple[Any, ...]], keep: int) -> int:
    """Seq of the first of the last `keep` routine events in `rows` (the first row's if fewer)."""
    seen = 0
    for row in reversed(rows):
        if row[2] in ROUTINE_KINDS:
            seen += 1
            if seen == keep:
                return int(row[0])
    return int(rows[0][0]) if rows else 0
