"""The status an operator asks for (`cockpit ctl status`): a plain JSON view of State (exact strings), and
its text (prices and sizes at the market's precision, money at 2 decimals)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cockpit.core.domain import dstr
from cockpit.core.state import HEALTH_ITEMS, Position, State
from cockpit.core.text import fmt_money, fmt_step

_CENT = Decimal("0.01")


def _position(state: State, p: Position) -> dict[str, Any]:
    market = state.markets.get(p.symbol)
    return {
        "symbol": p.symbol,
        "side": p.side,
        "qty": dstr(abs(p.qty)),
        "entry": dstr(p.entry),
        "mark": dstr(p.mark) if p.mark is not None else None,
        "upnl": dstr(p.upnl.quantize(_CENT)) if p.mark is not None else None,
        "leverage": p.leverage,
        "liquidation": dstr(p.liquidation) if p.liquidation is not None else None,  # "0": none
        "mark_ts": state.mark_ts.get(p.symbol),
        "price_step": dstr(market.price_step) if market is not None else None,
        "amount_step": dstr(market.amount_step) if market is not None else None,
        "ghost": p.ghost,
    }


def status_of(state: State) -> dict[str, Any]:
    return {
        "seq": state.seq,
        "mode": state.mode,
        "exchange": state.exchange,
        "session_file": state.session_file,
        "positions": [_position(state, p) for p in sorted(state.positions.values(), key=lambda p: p.symbol)],
        "open_orders": len(state.orders),
        "health": {item: state.health_of(item).status for item in HEALTH_ITEMS},
        "health_detail": {
            item: state.health_of(item).detail for item in HEALTH_ITEMS if state.health_of(item).detail
        },
        "kill_switch": {
            "engaged": state.kill_switch.engaged,
            "cause": state.kill_switch.cause,
            "by": state.kill_switch.by,
            "since": state.kill_switch.since or None,
        },
        "equity": dstr(state.equity.quantize(_CENT)) if state.equity is not None else None,
        "wallet": dstr(state.wallet) if state.wallet is not None else None,
        "drawdown_pct": round(float(state.drawdown_pct), 3),
        "drawdown_band": state.drawdown_band,
        "rate_limit": {
            "used": state.rate_limit.used,
            "limit": state.rate_limit.limit,
            "queued": state.rate_limit.queued,
            "rejected_recent": state.rate_limit.rejected_recent,
            "banned_until": state.rate_limit.banned_until,
        },
        "clock_offset_ms": state.clock_offset_ms,
        "counters": {
            "fills": state.counters.fills,
            "orders_submitted": state.counters.orders_submitted,
            "orders_rejected": state.counters.orders_rejected,
            "ghosts": state.counters.ghosts,
            "dead_letters": state.counters.dead_letters,
            "fill_rate": state.counters.fill_rate,
        },
    }


def _at(value: str | None, step: str | None, pad: bool = True) -> str:
    """A decimal string of the status at a market's precision (`fmt_step`, as every pane shows it)."""
    return fmt_step(
        Decimal(value) if value is not None else None, Decimal(step) if step is not None else None, pad
    )


def _money(value: str | None, signed: bool = False) -> str:
    return fmt_money(Decimal(value) if value is not None else None, signed=signed)


def _liquidation(p: dict[str, Any]) -> str:
    liq, mark = p.get("liquidation"), p.get("mark")
    if liq is None:
        return "liq —"
    if Decimal(liq) == 0:
        return "liq none"
    text = f"liq {_at(liq, p.get('price_step'))}"
    if mark is not None and Decimal(mark) != 0:
        distance = abs(Decimal(mark) - Decimal(liq)) / Decimal(mark) * 100
        text += f" ({distance.quantize(_CENT)}% away)"
    return text


def render_status(status: dict[str, Any]) -> str:
    """A short human text of status_of(), for `cockpit ctl status` without --json."""
    lines = [f"{status['exchange']} · {status['mode']} · {status['session_file']}"]
    ks = status["kill_switch"]
    if ks["engaged"]:
        lines.append(f"KILL SWITCH ENGAGED by {ks['by']}: {ks['cause']}")
    lines.append(
        f"equity {_money(status['equity'])} USDT · "
        f"drawdown {status['drawdown_pct']:.2f}% ({status['drawdown_band']})"
    )
    health = ", ".join(f"{k} {v}" for k, v in status["health"].items())
    lines.append(f"health: {health}")
    rl = status["rate_limit"]
    lines.append(
        f"rate limit: {rl['used']}/{rl['limit']} used, {rl['queued']} queued, {rl['rejected_recent']} 429s"
    )
    if not status["positions"]:
        lines.append("positions: none")
    for p in status["positions"]:
        ghost = "  GHOST" if p["ghost"] else ""
        tick, step = p.get("price_step"), p.get("amount_step")
        leverage = f"{p['leverage']}x" if p.get("leverage") else "—x"
        qty = _at(p["qty"], step, pad=False)
        lines.append(
            f"  {p['symbol']:<16} {p['side']:<5} {qty:>12} entry {_at(p['entry'], tick)} "
            f"mark {_at(p['mark'], tick)} upnl {_money(p['upnl'], signed=True)} {leverage} "
            f"{_liquidation(p)}{ghost}"
        )
    return "\n".join(lines)
