"""`cockpit replay SESSION`: the cockpit over a stored session (a live one through a read copy)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cockpit.engine.live_copy import live_copy
from cockpit.replay.session import ReplaySession
from cockpit.store.errors import SessionInUse
from cockpit.ui.backend import ReplayBackend


def replay_command(args: Any) -> int:
    """Replay a session file; one a running engine holds is replayed from the read copy it writes (replay
    never fights that lock), deleted when the replay app exits."""
    started = time.perf_counter()
    path = Path(args.session)
    try:
        session = ReplaySession.open(path)
    except SessionInUse:
        with live_copy(path, "replay") as copy:
            return _run_replay(ReplaySession.open(copy.path), args, started)
    return _run_replay(session, args, started)


def _run_replay(session: ReplaySession, args: Any, started: float) -> int:
    from cockpit.ui.replay_app import ReplayApp

    try:
        session.seek(session.total if args.end else 0)
        app = ReplayApp(ReplayBackend(session), load_seconds=time.perf_counter() - started)
        return int(app.run() or 0)
    finally:
        session.close()
