"""Cancel open orders: one (by its client order id or the exchange's id), every order of some symbols, or
every order on the account, plain and conditional; then ask the exchange what is still open in that scope, so
the answer is verified rather than hoped. The operator's action is recorded before anything is sent
(cockpit/engine/actions.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cockpit.core.commands import CancelResult
from cockpit.core.state import Order, State
from cockpit.engine.killswitch import ActionRefused
from cockpit.exchange.gateway import GatewayError
from cockpit.exchange.reports import OrderReport

if TYPE_CHECKING:
    from cockpit.engine.context import ActionContext

LIST_FIX = "`cockpit ctl orders` lists them with both ids (a filled or canceled order has nothing to cancel)"


def find_order(state: State, wanted: str, expected_order_id: str | None = None) -> Order:
    """The open order `wanted` names: its client order id, else the exchange's order id (refused when that
    names more than one: order ids are per symbol). With `expected_order_id` (what the operator was shown),
    an order that changed since — a stop that triggered and placed its order under the same client id — is
    refused rather than canceled in its place. Refused too before the exchange has accepted it."""
    text = wanted.strip()
    orders = list(state.orders.values())
    matches = [o for o in orders if o.client_order_id == text] or [o for o in orders if o.order_id == text]
    if not matches:
        known = ", ".join(sorted(o.client_order_id for o in orders)[:10]) or "none"
        raise ActionRefused(f"no open order {wanted!r}", f"the open orders cockpit knows: {known}", LIST_FIX)
    if len(matches) > 1:
        named = ", ".join(f"{o.client_order_id} ({o.symbol})" for o in matches)
        raise ActionRefused(f"{wanted!r} names {len(matches)} open orders", named, "give its client order id")
    order = matches[0]
    if expected_order_id is not None and order.order_id != expected_order_id:
        raise ActionRefused(
            f"{order.client_order_id} changed since it was chosen",
            f"it was order {expected_order_id}; under that client id the exchange now holds order "
            f"{order.order_id} ({order.type}) — a conditional order that triggered places its order so",
            "look at the orders again and choose once more; nothing was canceled",
        )
    if order.order_id is None:
        raise ActionRefused(
            f"{order.client_order_id} is not yet accepted by the exchange",
            "it has no exchange order id to cancel yet",
            "try again in a moment; `cockpit ctl orders` shows when it is open",
        )
    return order


def cancel_symbols(engine: ActionContext, named: tuple[str, ...]) -> list[str]:
    """The unified symbols the operator named (BTCUSDT, btcusdt or BTC/USDT:USDT): one cockpit follows or
    holds, or one an open order is on (another client's order on a symbol cockpit does not follow)."""
    on_orders = {o.symbol for o in engine.state.orders.values()}
    symbols = []
    for text in named:
        wanted = text.strip().upper()
        match = next((s for s in on_orders if wanted in (s.upper(), _exchange_id(s))), None)
        symbols.append(match if match is not None else engine.resolve_symbol(text))
    if not symbols:
        raise ActionRefused(
            "cancel of an empty selection", fix="name symbols, or null for every order on the account"
        )
    return sorted(set(symbols))


def _exchange_id(symbol: str) -> str:
    """BTC/USDT:USDT → BTCUSDT."""
    return symbol.split(":")[0].replace("/", "").upper()


def _label(report: OrderReport) -> str:
    return report.client_order_id or report.order_id


async def cancel_one(engine: ActionContext, order: Order, by: str) -> CancelResult:
    """One order (`find_order`'s); then whether the exchange still lists it — or an order under its client
    id, the one a conditional order placed when it triggered."""
    assert order.order_id is not None  # find_order refuses one the exchange has not accepted
    scope = f"order {order.client_order_id}"
    errors = []
    gateway = engine.gateway
    found = True
    try:
        if order.conditional:
            found = await gateway.cancel_conditional_order(order.order_id, order.symbol, gone_ok=True)
        else:
            found = await gateway.cancel_order(order.order_id, order.symbol, gone_ok=True) is not None
    except GatewayError as exc:
        errors.append(f"{order.client_order_id}: {exc.detail}")
    listed = await gateway.fetch_open_orders(order.symbol)
    try:  # a venue that cannot list conditional orders still verifies a plain cancel
        listed += await gateway.fetch_open_conditional_orders(order.symbol)
    except GatewayError:
        if order.conditional:
            raise
    cid = order.client_order_id
    still = [_label(r) for r in listed if r.order_id == order.order_id or r.client_order_id == cid]
    if not found and not errors:
        return CancelResult(
            scope=scope,
            by=by,
            canceled=(),
            remaining=tuple(still),
            errors=(),
            verified=not still,
            message=f"{cid} was no longer open (filled, triggered or canceled already): nothing canceled"
            + (f"; open under its client id now: {', '.join(still)}" if still else ""),
        )
    return _outcome(scope, by, (cid,), still, errors)


async def cancel_many(engine: ActionContext, symbols: list[str] | None, by: str) -> CancelResult:
    """Every open order of `symbols` (None: of the account), plain and conditional, as the exchange lists
    them."""
    gateway = engine.gateway
    before = await gateway.fetch_all_open_orders()
    in_scope = [r for r in before if symbols is None or r.symbol in symbols]
    known = [o for o in engine.state.orders.values() if symbols is None or o.symbol in symbols]
    targets = sorted({r.symbol for r in in_scope} | {o.symbol for o in known if o.order_id is not None})
    conditional = {r.symbol for r in in_scope if r.conditional} | {o.symbol for o in known if o.conditional}
    errors = []
    for symbol in targets:
        try:
            await gateway.cancel_all_orders(symbol)
        except GatewayError as exc:
            errors.append(f"{symbol}: {exc.detail}")
        if symbol in conditional:
            try:
                await gateway.cancel_all_conditional_orders(symbol)
            except GatewayError as exc:
                errors.append(f"{symbol} conditional: {exc.detail}")
    after = await gateway.fetch_all_open_orders()
    still = [_label(r) for r in after if symbols is None or r.symbol in symbols]
    scope = "all" if symbols is None else ", ".join(symbols)
    return _outcome(scope, by, tuple(_label(r) for r in in_scope), still, errors)


def _outcome(
    scope: str, by: str, canceled: tuple[str, ...], still: list[str], errors: list[str]
) -> CancelResult:
    gone = tuple(c for c in canceled if c not in still)
    if still:
        message = f"NOT all canceled: {len(still)} still open at the exchange ({', '.join(still[:5])})"
    elif gone:
        message = f"canceled {len(gone)} order{'s' if len(gone) != 1 else ''}; none left open (verified)"
    else:
        message = "no open order to cancel; none open at the exchange (verified)"
    return CancelResult(
        scope=scope,
        by=by,
        canceled=gone,
        remaining=tuple(still),
        errors=tuple(errors),
        verified=not still,
        message=message,
    )
