"""Small value types the store reports with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreTrouble:
    """A batch write failed (or came back). Reported on the writer thread: keep the callback quick."""

    attempt: int  # which write of this batch failed: 1 is the first try, then each retry
    next_delay_s: float | None  # the wait before the next retry; None when final or recovered
    error_text: str
    final: bool = False  # every retry failed: the store is failed and refuses further writes
    recovered: bool = False  # a retry succeeded after `attempt` failures; the batch is on disk


@dataclass(frozen=True, slots=True)
class StoreStats:
    queue_depth: int  # items queued or being written (events, tick batches, snapshots, dead-letter ops)
    last_commit_at: float | None  # wall clock (epoch seconds) of the last successful COMMIT
    last_commit_ms: float | None  # how long that batch took to write and commit
    commits: int
    events_written: int
    ticks_written: int
    errors: int  # failed write attempts, retried or not
    retrying: bool
    failed: bool
    last_seq: int  # last event seq on disk
