"""An engine that runs for weeks goes on in a new session file every day (`[session] rotate = "daily"`, at
the first check after midnight UTC) or when its file grows past `[session] rotate_mb`.

The switch happens inside the running engine, with no gap in what it watches: feeds, workers, the control
socket and attached cockpits stay up. The old file's last event is `session.rotated` (naming the next file);
the new file's first is `session.started` with `continues` (the old file), followed by a snapshot of the State
carried over at seq 1: positions, orders, balances, the drawdown's peak, health, the reconcile point. The
kill switch belongs to the account and its file, so it carries over by itself. A restart of the new file
restores that State like any other; `cockpit run` with a fixed `[session] path` follows the chain of
`session.rotated` to the newest file (`follow_rotations`).

Names: a session folder's files stay `session-YYYYmmdd-HHMMSS.duckdb`; a fixed `path` goes on in
`<name>-YYYYmmdd-HHMMSS.duckdb` beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

from cockpit.core import events
from cockpit.core.errors import CockpitError
from cockpit.core.snapshot import state_to_json
from cockpit.store.archive import archive_folder

if TYPE_CHECKING:
    from cockpit.engine.context import RotationContext

log = logging.getLogger(__name__)


class RotationAbandoned(CockpitError):
    """A rotation that could not switch: the session stays in its file."""


_STAMPED = re.compile(r"^(?P<base>.*?)-?(?P<stamp>\d{8}-\d{6})(?:-\d+)?$")
FOLLOW_MAX = 100_000  # files in one chain (a daily rotation: 270 years)


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def next_file(current: Path, now: float) -> Path:
    """The file a rotation at `now` goes on in: beside `current`, named by the time, never one that exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    match = _STAMPED.match(current.stem)
    base = match.group("base") if match else current.stem
    name = f"{base}-{stamp}" if base else f"session-{stamp}"
    candidate = current.with_name(f"{name}{current.suffix}")
    n = 1
    while candidate.exists() or candidate == current:
        candidate = current.with_name(f"{name}-{n}{current.suffix}")
        n += 1
    return candidate


def due(engine: RotationContext, started: float, now: float) -> str | None:
    """Why the session should go on in a new file now (daily, size), or None."""
    session = engine.config.session
    if session.rotate == "daily" and utc_day(now) != utc_day(started):
        return "daily"
    if session.rotate_mb:
        size = 0
        for part in (engine.session_file, engine.session_file.with_name(engine.session_file.name + ".wal")):
            with contextlib.suppress(OSError):  # the WAL comes and goes with each checkpoint
                size += part.stat().st_size
        if size > session.rotate_mb * 1_000_000:
            return "size"
    return None


async def rotation_loop(engine: RotationContext) -> None:
    session = engine.config.session
    if session.rotate == "never" and not session.rotate_mb:
        return
    started = await asyncio.to_thread(_first_event_ts, engine)
    failing = False
    while True:
        await asyncio.sleep(engine.options.rotation_check_s)
        reason = await asyncio.to_thread(due, engine, started, time.time())
        if reason is None:
            continue
        try:
            await rotate(engine, reason)
        except (CockpitError, OSError, duckdb.Error) as exc:  # the session goes on in the file it is in
            log.warning("session rotation failed: %s", exc)
            if not failing:  # said once, not at every check while it lasts
                engine.emit(
                    "alert",
                    events.alert(
                        message=f"the session could not go on in a new file ({exc}); tried again every minute"
                    ),
                    "warning",
                    "store",
                )
            failing = True
            continue
        failing = False
        started = time.time()


def _first_event_ts(engine: RotationContext) -> float:
    first = engine.store.read_events(0, limit=1)
    return first[0].ts if first else time.time()


async def rotate(engine: RotationContext, reason: str) -> Path:
    """Go on in a new session file now; returns it. RotationAbandoned (nothing switched, the new file
    removed) when the old file still has events to commit, failed, or the engine is stopping."""
    from cockpit.engine import market
    from cockpit.engine.reconcile import session_began

    old_file, old_store = engine.session_file, engine.store
    new_file = next_file(old_file, time.time())
    began = await asyncio.to_thread(session_began, old_store)
    new_store = await asyncio.to_thread(engine.open_store, new_file)
    switched = False
    try:
        letters = await asyncio.to_thread(old_store.dead_letters, status="open")
        market.flush_ticks(engine)  # the ticks received so far belong to the old file
        await engine.core.drain()
        if engine.core.store_failed or engine.stopping or engine.core.pending or old_store.stats().retrying:
            raise RotationAbandoned(
                "the session file still has events to write (or failed), or the engine is stopping"
            )
        # from here to the first event of the new file, no await: nothing else can emit in between
        engine.emit(
            "session.rotated",
            events.session_rotated(
                next_file=str(new_file),
                reason=reason,
                last_seq=engine.state.seq + 1,
                message=f"{'a new day (UTC)' if reason == 'daily' else 'the file reached its size limit'}: "
                f"the session goes on in {new_file.name}, its State carried over",
            ),
            "info",
            "engine",
        )
        engine.core.switch_store(new_store, replace(engine.state, seq=0))
        engine.switch_session_file(new_store, new_file)
        switched = True
        started = engine.emit(
            "session.started",
            events.session_started(
                mode=engine.options.mode,
                exchange=engine.config.exchange.id,
                session_file=str(new_file),
                restored=True,
                restored_seq=0,
                continues=str(old_file),
                session_began=began,
            ),
            "info",
            "engine",
        )
        if started is not None:  # the State carried over, so that a restart of the new file restores it
            new_store.put_snapshot(started.seq, started.ts, state_to_json(engine.state))
        for letter in letters:  # the dead letters still open live in the file, not in State: carried too
            new_store.add_dead_letter(
                op=letter.op,
                params=letter.params,
                error_class=letter.error_class,
                error_type=letter.error_type,
                reason=letter.reason,
                attempts=letter.attempts,
                ts=letter.ts,
            )
        # started only now: the first event and the carried State go in the new file's first transaction
        new_store.start(on_trouble=engine.on_store_trouble)
    except BaseException:
        if not switched:
            await asyncio.to_thread(new_store.close)
            with contextlib.suppress(OSError):
                new_file.unlink()
        raise
    for listener in engine.rotation_listeners:
        listener(new_file)
    try:
        if engine.config.session.tick_retention_h > 0:  # the old file's last ticks join the archive (by its
            try:  # own writer, not the new file's)
                await asyncio.to_thread(old_store.archive_ticks, time.time() + 1.0, archive_folder(old_file))
            except (CockpitError, OSError) as exc:  # they stay in the old file, which keeps them as well
                log.warning("the last ticks of %s stay in it: %s", old_file.name, exc)
        await asyncio.to_thread(old_store.close)  # its queue (session.rotated last) is written first
    except asyncio.CancelledError:  # the engine stops meanwhile: the old file is closed all the same
        old_store.close()
        raise
    log.info("session rotated (%s): %s -> %s", reason, old_file.name, new_file.name)
    return new_file


def follow_rotations(path: Path) -> Path:
    """The newest file of a rotated session: from `path`, each file's last event names the next while it is
    `session.rotated`, and that next file (by name, in the same folder: a folder moved whole still works)
    must say it continues this one with the State it carried. A file that cannot be read (held by a running
    engine, damaged) ends the chain there. Each file is opened once."""
    current, ends = path, _ends(path)
    seen = {path.resolve()}
    for _ in range(FOLLOW_MAX):
        following = _successor(current, ends)
        if following is None or following.resolve() in seen:
            return current
        following_ends = _ends(following)
        if not _continues(following_ends, current):
            return current
        seen.add(following.resolve())
        current, ends = following, following_ends
    return current


@dataclass(frozen=True)
class _Ends:
    """What the chain needs of one file: its first and last events, whether it holds a carried State."""

    exists: bool
    held: bool = False  # open in an engine (its lock refuses even a read-only open): the live file
    first: tuple[str, dict[str, Any]] | None = None
    last: tuple[str, dict[str, Any]] | None = None
    carried: bool = False  # a snapshot at seq 1


def _ends(path: Path) -> _Ends:
    if not path.exists():
        return _Ends(exists=False)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException:  # open in this very process (an engine in it)
        return _Ends(exists=True, held=True)
    except duckdb.IOException as exc:  # another process's lock, or not a DuckDB file
        return _Ends(exists=True, held="lock" in str(exc).lower())
    except duckdb.Error:
        return _Ends(exists=True)
    with contextlib.closing(con), contextlib.suppress(duckdb.Error, orjson.JSONDecodeError):
        rows = [
            con.execute(f"SELECT kind, payload FROM events ORDER BY seq {order} LIMIT 1").fetchone()
            for order in ("ASC", "DESC")
        ]
        carried = con.execute("SELECT count(*) FROM snapshots WHERE seq = 1").fetchone()
        first, last = (_event(row) for row in rows)
        return _Ends(exists=True, first=first, last=last, carried=bool(carried and carried[0]))
    return _Ends(exists=True)


def _event(row: tuple[Any, ...] | None) -> tuple[str, dict[str, Any]] | None:
    if row is None:
        return None
    payload = orjson.loads(row[1])
    return (str(row[0]), payload) if isinstance(payload, dict) else None


def _successor(path: Path, ends: _Ends) -> Path | None:
    if ends.last is None or ends.last[0] != "session.rotated":
        return None
    named = ends.last[1].get("next_file")
    return path.with_name(Path(named).name) if isinstance(named, str) and named else None


def _continues(following: _Ends, current: Path) -> bool:
    """`following` starts where `current` ended: its first event continues `current`, its State carried. A
    file that exists but cannot be read is held by the engine running the session: it is the newest."""
    if not following.exists:
        return False
    if following.first is None:
        return following.held
    kind, payload = following.first
    continues = payload.get("continues")
    return (
        kind == "session.started"
        and isinstance(continues, str)
        and Path(continues).name == current.name
        and following.carried
    )
