"""Market ticks older than `[session] tick_retention_h` move from the session file to Parquet partitions in
`ticks/` beside it (cockpit/store/archive.py), every `archive_every_s` (a minute), so an engine that runs for
weeks keeps a session file of bounded size. A failed move deletes nothing, is said once (an alert) and is
tried again."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.store.archive import ArchiveResult, archive_folder
from cockpit.store.errors import StoreError

if TYPE_CHECKING:
    from cockpit.engine.context import ArchiveContext

log = logging.getLogger(__name__)


async def archive_loop(engine: ArchiveContext) -> None:
    hours = engine.config.session.tick_retention_h
    if hours <= 0:
        return  # every tick stays in the session file
    failing = False
    while True:
        await asyncio.sleep(engine.options.archive_every_s)
        try:
            await archive_now(engine, time.time() - hours * 3600.0)
        except (StoreError, OSError) as exc:
            log.warning("tick archive failed: %s", exc)
            if not failing:
                engine.emit(
                    "alert",
                    events.alert(message=f"moving old ticks to Parquet failed (tried again later): {exc}"),
                    "warning",
                    "store",
                )
            failing = True
        else:
            failing = False


async def archive_now(engine: ArchiveContext, before_ts: float) -> ArchiveResult:
    """Move the ticks before `before_ts` to the archive; `db.archived` when any moved."""
    folder = archive_folder(engine.session_file)
    result = await asyncio.to_thread(engine.store.archive_ticks, before_ts, folder)
    if result.rows:
        cut = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(before_ts))
        engine.emit(
            "db.archived",
            events.db_archived(
                rows=result.rows,
                files=result.files,
                through_ts=before_ts,
                folder=str(folder),
                seconds=round(result.seconds, 3),
                message=f"{result.rows} ticks older than {cut} moved to {folder}"
                f" ({result.files} Parquet file(s), {result.seconds:.1f} s)",
            ),
            "info",
            "store",
        )
    return result
