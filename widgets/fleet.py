"""The fleet: one row per account (each its own engine) and a TOTAL row. A view of each account's State.

A row reads: the account, its exchange, equity, drawdown and band, the worst health item, the kill switch,
open incidents, positions and ghosts, exposure, and the link to its engine (OK, SILENT, UNREACHABLE,
ATTACHING). Only accounts whose engine is sending its State now are summed: an UNREACHABLE (or SILENT,
ATTACHING) row shows its last equity dated, is left out of the TOTAL, and the pane's subtitle says so."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from cockpit.core.fleet import LINK_WORDS, AccountView, fleet_totals
from cockpit.core.state import DRAWDOWN_BANDS, State, band_of
from cockpit.core.text import DASH, fmt_money, fmt_pct, hms
from widgets._style import theme_style
from widgets.health import CRITICAL_STATUSES

TOTAL_KEY = "__total__"
SELECTED_MARK = "▶"
# (key, label, right-aligned); compact (< 110 columns): the columns that fit 80
WIDE: tuple[tuple[str, str, bool], ...] = (
    ("account", "Account", False),
    ("exchange", "Exchange", False),
    ("equity", "Equity", True),
    ("drawdown", "Drawdown", False),
    ("health", "Health", False),
    ("kill", "Kill", False),
    ("incidents", "Inc", True),
    ("positions", "Pos", True),
    ("ghosts", "Ghosts", True),
    ("exposure", "Exposure", True),
    ("link", "Link", False),
)
COMPACT_KEYS = ("account", "equity", "drawdown", "health", "kill", "positions", "link")
COMPACT = tuple(c for c in WIDE if c[0] in COMPACT_KEYS)
HEALTH_WIDTH = 12
LINK_VARS = {"ok": "ok", "silent": "warn", "unreachable": "critical", "attaching": "muted"}
BAND_VARS = {band: f"dd-{band}" for band in DRAWDOWN_BANDS}


@dataclass(frozen=True)
class Cell:
    text: str
    var: str = ""  # the theme variable that colours it ("" plain)
    bold: bool = False


def worst_health(state: State) -> Cell:
    """The worst health item, in words: "OK", "feed STALE", "exchange BANNED"; "—" before any is known."""
    if not state.health:
        return Cell(DASH, "muted")
    problems = [(name, item.status) for name, item in state.health.items() if item.status not in ("ok",)]
    if not problems:
        return Cell("OK", "ok")
    known = [p for p in problems if p[1] != "unknown"] or problems
    name, status = max(known, key=lambda p: p[1] in CRITICAL_STATUSES)
    word = status.replace("_", " ").upper()
    var = "critical" if status in CRITICAL_STATUSES else "muted" if status == "unknown" else "warn"
    text = f"{name} {word}"
    return Cell(text if len(text) <= HEALTH_WIDTH else text[: HEALTH_WIDTH - 1] + "…", var)


def account_cells(view: AccountView, selected: bool, compact: bool = False) -> dict[str, Cell]:
    """One account's cells (compact: at 80 columns, a dated equity shows hours and minutes)."""
    state = view.state
    counted = view.counted
    mark = SELECTED_MARK if selected else " "
    band = (
        state.drawdown_band if state.drawdown_band in DRAWDOWN_BANDS else band_of(float(state.drawdown_pct))
    )
    if counted:
        equity = Cell(fmt_money(state.equity))
    elif state.equity is not None and state.ts:  # its last, dated
        equity = Cell(f"{fmt_money(state.equity)} @{hms(state.ts)[: 5 if compact else 8]}", "muted")
    else:
        equity = Cell(DASH, "muted")
    kill = state.kill_switch.engaged
    ghosts = view.ghosts
    attaching = view.link == "attaching"
    link = Cell(LINK_WORDS[view.link], LINK_VARS[view.link], bold=view.link != "ok")
    if not view.received:  # never heard from: nothing is known, not even that its kill switch is off
        unknown = Cell(DASH, "muted")
        cells = dict.fromkeys((key for key, _, _ in WIDE), unknown)
        return {**cells, "account": Cell(f"{mark}{view.name}", bold=selected), "link": link}
    return {
        "account": Cell(f"{mark}{view.name}", bold=selected),
        "exchange": Cell(state.exchange or DASH),
        "equity": equity,
        "drawdown": Cell(
            DASH if attaching else f"{fmt_pct(float(state.drawdown_pct))} {band.upper()}",
            BAND_VARS[band] if counted else "muted",
        ),
        "health": worst_health(state) if not attaching else Cell(DASH, "muted"),
        "kill": Cell("ENGAGED", "critical", bold=True) if kill else Cell("off", "muted"),
        "incidents": Cell(DASH if view.open_incidents is None else str(view.open_incidents)),
        "positions": Cell(str(len(state.positions))),
        "ghosts": Cell(str(ghosts), "critical" if ghosts else ""),
        "exposure": Cell(fmt_money(state.exposure) if state.positions else fmt_money(0)),
        "link": link,
    }


def total_cells(views: list[AccountView], compact: bool = False) -> dict[str, Cell]:
    """The TOTAL row: sums over the accounts whose engine is sending its State now, and how many those are."""
    del compact  # the same cells: the compact columns are a subset
    totals = fleet_totals(views)
    of = f"{totals.summed} of {totals.accounts} summed"
    short = bool(totals.left_out or totals.no_equity)
    engaged = f"{totals.engaged} of {totals.counted} engaged"
    return {
        "account": Cell(" TOTAL", bold=True),
        "exchange": Cell(of if short else "", "warn" if short else ""),
        "equity": Cell(fmt_money(totals.equity), bold=True),
        "drawdown": Cell(""),
        "health": Cell(engaged, "critical" if totals.engaged else "muted"),  # the kill column is narrow
        "kill": Cell(""),
        "incidents": Cell(str(sum(v.open_incidents or 0 for v in views if v.counted))),
        "positions": Cell(str(totals.positions)),
        "ghosts": Cell(str(sum(v.ghosts for v in views if v.counted))),
        "exposure": Cell(fmt_money(totals.exposure)),
        "link": Cell(f"{len(totals.left_out)} left out" if totals.left_out else "", "warn"),
    }


def left_out_note(views: list[AccountView]) -> str:
    """Who is not in the TOTAL and why: "not in totals: b UNREACHABLE (last 10,000.00 at 03:41:07)", and
    whose equity is not in it: "equity unknown: c"."""
    totals = fleet_totals(views)
    parts = []
    for view in totals.left_out:
        state = view.state
        last = f" (last {fmt_money(state.equity)} at {hms(state.ts)})" if state.equity is not None else ""
        parts.append(f"{view.name} {LINK_WORDS[view.link]}{last}")
    notes = [f"not in totals: {'; '.join(parts)}"] if parts else []
    if totals.no_equity:
        notes.append(f"equity unknown: {', '.join(totals.no_equity)}")
    return " · ".join(notes)


class FleetTable(DataTable[Text]):
    """Accounts keyed by name, in the fleet's order, then the `__total__` row; the cursor is on the selected
    account. The subtitle names the accounts left out of the totals."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(
            name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=False, cell_padding=0
        )
        self.can_focus = False  # the keys [ and ] select; the table only shows
        self._columns: tuple[tuple[str, str, bool], ...] = ()
        self._rendered: dict[str, dict[str, Cell]] = {}
        self._theme = ""
        self.note = ""

    @property
    def rows_text(self) -> list[str]:
        """The plain text of every row, as shown (for tests and the tmux capture's reader)."""
        keys = [k for k, _, _ in self._columns]
        return [" ".join(cells[k].text for k in keys).strip() for cells in self._rendered.values()]

    def show(self, views: list[AccountView], selected: int, compact: bool) -> None:
        columns = COMPACT if compact else WIDE
        theme = self.app.theme
        if columns != self._columns or theme != self._theme:
            self.clear(columns=True)
            for key, label, right in columns:
                self.add_column(Text(f" {label}", justify="right" if right else "left"), key=key)
            self._columns, self._theme, self._rendered = columns, theme, {}
        rows = {view.name: account_cells(view, i == selected, compact) for i, view in enumerate(views)}
        rows[TOTAL_KEY] = total_cells(views, compact)
        for key, cells in rows.items():
            before = self._rendered.get(key)
            if before is None:
                self.add_row(*(self._text(cells[k], right) for k, _, right in columns), key=key)
            else:
                for k, _, right in columns:
                    if before[k] != cells[k]:
                        self.update_cell(key, k, self._text(cells[k], right), update_width=True)
            self._rendered[key] = cells
        if self.cursor_row != selected:
            self.move_cursor(row=selected, animate=False)
        self.note = left_out_note(views)
        self.border_subtitle = self.note

    def _text(self, cell: Cell, right: bool) -> Text:
        style = theme_style(self.app, cell.var, cell.bold) if cell.var or cell.bold else ""
        return Text(f" {cell.text}", style=style, justify="right" if right else "left")
