"""Account sync: the user stream and a periodic REST look at balance and positions.

Every order event and fill on the account — whoever placed the order — becomes an event. A position the REST
poll finds that the state does not have (or has differently) triggers a reconcile, which decides whether
missed fills explain it or it is a ghost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.domain import Severity, dec, dstr, leg_of, position_key
from cockpit.engine import baddata
from cockpit.engine.exchange_feeds import UserSinks, UserStream, feeds_of
from cockpit.engine.guard import guard, guard_conditional
from cockpit.exchange.gateway import GatewayError
from cockpit.exchange.reports import BalanceReport, PositionReport
from cockpit.feeds import AccountUpdate, AlgoUpdate, OrderUpdate
from cockpit.feeds.messages import UserEvent

if TYPE_CHECKING:
    from cockpit.engine.context import AccountContext, EngineContext, Events, Reads
    from cockpit.engine.symbols import SymbolMap

FUNDING_READ_AGAIN_S = 10.0

ORDER_KINDS = {
    "NEW": "order.accepted",
    "CANCELED": "order.canceled",
    "EXPIRED": "order.canceled",
    "REJECTED": "order.rejected",
}


def build_user_feed(engine: EngineContext) -> UserStream:
    """The exchange's user stream (exchange_feeds.py), wired to this module's handlers and to
    `market.on_feed_status` (written against the whole `EngineContext`, so this wiring takes it too)."""
    from cockpit.engine.market import on_feed_status

    sinks = UserSinks(
        on_user_event=lambda event: on_user_event(engine, event),
        on_status=lambda status: on_feed_status(engine, status),
        on_rejected=lambda rejection: baddata.on_rejected(engine, rejection),
    )
    return feeds_of(engine.config.exchange.id).user_feed(engine, sinks)


def on_user_event(engine: AccountContext, event: UserEvent) -> None:
    if isinstance(event, OrderUpdate):
        on_order_update(engine, event)
    elif isinstance(event, AccountUpdate):
        on_account_update(engine, event)
    elif isinstance(event, AlgoUpdate):
        on_algo_update(engine, event)


def on_algo_update(engine: AccountContext, u: AlgoUpdate) -> None:
    """A conditional order (Binance's Algo Service): open, canceled, rejected, or triggered — then the order
    it placed arrives as an ORDER_TRADE_UPDATE of its own."""
    cid = u.client_algo_id
    report = events.order_report(
        client_order_id=cid,
        order_id=str(u.algo_id),
        symbol=engine.symbols.unified(u.symbol),
        side=u.side.lower(),
        type=u.order_type.lower(),
        amount=dstr(u.quantity),
        price=dstr(u.price),
        filled="0",
        average="0",
        reduce_only=u.reduce_only or u.close_position,
        origin=order_origin(engine, cid),
        status=u.status.lower(),
        leg=leg_of(u.position_side),
    )
    known = _conditional(engine, cid, str(u.algo_id))  # not the order it placed, under the same client id
    if u.status == "NEW":
        if engine.state.kill_switch.engaged and report["origin"] != "cockpit":
            guard_conditional(engine, report, u.close_position)
        payload = events.order_accepted(
            client_order_id=cid,
            order_id=report["order_id"],
            symbol=report["symbol"],
            side=report["side"],
            type=report["type"],
            amount=report["amount"],
            price=dstr(u.price) if u.price else None,
            filled="0",
            reduce_only=report["reduce_only"],
            origin=report["origin"],
            status="open",
            trigger=dstr(u.trigger_price),
            conditional=True,
            leg=report.get("leg"),
        )
        engine.emit("order.accepted", payload, "info", "user_stream")
    elif u.status in ("CANCELED", "EXPIRED") and known:
        engine.emit("order.canceled", events.order_canceled(**report), "info", "user_stream")
    elif u.status == "REJECTED" and known:
        # routine for another client's leftover stop (its position closed first): said, not alarmed
        severity: Severity = "warning" if report["origin"] == "cockpit" else "info"
        rejected = events.order_rejected(
            client_order_id=cid,
            order_id=report["order_id"],
            symbol=report["symbol"],
            side=report["side"],
            type=report["type"],
            amount=report["amount"],
            price=dstr(u.price) if u.price else None,
            reduce_only=report["reduce_only"],
            origin=report["origin"],
            status="rejected",
            reason=u.reason or "rejected by the exchange's conditional order service",
            leg=report.get("leg"),
        )
        engine.emit("order.rejected", rejected, severity, "user_stream")
    elif u.status in ("TRIGGERED", "FINISHED") and known:
        _triggered(engine, cid, u.placed_order_id or None, u.status.lower())


def order_origin(engine: Reads, client_order_id: str) -> str:
    known = engine.state.orders.get(client_order_id)
    if known is not None:
        return known.origin
    return "cockpit" if client_order_id.startswith("ck-") else "external"


def _triggered(engine: Events, cid: str, placed: str | None, status: str) -> None:
    """The conditional order `cid` triggered: no longer open as itself (the order it placed, if the exchange
    says which, is `placed`)."""
    o = engine.state.orders[cid]
    payload = events.order_triggered(
        client_order_id=cid,
        order_id=o.order_id or "",
        symbol=o.symbol,
        side=o.side,
        type=o.type,
        amount=dstr(o.amount),
        trigger=dstr(o.trigger) if o.trigger is not None else "0",
        reduce_only=o.reduce_only,
        origin=o.origin,
        status=status,
        placed=placed,
        leg=o.leg,
    )
    engine.emit("order.triggered", payload, "info", "user_stream")


def _conditional(engine: Reads, cid: str, algo_id: str | None = None) -> bool:
    """Whether State holds `cid` as a conditional order (with that algo id, when given)."""
    o = engine.state.orders.get(cid)
    return o is not None and o.conditional and (algo_id is None or o.order_id == algo_id)


def on_order_update(engine: AccountContext, u: OrderUpdate) -> None:
    if _conditional(engine, u.client_order_id) and engine.state.orders[u.client_order_id].order_id != str(
        u.order_id
    ):  # the order a conditional order placed when it triggered, under the same client id: the trigger
        # is recorded first (its ALGO_UPDATE may come after the fill), then this order as any other
        _triggered(engine, u.client_order_id, str(u.order_id), "triggered")
    report = events.order_report(
        client_order_id=u.client_order_id,
        order_id=str(u.order_id),
        symbol=engine.symbols.unified(u.symbol),
        side=u.side.lower(),
        type=u.type.lower(),
        amount=dstr(u.orig_qty),
        price=dstr(u.price),
        filled=dstr(u.executed_qty),
        average=dstr(u.avg_price),
        reduce_only=u.reduce_only,
        origin=order_origin(engine, u.client_order_id),
        status=u.status.lower(),
        leg=leg_of(u.position_side),
    )
    if engine.state.kill_switch.engaged and report["origin"] != "cockpit":
        guard(engine, u, report)
    if u.execution_type == "TRADE":
        if str(u.trade_id) in engine.state.trade_ids:
            return  # already recorded (recovered by a reconcile before the stream delivered it)
        done = u.status == "FILLED"  # the order is done: order.filled; else a part of it
        build = events.order_filled if done else events.order_partially_filled
        fill = build(
            **report,
            trade_id=str(u.trade_id),
            last_qty=dstr(u.last_fill_qty),
            last_price=dstr(u.last_fill_price),
            commission=dstr(u.commission),
            realized_pnl=dstr(u.realized_pnl),
            trade_time_ms=u.transaction_time,
            maker=u.is_maker,
            recovered=False,
        )
        engine.emit("order.filled" if done else "order.partially_filled", fill, "info", "user_stream")
        apply_pending_size(engine, position_key(report["symbol"], report.get("leg")))
        return
    other = ORDER_KINDS.get(u.execution_type)
    if other is None:
        return
    if other != "order.accepted" and u.client_order_id not in engine.state.orders:
        return  # an order we never saw open (e.g. a market order filled and gone): nothing to close
    severity: Severity = "warning" if other == "order.rejected" else "info"
    payload: events.OrderAccepted | events.OrderRejected | events.OrderCanceled
    if other == "order.accepted":
        payload = events.order_accepted(**report)
    elif other == "order.rejected":
        payload = events.order_rejected(**report)
    else:
        payload = events.order_canceled(**report)
    engine.emit(other, payload, severity, "user_stream")


def on_account_update(engine: AccountContext, a: AccountUpdate) -> None:
    if a.reason == "FUNDING_FEE":  # the stream does not say which payment: the income history does
        engine.reconcile_requests.put_nowait("funding")
        # the income rows of one funding time appear over a few seconds: ask once more after them
        asyncio.get_running_loop().call_later(
            FUNDING_READ_AGAIN_S, engine.reconcile_requests.put_nowait, "funding"
        )
    for balance in a.balances:
        if balance.asset == "USDT" and balance.wallet_balance != engine.state.wallet:
            engine.emit(
                "balance.updated",
                events.balance_updated(wallet=dstr(balance.wallet_balance), reason=a.reason),
                "info",
                "user_stream",
            )
    for p in a.positions:
        symbol = engine.symbols.unified(p.symbol)
        leg = leg_of(p.position_side)  # a hedge-mode account reports each leg on its own
        key = position_key(symbol, leg)
        current = engine.state.positions.get(key)
        qty = current.qty if current else Decimal(0)
        recorded = engine.state.unbooked.get(key, Decimal(0))  # fills recorded since the exchange last said
        explained = qty + recorded
        # the size as held (an entry or margin update): none of the fills recorded since is in it yet
        outside = dstr(recorded) if recorded and p.amount == qty else None
        payload = events.position_changed(
            symbol=symbol,
            qty=dstr(p.amount),
            entry=dstr(p.entry_price),
            reason=a.reason,
            leg=leg,
            unbooked=outside,
        )
        if p.amount not in (qty, explained):
            hold_size(engine, key, payload)
            continue
        engine.pending_sizes.pop(key, None)  # this figure supersedes a held one
        if qty != p.amount or (current is not None and current.entry != p.entry_price):
            engine.emit("position.changed", payload, "info", "user_stream")


PENDING_GRACE_S = 2.0  # how long a position size may wait for the fills that explain it


def hold_size(engine: AccountContext, key: str, payload: events.PositionChanged) -> None:
    """The exchange's new size is more than the fills recorded since it last spoke: a fill on its way (Binance
    often sends the position before the order update), or a ghost. Taking the figure as it is would hide a
    ghost inside the next trade, so it waits for its fills; if they do not come within PENDING_GRACE_S,
    reconcile decides (it recovers missed fills, and names what is left)."""
    held = engine.pending_sizes.get(key)
    since = held[1] if held is not None else time.monotonic()  # a newer figure keeps the first deadline
    engine.pending_sizes[key] = (payload, since)
    if held is None:
        asyncio.get_running_loop().call_later(PENDING_GRACE_S, _still_unexplained, engine, key, since)


def apply_pending_size(engine: AccountContext, key: str) -> None:
    """A fill was recorded: the held size of its position (`key`: symbol, or a hedge leg's) may now be
    explained."""
    held = engine.pending_sizes.get(key)
    if held is None:
        return
    current = engine.state.positions.get(key)
    qty = current.qty if current is not None else Decimal(0)
    if dec(held[0]["qty"]) == qty + engine.state.unbooked.get(key, Decimal(0)):
        del engine.pending_sizes[key]
        engine.emit("position.changed", held[0], "info", "user_stream")


def _still_unexplained(engine: AccountContext, key: str, since: float) -> None:
    held = engine.pending_sizes.get(key)
    if held is not None and held[1] == since:
        del engine.pending_sizes[key]
        engine.reconcile_requests.put_nowait("stream-mismatch")


def positions_from_exchange(
    reports: list[PositionReport], symbols: SymbolMap | None = None
) -> dict[str, PositionReport]:
    """The open positions the exchange reports, by position key (the symbol; a hedge leg's "<symbol> <leg>"),
    flat ones left out. With the engine's symbol map, a position the exchange client could not unify (an
    exchange id) is unified here."""
    unified = symbols.unified if symbols is not None else str
    out: dict[str, PositionReport] = {}
    for position in reports:
        if position.quantity == 0:
            continue
        symbol = unified(position.symbol)
        out[position_key(symbol, position.leg)] = replace(position, symbol=symbol)
    return out


async def account_poll_loop(engine: AccountContext) -> None:
    """Balance every poll; positions compared with state, a difference asks for a reconcile."""
    while True:
        await asyncio.sleep(engine.options.account_poll_s)
        await poll_account(engine)


async def poll_account(engine: AccountContext) -> None:
    """One look; an answer refused as bad data skips the rest of it (already reported as `data.rejected`):
    nothing is compared with an answer cockpit could not read, so it cannot make ghosts."""
    try:
        balance = await engine.gateway.fetch_balance()
        emit_balance(engine, balance)
        reports = await engine.gateway.fetch_positions()
    except GatewayError as exc:
        if baddata.is_bad_data(exc):
            return
        raise
    remote = positions_from_exchange(reports, engine.symbols)
    local = {s: p.qty for s, p in engine.state.positions.items()}
    if {s: p.quantity for s, p in remote.items()} != local:
        engine.reconcile_requests.put_nowait("account-poll")
    refresh_risk_figures(engine, remote)


def refresh_risk_figures(engine: Events, remote: dict[str, PositionReport]) -> None:
    """Leverage and liquidation price come only from REST (the user stream carries neither): when the exchange
    reports other figures for a position of the same size, record them."""
    for key, theirs in remote.items():
        ours = engine.state.positions.get(key)
        if ours is None or ours.qty != theirs.quantity or key in engine.state.unbooked:
            continue  # a size difference is reconcile's business; fills in flight: the next poll
        leverage = theirs.leverage if theirs.leverage is not None else ours.leverage
        liquidation = theirs.liquidation_price
        margin = theirs.margin_mode or ours.margin
        isolated = theirs.isolated_margin
        same_margin = margin == ours.margin and not _moved(ours.isolated_margin, isolated)
        if leverage == ours.leverage and not _moved(ours.liquidation, liquidation) and same_margin:
            continue
        payload = events.position_changed(
            symbol=theirs.symbol,
            leg=theirs.leg,
            qty=dstr(ours.qty),
            entry=dstr(theirs.entry_price),
            reason="account-poll",
            leverage=leverage,
            liquidation=dstr(liquidation) if liquidation is not None else None,
            margin=margin,
            isolated_margin=dstr(isolated) if isolated is not None else None,
        )
        engine.emit("position.changed", payload, "info", "exchange")


LIQUIDATION_MOVE = Decimal("0.005")  # cross margin moves it with every mark: record a move over 0.5 % only


def _moved(ours: Decimal | None, theirs: Decimal | None) -> bool:
    if theirs is None or theirs == ours:
        return False
    if ours is None or ours == 0 or theirs == 0:
        return True
    return abs(theirs - ours) > LIQUIDATION_MOVE * abs(ours)


def emit_balance(engine: Events, balance: BalanceReport) -> None:
    """A wallet or free margin other than State's is a `balance.updated` (free: the wallet if unknown)."""
    wallet, available = balance.wallet, balance.available
    if wallet is None:
        return
    if wallet != engine.state.wallet or (available is not None and available != engine.state.available):
        engine.emit(
            "balance.updated",
            events.balance_updated(
                wallet=dstr(wallet), available=dstr(available if available is not None else wallet)
            ),
            "info",
            "exchange",
        )
