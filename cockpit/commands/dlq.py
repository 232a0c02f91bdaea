"""`cockpit dlq --config FILE list|stats|retry|remove|cleanup`: the dead-letter queue of a session.

With an engine running for the session, every action goes through its control socket (one process holds a
session file). Without one, the session file is opened directly; `retry` then refuses, as it sends an order.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from cockpit.commands.session_files import resolve_session
from cockpit.config.settings import load_config
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.text import fmt_age, shorten
from cockpit.engine.control import engine_running, request, socket_path_for

LIST_STATUSES = ("open", "retried", "removed", "all")
REASON_WIDTH = 48


# ----- where the queue is ------------------------------------------------------------------------------


def through_engine(socket: Path, payload: dict[str, Any]) -> Any:
    reply = asyncio.run(request(socket, {"cmd": "dlq", **payload, "by": "ctl"}))
    if not reply.get("ok"):
        raise CockpitError(
            str(reply.get("error")), str(reply.get("detail") or ""), str(reply.get("fix") or "")
        )
    return reply["result"]


def offline(session: Path, payload: dict[str, Any]) -> Any:
    """The same action on the session file itself (no engine holds it)."""
    from cockpit.engine import dead_letters
    from cockpit.store import SessionStore

    store = SessionStore.open(session, create=False)
    try:
        store.start()
        action = payload["action"]
        if action == "list":
            return dead_letters.list_letters(store, payload["op"], payload["reason"], payload["status"])
        if action == "stats":
            return dead_letters.stats(store)
        if action == "remove":
            asyncio.run(dead_letters.set_status(store, payload["id"], "removed"))
            return {"id": payload["id"], "status": "removed"}
        if action == "cleanup":
            return {"deleted": asyncio.run(dead_letters.cleanup(store, payload["older_than_days"]))}
        raise ValueError(f"unknown offline dlq action {action!r}")
    finally:
        store.close()


# ----- the request ---------------------------------------------------------------------------------------


def build_payload(args: argparse.Namespace) -> dict[str, Any]:
    action: str = args.dlq_command
    if action == "list":
        if args.status not in LIST_STATUSES:
            raise UsageError(f"unknown status {args.status!r}", fix=f"use one of {', '.join(LIST_STATUSES)}")
        return {"action": "list", "op": args.op, "reason": args.reason, "status": args.status}
    if action in ("retry", "remove"):
        return {"action": action, "id": args.id}
    if action == "cleanup":
        if args.older_than < 0:
            raise UsageError(
                f"--older-than {args.older_than:g} is negative", fix="give a number of days >= 0"
            )
        return {"action": "cleanup", "older_than_days": args.older_than}
    return {"action": "stats"}


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


def render_letters(letters: list[dict[str, Any]], status: str) -> str:
    if not letters:
        return f"no dead letters ({'any status' if status == 'all' else status})"
    now = time.time()
    header = ("ID", "AGE", "OP", "CLASS", "ERROR", "REASON", "ATTEMPTS", "STATUS")
    rows = [
        (
            str(letter["id"]),
            fmt_age(now - float(letter["ts"])),
            str(letter["op"]),
            str(letter["error_class"]),
            str(letter["error_type"]),
            shorten(str(letter["reason"]), REASON_WIDTH),
            str(letter["attempts"]),
            str(letter["status"]),
        )
        for letter in letters
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in (header, *rows))
    return "\n".join(line.rstrip() for line in lines)


def counts(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(mapping.items())) or "none"


def render_stats(result: dict[str, Any]) -> str:
    lines = [
        f"total:         {result['total']}",
        f"by status:     {counts(result['by_status'])}",
        f"open by op:    {counts(result['open_by_op'])}",
        f"open by class: {counts(result['open_by_class'])}",
    ]
    top = result.get("open_top_reasons") or []
    if top:
        lines.append("top reasons (open):")
        lines.extend(f"  {n:>5}  {shorten(str(reason), 90)}" for reason, n in top)
    return "\n".join(lines)


def render_retry(result: dict[str, Any]) -> str:
    if result.get("sent"):
        return (
            f"dead letter {result['id']} retried: order sent as {result['client_order_id']}, "
            f"status {result['status']}"
        )
    return f"dead letter {result['id']} retried, but the order was {result['status']} (see `dlq list`)"


def show(args: argparse.Namespace, result: Any, where: str) -> int:
    action = args.dlq_command
    if action == "list":
        if args.json:
            print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        else:
            print(render_letters(result, args.status))
    elif action == "stats":
        print(render_stats(result))
    elif action == "retry":
        print(render_retry(result))
        return 0 if result.get("sent") else 1
    elif action == "remove":
        print(f"dead letter {result['id']} marked removed ({where})")
    else:
        print(f"deleted {result['deleted']} dead letter(s) older than {args.older_than:g} days ({where})")
    return 0


def dlq_command(args: argparse.Namespace) -> int:
    payload = build_payload(args)
    session = resolve_session(load_config(Path(args.config)))
    socket = socket_path_for(session)
    if engine_running(session):
        if payload["action"] == "retry":
            confirm_retry(payload["id"], args.yes)
        return show(args, through_engine(socket, payload), "through the running engine")
    if payload["action"] == "retry":
        raise retry_needs_engine(socket, args.config, payload["id"])
    return show(args, offline(session, payload), f"in {session}")
