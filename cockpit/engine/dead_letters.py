"""Dead-letter queue actions: list, stats, retry, remove, cleanup — through the running engine (`cockpit dlq`
uses the store directly when no engine runs; a retry needs the engine)."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import (
    CleanupResult,
    DeadLetter,
    DeadLetters,
    DeadLetterStats,
    DlqRetry,
    RemoveResult,
    RetryResult,
)
from cockpit.core.domain import leg_of
from cockpit.engine.killswitch import ActionRefused
from cockpit.exchange.gateway import OrderIntent
from cockpit.store import DeadLetterRow, SessionStore

if TYPE_CHECKING:
    from cockpit.engine.context import DeadLetterContext

STATUSES = ("open", "retried", "removed")


def letter_of(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        ts=row.ts,
        op=row.op,
        params=row.params,
        error_class=row.error_class,
        error_type=row.error_type,
        reason=row.reason,
        attempts=row.attempts,
        status=row.status,
    )


def list_letters(store: SessionStore, op: str | None, reason: str | None, status: str | None) -> DeadLetters:
    wanted = None if status in (None, "all") else status
    if wanted is not None and wanted not in STATUSES:
        raise ActionRefused(f"unknown status {status!r}", fix=f"use one of {', '.join(STATUSES)} or all")
    rows = store.dead_letters(op=op, reason_contains=reason, status=wanted)
    return DeadLetters(tuple(letter_of(r) for r in rows))


def stats(store: SessionStore) -> DeadLetterStats:
    rows = store.dead_letters()
    open_rows = [r for r in rows if r.status == "open"]
    return DeadLetterStats(
        total=len(rows),
        by_status=dict(Counter(r.status for r in rows)),
        open_by_op=dict(Counter(r.op for r in open_rows)),
        open_by_class=dict(Counter(r.error_class for r in open_rows)),
        open_top_reasons=tuple(Counter(r.reason for r in open_rows).most_common(5)),
    )


async def set_status(store: SessionStore, letter_id: int, status: str) -> None:
    await asyncio.wrap_future(store.set_dead_letter_status(letter_id, status))


async def remove(store: SessionStore, letter_id: int) -> RemoveResult:
    await set_status(store, letter_id, "removed")
    return RemoveResult(id=letter_id, status="removed")


async def cleanup(store: SessionStore, older_than_days: float) -> CleanupResult:
    if older_than_days < 0:
        raise ActionRefused(f"--older-than {older_than_days} is negative", fix="give a number of days >= 0")
    deleted: int = await asyncio.wrap_future(store.delete_dead_letters_older_than(older_than_days))
    return CleanupResult(deleted=deleted)


async def retry(engine: DeadLetterContext, letter_id: int, by: str) -> RetryResult:
    """Send a dead-lettered order again (as a new order with a new client id); mark the letter retried."""
    from cockpit.engine.orders import submit

    rows = [r for r in engine.store.dead_letters() if r.id == letter_id]
    if not rows:
        raise ActionRefused(
            f"no dead letter {letter_id}", fix="`cockpit dlq list --status all` shows the ids"
        )
    row = rows[0]
    if row.status != "open":
        raise ActionRefused(
            f"dead letter {letter_id} is {row.status}", fix="only open letters can be retried"
        )
    if row.op != "create_order":
        raise ActionRefused(
            f"dead letter {letter_id} is a {row.op}",
            "reads are retried by the engine on its own; only orders are sent again by hand",
            f"remove it: cockpit dlq remove {letter_id}",
        )
    p = row.params
    cid = p.get("client_order_id")
    if row.error_type == "OrderOutcomeUnknown" and cid:
        existing = await engine.gateway.fetch_order_by_client_id(str(p["symbol"]), str(cid))
        if existing is not None:
            await set_status(engine.store, letter_id, "removed")
            raise ActionRefused(
                f"dead letter {letter_id}: the order {cid} exists at the exchange after all",
                f"status {existing.status}; sending it again would double it",
                "nothing was sent; the letter is marked removed — reconcile shows the fill",
            )
    intent = OrderIntent(
        symbol=str(p["symbol"]),
        side=str(p["side"]),
        type=str(p["type"]),
        amount=Decimal(str(p["amount"])),
        price=Decimal(str(p["price"])) if p.get("price") else None,
        reduce_only=bool(p.get("reduce_only", False)),
        leg=leg_of(p.get("leg")),
    )
    ack = await submit(engine, intent, source=f"dlq:{by}")
    if ack is not None:
        await set_status(engine.store, letter_id, "retried")
    return RetryResult(
        id=letter_id,
        sent=ack is not None,
        status=ack.status if ack else "rejected again",
        client_order_id=ack.client_order_id if ack else None,
    )


async def operator_retry(engine: DeadLetterContext, command: DlqRetry) -> RetryResult:
    """`dlq retry` by an operator: recorded, then sent."""
    await engine.record(
        "operator.action",
        events.operator_action(action="dlq.retry", id=command.id, by=command.by),
        "info",
        "operator",
    )
    return await retry(engine, command.id, command.by)
