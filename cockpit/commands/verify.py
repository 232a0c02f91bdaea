"""`cockpit verify SESSION.duckdb`: the whole-file check of a session file (every block, the events' seq and
hash chain, the snapshots, the mark of the last verified event): 0 when sound, 1 with what is wrong."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cockpit.commands.parsing import Commands


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "verify", help="check a session file end to end (exit 0 sound, 1 damaged, 2 cannot check)"
    )
    parser.add_argument("session", metavar="SESSION.duckdb")
    parser.set_defaults(handler=verify_command)


def verify_command(args: argparse.Namespace) -> int:
    from cockpit.store.verify import RESTORE_FIX, verify

    path = Path(args.session)
    report = verify(path)  # SessionFileError (exit 2) when it cannot be checked at all: in use, not a session
    print(report.render())
    if report.ok:
        return 0
    print(f"error: damaged: session file {path} does not verify", file=sys.stderr)
    print(f"  fix: {RESTORE_FIX}", file=sys.stderr)
    return 1
