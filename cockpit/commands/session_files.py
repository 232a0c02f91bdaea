"""Which session file a command means: the config's `[session] path`, the running engine's, or the newest."""

from __future__ import annotations

from pathlib import Path

import orjson

from cockpit.config.settings import Config
from cockpit.core.errors import CockpitError
from cockpit.engine.control import live_pointer, socket_path_for


def resolve_session(config: Config) -> Path:
    if config.session.path is not None:
        from cockpit.engine.rotation import follow_rotations

        return follow_rotations(config.session.path)  # a rotated session: its newest file
    pointer = live_pointer(config.session.dir)
    if pointer.exists():
        try:
            return Path(orjson.loads(pointer.read_bytes())["session"])
        except (OSError, KeyError, orjson.JSONDecodeError):
            pass
    sessions = sorted(config.session.dir.glob("*.duckdb"), key=lambda p: p.stat().st_mtime)
    if not sessions:
        raise CockpitError(
            "no session file",
            f"no [session] path in the config and no *.duckdb in {config.session.dir}",
            "set [session] path in the config, or run cockpit once to create a session",
        )
    return sessions[-1]


def control_socket(session_file: Path) -> Path:
    return socket_path_for(session_file)
