"""The drawdown's peak: started again from plausible figures, recorded with the old and the new peak.

Peak equity only rises (`cockpit/core/state.py`), so one bad sample (a fake position in the user stream, a
wallet or a mark no account has) would hold the drawdown at 100 % for good and keep the kill switch engaged.

- An operator resets it to the equity now (`cockpit ctl reset-peak`, the command palette: typed RESET,
  recorded as an `operator.action` first).
- The engine does it by itself when a reconcile finds that the exchange does not hold what cockpit held of a
  position — none of it, less of it, or the other side (`after_reconcile`): the equity was measured on a
  quantity the account never had, so the peak falls back to the last one measured on a reconciled account
  (`State.peak_checked`), or the equity now if higher. A position the exchange holds that cockpit did not
  know (opened by hand, or more of one cockpit held on the same side) moves no peak: the equity cockpit
  measured counted only quantity the account had, so the gains since are real.

Either way a `drawdown.peak_reset` event (who, old and new peak, why) is recorded before the engine acts on
the new peak; the kill switch stays engaged until an operator releases it, which the new drawdown allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import PeakResetResult
from cockpit.core.domain import dstr
from cockpit.engine.killswitch import ActionRefused

if TYPE_CHECKING:
    from cockpit.engine.context import Events, Reads

ZERO = Decimal(0)


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"


async def reset(engine: Events, by: str, reason: str, to: Decimal | None = None) -> PeakResetResult:
    """Set the peak to `to`, by default the equity now (refused while the equity is unknown)."""
    state = engine.state
    equity, old = state.equity, state.peak_equity
    if equity is None:
        raise ActionRefused(
            "the peak cannot be reset yet",
            "the equity is not known (no wallet from the exchange yet)",
            "wait for the wallet (reconcile with R or `cockpit ctl reconcile`), then reset again",
        )
    new = max(to if to is not None else equity, ZERO)  # a negative equity has no drawdown to measure
    drawdown = (new - equity) / new * 100 if new > equity else ZERO
    message = (
        f"peak equity reset by {by}: {_money(old)} → {_money(new)} USDT (drawdown now "
        f"{drawdown:.2f}%); {reason}"
    )
    await engine.record(
        "drawdown.peak_reset",
        events.drawdown_peak_reset(
            by=by,
            old_peak=None if old is None else dstr(old),
            new_peak=dstr(new),
            reason=reason,
            message=message,
        ),
        "warning",
        "risk" if by == "reconcile" else "operator",
    )
    return PeakResetResult(
        old_peak=None if old is None else dstr(old),
        new_peak=dstr(new),
        drawdown_pct=round(float(engine.state.drawdown_pct), 3),
        by=by,
        message=message,
    )


def counted_what_the_exchange_denies(held: Decimal, theirs: Decimal) -> bool:
    """Whether cockpit held quantity the exchange does not hold: none of it, less of it, or the other side."""
    if held == 0:
        return False
    return held * theirs <= 0 or abs(theirs) < abs(held)


def denied(engine: Reads, ghosts: list[str], held: Mapping[str, Decimal]) -> list[str]:
    """The ghosts a reconcile just set to the exchange's figures where cockpit held quantity the exchange
    denies (`held`: what cockpit held before it did)."""
    positions = engine.state.positions
    return [
        symbol
        for symbol in ghosts
        if counted_what_the_exchange_denies(
            held.get(symbol, ZERO), positions[symbol].qty if symbol in positions else ZERO
        )
    ]


async def after_reconcile(engine: Events, denied: list[str]) -> None:
    """Where cockpit held quantity the exchange denies (`denied`), drop the peak measured since the last
    clean reconcile, when it is above what the account's own figures give."""
    state = engine.state
    equity, peak = state.equity, state.peak_equity
    if not denied or equity is None or peak is None:
        return
    checked = state.peak_checked if state.peak_checked is not None else equity
    new = max(checked, equity)
    if new >= peak:
        return
    await reset(
        engine,
        "reconcile",
        f"reconcile found that the exchange does not hold what cockpit held of {', '.join(denied)}: the peak "
        "measured on those figures since the last clean reconcile is not kept",
        to=new,
    )
