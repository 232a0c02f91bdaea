"""The kill-switch guard: while the kill switch is engaged, another client on the account (a strategy that
does not read the kill-switch file) adds exposure. Cockpit cancels what is still open and flags what already
filled.

One episode per engagement, not an event per order: the first cancel and the first flag are each a critical
`killswitch.guard` event (the operator must know at once that something keeps trading); after that the counts
are folded into one `killswitch.guard` summary at most every `REPORT_EVERY_S`. An order that filled before the
cancel reached the exchange (`OrderNotFound`) is an outcome — its fill is flagged when it arrives — not a
dead letter.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.domain import closes_leg, dstr, leg_of, position_key
from cockpit.engine.shared import GuardEpisode
from cockpit.feeds import OrderUpdate

if TYPE_CHECKING:
    from cockpit.engine.context import Events, GuardContext, Reads

REPORT_EVERY_S = 30.0


def episode_of(engine: GuardContext) -> GuardEpisode:
    since = engine.state.kill_switch.since
    episode = engine.guard_episode
    if episode is None or episode.kill_since != since:
        if episode is not None and episode.flush is not None:
            episode.flush.cancel()
        episode = GuardEpisode(since)
        engine.guard_episode = episode
    return episode


def adds_exposure(
    engine: Reads,
    symbol: str,
    side: str,
    reduce_only: bool,
    amount: Decimal | None = None,
    leg: str | None = None,
) -> bool:
    """Whether an order could leave more exposure than there is: on the position's side, or against it for
    more than it holds (a stop-and-reverse). Reduce-only orders never can; on a hedge leg, an order opens
    exactly when it is on the leg's own side (buy LONG, sell SHORT) — the other side can only close it."""
    hedge_leg = leg_of(leg)
    if hedge_leg != "both":
        return not closes_leg(hedge_leg, side)
    if reduce_only:
        return False
    key = position_key(symbol)
    position = engine.state.positions.get(key)
    qty = position.qty if position is not None else Decimal(0)
    qty += engine.state.unbooked.get(key, Decimal(0))  # fills recorded since the exchange last said
    if (side == "buy" and qty >= 0) or (side == "sell" and qty <= 0):
        return True
    return amount is not None and amount > abs(qty)


def guard(engine: GuardContext, u: OrderUpdate, order: events.OrderReport) -> None:
    """Kill switch engaged and another client on the account adds exposure: cancel what is still open, flag
    what already filled. `order` is the user stream's report of the order (`events.order_report`)."""
    symbol = order["symbol"]
    # a new order: what it could still fill; a trade: this fill, against the position as it stood before it
    # (an order that closes a position in several fills never reads as more than the position)
    amount = u.last_fill_qty if u.execution_type == "TRADE" else u.orig_qty - u.executed_qty
    if not adds_exposure(engine, symbol, order["side"], u.reduce_only, amount, order.get("leg")):
        return
    episode = episode_of(engine)
    episode.symbols.add(symbol)  # a summary of what follows comes REPORT_EVERY_S after the first event
    if u.execution_type == "NEW":
        _cancel_new(engine, episode, order, conditional=False)
    elif u.execution_type == "TRADE":
        episode.flagged += 1
        if episode.flagged == 1:
            engine.emit(
                "killswitch.guard",
                events.killswitch_guard(
                    order=order,
                    action="flag",
                    last_qty=dstr(u.last_fill_qty),
                    **episode.counts(),
                    message=f"kill switch: another client added exposure on {symbol}: {order['side']} "
                    f"{dstr(u.last_fill_qty)} ({u.client_order_id}) — review it, flatten if needed",
                ),
                "critical",
                "risk",
            )
        else:
            _later(engine, episode)


def guard_conditional(engine: GuardContext, order: events.OrderReport, close_position: bool) -> None:
    """Kill switch engaged and another client places a conditional order (stop, take-profit) that would add
    exposure once triggered: cancel it before it can. One that only closes (reduce-only, close-all) stays."""
    amount = Decimal(order["amount"])
    if close_position or not adds_exposure(
        engine, order["symbol"], order["side"], order["reduce_only"], amount, order.get("leg")
    ):
        return
    episode = episode_of(engine)
    episode.symbols.add(order["symbol"])
    _cancel_new(engine, episode, order, conditional=True)


def _cancel_new(
    engine: GuardContext, episode: GuardEpisode, order: events.OrderReport, conditional: bool
) -> None:
    symbol = order["symbol"]
    first = episode.canceled + episode.already_gone + episode.cancel_failed == 0
    episode.canceled += 1  # corrected by the cancel's outcome
    if first:
        what = "conditional order" if conditional else "order"
        engine.emit(
            "killswitch.guard",
            events.killswitch_guard(
                order=order,
                action="cancel",
                **episode.counts(),
                message=f"kill switch: canceling {symbol} {order['side']} {order['amount']} {what} from "
                f"another client ({order['client_order_id']}) — it adds exposure; make that strategy read "
                "the kill-switch file",
            ),
            "critical",
            "risk",
        )
    else:
        _later(engine, episode)
    task = asyncio.create_task(_cancel(engine, episode, order["order_id"], symbol, conditional))
    engine.guard_tasks.add(task)
    task.add_done_callback(engine.guard_tasks.discard)


async def _cancel(
    engine: GuardContext, episode: GuardEpisode, order_id: str, symbol: str, conditional: bool = False
) -> None:
    from cockpit.exchange.gateway import GatewayError

    gateway = engine.gateway
    try:
        if conditional:  # triggered first: the order it placed is guarded as any other
            found = await gateway.cancel_conditional_order(order_id, symbol, gone_ok=True)
            answer: object = True if found else None
        else:
            answer = await gateway.cancel_order(order_id, symbol, gone_ok=True)
    except GatewayError:  # rate-limited or the exchange is down: counted, the summary says so
        episode.canceled -= 1
        episode.cancel_failed += 1
        _later(engine, episode)
        return
    if answer is None:  # it filled (or was canceled) first: its fill, if any, is flagged when it arrives
        episode.canceled -= 1
        episode.already_gone += 1
        _later(engine, episode)


def _later(engine: Events, episode: GuardEpisode) -> None:
    """Fold into the next summary: now if the last one is old enough, else when it will be."""
    episode.dirty = True
    if episode.flush is not None:
        return
    wait = max(0.0, episode.reported_at + REPORT_EVERY_S - time.monotonic())
    loop = asyncio.get_running_loop()
    episode.flush = loop.call_later(wait, _report, engine, episode)


def _report(engine: Events, episode: GuardEpisode) -> None:
    episode.flush = None
    if not episode.dirty or engine.state.kill_switch.since != episode.kill_since:
        return
    episode.dirty = False
    episode.reported_at = time.monotonic()
    c = episode.counts()
    failed = f", {c['cancel_failed']} could not be canceled" if c["cancel_failed"] else ""
    engine.emit(
        "killswitch.guard",
        events.killswitch_guard(
            action="summary",
            **c,
            message=f"kill switch guard: other clients keep trading on {', '.join(c['symbols'])}: "
            f"{c['canceled']} order(s) canceled, {c['already_filled']} filled before the cancel, "
            f"{c['flagged']} fill(s) flagged{failed} since the kill switch was engaged",
        ),
        "warning",
        "risk",
    )
