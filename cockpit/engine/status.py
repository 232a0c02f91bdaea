"""The status an operator asks for (`cockpit ctl status`): a typed view of State (exact strings), and
its text (prices and sizes at the market's precision, money at 2 decimals)."""

from __future__ import annotations

from decimal import Decimal

from cockpit.core.commands import (
    CounterStatus,
    KillSwitchStatus,
    OrdersReport,
    OrderStatus,
    PositionStatus,
    RateLimitStatus,
    StatusReport,
)
from cockpit.core.domain import dstr
from cockpit.core.state import HEALTH_ITEMS, Order, Position, State
from cockpit.core.text import fmt_money, fmt_step, per_window

_CENT = Decimal("0.01")


def _position(state: State, p: Position) -> PositionStatus:
    market = state.markets.get(p.symbol)
    return PositionStatus(
        symbol=p.symbol,
        side=p.side,
        qty=dstr(abs(p.qty)),
        entry=dstr(p.entry),
        mark=dstr(p.mark) if p.mark is not None else None,
        upnl=dstr(p.upnl.quantize(_CENT)) if p.mark is not None else None,
        leverage=p.leverage,
        liquidation=dstr(p.liquidation) if p.liquidation is not None else None,  # "0": none
        mark_ts=state.mark_ts.get(p.symbol),
        price_step=dstr(market.price_step) if market is not None else None,
        amount_step=dstr(market.amount_step) if market is not None else None,
        ghost=p.ghost,
        margin=p.margin,
        isolated_margin=dstr(p.isolated_margin) if p.isolated_margin is not None else None,
        leg=p.leg,
    )


def _order(state: State, o: Order, now: float) -> OrderStatus:
    market = state.markets.get(o.symbol)
    return OrderStatus(
        client_order_id=o.client_order_id,
        order_id=o.order_id,
        symbol=o.symbol,
        side=o.side,
        type=o.type,
        amount=dstr(o.amount),
        filled=dstr(o.filled),
        price=dstr(o.price) if o.price is not None else None,
        trigger=dstr(o.trigger) if o.trigger is not None else None,
        reduce_only=o.reduce_only,
        origin=o.origin,
        status=o.status,
        age_s=round(max(0.0, now - o.created), 1),
        price_step=dstr(market.price_step) if market is not None else None,
        amount_step=dstr(market.amount_step) if market is not None else None,
        leg=o.leg,
    )


def orders_of(state: State, now: float) -> OrdersReport:
    """The open orders, oldest first (`cockpit ctl orders`)."""
    ordered = sorted(state.orders.values(), key=lambda o: (o.created, o.client_order_id))
    return OrdersReport(tuple(_order(state, o, now) for o in ordered))


def kill_switch_status(state: State) -> KillSwitchStatus:
    ks = state.kill_switch
    return KillSwitchStatus(engaged=ks.engaged, cause=ks.cause, by=ks.by, since=ks.since or None)


def _rate_limit(state: State) -> RateLimitStatus:
    rl = state.rate_limit
    return RateLimitStatus(
        used=rl.used,
        limit=rl.limit,
        queued=rl.queued,
        rejected_recent=rl.rejected_recent,
        banned_until=rl.banned_until,
        window_s=rl.window_s,
        endpoint=rl.endpoint,
        endpoint_used=rl.endpoint_used,
        endpoint_limit=rl.endpoint_limit,
    )


def _counters(state: State) -> CounterStatus:
    c = state.counters
    return CounterStatus(
        fills=c.fills,
        orders_submitted=c.orders_submitted,
        orders_rejected=c.orders_rejected,
        ghosts=c.ghosts,
        dead_letters=c.dead_letters,
        fill_rate=c.fill_rate,
    )


def _items(state: State) -> tuple[str, ...]:
    """The health items, "data" once bad exchange data was refused (`data.rejected`), "notify" once a
    notification target failed."""
    return (*HEALTH_ITEMS, *(item for item in ("data", "notify") if item in state.health))


def status_of(state: State, kill_switch_file: str) -> StatusReport:
    """The status of `state`; `kill_switch_file`: the account's kill switch state file (where a strategy
    reads it)."""
    return StatusReport(
        seq=state.seq,
        mode=state.mode,
        exchange=state.exchange,
        session_file=state.session_file,
        positions=tuple(_position(state, p) for p in sorted(state.positions.values(), key=lambda p: p.key)),
        open_orders=len(state.orders),
        health={item: state.health_of(item).status for item in _items(state)},
        health_detail={
            item: state.health_of(item).detail for item in _items(state) if state.health_of(item).detail
        },
        kill_switch=kill_switch_status(state),
        equity=dstr(state.equity.quantize(_CENT)) if state.equity is not None else None,
        wallet=dstr(state.wallet) if state.wallet is not None else None,
        drawdown_pct=round(float(state.drawdown_pct), 3),
        drawdown_band=state.drawdown_band,
        rate_limit=_rate_limit(state),
        clock_offset_ms=state.clock_offset_ms,
        counters=_counters(state),
        kill_switch_file=kill_switch_file,
        market_data_ts=max(state.mark_ts.values(), default=None),
    )


def _at(value: str | None, step: str | None, pad: bool = True) -> str:
    """A decimal string of the status at a market's precision (`fmt_step`, as every pane shows it)."""
    return fmt_step(
        Decimal(value) if value is not None else None, Decimal(step) if step is not None else None, pad
    )


def _money(value: str | None, signed: bool = False) -> str:
    return fmt_money(Decimal(value) if value is not None else None, signed=signed)


def _liquidation(p: PositionStatus) -> str:
    liq, mark = p.liquidation, p.mark
    if liq is None:
        return "liq —"
    if Decimal(liq) == 0:
        return "liq none"
    text = f"liq {_at(liq, p.price_step)}"
    if mark is not None and Decimal(mark) != 0:
        distance = abs(Decimal(mark) - Decimal(liq)) / Decimal(mark) * 100
        text += f" ({distance.quantize(_CENT)}% away)"
    return text


def _named(symbol: str, leg: str) -> str:
    """A symbol, and a hedge leg's long or short after it."""
    return symbol if leg == "both" else f"{symbol} {leg}"


def render_status(status: StatusReport) -> str:
    """A short human text of a status, for `cockpit ctl status` without --json."""
    lines = [f"{status.exchange} · {status.mode} · {status.session_file}"]
    ks = status.kill_switch
    if ks.engaged:
        lines.append(f"KILL SWITCH ENGAGED by {ks.by}: {ks.cause}")
    lines.append(
        f"equity {_money(status.equity)} USDT · drawdown {status.drawdown_pct:.2f}% ({status.drawdown_band})"
    )
    health = ", ".join(f"{k} {v}" for k, v in status.health.items())
    lines.append(f"health: {health}")
    rl = status.rate_limit
    endpoint = f", {rl.endpoint} {rl.endpoint_used}/{rl.endpoint_limit} per s" if rl.endpoint else ""
    lines.append(
        f"rate limit: {rl.used}/{rl.limit} {per_window(rl.window_s)} used, {rl.queued} queued, "
        f"{rl.rejected_recent} 429s{endpoint}"
    )
    if not status.positions:
        lines.append("positions: none")
    for p in status.positions:
        ghost = "  GHOST" if p.ghost else ""
        tick, step = p.price_step, p.amount_step
        leverage = f"{p.leverage}x" if p.leverage else "—x"
        qty = _at(p.qty, step, pad=False)
        isolated = ""
        if p.margin == "isolated":
            isolated = f" isolated (margin {_money(p.isolated_margin)})" if p.isolated_margin else " isolated"
        lines.append(
            f"  {_named(p.symbol, p.leg):<16} {p.side:<5} {qty:>12} entry {_at(p.entry, tick)} "
            f"mark {_at(p.mark, tick)} upnl {_money(p.upnl, signed=True)} {leverage}{isolated} "
            f"{_liquidation(p)}{ghost}"
        )
    return "\n".join(lines)


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def render_orders(report: OrdersReport) -> str:
    """The open orders as `cockpit ctl orders` prints them, prices and sizes at the market's precision."""
    if not report.orders:
        return "no open orders"
    lines = [f"{len(report.orders)} open order{'s' if len(report.orders) != 1 else ''}"]
    for o in report.orders:
        tick, step = o.price_step, o.amount_step
        at = f"@ {_at(o.price, tick)}" if o.price is not None else "@ market"
        trigger = f" trigger {_at(o.trigger, tick)}" if o.trigger is not None else ""
        filled = f" filled {_at(o.filled, step, pad=False)}" if Decimal(o.filled) else ""
        flags = " reduce-only" if o.reduce_only else ""
        lines.append(
            f"  {_named(o.symbol, o.leg):<16} {o.side:<4} {o.type:<20} {_at(o.amount, step, pad=False):>10} "
            f"{at}{trigger}"
            f"{filled}{flags} · {o.origin} · {_age(o.age_s)} · {o.client_order_id}"
            + (f" (#{o.order_id})" if o.order_id else "")
        )
    return "\n".join(lines)
