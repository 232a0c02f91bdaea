"""Sending orders: the intent is recorded before it is sent; the kill switch and dry-run apply."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cockpit.domain import dstr
from cockpit.exchange.gateway import GatewayError, OrderAck, OrderIntent, new_client_order_id

if TYPE_CHECKING:
    from cockpit.engine.engine import Engine


def intent_payload(intent: OrderIntent) -> dict[str, Any]:
    return {
        "client_order_id": intent.client_order_id,
        "symbol": intent.symbol,
        "side": intent.side,
        "type": intent.type,
        "amount": dstr(intent.amount),
        "price": dstr(intent.price) if intent.price is not None else None,
        "reduce_only": intent.reduce_only,
        "origin": "cockpit",
    }


async def submit(engine: Engine, intent: OrderIntent, source: str = "operator") -> OrderAck | None:
    """Place an order; returns the exchange's ack, or None when it was refused, rejected or is a dry run."""
    cid = intent.client_order_id or new_client_order_id()
    intent = replace(
        intent, client_order_id=cid, amount=engine.gateway.amount_to_precision(intent.symbol, intent.amount)
    )
    payload = intent_payload(intent)
    if engine.state.kill_switch.engaged and not intent.reduce_only:
        await engine.record("order.submitted", payload, "info", source)
        await engine.record(
            "order.rejected",
            {
                **payload,
                "reason": f"kill switch engaged ({engine.state.kill_switch.cause}): only reduce-only orders",
            },
            "warning",
            "risk",
        )
        return None
    await engine.record("order.submitted", payload, "info", source)
    if engine.options.mode == "dry-run":
        engine.emit(
            "order.rejected", {**payload, "reason": "dry-run: not sent", "dry_run": True}, "info", "engine"
        )
        return None
    try:
        ack = await engine.gateway.create_order(intent)
    except GatewayError as exc:
        engine.emit(
            "order.rejected",
            {
                **payload,
                "reason": exc.detail,
                "error_class": exc.error_class.value,
                "error_type": type(exc.cause).__name__,
            },
            "warning",
            "exchange",
        )
        return None
    current = engine.state.orders.get(cid)
    if current is not None and current.status == "submitted":
        engine.emit(
            "order.accepted",
            {
                **payload,
                "order_id": ack.order_id,
                "amount": dstr(ack.amount),
                "filled": dstr(ack.filled),
                "status": ack.status,
                "resolved_by_lookup": ack.resolved_by_lookup,
            },
            "info",
            "exchange",
        )
    return ack
