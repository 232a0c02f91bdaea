"""What the session store queues and the shape of a batch: pure, no connection, no thread.

Callers' threads build the items (`tick_batch` turns tick rows into the frame the writer inserts); the writer
thread turns the items it takes into one `Prepared` batch (`prepare`: hashes chained, tick frames joined)
and hands tick and event frames to DuckDB through an `ArrowView`. See writer.py for the queues and the
thread that writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import polars as pl

from cockpit.core.domain import Event
from cockpit.store.dlq import DeadLetterStatus, NewDeadLetter
from cockpit.store.hashing import event_hash

TickRow = tuple[float, str, float, float, float, float]
TICK_SCHEMA: dict[str, Any] = {
    "ts": pl.Float64,
    "symbol": pl.String,
    "bid": pl.Float64,
    "ask": pl.Float64,
    "bid_qty": pl.Float64,
    "ask_qty": pl.Float64,
}
EVENT_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64,
    "ts": pl.Float64,
    "kind": pl.String,
    "severity": pl.String,
    "source": pl.String,
    "payload": pl.String,
    "hash": pl.String,
}
EVENT_COLUMNS = ", ".join(EVENT_SCHEMA)  # the events table's columns, in that order, for SQL
_TICK_COLUMNS = tuple(TICK_SCHEMA)
_TICK_FIELDS = tuple(itemgetter(i) for i in range(len(TICK_SCHEMA)))


@dataclass(slots=True)
class EventItem:
    event: Event
    payload: str
    future: Future[None] | None


@dataclass(slots=True)
class TicksItem:
    frame: pl.DataFrame  # TICK_SCHEMA's columns, in that order (see tick_batch)


@dataclass(slots=True)
class SnapshotItem:
    seq: int
    ts: float
    state: str


@dataclass(slots=True)
class DlqAdd:
    letter: NewDeadLetter
    future: Future[int]


@dataclass(slots=True)
class DlqStatus:
    letter_id: int
    status: DeadLetterStatus
    future: Future[None]


@dataclass(slots=True)
class DlqPurge:
    cutoff_ts: float
    status: DeadLetterStatus | None
    future: Future[int]


@dataclass(slots=True)
class MetaSet:
    key: str
    value: str
    future: Future[None]


@dataclass(slots=True)
class Backup:
    dest: Path
    future: Future[int]


@dataclass(slots=True)
class Archive:
    """Move ticks before `before_ts` out to Parquet (cockpit/store/archive.py): (rows, staging folder)."""

    before_ts: float
    folder: Path
    session: str
    future: Future[tuple[int, Path, float]]


@dataclass(slots=True)
class Stop:
    pass


Record = EventItem | SnapshotItem | DlqAdd | DlqStatus | DlqPurge | MetaSet
BatchItem = Record | TicksItem
Barrier = Backup | Archive | Stop


@dataclass(slots=True)
class Fence:
    """A barrier in the records queue, and how many tick batches were queued before it (written first)."""

    barrier: Barrier
    ticks_before: int


@dataclass(slots=True)
class Prepared:
    """A batch made ready once (hashes chained, tick frames joined) and written as often as retries need."""

    events: list[tuple[int, float, str, str, str, str, str]] = field(default_factory=list)
    ticks: pl.DataFrame | None = None
    snapshots: list[tuple[int, float, str]] = field(default_factory=list)
    dlq_ops: list[DlqAdd | DlqStatus | DlqPurge | MetaSet] = field(default_factory=list)  # + meta
    futures: list[Future[Any]] = field(default_factory=list)
    last_hash: str = ""


def prepare(batch: list[BatchItem], written_seq: int, written_hash: str) -> Prepared:
    """The batch taken after event `written_seq` (whose hash is `written_hash`), ready to write."""
    prepared = Prepared(last_hash=written_hash)
    tick_frames: list[pl.DataFrame] = []
    prev_seq = written_seq
    for item in batch:
        if isinstance(item, EventItem):
            ev = item.event
            if ev.seq != prev_seq + 1:  # enforced when queued; never write a gap whatever happens
                raise AssertionError(f"store writer got seq {ev.seq} after {prev_seq}")
            prev_seq = ev.seq
            ts = float(ev.ts)  # hashed as the DOUBLE it is stored as
            digest = event_hash(prepared.last_hash, ev.seq, ts, ev.kind, ev.severity, ev.source, item.payload)
            prepared.events.append((ev.seq, ts, ev.kind, ev.severity, ev.source, item.payload, digest))
            prepared.last_hash = digest
            if item.future is not None:
                prepared.futures.append(item.future)
        elif isinstance(item, TicksItem):
            tick_frames.append(item.frame)
        elif isinstance(item, SnapshotItem):
            prepared.snapshots.append((item.seq, item.ts, item.state))
        else:
            prepared.dlq_ops.append(item)
            prepared.futures.append(item.future)
    if tick_frames:  # one schema (tick_batch), so concatenating copies nothing
        prepared.ticks = tick_frames[0] if len(tick_frames) == 1 else pl.concat(tick_frames, rechunk=False)
    return prepared


def tick_frame(rows: Sequence[TickRow]) -> pl.DataFrame:
    """Tick tuples as a Polars frame, built column by column (faster than orient="row").

    Each column is gathered with `map(itemgetter(i), rows)`: `zip(*rows)` makes one iterator object per row,
    and 10 000 of those per batch set off a dozen garbage collections (profiled: 2 of the 2.8 ms a batch took
    went to the collector).
    """
    if rows and list(map(len, rows)).count(len(TICK_SCHEMA)) != len(rows):
        raise ValueError(f"tick rows must have {len(TICK_SCHEMA)} fields: {', '.join(TICK_SCHEMA)}")
    return pl.DataFrame(
        [
            pl.Series(name, list(map(field, rows)), dtype=dtype, strict=False)
            for (name, dtype), field in zip(TICK_SCHEMA.items(), _TICK_FIELDS, strict=True)
        ]
    )


def tick_batch(rows: Sequence[TickRow] | pl.DataFrame) -> pl.DataFrame:
    """Tick rows, or a Polars frame of the tick columns, as the frame the writer inserts.

    Runs on the caller's thread, so the writer only inserts; a frame is narrowed to the tick columns and cast
    to their types here, so a bad frame raises for its caller and every queued batch has the same schema.
    """
    if isinstance(rows, pl.DataFrame):
        return rows.select(_TICK_COLUMNS).cast(pl.Schema(TICK_SCHEMA))
    return tick_frame(rows)


class ArrowView:
    """A frame for DuckDB to read, registered once as a view and swapped for each write.

    Registering each batch anew runs ~0.3 ms of Python in DuckDB's source adapter while holding the GIL (a
    tenth of a 10 k-row insert and most of a 1 k-row one); DuckDB reads a registered object's stream afresh
    at every scan, so one object serves every batch. It offers only the Arrow PyCapsule stream, which Polars
    exports natively: a Polars frame registered as such is read through `to_arrow()`, which loads pyarrow
    (~30 MB of RSS in the engine, for nothing).
    """

    __slots__ = ("empty", "frame")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.empty = pl.DataFrame(schema=schema)  # what it reads as between writes (and when registered)
        self.frame: pl.DataFrame | None = None

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        frame = self.empty if self.frame is None else self.frame
        return frame.__arrow_c_stream__(requested_schema)
