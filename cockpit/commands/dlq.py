"""`cockpit dlq --config FILE list|stats|retry|remove|cleanup`: the dead-letter queue of a session.

With an engine running for the session, every action goes through its control socket (one process holds a
session file). Without one, the session file is opened directly; `retry` then refuses, as it sends an order.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from cockpit.commands.parsing import Commands, config_option
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.text import fmt_age, shorten

if TYPE_CHECKING:
    from cockpit.core.commands import (
        DeadLetterCommand,
        DeadLetters,
        DeadLetterStats,
        Result,
        RetryResult,
    )

LIST_STATUSES = ("open", "retried", "removed", "all")
REASON_WIDTH = 48
BY = "ctl"


# ----- where the queue is ------------------------------------------------------------------------------


def register(commands: Commands) -> None:
    dlq = commands.add_parser("dlq", help="the dead-letter queue: operations that failed for good")
    config_option(dlq)
    actions = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list dead letters")
    listing.add_argument("--op", default=None, help="only this operation, e.g. create_order")
    listing.add_argument("--reason", default=None, help="only reasons containing this text")
    listing.add_argument("--status", default="open", help="open (default), retried, removed or all")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    actions.add_parser("stats", help="counts by operation, class and reason")
    retry = actions.add_parser("retry", help="retry one dead letter through the running engine")
    retry.add_argument("id", type=int)
    retry.add_argument("--yes", action="store_true", help="confirm without the prompt")
    remove = actions.add_parser("remove", help="mark one dead letter removed")
    remove.add_argument("id", type=int)
    cleanup = actions.add_parser("cleanup", help="delete dead letters older than N days")
    cleanup.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    dlq.set_defaults(handler=dlq_command)


def through_engine(socket: Path, command: DeadLetterCommand) -> Result:
    import asyncio

    from cockpit.engine.control import ask

    return asyncio.run(ask(socket, command))


def offline(session: Path, command: DeadLetterCommand) -> Result:
    """The same action on the session file itself (no engine holds it)."""
    import asyncio

    from cockpit.core.commands import DlqCleanup, DlqList, DlqRemove, DlqRetry, DlqStats
    from cockpit.engine import dead_letters
    from cockpit.store import SessionStore

    store = SessionStore.open(session, create=False)
    try:
        store.start()
        match command:
            case DlqList(op=op, reason=reason, status=status):
                return dead_letters.list_letters(store, op, reason, status)
            case DlqStats():
                return dead_letters.stats(store)
            case DlqRemove(id=letter_id):
                return asyncio.run(dead_letters.remove(store, letter_id))
            case DlqCleanup(older_than_days=days):
                return asyncio.run(dead_letters.cleanup(store, days))
            case DlqRetry():
                raise ValueError("a retry sends an order: it needs the running engine")
            case _:
                assert_never(command)
    finally:
        store.close()


# ----- the command ---------------------------------------------------------------------------------------


def dead_letter_command(args: argparse.Namespace) -> DeadLetterCommand:
    from cockpit.core.commands import DlqCleanup, DlqList, DlqRemove, DlqRetry, DlqStats

    action: str = args.dlq_command
    if action == "list":
        if args.status not in LIST_STATUSES:
            raise UsageError(f"unknown status {args.status!r}", fix=f"use one of {', '.join(LIST_STATUSES)}")
        return DlqList(op=args.op, reason=args.reason, status=args.status, by=BY)
    if action == "retry":
        return DlqRetry(id=args.id, by=BY)
    if action == "remove":
        return DlqRemove(id=args.id, by=BY)
    if action == "cleanup":
        if args.older_than < 0:
            raise UsageError(
                f"--older-than {args.older_than:g} is negative", fix="give a number of days >= 0"
            )
        return DlqCleanup(older_than_days=args.older_than, by=BY)
    return DlqStats(by=BY)


def confirm_retry(letter_id: int, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"retrying dead letter {letter_id} sends an order and needs confirmation",
            "stdin is not a terminal",
            "add --yes to confirm",
        )
    answer = input(f"Send dead letter {letter_id}'s order again. Type RETRY to confirm: ").strip()
    if answer != "RETRY":
        raise UsageError("not confirmed", f"expected 'RETRY', got {answer!r}", "nothing was sent")


def retry_needs_engine(socket: Path, config_file: str, letter_id: int) -> CockpitError:
    return CockpitError(
        "retry needs the running engine (it sends an order)",
        f"nothing answers on {socket}",
        f"start the engine (`cockpit run --config {config_file}`), then "
        f"`cockpit dlq --config {config_file} retry {letter_id}`; or drop the letter with `remove`",
    )


# ----- printing ----------------------------------------------------------------------------------------


def render_letters(letters: DeadLetters, status: str) -> str:
    if not letters.letters:
        return f"no dead letters ({'any status' if status == 'all' else status})"
    now = time.time()
    header = ("ID", "AGE", "OP", "CLASS", "ERROR", "REASON", "ATTEMPTS", "STATUS")
    rows = [
        (
            str(letter.id),
            fmt_age(now - letter.ts),
            letter.op,
            letter.error_class,
            letter.error_type,
            shorten(letter.reason, REASON_WIDTH),
            str(letter.attempts),
            letter.status,
        )
        for letter in letters.letters
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in (header, *rows))
    return "\n".join(line.rstrip() for line in lines)


def counts(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(mapping.items())) or "none"


def render_stats(result: DeadLetterStats) -> str:
    lines = [
        f"total:         {result.total}",
        f"by status:     {counts(result.by_status)}",
        f"open by op:    {counts(result.open_by_op)}",
        f"open by class: {counts(result.open_by_class)}",
    ]
    if result.open_top_reasons:
        lines.append("top reasons (open):")
        lines.extend(f"  {n:>5}  {shorten(reason, 90)}" for reason, n in result.open_top_reasons)
    return "\n".join(lines)


def render_retry(result: RetryResult) -> str:
    if result.sent:
        return (
            f"dead letter {result.id} retried: order sent as {result.client_order_id}, status {result.status}"
        )
    return f"dead letter {result.id} retried, but the order was {result.status} (see `dlq list`)"


def show(args: argparse.Namespace, result: Result, where: str) -> int:
    from cockpit.core.commands import CleanupResult, DeadLetters, DeadLetterStats, RemoveResult, RetryResult

    if isinstance(result, DeadLetters):
        if args.json:
            import orjson

            from cockpit.core.wire import result_to_json

            print(orjson.dumps(result_to_json(result), option=orjson.OPT_INDENT_2).decode())
        else:
            print(render_letters(result, args.status))
    elif isinstance(result, DeadLetterStats):
        print(render_stats(result))
    elif isinstance(result, RetryResult):
        print(render_retry(result))
        return 0 if result.sent else 1
    elif isinstance(result, RemoveResult):
        print(f"dead letter {result.id} marked removed ({where})")
    elif isinstance(result, CleanupResult):
        print(f"deleted {result.deleted} dead letter(s) older than {args.older_than:g} days ({where})")
    return 0


def dlq_command(args: argparse.Namespace) -> int:
    from cockpit.commands.session_files import resolve_session
    from cockpit.config.settings import load_config
    from cockpit.core.commands import DlqRetry
    from cockpit.engine.control import engine_running, socket_path_for

    command = dead_letter_command(args)
    session = resolve_session(load_config(Path(args.config)))
    socket = socket_path_for(session)
    if engine_running(session):
        if isinstance(command, DlqRetry):
            confirm_retry(command.id, args.yes)
            command = command.confirmed()
        return show(args, through_engine(socket, command), "through the running engine")
    if isinstance(command, DlqRetry):
        raise retry_needs_engine(socket, args.config, command.id)
    return show(args, offline(session, command), f"in {session}")
