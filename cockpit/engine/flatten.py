"""Emergency flatten: cancel open orders, close with reduce-only market orders at the exchange's precision,
retry what remains (partial fills, rejections), then verify flat from the exchange itself.

Reduce-only orders for at most the open quantity can only shrink a position: flatten never adds exposure.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import FlattenResult
from cockpit.core.domain import dstr
from cockpit.engine.account import positions_from_exchange
from cockpit.engine.killswitch import engage
from cockpit.engine.orders import submit
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, OrderIntent
from cockpit.exchange.reports import OrderReport

if TYPE_CHECKING:
    from cockpit.engine.context import FlattenContext


def closing_intent(symbol: str, qty: Decimal) -> OrderIntent:
    """The order that closes a signed position `qty`: opposite side, same size, reduce-only, market."""
    return OrderIntent(symbol, "sell" if qty > 0 else "buy", "market", abs(qty), reduce_only=True)


def done_payload(result: FlattenResult) -> events.FlattenDone:
    """The `flatten.done` event of a flatten: what the fold, incidents and analytics read."""
    return events.flatten_done(
        symbols=list(result.symbols),
        by=result.by,
        verified=result.verified,
        rounds=result.rounds,
        remaining=dict(result.remaining),
        errors=list(result.errors),
        message=result.message,
    )


def _outcome(
    targets: list[str],
    by: str,
    rounds: int,
    remaining: dict[str, Decimal],
    errors: list[str],
    orders_left: tuple[str, ...] = (),
) -> FlattenResult:
    """What a flatten did, once the exchange says what `remaining` is still open (positions) and which
    orders that could open one again are (`orders_left`)."""
    left = {s: dstr(q) for s, q in remaining.items()}
    if remaining:
        message = f"NOT flat: {', '.join(f'{s} {q}' for s, q in left.items())}"
    elif orders_left and orders_left[0].startswith("("):
        message = f"flat, but the open orders could not be verified: {orders_left[0]}"
    elif orders_left:
        message = f"flat, but {len(orders_left)} order(s) that could open a position are still open: " + (
            ", ".join(orders_left[:5])
        )
    else:
        message = "flat, no order left that could re-open a position; verified at the exchange"
    return FlattenResult(
        symbols=tuple(targets),
        by=by,
        verified=not remaining and not orders_left,
        rounds=rounds,
        remaining=left,
        errors=tuple(
            [
                *errors,
                *(o if o.startswith("(") else f"{o}: still open after the flatten" for o in orders_left),
            ]
        ),
        message=message,
    )


async def _cancel_orders(gateway: ExchangeGateway, targets: list[str]) -> list[str]:
    """Cancel every order of `targets`, plain and conditional (a stop left behind opens a position again once
    the market reaches it), each kind on its own (one failing does not keep the other); the errors. Weight 1
    a call, nothing read first: the closing orders go out as soon as possible."""
    errors: list[str] = []
    for symbol in targets:
        try:
            await gateway.cancel_all_orders(symbol)
        except GatewayError as exc:
            errors.append(f"{symbol}: cancel orders: {exc.detail}")
        try:
            await gateway.cancel_all_conditional_orders(symbol)
        except GatewayError as exc:
            errors.append(f"{symbol}: cancel conditional orders: {exc.detail}")
    return errors


async def _orders_left(gateway: ExchangeGateway, targets: list[str] | None) -> list[OrderReport]:
    """Orders of `targets` (None: of the account) still open that could open a position (reduce-only and
    close-position ones cannot)."""
    return [
        o
        for o in await gateway.fetch_all_open_orders()
        if (targets is None or o.symbol in targets) and not o.reduce_only
    ]


async def _clear_orders(
    gateway: ExchangeGateway, targets: list[str], everything: bool, errors: list[str]
) -> tuple[str, ...]:
    """What is still open that could open a position, after one more cancel of the symbols such orders are on
    (a flatten of everything: any symbol, with a position or not)."""
    scope = None if everything else targets
    try:
        left = await _orders_left(gateway, scope)
        if left:
            errors.extend(await _cancel_orders(gateway, sorted({o.symbol for o in left})))
            left = await _orders_left(gateway, scope)
    except GatewayError as exc:
        return (f"(the open orders could not be read to verify: {exc.detail})",)
    return tuple(f"{o.symbol} {o.client_order_id or o.order_id}" for o in left)


async def flatten(engine: FlattenContext, symbols: list[str] | None, by: str) -> FlattenResult:
    async with engine.flatten_lock:
        gateway = engine.gateway
        remote = positions_from_exchange(await gateway.fetch_positions(with_leverage=False), engine.symbols)
        targets = (
            sorted(symbols) if symbols is not None else sorted(set(remote) | set(engine.state.positions))
        )
        await engine.record(
            "flatten.started",
            events.flatten_started(
                symbols=targets,
                by=by,
                positions={s: dstr(remote[s].quantity) for s in targets if s in remote},
            ),
            "warning",
            "operator",
        )
        errors = await _cancel_orders(gateway, targets)
        everything = symbols is None
        rounds = 0
        remaining: dict[str, Decimal] = {}
        orders_left: tuple[str, ...] = ()
        while True:
            remote = positions_from_exchange(
                await gateway.fetch_positions(with_leverage=False), engine.symbols
            )
            # flatten all: any position, also one an order filled on while this ran
            remaining = {s: p.quantity for s, p in remote.items() if everything or s in targets}
            if not remaining:
                # flat: now clear what could open a position again, and read the positions once more after
                orders_left = await _clear_orders(gateway, targets, everything, errors)
                remote = positions_from_exchange(
                    await gateway.fetch_positions(with_leverage=False), engine.symbols
                )
                remaining = {s: p.quantity for s, p in remote.items() if everything or s in targets}
                if not remaining or rounds >= engine.options.flatten_rounds:
                    break
            if rounds >= engine.options.flatten_rounds:
                break
            rounds += 1
            acks = await asyncio.gather(
                *(submit(engine, closing_intent(s, q), source="flatten") for s, q in remaining.items())
            )
            errors.extend(
                f"{s}: order not filled in round {rounds}"
                for s, ack in zip(remaining, acks, strict=True)
                if ack is None
            )
        if remaining and not orders_left:
            orders_left = await _clear_orders(gateway, targets, everything, errors)
        targets = sorted(set(targets) | set(remaining))
        result = _outcome(targets, by, rounds, remaining, errors, orders_left)
        await engine.record(
            "flatten.done", done_payload(result), "info" if result.verified else "critical", "operator"
        )
        engine.reconcile_requests.put_nowait("after-flatten")
        if engine.options.flatten_engages_kill_switch and symbols is None:  # flatten ALL (runbook 000 §10)
            await engage(engine, "flatten all: nothing may re-open positions", by)
        return result
