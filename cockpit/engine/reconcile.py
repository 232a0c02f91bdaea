"""Reconciliation: the exchange is the source of truth.

1. Fills the engine missed (it was down, the user stream dropped) are recovered from the exchange's trade
   history and recorded as `order.filled` with source `reconcile`.
2. Each position is compared with the exchange's. A difference the recovered fills explain is corrected as a
   `position.changed`; one no recorded trade explains is a `position.ghost` — the operator sees it and chooses
   to adopt or flatten it. On a brand-new session the positions already open are adopted, not ghosts.
3. Open orders are compared: ones only the exchange has are added, ones only we have are closed.
4. `reconcile.done` says what was matched, recovered and found.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from cockpit.core import events
from cockpit.core.domain import Severity, dstr, key_leg, key_symbol, position_key
from cockpit.engine import baddata, peak
from cockpit.engine.account import emit_balance, positions_from_exchange
from cockpit.exchange.gateway import GatewayError
from cockpit.exchange.reports import OrderReport, PositionReport

if TYPE_CHECKING:
    from cockpit.engine.context import Events, Reads, ReconcileContext
    from cockpit.store import SessionStore


OVERLAP_MS = 5_000
FUNDING_OVERLAP_MS = 600_000  # 10 minutes
SETTLE_READS = 3  # extra position reads while a difference may be a fill still on its way
SETTLE_S = 0.5  # trade history is re-read this far back; known trade ids are skipped

ADOPTION_READS = 5  # reads at a new session's start, until each position is read while none of it fills
ADOPTION_PAUSE_S = 0.1
# the fills recorded since the exchange last reported each position (State.unbooked)
Unbooked = dict[str, Decimal]


async def reconcile(engine: ReconcileContext, trigger: str) -> events.ReconcileDone:
    """One pass; what its `reconcile.done` says (the operator's reconcile answers with it)."""
    async with engine.reconcile_lock:
        return await _reconcile(engine, trigger)


async def _reconcile(engine: ReconcileContext, trigger: str) -> events.ReconcileDone:
    started = time.monotonic()
    # the exchange's "now" before anything is read: trade history is complete up to here once this pass ends
    through_ms = int(time.time() * 1000 + (engine.state.clock_offset_ms or 0.0))
    engine.emit("reconcile.started", events.reconcile_started(trigger=trigger), "info", "reconcile")
    gateway = engine.gateway
    # no leverage read here (the account poll brings it): no extra wait after the exchange's answer
    remote_positions, sent, marks = await _read_marked(engine)
    emit_balance(engine, await gateway.fetch_balance())

    recovered = await _recover_fills(engine, remote_positions)
    if _adopting(engine, trigger):
        remote_positions, sent = await _adoption_figures(engine, (remote_positions, sent, marks), recovered)
    # Compare only once the exchange's answer and the user stream agree: a fill in flight during this pass
    # shows up on one side before the other. Re-read until two reads agree or the local state catches up;
    # each round looks at the trade history again (a fill made since, while the user stream is down).
    for _ in range(SETTLE_READS):
        if not _unexplained(engine, remote_positions, trigger, sent):
            break
        await asyncio.sleep(SETTLE_S)
        for symbol, fills in (await _recover_fills(engine, remote_positions)).items():
            recovered.setdefault(symbol, []).extend(fills)
        again, sent = await _read_positions(engine)
        stable = again == remote_positions
        remote_positions = again
        if stable:  # two reads agree and the stream had its time: what is left is a real difference
            break
    # compared now, with no await since the last read: a fill the stream records meanwhile is one the
    # exchange's answer may not include (`sent`: what was recorded when it was asked for)
    held = {symbol: position.qty for symbol, position in engine.state.positions.items()}  # for the peak
    matched, ghosts, adopted, corrected = _positions(engine, remote_positions, trigger, sent)
    denied = peak.denied(engine, ghosts, held)
    orders_read_at = time.time()
    remote_orders = await gateway.fetch_open_orders()
    try:  # conditional orders, apart: a venue or account that does not serve them must not stop the pass
        remote_orders += await gateway.fetch_open_conditional_orders()
        conditional_read = True
    except GatewayError:
        conditional_read = False  # said by the gateway (bad data / exchange notices); read again next pass
    added, removed = _orders(engine, remote_orders, orders_read_at, conditional_read)
    with contextlib.suppress(GatewayError):  # said by the gateway's notices; the next pass reads again
        await record_funding(engine, trigger)

    result = events.reconcile_done(
        trigger=trigger,
        matched=matched,
        recovered_fills=sum(len(v) for v in recovered.values()),
        recovered_by_symbol={s: len(v) for s, v in recovered.items() if v},
        ghosts=ghosts,
        adopted=adopted,
        corrected=corrected,
        orders_added=added,
        orders_removed=removed,
        # every position still flagged, whether this pass or an earlier one found it: each needs a decision
        ghosts_open=sorted(s for s, pos in engine.state.positions.items() if pos.ghost),
        seconds=round(time.monotonic() - started, 3),
        through_ms=through_ms,
        denied=denied,
    )
    severity: Severity = "warning" if ghosts or result["recovered_fills"] or added or removed else "info"
    engine.emit("reconcile.done", result, severity, "reconcile")
    await peak.after_reconcile(engine, denied)  # a peak made on quantity the exchange denies is dropped
    return result


async def _recover_fills(
    engine: ReconcileContext, remote: dict[str, PositionReport]
) -> dict[str, list[events.OrderFilled]]:
    state = engine.state
    held = {key_symbol(key) for key in (*remote, *state.positions)}  # hedge legs: their symbol's history
    symbols = set(engine.symbols.unified_symbols) | held
    # a session owns no trade before it started: the positions open then were adopted as they stood, so a
    # trade from before (however close) is never recovered, or it would be counted twice (exchange time)
    began = engine.started_at if engine.new_session else state_start_ms(engine) / 1000
    floor = int(began * 1000 + (state.clock_offset_ms or 0.0))
    # every trade before `reconciled_through_ms` was checked by an earlier pass (re-read a little before it)
    checked = state.reconciled_through_ms
    since = max(floor, checked - OVERLAP_MS) if checked else floor
    recovered: dict[str, list[events.OrderFilled]] = {}
    by_order_id = {o.order_id: o for o in state.orders.values() if o.order_id}
    for symbol in sorted(symbols):
        fills = await engine.gateway.fetch_my_trades(symbol, since)
        # read after the await: the user stream may have recorded some of these meanwhile (no await below)
        known = set(engine.state.trade_ids)
        for fill in sorted(fills, key=lambda f: (f.timestamp_ms, f.trade_id)):
            if fill.trade_id in known:
                continue
            known.add(fill.trade_id)
            order = by_order_id.get(fill.order_id)
            payload = events.order_filled(
                client_order_id=order.client_order_id if order else f"ex-{fill.order_id}",
                order_id=fill.order_id,
                symbol=symbol,
                side=fill.side,
                type=order.type if order else fill.order_type or "market",
                amount=dstr(order.amount) if order else as_sent(fill.quantity),
                trade_id=fill.trade_id,
                last_qty=as_sent(fill.quantity),
                last_price=as_sent(fill.price),
                commission=as_sent(fill.fee),
                realized_pnl=as_sent(fill.realized_pnl),
                trade_time_ms=fill.timestamp_ms,
                origin=order.origin if order else "unknown",
                recovered=True,
                leg=fill.leg,
            )
            engine.emit("order.filled", payload, "warning", "reconcile")
            recovered.setdefault(position_key(symbol, fill.leg), []).append(payload)
    return recovered


async def record_funding(engine: ReconcileContext, trigger: str) -> int:
    """Funding payments since the newest recorded one (or the session's start), each recorded once as
    `funding.paid`: the stream's FUNDING_FEE asks for this read (`trigger` "funding"); any other pass finds
    what was paid while the engine was down or the stream missed it (`recovered`). The payments are already in
    the exchange's wallet (and so in equity): recorded so PnL and the report can say how much was funding."""
    state = engine.state
    began = engine.started_at if engine.new_session else state_start_ms(engine) / 1000
    floor = int(began * 1000 + (state.clock_offset_ms or 0.0))
    # payments of one funding time carry times seconds apart and appear over a while: read well back (each
    # is recorded once, by its id)
    through = state.funding_through_ms
    since = max(floor, through - FUNDING_OVERLAP_MS) if through else floor
    payments = await engine.gateway.fetch_funding(since)
    known = set(engine.state.funding_ids)  # after the await
    recorded = 0
    for payment in payments:
        if payment.income_id in known or payment.time_ms < floor:
            continue
        known.add(payment.income_id)
        recorded += 1
        payload = events.funding_paid(
            symbol=engine.symbols.unified(payment.symbol),
            amount=as_sent(payment.amount),
            asset=payment.asset,
            income_id=payment.income_id,
            time_ms=payment.time_ms,
            recovered=trigger != "funding",
        )
        engine.emit("funding.paid", payload, "info", "exchange")
    return recorded


def as_sent(value: Decimal) -> str:
    """An exchange figure written as the exchange wrote it (digits and trailing zeros kept, no exponent)."""
    return format(value, "f")


def state_start_ms(engine: ReconcileContext) -> float:
    """Where a restored session's trade history starts: its first event, else the engine start; a rotated
    session's (its file continues another) where its first file began (cockpit/engine/rotation.py)."""
    return session_began(engine.store, engine.started_at) * 1000


def session_began(store: SessionStore, default: float | None = None) -> float:
    """When the session in this file began: its first event's time, or, for a file that continues another
    (a rotation), the time its session_began carries."""
    first = store.read_events(after_seq=0, limit=1)
    if not first:
        return time.time() if default is None else default
    began = first[0].payload.get("session_began") if first[0].kind == "session.started" else None
    return float(began) if isinstance(began, int | float) else first[0].ts


def _adopting(engine: ReconcileContext, trigger: str) -> bool:
    """A session's first reconcile adopts the positions open before it (as they stand, never ghosts): the
    first to finish in a new session, or in a restored one that never got as far as one — whatever asked for
    it (a startup reconcile that failed leaves it to the next pass, a poll's or the operator's as well)."""
    return not engine.state.reconciled_through_ms


def _held(engine: Reads, key: str) -> Decimal:
    position = engine.state.positions.get(key)
    return position.qty if position is not None else Decimal(0)


def _remote_qty(remote: dict[str, PositionReport], key: str) -> Decimal:
    position = remote.get(key)
    return position.quantity if position is not None else Decimal(0)


async def _read_positions(engine: ReconcileContext) -> tuple[dict[str, PositionReport], Unbooked]:
    """The exchange's open positions, and the fills recorded (`unbooked`) when they were asked for: a fill
    the stream records while the answer is on its way may or may not be in it."""
    remote, sent, _ = await _read_marked(engine)
    return remote, sent


async def _read_marked(engine: ReconcileContext) -> tuple[dict[str, PositionReport], Unbooked, Marks]:
    """`_read_positions`, with each position's marks (`_marks`) when they were asked for."""
    sent = dict(engine.state.unbooked)
    marks = _marks(engine, sent)
    reports = await engine.gateway.fetch_positions(with_leverage=False)
    return positions_from_exchange(reports, engine.symbols), sent, marks


async def _adoption_figures(
    engine: ReconcileContext,
    first: tuple[dict[str, PositionReport], Unbooked, Marks],
    recovered: dict[str, list[events.OrderFilled]],
) -> tuple[dict[str, PositionReport], Unbooked]:
    """The positions a new session adopts as they stand, each with the fills recorded when it was asked for.

    A figure is taken as it stands, so it must be known which recorded fills it includes. A position is
    taken from a read during which nothing of it was recorded — no fill (by the stream, or found by the trade
    history read after it) and no position update — and nothing since: every fill recorded before such a read
    is in it, every one recorded after is not. A position that never stays still is taken from the last read,
    the fills recorded since it was asked for left outside it (`position.ghost` names it if that is wrong)."""
    taken: dict[str, tuple[PositionReport | None, Decimal, tuple[Decimal, Decimal]]] = {}
    remote, sent, before = first
    keys: set[str] = set()
    for attempt in range(ADOPTION_READS):
        if attempt:
            await asyncio.sleep(ADOPTION_PAUSE_S)
            remote, sent, before = await _read_marked(engine)
            for key, fills in (await _recover_fills(engine, remote)).items():
                recovered.setdefault(key, []).extend(fills)
        now = _marks(engine, engine.state.unbooked)
        keys = set(remote) | set(now) | set(before) | set(taken)
        for key in keys:
            still = before.get(key, _STILL)
            if still == now.get(key, _STILL):  # nothing of it recorded while it was read
                taken[key] = (remote.get(key), still[1], still)
        if all(key in taken and taken[key][2] == now.get(key, _STILL) for key in keys):
            break  # every position taken from a read with nothing of it recorded since
    now = _marks(engine, engine.state.unbooked)
    figures: dict[str, PositionReport] = {}
    recorded_then: Unbooked = {}
    for key in keys:
        report, then, still = taken.get(key, (None, Decimal(0), _STILL))
        if key not in taken or still != now.get(key, _STILL):  # never still: the last read
            report, then = remote.get(key), sent.get(key, Decimal(0))
        if report is not None:
            figures[key] = report
        recorded_then[key] = then
    return figures, recorded_then


_STILL = (Decimal(0), Decimal(0))  # a position neither held nor with a fill recorded
Marks = dict[str, tuple[Decimal, Decimal]]


def _marks(engine: Reads, unbooked: Mapping[str, Decimal]) -> Marks:
    """Each position's (size held, fills recorded since the exchange last reported it): what changes when a
    fill of it, or its position update, is recorded."""
    keys = set(engine.state.positions) | set(unbooked)
    return {key: (_held(engine, key), unbooked.get(key, Decimal(0))) for key in keys}


def _explanation(engine: Reads, key: str, remote_qty: Decimal, sent: Unbooked) -> Decimal | None:
    """What recorded fills leave outside the exchange's figure once they explain it (`key`: a symbol, or a
    hedge leg): 0 when the figure includes every fill recorded since the exchange last reported the position
    (recovered by this pass or an earlier one, or delivered by the stream ahead of its position update);
    the fills recorded since the figure was asked for when it includes only those recorded before (they
    stay recorded, for the next figure); None when neither explains it. A fill recorded is never a ghost,
    and never dropped: taking a figure without a fill it does not include would make a false ghost at the
    next pass."""
    now = engine.state.unbooked.get(key, Decimal(0))
    before = sent.get(key, Decimal(0))
    held = _held(engine, key)
    if held + now == remote_qty:
        return Decimal(0)
    return now - before if held + before == remote_qty else None


def _unexplained(
    engine: ReconcileContext,
    remote: dict[str, PositionReport],
    trigger: str,
    sent: Unbooked,
) -> list[str]:
    """Symbols whose exchange quantity neither the local state nor the recorded fills explain."""
    if _adopting(engine, trigger):
        return []
    return [
        key
        for key in set(remote) | set(engine.state.positions)
        if _held(engine, key) != _remote_qty(remote, key)
        and _explanation(engine, key, _remote_qty(remote, key), sent) is None
    ]


class _Figures(TypedDict):
    """What the exchange says of one position: the keys `position.changed` and `position.ghost` start with
    (leverage and liquidation price left out when it does not say)."""

    symbol: str
    leg: str
    qty: str
    entry: str
    leverage: int | None
    liquidation: str | None


def _figures(key: str, qty: Decimal, entry: Decimal, theirs: PositionReport | None) -> _Figures:
    liquidation = theirs.liquidation_price if theirs is not None else None
    return {
        "symbol": key_symbol(key),
        "leg": key_leg(key),
        "qty": dstr(qty),
        "entry": dstr(entry),
        "leverage": theirs.leverage if theirs is not None else None,
        "liquidation": as_sent(liquidation) if liquidation is not None else None,
    }


def _positions(
    engine: ReconcileContext,
    remote: dict[str, PositionReport],
    trigger: str,
    sent: Unbooked,
) -> tuple[int, list[str], list[str], list[str]]:
    state = engine.state
    adopting = _adopting(engine, trigger)
    matched = 0
    ghosts: list[str] = []
    adopted: list[str] = []
    corrected: list[str] = []
    # adopting: a symbol flat on both sides may have a fill recorded while the engine started, already in
    # the exchange's figure
    for key in sorted(set(remote) | set(state.positions) | (set(state.unbooked) if adopting else set())):
        local = state.positions.get(key)
        local_qty = local.qty if local else Decimal(0)
        theirs = remote.get(key)
        remote_qty = theirs.quantity if theirs else Decimal(0)
        entry = theirs.entry_price if theirs else Decimal(0)
        base = _figures(key, remote_qty, entry, theirs)
        if local is not None and local.ghost and local.booked == remote_qty:
            # flagged earlier, and the recorded trades now give exactly what the exchange holds
            corrected.append(key)
            engine.emit(
                "position.changed",
                events.position_changed(
                    **base,
                    ghost=False,
                    reason="explained by recorded fills",
                    message=(
                        f"{key}: recorded trades explain the exchange's {dstr(remote_qty)}: not a ghost"
                    ),
                ),
                "warning",
                "reconcile",
            )
            continue
        recorded = state.unbooked.get(key, Decimal(0))
        # taken as it stands, the figure includes every fill recorded before it was asked for
        after = recorded - sent.get(key, Decimal(0))
        if local_qty == remote_qty:
            matched += 1 if local is not None or theirs is not None else 0
            if adopting and recorded:  # a trade made while the engine started: recovered, and in the figure
                engine.emit(
                    "position.changed",
                    events.position_changed(
                        **base, reason="as the exchange holds it", unbooked=_signed(after)
                    ),
                    "info",
                    "reconcile",
                )
            elif local is not None and (local.entry != entry) and remote_qty != 0:
                # the same size: no recorded fill is in this figure yet, all of them stay recorded
                engine.emit(
                    "position.changed",
                    events.position_changed(**base, reason="entry from exchange", unbooked=_signed(recorded)),
                    "info",
                    "reconcile",
                )
            continue
        explained = _explanation(engine, key, remote_qty, sent)
        if adopting and local is None:
            adopted.append(key)
            engine.emit(
                "position.changed",
                events.position_changed(**base, reason="open before this session", unbooked=_signed(after)),
                "info",
                "reconcile",
            )
        elif explained is not None:
            corrected.append(key)
            engine.emit(
                "position.changed",
                events.position_changed(
                    **base, reason="explained by recorded fills", unbooked=_signed(explained)
                ),
                "info",
                "reconcile",
            )
        else:
            # every fill recorded since the exchange last reported the position (recovered ones included)
            expected = local_qty + state.unbooked.get(key, Decimal(0))
            # what the recorded trades explain: the flagged figure if already a ghost, else what is expected
            booked = local.booked if local is not None and local.booked is not None else expected
            ghosts.append(key)
            engine.emit(
                "position.ghost",
                events.position_ghost(
                    **base,
                    local_qty=dstr(local_qty),
                    exchange_qty=dstr(remote_qty),
                    unexplained_qty=dstr(remote_qty - expected),
                    booked_qty=dstr(booked),
                    unbooked=_signed(after),  # what the stream recorded since it was asked for stays
                    message=f"{key}: exchange holds {dstr(remote_qty)}, cockpit expected "
                    f"{dstr(expected)} — no recorded trade explains the difference; "
                    "adopt it or flatten it",
                ),
                "critical",
                "reconcile",
            )
    return matched, ghosts, adopted, corrected


def _signed(quantity: Decimal) -> str | None:
    """A quantity of recorded fills for a payload; None (left out) when there is none."""
    return dstr(quantity) if quantity else None


def _orders(
    engine: Events, remote_orders: list[OrderReport], read_at: float, conditional_read: bool = True
) -> tuple[int, int]:
    state = engine.state
    remote_by_cid = {o.client_order_id or o.order_id: o for o in remote_orders}
    added = removed = 0
    for cid, o in remote_by_cid.items():
        held = state.orders.get(cid)
        if held is not None and held.conditional and not o.conditional and held.order_id != o.order_id:
            # the conditional order triggered unseen (engine down, stream gap): the order open under its
            # client id is the one it placed
            engine.emit(
                "order.triggered",
                events.order_triggered(
                    client_order_id=cid,
                    order_id=held.order_id or "",
                    symbol=held.symbol,
                    side=held.side,
                    type=held.type,
                    amount=dstr(held.amount),
                    trigger=dstr(held.trigger) if held.trigger is not None else "0",
                    reduce_only=held.reduce_only,
                    origin=held.origin,
                    status="triggered",
                    placed=o.order_id,
                    leg=held.leg,
                ),
                "info",
                "reconcile",
            )
        elif held is not None:
            continue
        added += 1
        engine.emit(
            "order.accepted",
            events.order_accepted(
                client_order_id=cid,
                order_id=o.order_id,
                symbol=o.symbol,
                side=o.side,
                type=o.type,
                amount=as_sent(o.quantity),
                price=as_sent(o.price),
                filled=as_sent(o.filled),
                reduce_only=o.reduce_only,
                origin="cockpit" if cid.startswith("ck-") else "external",
                status="open",
                trigger=as_sent(o.trigger_price) if o.trigger_price is not None else None,
                conditional=o.conditional or None,
                leg=o.leg,
            ),
            "info",
            "reconcile",
        )
    for cid, order in engine.state.orders.items():
        if order.conditional and not conditional_read:
            continue  # not listed this pass: not known to be gone
        if cid in remote_by_cid or order.status == "submitted" or order.updated >= read_at - 1.0:
            # still at the exchange, not sent yet, or changed while we were reading: not "gone"
            continue
        removed += 1
        engine.emit(
            "order.canceled",
            events.order_canceled(
                client_order_id=cid,
                symbol=order.symbol,
                status="gone",
                reason="not open at the exchange (reconcile)",
                leg=order.leg,
            ),
            "info",
            "reconcile",
        )
    return added, removed


async def reconcile_loop(engine: ReconcileContext) -> None:
    """Periodic reconcile, and any reconcile asked for (account poll mismatch, operator)."""
    while True:
        try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel when the get completes
            async with asyncio.timeout(engine.options.reconcile_every_s):
                trigger = await engine.reconcile_requests.get()
        except TimeoutError:
            trigger = "periodic"
        while not engine.reconcile_requests.empty():  # coalesce a burst of requests into one pass
            engine.reconcile_requests.get_nowait()
        try:
            await reconcile(engine, trigger)
        except GatewayError as exc:  # an answer refused as bad data: reported; the next pass reads again
            if not baddata.is_bad_data(exc):
                raise
