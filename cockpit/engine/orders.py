"""Sending orders: the intent is recorded before it is sent; the kill switch and dry-run apply."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

import ccxt

from cockpit.core import events
from cockpit.core.domain import dstr
from cockpit.exchange.gateway import GatewayError, OrderAck, OrderIntent, new_client_order_id

if TYPE_CHECKING:
    from cockpit.engine.context import OrderContext


def intent_payload(intent: OrderIntent, client_order_id: str) -> events.OrderSubmitted:
    """The `order.submitted` event of an order cockpit sends; its refusal and its ack repeat these keys."""
    return events.order_submitted(
        client_order_id=client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        amount=dstr(intent.amount),
        price=dstr(intent.price) if intent.price is not None else None,
        reduce_only=intent.reduce_only,
        origin="cockpit",
        leg=intent.leg,
    )


def refusal(engine: OrderContext, intent: OrderIntent) -> str | None:
    """Why the risk rules refuse this order before it is sent, or None. Orders that can only shrink a position
    (reduce-only, or the closing side of a hedge leg) always pass."""
    if intent.closes:
        return None
    state = engine.state
    if state.kill_switch.engaged:
        return f"kill switch engaged ({state.kill_switch.cause}): only reduce-only orders"
    breaker = engine.config.risk.breaker_drawdown_pct
    if float(state.drawdown_pct) >= breaker:
        return f"drawdown breaker: {float(state.drawdown_pct):.2f}% >= {breaker}%, reduce-only mode"
    blocked = engine.risk.margin_block
    if blocked is not None and (state.available is None or state.available <= blocked):
        free = state.available if state.available is not None else "unknown"
        return f"insufficient margin: free {free} USDT; new exposure is blocked until margin is freed"
    return None


async def submit(engine: OrderContext, intent: OrderIntent, source: str = "operator") -> OrderAck | None:
    """Place an order; returns the exchange's ack, or None when it was refused, rejected or is a dry run."""
    cid = intent.client_order_id or new_client_order_id()
    intent = replace(
        intent, client_order_id=cid, amount=engine.gateway.amount_to_precision(intent.symbol, intent.amount)
    )
    payload = intent_payload(intent, cid)
    await engine.record("order.submitted", payload, "info", source)
    reason = refusal(engine, intent)
    if reason is not None:
        await engine.record(
            "order.rejected",
            events.order_rejected(**payload, reason=reason, refused_by="risk"),
            "warning",
            "risk",
        )
        return None
    if engine.options.mode == "dry-run":
        dry_run = events.order_rejected(**payload, reason="dry-run: not sent", dry_run=True)
        engine.emit("order.rejected", dry_run, "info", "engine")
        return None
    try:
        ack = await engine.gateway.create_order(intent)
    except GatewayError as exc:
        engine.emit(
            "order.rejected",
            events.order_rejected(
                **payload,
                reason=exc.detail,
                error_class=exc.error_class.value,
                error_type=type(exc.cause).__name__,
            ),
            "warning",
            "exchange",
        )
        if isinstance(exc.cause, ccxt.InsufficientFunds):
            block_new_exposure(engine)
        return None
    current = engine.state.orders.get(cid)
    if current is not None and current.status == "submitted":
        engine.emit(
            "order.accepted",
            events.order_accepted(
                client_order_id=cid,
                order_id=ack.order_id,
                symbol=payload["symbol"],
                side=payload["side"],
                type=payload["type"],
                amount=dstr(ack.amount),
                price=payload["price"],
                filled=dstr(ack.filled),
                reduce_only=payload["reduce_only"],
                origin=payload["origin"],
                status=ack.status,
                resolved_by_lookup=ack.resolved_by_lookup,
                leg=intent.leg,
            ),
            "info",
            "exchange",
        )
    return ack


def block_new_exposure(engine: OrderContext) -> None:
    """Margin is insufficient: refuse new exposure until the free margin grows (runbook 000 §8)."""
    engine.risk.margin_block = engine.state.available if engine.state.available is not None else Decimal(0)
    free = engine.state.available
    engine.emit(
        "alert",
        events.alert(
            message=f"INSUFFICIENT MARGIN: free {free} USDT — new orders that add exposure are blocked "
            "until margin is freed (close positions or add funds)",
            available=str(free),
        ),
        "critical",
        "risk",
    )
