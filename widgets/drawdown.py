"""Drawdown from peak equity: the figure with its band word, equity and peak, limits, and drawn history."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Sparkline

from cockpit.core.state import DRAWDOWN_BANDS, State, band_of
from cockpit.core.text import fmt_money, fmt_pct
from widgets._lines import StatusLine

HISTORY = 600
BANDS = DRAWDOWN_BANDS


def drawdowns(equity: Iterable[float]) -> list[float]:
    """Drawdown % from the running peak for each equity sample."""
    peak = 0.0
    out: list[float] = []
    for value in equity:
        peak = max(peak, value)
        out.append((peak - value) / peak * 100 if peak > 0 else 0.0)
    return out


class DrawdownPane(Widget):
    """Drawdown % + band (classes -band-green … -band-red), equity/peak, breaker and kill, equity chart."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id, classes=classes)
        self.equity_history: deque[float] = deque(maxlen=HISTORY)
        self.drawdown_history: deque[float] = deque(maxlen=HISTORY)
        self._last_equity: Decimal | None = None
        self._band = ""
        self._charts_dirty = False

    def compose(self) -> ComposeResult:
        yield StatusLine("DD —", id="dd-compact")
        yield StatusLine("—", id="dd-now")
        yield StatusLine("Equity — · peak —", id="dd-equity")
        yield StatusLine("Breaker — · kill —", id="dd-limits")
        yield Sparkline([], id="dd-equity-chart")
        yield Sparkline([], id="dd-dd-chart")

    @property
    def band(self) -> str:
        return self._band

    @property
    def lines_text(self) -> list[str]:
        return [self.query_one(f"#{i}", StatusLine).text for i in ("dd-now", "dd-equity", "dd-limits")]

    def show(self, state: State, kill_pct: float, breaker_pct: float) -> None:
        dd = float(state.drawdown_pct)
        band = state.drawdown_band if state.drawdown_band in BANDS else band_of(dd)
        word = band.upper()
        if band != self._band:
            for name in BANDS:
                self.set_class(name == band, f"-band-{name}")
            self._band = band
        level = {"green": "-ok", "yellow": "-warn", "orange": "-warn", "red": "-critical"}[band]
        self.query_one("#dd-now", StatusLine).set(f"Drawdown {fmt_pct(dd)} {word}", level)
        self.query_one("#dd-equity", StatusLine).set(
            f"Equity {fmt_money(state.equity)} · peak {fmt_money(state.peak_equity)}"
        )
        limits = f"Breaker {fmt_pct(breaker_pct)} · kill {fmt_pct(kill_pct)}"
        self.query_one("#dd-limits", StatusLine).set(limits)
        self.query_one("#dd-compact", StatusLine).set(
            f"DD {fmt_pct(dd)} {word} · eq {fmt_money(state.equity)} · {limits.lower()}", level
        )
        if state.equity is not None and state.equity != self._last_equity:
            self._last_equity = state.equity
            self.equity_history.append(float(state.equity))
            self.drawdown_history.append(dd)
            self._refresh_charts()

    def reset_history(self, samples: Sequence[float]) -> None:
        """Replace the equity history (replay seek, restore); the drawdown history follows from it."""
        self.equity_history = deque((float(s) for s in samples), maxlen=HISTORY)
        self.drawdown_history = deque(drawdowns(self.equity_history), maxlen=HISTORY)
        self._last_equity = None
        self._refresh_charts()

    def _refresh_charts(self) -> None:
        self.query_one("#dd-equity-chart", Sparkline).data = list(self.equity_history)
        self.query_one("#dd-dd-chart", Sparkline).data = list(self.drawdown_history)
