"""What belongs to the exchange account rather than to one session file: the kill switch's state, and which
engine (if any) is trading it right now.

An account is an exchange, where it is reached (production, testnet or a `base_url`) and an API key. Its
folder is `$XDG_DATA_HOME/cockpit/accounts/<exchange>-<fingerprint>/` (the fingerprint is a hash: the key
itself is never written):

- `killswitch.json` — the kill switch as the engine last committed it (`engaged`, `cause`, `by`, `since`…).
  A strategy reads it before sending an order and sends nothing new while `engaged` is true. It survives
  restarts and new session files: an engine starting on the account picks it up.
- `engine.json` — the running engine's pid, session file and control socket (`cockpit ctl` finds it there).
- `engine.lock` — held (flock) by the running engine: a second engine on the same account is refused. Its
  first `STORE_NOTE_BYTES` are reserved (allocated when an engine starts) for one note: "the session store
  failed, the kill switch was engaged in memory". Written over that reserved space, the note needs no free
  disk, so it is kept when the disk is full and `killswitch.json` could not be replaced; the next engine reads
  it and starts with the kill switch engaged, saying why.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from cockpit.config.paths import data_dir
from cockpit.core.errors import CockpitError
from cockpit.store.private import private_dir, write_private

KILL_SWITCH_FILE = "killswitch.json"
ENGINE_FILE = "engine.json"
LOCK_FILE = "engine.lock"
STORE_NOTE_BYTES = 4096


def account_key(exchange_id: str, base_url: str | None, testnet: bool, api_key: str) -> str:
    """`binanceusdm-3f2a…`: stable for the same exchange, endpoint and key; reveals none of them."""
    where = base_url or ("testnet" if testnet else "production")
    digest = hashlib.sha256(f"{exchange_id}\n{where}\n{api_key}".encode()).hexdigest()[:16]
    return f"{exchange_id}-{digest}"


def account_dir(key: str) -> Path:
    return data_dir() / "accounts" / key


class AccountBusy(CockpitError):
    """Another engine trades this account: refused like bad input (exit 2), nothing opened."""

    exit_code = 2


@dataclass(frozen=True)
class KillSwitchRecord:
    engaged: bool
    cause: str | None
    by: str | None
    since: float | None
    updated: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KillSwitchRecord:
        return cls(
            engaged=bool(data["engaged"]),
            cause=data.get("cause"),
            by=data.get("by"),
            since=float(data["since"]) if data.get("since") is not None else None,
            updated=float(data.get("updated") or 0.0),
        )


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace `path` with owner-only JSON (a reader never sees half a file)."""
    write_private(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


@dataclass(frozen=True)
class StoreFailureNote:
    """What an engine whose session store failed left for the next one."""

    cause: str
    since: float
    session: str

    @classmethod
    def from_bytes(cls, data: bytes) -> StoreFailureNote | None:
        text = data.strip(b"\0 \n")
        if not text:
            return None
        try:
            note = orjson.loads(text)
            return cls(str(note["cause"]), float(note["since"]), str(note.get("session", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):  # a note cut short: still a failure
            return cls("the session store failed in an earlier run (its note is unreadable)", 0.0, "")


class AccountFiles:
    def __init__(self, key: str, directory: Path | None = None) -> None:
        self.key = key
        self.dir = directory or account_dir(key)
        self._lock_fd: int | None = None

    @property
    def kill_switch_file(self) -> Path:
        return self.dir / KILL_SWITCH_FILE

    @property
    def engine_file(self) -> Path:
        return self.dir / ENGINE_FILE

    def _ensure_dir(self) -> None:
        private_dir(self.dir)

    # ----- the kill switch -----------------------------------------------------------------------------
    def read_kill_switch(self) -> KillSwitchRecord | None:
        """The last committed kill-switch state of the account; None if never written. A file that cannot be
        read or makes no sense reads as engaged: not knowing is no reason to allow new risk."""
        path = self.kill_switch_file
        try:
            return KillSwitchRecord.from_json(orjson.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            now = time.time()
            return KillSwitchRecord(
                engaged=True,
                cause=f"the account's kill-switch file {path} could not be read ({exc}): engaged to be "
                "safe; release it once you have checked",
                by="cockpit",
                since=now,
                updated=now,
            )

    def write_kill_switch(
        self,
        engaged: bool,
        cause: str | None,
        by: str | None,
        since: float | None,
        session: Path,
    ) -> None:
        self._ensure_dir()
        _write_private(
            self.kill_switch_file,
            {
                "account": self.key,
                "engaged": engaged,
                "cause": cause,
                "by": by,
                "since": since,
                "updated": time.time(),
                "session": str(session),
                "pid": os.getpid(),
            },
        )

    # ----- a failed store's note (see the module docstring) ---------------------------------------------
    @property
    def lock_file(self) -> Path:
        return self.dir / LOCK_FILE

    def reserve_store_note(self) -> None:
        """Allocate the note's space now, while there is disk to allocate it from."""
        self._ensure_dir()
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < STORE_NOTE_BYTES:
                os.pwrite(fd, b"\0" * STORE_NOTE_BYTES, 0)
            with contextlib.suppress(OSError):  # a file system without it: the zeros above are written
                os.posix_fallocate(fd, 0, STORE_NOTE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)

    def note_store_failure(self, cause: str, since: float, session: Path) -> None:
        """Write the note over its reserved space (raises OSError if even that fails)."""
        note = {"cause": cause[:3000], "since": since, "session": str(session)[:500]}
        data = orjson.dumps(note)[:STORE_NOTE_BYTES]
        fd = os.open(self.lock_file, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data.ljust(STORE_NOTE_BYTES, b" "), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def store_failure_note(self) -> StoreFailureNote | None:
        try:
            with self.lock_file.open("rb") as f:
                return StoreFailureNote.from_bytes(f.read(STORE_NOTE_BYTES))
        except FileNotFoundError:
            return None

    def clear_store_note(self) -> None:
        """The next engine has recorded what the note said: forget it (its space stays reserved)."""
        fd = os.open(self.lock_file, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, b"\0" * STORE_NOTE_BYTES, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    # ----- one engine per account ----------------------------------------------------------------------
    def running_engine(self) -> dict[str, Any] | None:
        try:
            data = orjson.loads(self.engine_file.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def claim(self) -> None:
        """Take the account for this process, or raise AccountBusy naming the engine that has it."""
        if self._lock_fd is not None:
            return
        self._ensure_dir()
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = self.running_engine() or {}
            raise AccountBusy(
                "another engine is already trading this account",
                f"pid {other.get('pid', '?')}, session {other.get('session', '?')}, "
                f"control socket {other.get('socket', '?')} (account {self.key})",
                "use that engine (`cockpit ctl --config FILE status`), or stop it before starting another",
            ) from None
        self._lock_fd = fd

    def announce(self, session: Path, socket: Path) -> None:
        """Record where the running engine can be reached (after `claim`)."""
        _write_private(
            self.engine_file,
            {
                "pid": os.getpid(),
                "session": str(session),
                "socket": str(socket),
                "started": time.time(),
            },
        )

    def release(self) -> None:
        if self._lock_fd is None:
            return
        with contextlib.suppress(FileNotFoundError, orjson.JSONDecodeError):
            if orjson.loads(self.engine_file.read_bytes()).get("pid") == os.getpid():
                self.engine_file.unlink()
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
        self._lock_fd = None
