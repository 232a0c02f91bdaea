"""`cockpit replay SESSION`: the cockpit over a stored session (a live one through a read copy)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.commands.parsing import Commands

if TYPE_CHECKING:
    from cockpit.replay.session import ReplaySession


def register(commands: Commands) -> None:
    replay = commands.add_parser("replay", help="replay a session file in the cockpit's panes (read-only)")
    replay.add_argument("session", metavar="SESSION.duckdb")
    replay.add_argument(
        "--end", action="store_true", help="open at the end of the session instead of the start"
    )
    replay.set_defaults(handler=replay_command)


def replay_command(args: argparse.Namespace | Any) -> int:
    """Replay a session file; one a running engine holds is replayed from the read copy it writes (replay
    never fights that lock), deleted when the replay app exits. A damaged file is refused (SessionDamaged)."""
    from cockpit.engine.live_copy import live_copy
    from cockpit.replay.session import ReplaySession
    from cockpit.store.errors import SessionInUse

    started = time.perf_counter()
    path = Path(args.session)
    try:
        session = ReplaySession.open(path)
    except SessionInUse:
        with live_copy(path, "replay") as copy:
            return _run_replay(ReplaySession.open(copy.path), args, started)
    return _run_replay(session, args, started)


def _run_replay(session: ReplaySession, args: Any, started: float) -> int:
    from cockpit.ui.backend import ReplayBackend
    from cockpit.ui.replay_app import ReplayApp

    try:
        session.seek(session.total if args.end else 0)
        app = ReplayApp(ReplayBackend(session), load_seconds=time.perf_counter() - started)
        return int(app.run() or 0)
    finally:
        session.close()
