"""The kill switch: no new risk. Engaging is immediate; it does not close positions; release needs the cause
cleared. Its state and cause are events, so they survive restarts; they are also the account's (the account
folder's `killswitch.json`), so they survive a new session file and strategies can read them."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.errors import CockpitError
from cockpit.engine.account_files import StoreFailureNote

if TYPE_CHECKING:
    from cockpit.engine.context import KillSwitchContext


log = logging.getLogger(__name__)


class ActionRefused(CockpitError):
    """An operator action that cannot be done now; the message says why and what to do."""


def remember(engine: KillSwitchContext) -> None:
    """Write the kill switch as State has it now (just committed, or engaged in memory when the store failed)
    to the account's state file, where strategies and the next engine read it."""
    current = engine.state.kill_switch
    try:
        engine.account.write_kill_switch(
            current.engaged,
            current.cause if current.engaged else None,
            current.by or None,
            current.since if current.engaged else None,
            engine.session_file,
        )
    except OSError as exc:  # the event is on disk; the file is a copy for strategies: say it is stale
        log.error("could not write %s: %s", engine.account.kill_switch_file, exc)
        engine.emit(
            "alert",
            events.alert(
                message=f"the kill-switch state file {engine.account.kill_switch_file} could not be "
                f"written ({exc}): strategies reading it see an old state",
            ),
            "critical",
            "risk",
        )


async def carry_over(engine: KillSwitchContext) -> None:
    """At start: the account's kill switch wins over this session file's (it is newer, or the file is new);
    a note left by an engine whose store failed engages it (that engine could write neither)."""
    files = engine.account
    store_failed = await _after_store_failure(engine)
    record = files.read_kill_switch()
    current = engine.state.kill_switch
    if record is not None and record.engaged and not current.engaged:
        since = record.since or record.updated
        await engine.record(
            "killswitch.engaged",
            events.killswitch_engaged(
                cause=record.cause or "engaged in an earlier session",
                by=record.by or "operator",
                since=since,
                carried_over=True,
                message=f"KILL SWITCH still engaged on this account since "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))} (by {record.by}: "
                f"{record.cause}) — no new risk; release with k or `cockpit ctl kill-switch off`",
            ),
            "warning",
            "risk",
        )
    elif (
        not store_failed  # the failed engine could not write killswitch.json: its "released" is stale
        and record is not None
        and not record.engaged
        and current.engaged
        and record.updated > (current.since or 0.0)
    ):
        await engine.record(
            "killswitch.released",
            events.killswitch_released(
                by=record.by or "operator",
                previous_cause=current.cause,
                carried_over=True,
                message=f"kill switch was released on this account by {record.by} after this session "
                "last ran",
            ),
            "warning",
            "operator",
        )
    remember(engine)


async def _after_store_failure(engine: KillSwitchContext) -> bool:
    """The last engine on this account lost its session store and engaged the kill switch in memory; its
    note (account_files.py) is all that may have reached the disk. Engage it again, recorded, saying why —
    also when this session file already shows it engaged for an older cause. True if there was a note."""
    files = engine.account
    try:
        note = files.store_failure_note()
    except OSError as exc:  # not knowing whether the last run failed is no reason to allow new risk
        log.error("could not read the store-failure note in %s: %s", files.lock_file, exc)
        note = StoreFailureNote(
            f"the store-failure note in {files.lock_file} could not be read ({exc}); engaged to be safe",
            0.0,
            "",
        )
    try:  # the space for this run's own note; its failure never drops the last run's
        files.reserve_store_note()
    except OSError as exc:
        log.error("could not reserve the store-failure note's space in %s: %s", files.lock_file, exc)
        await engine.record(
            "alert",
            events.alert(
                message=f"could not reserve space for a store-failure note in {files.lock_file} ({exc}): "
                "if this run's session store fails, the next start may not know it — check the disk",
            ),
            "critical",
            "risk",
        )
    if note is None:
        return False
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(note.since)) if note.since else "?"
    before = engine.state.kill_switch
    earlier = f" (it was already engaged by {before.by}: {before.cause})" if before.engaged else ""
    await engine.record(
        "killswitch.engaged",
        events.killswitch_engaged(
            cause=f"the session store failed at {when} ({note.cause}); the kill switch engaged then "
            "could not be written",
            by="store",
            since=note.since or None,
            carried_over=True,
            message=f"KILL SWITCH engaged: the session store of the last run ({note.session or '?'}) failed "
            f"at {when}: {note.cause} — events after its last commit are lost{earlier}; check the disk, "
            "reconcile, then release with k or `cockpit ctl kill-switch off`",
        ),
        "critical",
        "risk",
    )
    remember(engine)
    try:
        files.clear_store_note()  # recorded now: the session file and killswitch.json say it
    except OSError as exc:
        log.error("could not clear the store-failure note in %s: %s", files.lock_file, exc)
        engine.emit(
            "alert",
            events.alert(
                message=f"the store-failure note in {files.lock_file} could not be cleared ({exc}): the "
                "next start will engage the kill switch for it again",
            ),
            "warning",
            "risk",
        )
    return True


async def engage(engine: KillSwitchContext, cause: str, by: str) -> bool:
    """Engage (idempotent): True if this call engaged it."""
    if engine.state.kill_switch.engaged:
        return False
    await engine.record(
        "killswitch.engaged",
        events.killswitch_engaged(
            cause=cause,
            by=by,
            message=f"KILL SWITCH engaged by {by}: {cause} — no new risk; positions stay open",
        ),
        "critical",
        "risk" if by in ("risk", "clock", "flag-file", "store") else "operator",
    )
    remember(engine)
    return True


def cause_still_present(engine: KillSwitchContext) -> str | None:
    """Why releasing now would be unsafe, or None."""
    state = engine.state
    risk = engine.config.risk
    if engine.session_lost is not None:
        return (
            f"{engine.session_lost.reason}: stop the engine and restore the backup "
            "(`cockpit restore --config F --latest`) first"
        )
    if engine.kill_flag.exists():
        return f"the flag file {engine.kill_flag} still exists: remove it first"
    drawdown = float(state.drawdown_pct)
    if drawdown >= risk.kill_drawdown_pct:
        return f"drawdown {drawdown:.2f}% is still at or above the {risk.kill_drawdown_pct}% limit"
    offset = state.clock_offset_ms
    if offset is not None and abs(offset) >= risk.clock_kill_ms:
        return (
            f"clock offset {offset:+.0f} ms is still beyond {risk.clock_kill_ms} ms: fix the time sync first"
        )
    return None


async def release(engine: KillSwitchContext, by: str) -> None:
    if not engine.state.kill_switch.engaged:
        raise ActionRefused("the kill switch is not engaged", fix="nothing to release")
    reason = cause_still_present(engine)
    if reason is not None:
        raise ActionRefused(
            "the kill switch cannot be released yet", reason, "clear the cause, then release again"
        )
    await engine.record(
        "killswitch.released",
        events.killswitch_released(
            by=by,
            previous_cause=engine.state.kill_switch.cause,
            message=f"kill switch released by {by}",
        ),
        "warning",
        "operator",
    )
    remember(engine)


def engage_unpersisted(engine: KillSwitchContext, cause: str) -> None:
    """The store is gone: engage in memory and tell every subscriber, without a (now impossible) commit.

    The event goes through the fold like any other (State changes only there); it takes no seq of its own,
    since the file will never hold it."""
    payload = events.killswitch_engaged(
        cause=cause,
        by="store",
        persisted=False,
        message=f"KILL SWITCH engaged: {cause} — the session file can no longer be written; stopping",
    )
    engine.core.apply_unrecorded("killswitch.engaged", payload, "critical", "store")
    try:  # first into space reserved at start: it needs no free disk (a full disk is a usual cause)
        engine.account.note_store_failure(cause, time.time(), engine.session_file)
    except OSError as exc:
        log.critical("could not leave the store-failure note in %s: %s", engine.account.lock_file, exc)
    remember(engine)  # the session file cannot say so any more; the account's state file may still
