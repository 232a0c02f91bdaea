"""The control socket: a Unix domain socket beside the session file (owner-only) that the running engine
serves, headless or inside the UI — so `cockpit ctl` works from another tmux pane when the UI is frozen.

Protocol: one JSON object per line each way. A request is a command (cockpit/core/commands.py) as JSON,
e.g. {"cmd": "flatten", "symbols": ["BTCUSDT"], "by": "ctl"}: cockpit/core/wire.py lists them all and is
what turns JSON into commands and results into JSON here. Replies: {"ok": true, "result": …} or
{"ok": false, "error": title, "detail": …, "fix": …}. Clients `ask(path, command)` and get the command's
typed result back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cockpit.core.commands import Answer, Asks, Result, Status
from cockpit.core.errors import CockpitError
from cockpit.core.wire import command_from_json, command_to_json, result_from_json, result_to_json

if TYPE_CHECKING:
    from cockpit.engine.engine import Engine

log = logging.getLogger(__name__)
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin
READ_LIMIT = 1 << 20


def live_pointer(session_dir: Path) -> Path:
    """The file a running engine writes in its session directory (session, socket, pid), for `cockpit ctl`
    with a config that names a session directory rather than a file."""
    return session_dir / ".cockpit-live.json"


def socket_path_for(session_file: Path) -> Path:
    """`<session>.sock` beside the session file, or a short per-session path in the temp dir if that is too
    long for a Unix socket."""
    beside = session_file.with_name(session_file.name + ".sock")
    if len(str(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha1(str(session_file.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cockpit-{digest}.sock"


class ControlServer:
    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        if self.path.exists():
            if await _answers(self.path):
                raise CockpitError(
                    f"another engine is serving {self.path}",
                    "a session file is driven by one engine at a time",
                    "stop the other engine, or give this one another session file",
                )
            self.path.unlink()  # left behind by an engine that died
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._handle, path=str(self.path), limit=READ_LIMIT
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await self._dispatch(line)
                writer.write(orjson.dumps(reply) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = orjson.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            result: Result = await self.engine.control(command_from_json(request))
        except CockpitError as exc:
            return {"ok": False, "error": exc.title, "detail": exc.detail, "fix": exc.fix}
        except (ValueError, KeyError, TypeError) as exc:
            return {
                "ok": False,
                "error": "bad request",
                "detail": str(exc),
                "fix": "see `cockpit ctl --help`",
            }
        except Exception as exc:  # the client always gets an answer
            log.exception("control request failed")
            return {
                "ok": False,
                "error": f"the engine failed: {type(exc).__name__}",
                "detail": str(exc),
                "fix": "see the engine's events and log",
            }
        return {"ok": True, "result": result_to_json(result)}


async def _answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def engine_running(session_file: Path) -> bool:
    """Whether an engine answers on this session's control socket (a status request within 5 s). For
    commands that act through the engine when one runs and on the file when none does."""
    socket = socket_path_for(session_file)
    if not socket.exists():
        return False

    async def probe() -> bool:
        try:
            await ask(socket, Status(by="cli"), wait_s=5)
        except (CockpitError, OSError, TimeoutError):
            return False
        return True

    return asyncio.run(probe())


async def _request(path: Path, payload: dict[str, Any], wait_s: float = 120.0) -> dict[str, Any]:
    """Send one request line to a running engine and return its reply (JSON both ways: see `ask`)."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=READ_LIMIT), 3.0
        )
    except (FileNotFoundError, ConnectionRefusedError, TimeoutError) as exc:
        raise CockpitError(
            "no engine is running for this session",
            f"nothing answers on {path} ({type(exc).__name__})",
            "start one with `cockpit run --config FILE`, or check the config's session path",
        ) from None
    try:
        writer.write(orjson.dumps(payload) + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait_s)
    except TimeoutError:
        raise CockpitError(
            f"no answer within {wait_s:.0f} s",
            f"{payload.get('cmd')} may still be running in the engine",
            "check with `cockpit ctl --config F status` and the engine's events",
        ) from None
    except ValueError as exc:  # a reply line over the limit
        raise CockpitError(
            "the engine's answer could not be read", str(exc), "check the engine's log"
        ) from None
    finally:
        writer.close()
    if not line:
        raise CockpitError(
            "the engine closed the control socket without answering", fix="check the engine's log"
        )
    try:
        reply: dict[str, Any] = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CockpitError("the engine's answer is not JSON", str(exc), "check the engine's log") from None
    return reply


async def ask(path: Path, command: Asks[Answer], wait_s: float = 120.0) -> Answer:
    """Send a command to a running engine and return its result; the engine's refusal is raised as a
    CockpitError (its title, detail and fix)."""
    reply = await _request(path, command_to_json(command), wait_s)
    if not reply.get("ok"):
        raise CockpitError(
            str(reply.get("error")), str(reply.get("detail") or ""), str(reply.get("fix") or "")
        )
    return result_from_json(command, reply.get("result"))
