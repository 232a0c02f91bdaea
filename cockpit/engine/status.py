"""The status an operator asks for (`cockpit ctl status`): a plain JSON view of State."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cockpit.domain import dstr
from cockpit.state import HEALTH_ITEMS, State

_CENT = Decimal("0.01")


def status_of(state: State) -> dict[str, Any]:
    return {
        "seq": state.seq,
        "mode": state.mode,
        "exchange": state.exchange,
        "session_file": state.session_file,
        "positions": [
            {
                "symbol": p.symbol,
                "side": p.side,
                "qty": dstr(abs(p.qty)),
                "entry": dstr(p.entry),
                "mark": dstr(p.mark) if p.mark is not None else None,
                "upnl": dstr(p.upnl.quantize(_CENT)) if p.mark is not None else None,
                "ghost": p.ghost,
            }
            for p in sorted(state.positions.values(), key=lambda p: p.symbol)
        ],
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


def render_status(status: dict[str, Any]) -> str:
    """A short human text of status_of(), for `cockpit ctl status` without --json."""
    lines = [f"{status['exchange']} · {status['mode']} · {status['session_file']}"]
    ks = status["kill_switch"]
    if ks["engaged"]:
        lines.append(f"KILL SWITCH ENGAGED by {ks['by']}: {ks['cause']}")
    lines.append(
        f"equity {status['equity']} USDT · drawdown {status['drawdown_pct']:.2f}% ({status['drawdown_band']})"
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
        lines.append(
            f"  {p['symbol']:<16} {p['side']:<5} {p['qty']:>12} entry {p['entry']} mark {p['mark']} "
            f"upnl {p['upnl']}{ghost}"
        )
    return "\n".join(lines)
