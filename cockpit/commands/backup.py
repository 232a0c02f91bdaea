"""`cockpit backup` and `cockpit restore`: verified backups of the session file, and restoring one.

A backup works while the engine runs (it is taken by the engine, through its control socket). A restore needs
the engine stopped — or press R in the cockpit, which stops, restores, restarts and reconciles for you.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from cockpit.commands.parsing import Commands, config_option
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.text import fmt_age

if TYPE_CHECKING:
    from cockpit.core.commands import BackupResult
    from cockpit.engine.backups import BackupInfo


def register(commands: Commands) -> None:
    backup = commands.add_parser(
        "backup", help="a verified backup of the session file (the engine may be running)"
    )
    config_option(backup)
    backup.set_defaults(handler=backup_command)

    restore = commands.add_parser("restore", help="restore the session file from a verified backup")
    config_option(restore)
    which = restore.add_mutually_exclusive_group(required=True)
    which.add_argument("--list", action="store_true", help="list the backups with age, size and verification")
    which.add_argument("--latest", action="store_true", help="the newest verified backup")
    which.add_argument("path", nargs="?", default=None, metavar="BACKUP", help="a backup file")
    restore.add_argument("--yes", action="store_true", help="confirm without the typed prompt")
    restore.set_defaults(handler=restore_command)


def _session(args: argparse.Namespace) -> Path:
    from cockpit.commands.session_files import resolve_session
    from cockpit.config.settings import load_config

    return resolve_session(load_config(Path(args.config)))


def backup_command(args: argparse.Namespace) -> int:
    import asyncio

    from cockpit.core.commands import Backup
    from cockpit.engine.control import ask, engine_running, socket_path_for

    session = _session(args)
    if engine_running(session):
        result = asyncio.run(ask(socket_path_for(session), Backup(by="cli")))
    else:
        result = backup_file(session)
    verified = "verified" if result.verified else "FAILED verification"
    print(
        f"backup {result.path}: {verified}, {result.size_bytes / 1e6:.1f} MB, through event {result.last_seq}"
    )
    return 0 if result.verified else 1


def backup_file(session: Path) -> BackupResult:
    """A backup of a session file no engine holds, taken here."""
    from cockpit.engine.backups import backup_path, copy_result
    from cockpit.store import SessionStore

    if not session.exists():
        raise CockpitError(f"no session file at {session}", fix="run cockpit once to create the session")
    started = time.monotonic()
    dest = backup_path(session, time.time())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with SessionStore.open(session, create=False) as store:
        store.start()
        report = store.backup_to(dest)
    return copy_result(dest, report, dest.stat().st_size, time.monotonic() - started, "cli", "backup")


def _table(backups: list[BackupInfo]) -> str:
    now = time.time()
    lines = [f"{'backup':<44} {'age':>6} {'size':>9}  verified"]
    for b in backups:
        state = {True: "VERIFIED", False: f"BAD: {b.problem}", None: "unchecked"}[b.verified]
        lines.append(f"{b.path.name:<44} {fmt_age(now - b.created):>6} {b.size_bytes / 1e6:>7.1f}MB  {state}")
    return "\n".join(lines)


def restore_command(args: argparse.Namespace) -> int:
    from cockpit.engine.backups import list_backups
    from cockpit.engine.control import engine_running
    from cockpit.engine.restore import swap_in_backup

    session = _session(args)
    if args.list:
        backups = list_backups(session, check=True)
        print(_table(backups) if backups else f"no backups of {session.name} yet: cockpit backup --config F")
        return 0
    if engine_running(session):
        raise CockpitError(
            "the engine is running on this session",
            "a session file is restored only while no engine holds it",
            "press R in the cockpit (it stops, restores, restarts and reconciles), or stop the engine first",
        )
    if args.latest:
        good = [b for b in list_backups(session, check=True) if b.verified]
        if not good:
            raise CockpitError(
                f"no verified backup of {session.name}", fix="`cockpit restore --list` shows them"
            )
        chosen = good[0].path
    else:
        chosen = Path(args.path)
        if not chosen.is_file():
            raise UsageError(
                f"no backup file at {chosen}", fix="`cockpit restore --config F --list` shows them"
            )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("restore needs confirmation", "stdin is not a terminal", "add --yes to confirm")
        answer = input(
            f"Restore {session.name} from {chosen.name}? The current file is kept aside. "
            "Type RESTORE to confirm: "
        ).strip()
        if answer != "RESTORE":
            raise UsageError("not confirmed", f"expected 'RESTORE', got {answer!r}", "nothing was changed")
    aside = swap_in_backup(session, chosen)
    restored_seq = _record_restore(session, chosen, aside)
    print(
        f"restored {session} from {chosen.name} (through event {restored_seq}); previous file kept as "
        f"{aside.name if aside else '—'}; the next `cockpit run` reconciles with the exchange"
    )
    return 0


def _record_restore(session: Path, backup: Path, aside: Path | None) -> int:
    """Append a db.restored event to the restored file, so its history says what happened."""
    from cockpit.core import events
    from cockpit.core.domain import Event
    from cockpit.store import SessionStore

    with SessionStore.open(session, create=False) as store:
        store.start()
        restored_seq = store.last_seq
        payload = events.db_restored(
            backup=str(backup),
            kept_aside=str(aside) if aside else None,
            restored_seq=restored_seq,
            by="cli",
            message=f"session restored from {backup.name} by `cockpit restore`",
        )
        event = Event(
            restored_seq + 1, time.time(), "db.restored", "warning", "operator", cast(dict[str, Any], payload)
        )
        store.append_critical(event).result(timeout=30)
    return restored_seq
