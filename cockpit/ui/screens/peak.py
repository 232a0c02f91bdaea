"""Reset the drawdown's peak from the command palette: the same typed-word confirmation as flatten-all,
release and restore (type RESET). The engine records who asked and the old and new peak before it acts."""

from __future__ import annotations

from decimal import Decimal

from cockpit.core.state import State
from cockpit.ui.screens.confirm import ConfirmScreen

PALETTE_TITLE = "Reset the drawdown peak"
PALETTE_HELP = (
    "start the drawdown's peak again from the equity now, after a bad sample (type RESET; recorded)"
)
WORD = "RESET"


def _money(value: Decimal | None) -> str:
    return "unknown" if value is None else f"{value:,.2f} USDT"


def reset_peak_dialog(state: State) -> ConfirmScreen:
    body = (
        f"Peak equity {_money(state.peak_equity)} → the equity now, {_money(state.equity)}: the drawdown "
        f"(now {float(state.drawdown_pct):.2f}%) starts again from 0. Only when the old peak came from bad "
        "data: a real loss is hidden by a reset. Recorded with your name and both peaks."
    )
    return ConfirmScreen("Reset the drawdown peak?", body, word=WORD)
