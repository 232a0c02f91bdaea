"""When the writer checkpoints a session file, and how it then gives DuckDB's block cache back.

DuckDB's automatic checkpoints are off for the session (see opening.SESSION_SETTINGS): the writer runs one
between writes once the WAL has passed CHECKPOINT_WAL_BYTES, so the rows appended since the last one, which
wait in memory until then, stay under ~5 MB (DuckDB's default, 16 MB of WAL, is ~18 MB of ticks). Then it
trims DuckDB's block cache: a checkpoint leaves the table blocks it wrote cached, ~9 MB more per million
ticks, without bound under the default memory limit (80 % of RAM); lowering the limit to CACHE_TRIM_LIMIT
for a moment evicts them. Never during the checkpoint itself: one that runs out of memory invalidates the
database ("database has been invalidated because of a previous fatal error"), and one that rewrites a column
of large compressed strings (state snapshots) asks for 32 MB at once. Nor while a reader is at work.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import duckdb

from cockpit.store.reads import Readers

CHECKPOINT_WAL_BYTES = 4 << 20
CACHE_TRIM_LIMIT = "8MB"


class Checkpoints:
    """The writer's checkpoint-and-trim policy for one session file, run on the writer's cursor."""

    __slots__ = ("_cur", "_memory_limit", "_readers", "_threshold", "_wal")

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        wal: Path,
        readers: Readers,
        *,
        threshold: int = CHECKPOINT_WAL_BYTES,
    ) -> None:
        self._cur = cur
        self._wal = wal
        self._readers = readers
        self._threshold = threshold  # WAL bytes
        limit = cur.execute("SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'")
        self._memory_limit = str(limit.fetchall()[0][0])  # the usual limit, restored after a trim

    def after_write(self, records_waiting: Callable[[], bool]) -> None:
        """CHECKPOINT once the WAL has passed `threshold` bytes, then trim the block cache (see above).

        Waiting records are written first (unless the WAL has grown to four times that meanwhile). A
        checkpoint that fails (a reader's open transaction, say) is tried again after the next write.
        """
        try:
            wal_bytes = os.stat(self._wal).st_size
        except OSError:
            return
        if wal_bytes < self._threshold:
            return
        if wal_bytes < 4 * self._threshold and records_waiting():
            return
        try:
            self._cur.execute("CHECKPOINT")
        except duckdb.Error:
            return
        self._readers.when_idle(self._trim_cache)  # no reader starts while the limit is low

    def _trim_cache(self) -> None:
        try:
            self._cur.execute(f"SET memory_limit = '{CACHE_TRIM_LIMIT}'")
        except duckdb.Error:
            pass  # it evicts what it can before it gives up
        finally:
            with contextlib.suppress(duckdb.Error):
                self._cur.execute(f"SET memory_limit = '{self._memory_limit}'")
