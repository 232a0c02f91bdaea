"""The control socket: a Unix domain socket in an owner-only folder that the running engine serves, headless
or inside the UI — so `cockpit ctl` works from another tmux pane when the UI is frozen.

Protocol: one JSON object per line each way (a request line at most `MAX_REQUEST` bytes). A request is a
command (cockpit/core/commands.py) as JSON, e.g. {"cmd": "flatten", "symbols": ["BTCUSDT"], "by": "ctl",
"confirm": "FLATTEN"}: cockpit/core/wire.py lists them all and is what turns JSON into commands and results
into JSON here. Replies: {"ok": true, "result": …} or {"ok": false, "error": title, "detail": …, "fix": …}.
Clients `ask(path, command)` and get the command's typed result back.

The socket is the security boundary:
- it lives in a folder only its owner can enter (`socket_path_for`): nobody else can bind it first;
- each side checks the other's uid with SO_PEERCRED: the engine answers only its own user (or root), and a
  client trusts only an engine of its own user (or root);
- who asked is taken from the peer's credentials (user, uid, pid) plus the tool it names itself after ("ctl"),
  never from the request: a request cannot speak as the engine's risk checks;
- a dangerous command needs its confirmation word in the request (`Asks.confirmation`), checked by the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import pwd
import re
import socket
import stat
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from cockpit.core.commands import Answer, Asks, Result, Status
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.wire import command_from_json, command_to_json, result_from_json, result_to_json

if TYPE_CHECKING:
    from cockpit.engine.broadcast import Broadcast
    from cockpit.engine.engine import Engine

log = logging.getLogger(__name__)
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes on Linux, with its terminating NUL
SOCKET_DIR = ".cockpit-control"  # the owner-only folder beside the session file
MAX_REQUEST = 64 * 1024  # bytes in one request line
READ_LIMIT = 1 << 20  # bytes in one reply line (a long dead-letter list)
DRAIN_S = 5.0  # how long the engine reads on past an oversized request before it closes the connection
# names a request may not give itself: the engine's own actors (cockpit/engine/killswitch.py `engage`)
ENGINE_ACTORS = frozenset(
    {"risk", "clock", "flag-file", "store", "engine", "exchange", "reconcile", "operator", "cockpit"}
)
_TOOL = re.compile(r"[a-z][a-z0-9_-]{0,23}")


def live_pointer(session_dir: Path) -> Path:
    """The file a running engine writes in its session directory (session, socket, pid), for `cockpit ctl`
    with a config that names a session directory rather than a file."""
    return session_dir / ".cockpit-live.json"


# ----- where the socket lives ------------------------------------------------------------------------------


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def _owner_only_problem(folder: Path) -> str | None:
    """Why `folder` is not a private folder of this user (a real directory, ours, mode 0700), or None."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        return f"{folder} cannot be read ({exc.strerror or exc})"
    if not stat.S_ISDIR(info.st_mode):
        return f"{folder} is not a directory" + (" (a symlink)" if stat.S_ISLNK(info.st_mode) else "")
    if info.st_uid != os.getuid():
        return f"{folder} belongs to uid {info.st_uid} ({_user(info.st_uid)}), not to you (uid {os.getuid()})"
    if info.st_mode & 0o077:
        return f"{folder} has mode {stat.S_IMODE(info.st_mode):04o}: others may enter it (it must be 0700)"
    return None


def _runtime_dir() -> tuple[Path | None, str]:
    """$XDG_RUNTIME_DIR when it is set and owner-only, else None and why not."""
    value = os.environ.get("XDG_RUNTIME_DIR")
    if not value:
        return None, "$XDG_RUNTIME_DIR is not set"
    folder = Path(value)
    problem = _owner_only_problem(folder)
    if problem is not None:
        return None, f"$XDG_RUNTIME_DIR is not usable: {problem}"
    return folder, ""


def socket_path_for(session_file: Path) -> Path:
    """The session's control socket: `<session dir>/.cockpit-control/<session name>.sock`, in an owner-only
    folder beside the session file (`<12 hex>.sock` there if the name makes the path too long for a Unix
    socket, 107 bytes); else `$XDG_RUNTIME_DIR/cockpit-<16 hex>.sock` if that folder is ours with mode 0700.
    Never a shared folder such as /tmp, where another user could bind the name first: when nothing fits, a
    UsageError (exit 2, like a bad session path) names the path and the fix."""
    digest = hashlib.sha1(str(session_file.resolve()).encode()).hexdigest()
    beside = session_file.parent / SOCKET_DIR / f"{session_file.name}.sock"
    short = beside.with_name(f"{digest[:12]}.sock")
    for candidate in (beside, short):
        if _fits(candidate):
            return candidate
    runtime, why_not = _runtime_dir()
    if runtime is not None:
        candidate = runtime / f"cockpit-{digest[:16]}.sock"
        if _fits(candidate):
            return candidate
        why_not = f"{candidate} is too long as well"
    raise UsageError(
        f"the control socket's path for {session_file} is too long",
        f"beside it, even {short} is {len(os.fsencode(short))} bytes, over the {MAX_SOCKET_PATH} a Unix "
        f"socket takes; {why_not}",
        "give the session a shorter path ([session] path or dir in the config), or set XDG_RUNTIME_DIR to a "
        "short folder of yours with mode 0700 (systemd's /run/user/$UID is one)",
    )


def prepare_socket_folder(path: Path) -> None:
    """Create the socket's folder owner-only (0700) if it is missing; refuse one that is not ours or not
    0700 (someone else could have put a socket in it)."""
    folder = path.parent
    if folder.name == SOCKET_DIR:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # whatever the umask
    problem = _owner_only_problem(folder)
    if problem is not None:
        raise UsageError(
            "the control socket's folder is not owner-only",
            problem,
            f"remove {folder} if it is not yours (`rm -r {folder}`; cockpit creates it again), "
            f"or make it yours and private (`chmod 700 {folder}`)",
        )


# ----- who is at the other end -----------------------------------------------------------------------------


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid{uid}"


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a Unix socket, as the kernel reports it (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        return _user(self.uid)

    def asking(self, tool: str) -> str:
        """Who asked, for the record: `alice via ctl (uid 1000, pid 4242)`. The tool is what the client calls
        itself; a name the engine's own actors use (risk, clock, …) or anything but a plain word is recorded
        as `socket`."""
        word = tool.strip().lower()
        if not _TOOL.fullmatch(word) or word in ENGINE_ACTORS:
            word = "socket"
        return f"{self.user} via {word} (uid {self.uid}, pid {self.pid})"


def peer_of(sock: socket.socket) -> Peer:
    """The peer's pid, uid and gid (Linux: SO_PEERCRED). Elsewhere, where the kernel does not say, the peer
    is taken to be this user: the owner-only folder is then the only guard."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return Peer(pid=0, uid=os.getuid(), gid=os.getgid())
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, size))
    return Peer(pid=pid, uid=uid, gid=gid)


def trusted_uids() -> frozenset[int]:
    """Whom each side of the socket trusts: this process's user, and root."""
    return frozenset({os.getuid(), 0})


def check_server(peer: Peer, path: Path, trusted: frozenset[int] | None = None) -> None:
    """Refuse to believe an engine that runs as another user: whatever it says is not our engine's."""
    if peer.uid in (trusted_uids() if trusted is None else trusted):
        return
    raise CockpitError(
        f"{path} is served by another user: {peer.user} (uid {peer.uid}, pid {peer.pid})",
        f"you are uid {os.getuid()}; nothing that process says was trusted or shown",
        f"find who runs it (`ps -o user,pid,cmd -p {peer.pid}`); stop your engine's clients until it is "
        "gone, then restart your engine",
    )


def _socket_of(writer: asyncio.StreamWriter) -> socket.socket:
    sock = writer.get_extra_info("socket")
    if sock is None:
        raise CockpitError("the control socket has no peer", fix="check the engine's log")
    return sock  # type: ignore[no-any-return]


def _refusal(title: str, detail: str = "", fix: str = "") -> dict[str, Any]:
    return {"ok": False, "error": title, "detail": detail, "fix": fix}


class ControlServer:
    def __init__(self, engine: Engine, path: Path, broadcast: Broadcast | None = None) -> None:
        self.engine = engine
        self.path = path
        self.broadcast = broadcast  # attached cockpits (`{"cmd": "attach"}`), when the engine serves them
        self.trusted = trusted_uids()  # whom it answers
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        prepare_socket_folder(self.path)
        if self.path.exists() or self.path.is_symlink():
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
                self._handle, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def move_to(self, path: Path) -> None:
        """Listen at `path` from now on (a rotated session's socket sits beside its new file); connections
        already open go on; the old socket goes."""
        old_server, old_path = self._server, self.path
        self.path = path
        self._server = None
        try:
            await self.start()
        except BaseException:
            self._server, self.path = old_server, old_path
            raise
        if old_server is not None:
            old_server.close()
        with contextlib.suppress(FileNotFoundError):
            old_path.unlink()

    def stop_listening(self) -> None:
        """Take no new connection (those open go on): the first step of a stop."""
        if self._server is not None:
            self._server.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client: its peer checked, then its requests answered a line at a time. Whatever the client
        sends or however it goes away, nothing is raised here (no traceback on the engine's stderr); nor when
        the engine stops with a client still connected (Python 3.11's stream callback reports a handler that
        ends cancelled as an error, so the cancellation ends it quietly: nothing awaits it)."""
        try:
            peer = peer_of(_socket_of(writer))
            if peer.uid not in self.trusted:
                log.warning("control socket: refused %s (uid %d, pid %d)", peer.user, peer.uid, peer.pid)
                await _reply(writer, _stranger(peer))
                return
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # over MAX_REQUEST without a newline
                    await _reply(writer, _too_large())
                    await _drain_line(reader)
                    return
                if not line:
                    return
                request = _attach_request(line)
                if request is not None:
                    await self._attach(request, peer, reader, writer)
                    return
                await _reply(writer, await self._dispatch(line, peer))
        except (ConnectionError, asyncio.IncompleteReadError, OSError, CockpitError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _attach(
        self,
        request: dict[str, Any],
        peer: Peer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """The connection becomes an attached cockpit's feed (cockpit/engine/broadcast.py)."""
        if self.broadcast is None:
            await _reply(writer, _refusal("this engine does not serve attached cockpits"))
            return
        await self.broadcast.serve(reader, writer, request, peer.asking(str(request.get("by", "attach"))))

    async def _dispatch(self, line: bytes, peer: Peer | None = None) -> dict[str, Any]:
        """A request line → the reply. `peer`: who sent it (None: this process, as tests call it)."""
        try:
            request = orjson.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            command = command_from_json(request)
            if peer is not None:  # who asked: the kernel's word, not the request's
                command = replace(command, by=peer.asking(command.by))
            result: Result = await self.engine.control(command)
        except CockpitError as exc:
            return _refusal(exc.title, exc.detail, exc.fix)
        except (ValueError, KeyError, TypeError) as exc:
            return _refusal("bad request", str(exc), "see `cockpit ctl --help`")
        except Exception as exc:  # the client always gets an answer
            log.exception("control request failed")
            return _refusal(
                f"the engine failed: {type(exc).__name__}", str(exc), "see the engine's events and log"
            )
        return {"ok": True, "result": result_to_json(result)}


def _attach_request(line: bytes) -> dict[str, Any] | None:
    """The request if it is `{"cmd": "attach", …}`, else None (a command: `_dispatch` reads it)."""
    if b'"attach"' not in line:
        return None
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) and request.get("cmd") == "attach" else None


def _stranger(peer: Peer) -> dict[str, Any]:
    return _refusal(
        "refused: this engine answers its own user only",
        f"you are {peer.user} (uid {peer.uid}); the engine runs as uid {os.getuid()}",
        "run cockpit ctl as the user that runs the engine",
    )


def _too_large() -> dict[str, Any]:
    return _refusal(
        "request too large",
        f"a request line is at most {MAX_REQUEST} bytes (64 KiB), ending in a newline",
        'send one JSON command per line, e.g. {"cmd": "status"}; see `cockpit ctl --help`',
    )


async def _reply(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    writer.write(orjson.dumps(reply) + b"\n")
    await writer.drain()


async def _drain_line(reader: asyncio.StreamReader) -> None:
    """Read on (and drop) the rest of an oversized line for a while, so the client finishes sending and
    reads the refusal rather than a reset connection."""
    with contextlib.suppress(TimeoutError, ValueError):
        async with asyncio.timeout(DRAIN_S):
            while chunk := await reader.read(MAX_REQUEST):
                if b"\n" in chunk:
                    return


async def _answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def engine_running(session_file: Path) -> bool:
    """Whether an engine of this user answers on this session's control socket (a status request within
    5 s). For commands that act through the engine when one runs and on the file when none does."""
    try:
        path = socket_path_for(session_file)
    except CockpitError:  # no place for a socket: no engine can serve one
        return False
    if not path.exists():
        return False

    async def probe() -> bool:
        try:
            await ask(path, Status(by="cli"), wait_s=5)
        except (CockpitError, OSError, TimeoutError):
            return False
        return True

    return asyncio.run(probe())


async def _request(path: Path, payload: dict[str, Any], wait_s: float = 120.0) -> dict[str, Any]:
    """Send one request line to a running engine of this user and return its reply (JSON both ways: see
    `ask`). The server's uid is checked before anything is sent."""
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
    except OSError as exc:
        raise CockpitError(
            f"cannot connect to {path}", exc.strerror or str(exc), "check the socket's folder and its owner"
        ) from None
    try:
        check_server(peer_of(_socket_of(writer)), path)
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
    except (ConnectionError, BrokenPipeError) as exc:
        raise CockpitError(
            "the engine closed the control socket without answering",
            f"{type(exc).__name__}: {exc}",
            "check the engine's log",
        ) from None
    finally:
        writer.close()
    if not line:
        raise CockpitError(
            "the engine closed the control socket without answering", fix="check the engine's log"
        )
    try:
        reply = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise CockpitError("the engine's answer is not JSON", str(exc), "check the engine's log") from None
    if not isinstance(reply, dict):
        raise CockpitError(
            "the engine's answer is not a reply",
            f'expected a JSON object with "ok", got {_shown(reply)}',
            "check the engine's log",
        )
    return reply


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


async def ask(path: Path, command: Asks[Answer], wait_s: float = 120.0) -> Answer:
    """Send a command to a running engine and return its result; the engine's refusal, or an answer that is
    not the command's result, is raised as a CockpitError (title, detail and fix)."""
    reply = await _request(path, command_to_json(command), wait_s)
    if reply.get("ok") is not True:
        raise CockpitError(
            str(reply.get("error")), str(reply.get("detail") or ""), str(reply.get("fix") or "")
        )
    return result_from_json(command, reply.get("result"))
