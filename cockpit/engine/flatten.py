"""Emergency flatten: cancel open orders, close with reduce-only market orders at the exchange's precision,
retry what remains (partial fills, rejections), then verify flat from the exchange itself.

Reduce-only orders for at most the open quantity can only shrink a position: flatten never adds exposure. In
hedge mode a position is a leg ("<symbol> long|short"): it closes with a market order on its own position side
(the exchange refuses reduce-only there, and lets the closing side of a leg only shrink it). A flatten names
positions by key — a symbol (every leg of it) or one leg — and touches nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import FlattenResult
from cockpit.core.domain import closes_leg, dstr, key_leg, key_symbol, position_key
from cockpit.engine.account import positions_from_exchange
from cockpit.engine.killswitch import ActionRefused, engage
from cockpit.engine.orders import submit
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, OrderIntent
from cockpit.exchange.reports import OrderReport

if TYPE_CHECKING:
    from cockpit.engine.context import FlattenContext


def closing_intent(key: str, qty: Decimal) -> OrderIntent:
    """The order that closes the signed position `qty` held under `key` (a symbol, or a hedge leg): opposite
    side, same size, market; reduce-only on a one-way account, on the leg's own position side in hedge
    mode."""
    leg = key_leg(key)
    side = "sell" if qty > 0 else "buy"
    return OrderIntent(key_symbol(key), side, "market", abs(qty), reduce_only=leg == "both", leg=leg)


def covers(targets: Collection[str], key: str) -> bool:
    """Whether a flatten of `targets` (position keys; a symbol names every leg of it) includes `key`."""
    return key in targets or key_symbol(key) in targets


def _can_open(order: OrderReport) -> bool:
    """Whether an open order could open (or add to) a position: not reduce-only, and on a hedge leg, on the
    leg's own side (sell LONG and buy SHORT can only close it)."""
    if order.leg != "both":
        return not closes_leg(order.leg, order.side)
    return not order.reduce_only


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


def _whole_symbols(targets: Collection[str], everything: bool) -> list[str]:
    """The symbols of `targets` every order of which goes: all of them in a flatten of everything, a symbol
    named whole (a one-way position, or every leg of it), or both its legs named."""
    symbols = {key_symbol(t) for t in targets}
    return sorted(
        s for s in symbols if everything or s in targets or {f"{s} long", f"{s} short"} <= set(targets)
    )


async def _cancel_orders(gateway: ExchangeGateway, targets: list[str], everything: bool = False) -> list[str]:
    """Cancel every order of `targets`, plain and conditional (a stop left behind opens a position again once
    the market reaches it), each kind on its own (one failing does not keep the other); the errors. A whole
    symbol: weight 1 a call, nothing read first (the closing orders go out as soon as possible); a hedge leg
    alone: its symbol's orders are listed and that leg's canceled one by one (the other leg's stay)."""
    errors: list[str] = []
    whole = _whole_symbols(targets, everything)
    for key in [t for t in targets if key_symbol(t) not in whole]:
        listings = (
            ("orders", gateway.fetch_open_orders),
            ("conditional orders", gateway.fetch_open_conditional_orders),
        )
        for kind, listing in listings:
            try:
                listed = await listing(key_symbol(key))
            except GatewayError as exc:
                errors.append(f"{key}: list {kind}: {exc.detail}")
                continue
            errors.extend(
                await _cancel_each(gateway, [o for o in listed if position_key(o.symbol, o.leg) == key])
            )
    for symbol in whole:
        try:
            await gateway.cancel_all_orders(symbol)
        except GatewayError as exc:
            errors.append(f"{symbol}: cancel orders: {exc.detail}")
        try:
            await gateway.cancel_all_conditional_orders(symbol)
        except GatewayError as exc:
            errors.append(f"{symbol}: cancel conditional orders: {exc.detail}")
    return errors


async def _cancel_each(gateway: ExchangeGateway, orders: list[OrderReport]) -> list[str]:
    """Cancel these orders one by one (each through its own kind's endpoint); the errors. One already gone
    is no error."""
    errors: list[str] = []
    for o in orders:
        try:
            if o.conditional:
                await gateway.cancel_conditional_order(o.order_id, o.symbol, gone_ok=True)
            else:
                await gateway.cancel_order(o.order_id, o.symbol, gone_ok=True)
        except GatewayError as exc:
            errors.append(f"{o.symbol} {o.client_order_id or o.order_id}: cancel: {exc.detail}")
    return errors


async def _orders_left(gateway: ExchangeGateway, targets: list[str] | None) -> list[OrderReport]:
    """Orders of `targets` (None: of the account) still open that could open a position (reduce-only,
    close-position and a hedge leg's closing-side ones cannot)."""
    return [
        o
        for o in await gateway.fetch_all_open_orders()
        if (targets is None or covers(targets, position_key(o.symbol, o.leg))) and _can_open(o)
    ]


async def _clear_orders(
    gateway: ExchangeGateway, targets: list[str], everything: bool, errors: list[str]
) -> tuple[str, ...]:
    """What is still open that could open a position, after one more cancel of such orders (a flatten of
    everything: of every symbol they are on, any symbol, with a position or not)."""
    scope = None if everything else targets
    try:
        left = await _orders_left(gateway, scope)
        if left:  # whole symbols: also what was placed on them since; a leg alone: exactly its orders
            whole = _whole_symbols(targets, everything)
            swept = sorted({o.symbol for o in left if everything or o.symbol in whole})
            errors.extend(await _cancel_orders(gateway, swept, everything=True))
            errors.extend(await _cancel_each(gateway, [o for o in left if o.symbol not in swept]))
            left = await _orders_left(gateway, scope)
    except GatewayError as exc:
        return (f"(the open orders could not be read to verify: {exc.detail})",)
    return tuple(f"{o.symbol} {o.client_order_id or o.order_id}" for o in left)


async def flatten(engine: FlattenContext, symbols: list[str] | None, by: str) -> FlattenResult:
    async with engine.flatten_lock:
        gateway = engine.gateway
        remote = positions_from_exchange(await gateway.fetch_positions(with_leverage=False), engine.symbols)
        one_way = sorted(t for t in symbols or () if key_leg(t) != "both" and key_symbol(t) in remote)
        if one_way:  # a leg named on a one-way position: nothing of it would be closed, nor "flat" true
            raise ActionRefused(
                f"{', '.join(one_way)}: the exchange holds {key_symbol(one_way[0])} as a one-way position",
                fix=f"flatten {key_symbol(one_way[0])} without a leg",
            )
        targets = (
            sorted(symbols) if symbols is not None else sorted(set(remote) | set(engine.state.positions))
        )
        await engine.record(
            "flatten.started",
            events.flatten_started(
                symbols=targets,
                by=by,
                positions={k: dstr(p.quantity) for k, p in remote.items() if covers(targets, k)},
            ),
            "warning",
            "operator",
        )
        everything = symbols is None
        errors = await _cancel_orders(gateway, targets, everything)
        rounds = 0
        remaining: dict[str, Decimal] = {}
        orders_left: tuple[str, ...] = ()
        while True:
            remote = positions_from_exchange(
                await gateway.fetch_positions(with_leverage=False), engine.symbols
            )
            # flatten all: any position, also one an order filled on while this ran
            remaining = {k: p.quantity for k, p in remote.items() if everything or covers(targets, k)}
            if not remaining:
                # flat: now clear what could open a position again, and read the positions once more after
                orders_left = await _clear_orders(gateway, targets, everything, errors)
                remote = positions_from_exchange(
                    await gateway.fetch_positions(with_leverage=False), engine.symbols
                )
                remaining = {k: p.quantity for k, p in remote.items() if everything or covers(targets, k)}
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
