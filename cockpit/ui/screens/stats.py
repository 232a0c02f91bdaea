"""The stats screen: the session's analytics (the same facts as `cockpit report`), with the equity drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

from cockpit.ui.screens.view import ViewScreen


def session_stats(path: Path) -> tuple[dict[str, Any], list[float]]:
    """The report facts and the equity curve of a session file (a closed file, a backup or a replay)."""
    from cockpit.analytics import build_report, equity_curve, open_for_reading

    report = build_report(path)
    with open_for_reading(path) as session:
        curve = equity_curve(session)
    equity = [float(v) for v in curve.points["equity"].to_list()] if curve.points.height else []
    return report, equity


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:.0f} ms"


INCIDENTS_SHOWN = 5


def _pnl_line(pnl: dict[str, Any]) -> str:
    """Realized PnL, commission, funding and net, at cents (USDT)."""
    from decimal import Decimal

    from cockpit.core.text import fmt_money

    def cents(key: str, signed: bool = True) -> str:
        value = pnl.get(key)
        return fmt_money(Decimal(value) if value is not None else None, signed=signed)

    return (
        f"realized PnL {cents('realized')} · commission {cents('commission', False)} · "
        f"funding {cents('funding')} · net {cents('net')}"
    )


def _incident_line(i: dict[str, Any]) -> str:
    """`  02:14:07  37 s  CRITICAL  Exchange maintenance — …` (an incident of the report)."""
    duration = f"{i.get('duration_s', 0):.0f} s" + ("" if i.get("end_ts") is not None else " open")
    clock = str(i.get("start") or "")[11:19]
    return f"  {clock}  {duration:>8}  {str(i.get('severity', '')).upper():<8}  {i.get('title', '')}"


class StatsScreen(ViewScreen[None]):
    BINDINGS = [("escape", "close", "Close"), ("a", "close", "Close")]

    def __init__(self, report: dict[str, Any], equity: list[float], source: str) -> None:
        super().__init__(classes="dialog-screen")
        self.report = report
        self.equity = equity
        self.source = source

    def compose(self) -> ComposeResult:
        r = self.report
        fill_rate = r.get("fill_rate")
        drawdown = r.get("max_drawdown_pct")
        incidents: list[dict[str, Any]] = list(r.get("incidents", []))
        still = sum(1 for i in incidents if i.get("end_ts") is None)
        lines = [
            f"{r.get('start', '')} → {r.get('end', '')}  "
            f"({r.get('duration_s', 0):.0f} s, {r.get('events', 0):,} events)",
            f"fills {r.get('fills', 0)} · fill rate {'—' if fill_rate is None else f'{fill_rate:.0%}'} · "
            f"max drawdown {'—' if drawdown is None else f'{drawdown:.2f}%'}",
            _pnl_line(r.get("pnl") or {}),
            f"order latency p50 {_ms(r.get('latency_p50_ms'))} · p95 {_ms(r.get('latency_p95_ms'))} · "
            f"p99 {_ms(r.get('latency_p99_ms'))}",
            f"429s {r.get('rate_limited', 0)} · bans {r.get('bans', 0)} · feed disconnects "
            f"{len(r.get('feed_disconnects', []))} · downtime {r.get('downtime_s', 0):.0f} s",
            f"kill switch episodes {len(r.get('kill_switch_episodes', []))} · "
            f"incidents {len(incidents)}" + (f" ({still} still open)" if still else ""),
            *(_incident_line(i) for i in incidents[:INCIDENTS_SHOWN]),
        ]
        if len(incidents) > INCIDENTS_SHOWN:
            lines.append(f"  … {len(incidents) - INCIDENTS_SHOWN} more in `cockpit report`")
        rejections = r.get("rejections_by_reason") or {}
        if rejections:
            lines.append(
                "rejections: " + "; ".join(f"{reason} ×{n}" for reason, n in list(rejections.items())[:4])
            )
        with Vertical(id="dialog", classes="stats"):
            yield Label(self.titled(f"Session stats — {self.source}"), id="dialog-title", markup=False)
            yield Static("\n".join(lines), id="dialog-body")
            yield Label("Equity", classes="chart-title")
            yield Sparkline(self.equity or [0.0], id="stats-equity")
            yield Static(
                "Escape closes · `cockpit report SESSION --format md` writes the incident report",
                id="dialog-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)
