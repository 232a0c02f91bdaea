"""The session file under watch: deleted or replaced while the engine runs is a critical incident.

DuckDB holds the session file open, so an `rm` (or a `mv` of another file over it) goes unnoticed by the
writer: commits keep landing in the open, now nameless file, `database ok` stays on screen, and the session
vanishes when the engine exits. So every `session_file_check_s` (2 s) the path's identity, device and inode
(one `stat`, no open: opening the file would drop DuckDB's lock, see cockpit/store/files.py), is compared
with the identity the engine opened. When it differs:

1. the database health goes CRITICAL (`deleted` or `replaced`, with the reason; a `health.changed` event, so
   the incident, the pane, `ctl status` and the report all say it), and only a restore clears it;
2. the kill switch is engaged as for any database failure (by `store`, cause `database failure: …`), and
   cannot be released while the file is gone;
3. a verified backup of the open database is taken at once into `backups/` (DuckDB still reads it), and a
   last one when the engine stops, after `session.stopped`, so nothing recorded is lost;
4. the engine keeps watching the account (positions stay open at the exchange); when it stops it exits
   non-zero and says where the last backup is and how to restore it (`SessionFileLost`, in
   session_identity.py with the identity itself).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.engine.backups import backup, backup_unrecorded, backups_dir
from cockpit.engine.killswitch import engage
from cockpit.engine.session_identity import LostFile, change_of
from cockpit.store import StoreError

if TYPE_CHECKING:
    from cockpit.engine.context import BackupContext, FileWatchContext

log = logging.getLogger(__name__)


async def session_file_loop(engine: FileWatchContext) -> None:
    """Compare the session path's identity with the open file's every `session_file_check_s`; act once. Both
    are read at each check: a rotation (cockpit/engine/rotation.py) switches them together."""
    while engine.session_lost is None:
        await asyncio.sleep(engine.options.session_file_check_s)
        opened, path = engine.session_identity, engine.session_file
        if opened is None:  # the engine could not see its own file when it opened it
            continue
        found = change_of(path, opened)
        if found is not None:
            change, now = found
            await session_file_lost(engine, LostFile(path, change, opened, now))


async def session_file_lost(engine: FileWatchContext, lost: LostFile) -> None:
    """The critical incident: health CRITICAL with the reason, kill switch, a verified backup at once."""
    engine.session_lost = lost
    log.critical("%s: kill switch engaged, backing up the open file", lost.reason)
    await engine.record(
        "health.changed",
        events.health_changed(
            item="database",
            status=lost.change,
            message=f"{lost.reason}; the engine still writes to the open file: backing it up to "
            f"{backups_dir(lost.path)}",
            detail=lost.short,
        ),
        "critical",
        "store",
    )
    await engage(engine, f"database failure: {lost.reason}", "store")
    try:
        result = await backup(engine, "session-file-watch")
    except (StoreError, OSError) as exc:
        engine.emit(
            "alert",
            events.alert(
                message=f"the backup of the open session file failed ({exc}): keep the engine running, "
                f"free or fix {backups_dir(lost.path)}, then back up (b, or `cockpit backup`)"
            ),
            "critical",
            "store",
        )
        return
    if result.verified:
        lost.backups.append(result.path)


async def last_backup(engine: BackupContext) -> None:
    """At stop, after `session.stopped`: the open file's last verified copy, since it vanishes on close."""
    lost = engine.session_lost
    if lost is None:
        return
    try:
        result = await backup_unrecorded(engine, "stop")
    except (StoreError, OSError) as exc:
        log.critical("the last backup of the open session file failed: %s", exc)
        return
    if result.verified:
        lost.backups.append(result.path)
    log.critical("%s", result.message)
