"""Open positions: a keyed, sortable table with a totals row. A view of `State.positions`.

Prices and sizes at the market's precision (`State.markets`: tick and step), money at 2 decimals (USDT).
A mark older than `State.stale_after_s` by the UI's clock reads "STALE" in the `$stale` style."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from cockpit.core.state import MarketInfo, Position, State
from cockpit.core.text import DASH, fmt_money, fmt_pct, fmt_step
from widgets._style import theme_style

TOTAL_KEY = "__total__"

# (key, label, right-aligned)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("symbol", "Symbol", False),
    ("side", "Side", False),
    ("size", "Size", True),
    ("entry", "Entry", True),
    ("mark", "Mark", True),
    ("upnl", "uPnL", True),
    ("notional", "Notional", True),
    ("lev", "Lev", True),
    ("liq", "Liq dist", True),
)
COLUMN_KEYS: tuple[str, ...] = tuple(key for key, _, _ in COLUMNS)
SORT_LABELS = {key: label for key, label, _ in COLUMNS}
# Sort direction per column: True = largest first. uPnL sorts worst first, liquidation distance closest first.
DESCENDING = {"size": True, "entry": True, "mark": True, "notional": True, "lev": True}

# A cell as data: (text, theme variable for its colour or "", bold). Compared to skip unchanged cells.
CellSpec = tuple[str, str, bool]


@dataclass(frozen=True, slots=True)
class _Row:
    cells: tuple[CellSpec, ...]
    sort: dict[str, Any]


STALE = "STALE"
NO_LIQUIDATION = "none"  # the exchange sees no liquidation price at this margin (it says "0")


def liq_distance_pct(position: Position) -> Decimal | None:
    """Distance from mark to liquidation as % of mark; None when either is unknown (100 with none)."""
    if position.mark is None or position.liquidation is None or position.mark == 0:
        return None
    return abs(position.mark - position.liquidation) / position.mark * 100


def display_symbol(symbol: str) -> str:
    """A linear perpetual's unified symbol without its settle suffix when it repeats the quote:
    "BTC/USDT:USDT" -> "BTC/USDT" (narrow terminals); anything else as given."""
    pair, sep, settle = symbol.partition(":")
    return pair if sep and pair.endswith("/" + settle) else symbol


def stale_symbols(state: State, now: float, stale_after_s: float | None = None) -> tuple[str, ...]:
    """Positions (their keys: a hedge leg's "<symbol> <leg>") whose symbol's mark is older than
    `stale_after_s` (State's, from the engine's config) at `now`."""
    limit = state.stale_after_s if stale_after_s is None else stale_after_s
    times = state.mark_ts
    return tuple(
        k
        for k, p in sorted(state.positions.items())
        if (t := times.get(p.symbol)) is not None and now - t > limit
    )


LEG_MARK = {"long": " L", "short": " S", "both": ""}  # a hedge leg's row: "BTC/USDT L"


def display_position(p: Position) -> str:
    """A position's name in a narrow pane: its symbol shortened, and a hedge leg's L or S."""
    return display_symbol(p.symbol) + LEG_MARK[p.leg]


def _leverage_cell(p: Position) -> str:
    """10x, or 10x iso for an isolated-margin position (its own margin is in `cockpit ctl status`)."""
    lev = f"{p.leverage}x" if p.leverage else DASH
    return f"{lev} iso" if p.margin == "isolated" else lev


def _signed_var(value: Decimal) -> str:
    return "pnl-up" if value > 0 else "pnl-down" if value < 0 else ""


class PositionsTable(DataTable[Text]):
    """Positions keyed by position (the symbol; a hedge leg's "<symbol> <leg>"), a `__total__` row at the
    bottom, `s` cycles the sort column."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "Sort", id="positions.sort", show=False),  # in help; the footer is full
    ]

    class Selected(Message):
        """The cursor moved to another position (symbol) or off them (None: totals row or empty)."""

        def __init__(self, table: PositionsTable, symbol: str | None) -> None:
            super().__init__()
            self.table = table
            self.symbol = symbol

        @property
        def control(self) -> PositionsTable:
            return self.table

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        # cell_padding 0 and a leading space in every cell: one column of gap instead of two (fits 80 columns)
        super().__init__(
            name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=True, cell_padding=0
        )
        self.sort_column = "symbol"
        self._rendered: dict[str, tuple[CellSpec, ...]] = {}
        self._sort_values: dict[str, dict[str, Any]] = {}
        self._last_key: tuple[Any, ...] | None = None
        self._last_selected: str | None = None
        self._theme_seen = ""
        self._display_key: dict[str, str] = {}
        self.stale_after_s: float | None = None  # None: State's (the engine's feeds.stale_after_s)
        self.stale: tuple[str, ...] = ()
        self.hint = ""  # what the app adds to the subtitle (the orders, where they are one key away)

    def on_mount(self) -> None:
        for key, label, right in COLUMNS:
            self.add_column(Text(f" {label}", justify="right" if right else "left"), key=key)
        self._update_subtitle()

    # ----- the contract ---------------------------------------------------------------------------------
    @property
    def selected_symbol(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor is outside the rows (transiently, while rows change)
            return None
        return None if key is None or key == TOTAL_KEY else key

    def show(self, state: State, now: float | None = None) -> None:
        """Bring the table to `state` at the UI's clock `now` (default: State's last event time): a keyed
        diff (remove vanished rows, update changed cells, add new)."""
        theme = self.app.theme
        stale = stale_symbols(state, state.ts if now is None else now, self.stale_after_s)
        self.stale = stale
        key = (state.positions, state.equity, theme, state.markets, stale)
        last = self._last_key
        if last is not None and all(a is b or a == b for a, b in zip(key, last, strict=True)):
            return
        self._last_key = key
        restyle = theme != self._theme_seen
        self._theme_seen = theme
        shown = {key: display_position(p) for key, p in state.positions.items()}
        taken = list(shown.values())
        shown = {k: d if taken.count(d) == 1 else k for k, d in shown.items()}
        self._display_key = {d: k for k, d in shown.items()}
        markets = state.markets
        rows = {  # keyed by position: a hedge account's two legs of a symbol are two rows
            key: self._row(p, shown[key], markets.get(p.symbol), key in stale)
            for key, p in state.positions.items()
        }
        if rows:
            rows[TOTAL_KEY] = self._total_row(state)
        selected = self.selected_symbol
        structural = False
        sort_changed = False
        with self.app.batch_update():
            for row_key in [k for k in self._rendered if k not in rows]:
                self.remove_row(row_key)
                del self._rendered[row_key]
                self._sort_values.pop(row_key, None)
                structural = True
            for row_key, row in rows.items():
                old = self._rendered.get(row_key)
                if old is None:
                    texts = [self._text(c, col[2]) for c, col in zip(row.cells, COLUMNS, strict=True)]
                    self.add_row(*texts, key=row_key)
                    structural = True
                else:
                    for cell, prev, (col, _, right) in zip(row.cells, old, COLUMNS, strict=True):
                        if cell != prev or restyle:
                            self.update_cell(row_key, col, self._text(cell, right), update_width=True)
                if self._sort_values.get(row_key, {}).get(self.sort_column) != row.sort.get(self.sort_column):
                    sort_changed = True
                self._rendered[row_key] = row.cells
                self._sort_values[row_key] = row.sort
            if structural or sort_changed:
                self._apply_sort(selected)
        self._update_subtitle()

    def sort_by(self, column_key: str) -> None:
        """Sort by a column (one of COLUMN_KEYS); the cursor stays on the same symbol; totals stay last."""
        if column_key not in COLUMN_KEYS:
            raise ValueError(f"unknown column {column_key!r}; one of {', '.join(COLUMN_KEYS)}")
        self.sort_column = column_key
        self._apply_sort(self.selected_symbol)
        self._update_subtitle()

    def action_cycle_sort(self) -> None:
        index = COLUMN_KEYS.index(self.sort_column)
        self.sort_by(COLUMN_KEYS[(index + 1) % len(COLUMN_KEYS)])

    # ----- internals ------------------------------------------------------------------------------------
    def cell_text(self, row_key: str, column_key: str) -> str:
        """The plain text shown in a cell (without the gap space), e.g. cell_text("__total__", "upnl")."""
        return self.get_cell(row_key, column_key).plain.strip()

    def _row(self, p: Position, shown: str, market: MarketInfo | None, stale: bool) -> _Row:
        ghost_var = "ghost" if p.ghost else ""
        side = p.side.upper() + (" GHOST" if p.ghost else "")
        upnl = p.upnl if p.mark is not None else None
        liq = liq_distance_pct(p)
        tick = market.price_step if market is not None else None
        step = market.amount_step if market is not None else None
        mark = fmt_step(p.mark, tick)
        if p.liquidation == 0:
            liq_cell: CellSpec = (NO_LIQUIDATION, "", False)
        else:
            liq_cell = (fmt_pct(liq), "critical" if liq is not None and liq < 5 else "", False)
        cells: tuple[CellSpec, ...] = (
            (shown, ghost_var, p.ghost),
            (side, ghost_var or ("pnl-up" if p.qty > 0 else "pnl-down"), p.ghost),
            (fmt_step(abs(p.qty), step, pad=False), "", False),
            (fmt_step(p.entry, tick), "", False),
            (f"{mark} {STALE}", "stale", True) if stale else (mark, "", False),
            (fmt_money(upnl, signed=True), _signed_var(upnl) if upnl is not None else "", False),
            (fmt_money(p.notional), "", False),
            (_leverage_cell(p), "", False),
            liq_cell,
        )
        sort = {
            "symbol": p.key,
            "side": side,
            "size": abs(p.qty),
            "entry": p.entry,
            "mark": p.mark,
            "upnl": upnl,
            "notional": p.notional,
            "lev": p.leverage,
            "liq": liq,
        }
        return _Row(cells, sort)

    def _total_row(self, state: State) -> _Row:
        total = state.unrealized
        cells: tuple[CellSpec, ...] = (
            ("TOTAL", "", True),
            (f"{len(state.positions)} open", "", False),
            ("", "", False),
            ("", "", False),
            ("", "", False),
            (fmt_money(total, signed=True), _signed_var(total), True),
            (fmt_money(state.exposure), "", True),
            ("", "", False),
            ("", "", False),
        )
        return _Row(cells, {})

    def _text(self, cell: CellSpec, right: bool) -> Text:
        text, variable, bold = cell
        style = theme_style(self.app, variable, bold) if variable or bold else ""
        return Text(f" {text}", style=style, justify="right" if right else "left", no_wrap=True)

    def _sort_key(self, symbol_cell: Text) -> tuple[Any, ...]:
        shown = symbol_cell.plain.strip()
        if shown == "TOTAL":
            return (1, 0, 0, "")
        row_key = self._display_key.get(shown, shown)
        value = self._sort_values.get(row_key, {}).get(self.sort_column)
        if value is None:
            return (0, 1, 0, row_key)
        if isinstance(value, str):
            return (0, 0, value, row_key)
        return (0, 0, -value if DESCENDING.get(self.sort_column) else value, row_key)

    def _apply_sort(self, keep: str | None) -> None:
        if self.row_count == 0:
            return
        self.sort("symbol", key=self._sort_key)
        if keep is not None and keep in self._rendered:
            self.move_cursor(row=self.get_row_index(keep), animate=False)

    def set_hint(self, hint: str) -> None:
        """A note after the subtitle (e.g. "orders 2 open · o"); "" for none."""
        if hint != self.hint:
            self.hint = hint
            self._update_subtitle()

    def _update_subtitle(self) -> None:
        count = len(self._rendered) - (1 if TOTAL_KEY in self._rendered else 0)
        subtitle = f"{count} open · sort {SORT_LABELS[self.sort_column]}"
        self.border_subtitle = f"{subtitle} · {self.hint}" if self.hint else subtitle

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None  # an empty table: no row
        symbol = key if key != TOTAL_KEY else None
        if symbol != self._last_selected:
            self._last_selected = symbol
            self.post_message(self.Selected(self, symbol))
