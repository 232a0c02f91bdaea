"""Open orders: a keyed table of `State.orders`, plain and conditional, by symbol then age. A view of State.

Prices and sizes at the market's precision (`State.markets`), the age by the UI's clock. Conditional orders
(stop, take-profit, trailing) show their trigger; reduce-only orders say so; another client's orders say who
placed them ("external")."""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.widgets import DataTable

from cockpit.core.state import MarketInfo, Order, State
from cockpit.core.text import DASH, fmt_step
from widgets._style import theme_style
from widgets.positions import LEG_MARK, display_symbol

# (key, label, right-aligned)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("symbol", "Symbol", False),
    ("side", "Side", False),
    ("type", "Type", False),
    ("price", "Price", True),
    ("trigger", "Trigger", True),
    ("size", "Size", True),
    ("filled", "Filled", True),
    ("flags", "RO", False),
    ("age", "Age", True),
    ("by", "By", False),
)
TYPE_LABELS = {  # short enough for 80 columns, in the words of an exchange's order ticket
    "limit": "LIMIT",
    "market": "MARKET",
    "stop_market": "STOP MKT",
    "stop": "STOP LMT",
    "take_profit_market": "TP MKT",
    "take_profit": "TP LMT",
    "trailing_stop_market": "TRAILING",
}
CellSpec = tuple[str, str, bool]  # text, theme variable for its colour (or ""), bold


def order_age(seconds: float) -> str:
    if seconds < 60:
        return f"{max(0.0, seconds):.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    return f"{seconds // 86400:.0f}d"


def is_conditional(order: Order) -> bool:
    """Held by the exchange's conditional service (the order a triggered stop placed is a plain order)."""
    return order.conditional


def orders_summary(state: State) -> str:
    """ "3 open · 1 conditional" (or "none open"): the pane's subtitle, and the positions pane's hint in a
    narrow terminal where the orders are one key away."""
    count = len(state.orders)
    if not count:
        return "none open"
    conditional = sum(1 for o in state.orders.values() if is_conditional(o))
    return f"{count} open" + (f" · {conditional} conditional" if conditional else "")


class OrdersTable(DataTable[Text]):
    """Open orders keyed by client order id; the cursor row is the order `x` cancels."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(
            name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=True, cell_padding=0
        )
        self._rendered: dict[str, tuple[CellSpec, ...]] = {}
        self._order: list[str] = []
        self._theme_seen = ""

    def on_mount(self) -> None:
        for key, label, right in COLUMNS:
            self.add_column(Text(f" {label}", justify="right" if right else "left"), key=key)
        self.border_subtitle = "none open"

    @property
    def selected_order(self) -> str | None:
        """The client order id of the order under the cursor (None: no orders)."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # the cursor is outside the rows (transiently, while rows change)
            return None
        return key

    def show(self, state: State, now: float) -> None:
        """A keyed diff to `state.orders` at the UI's clock `now`."""
        theme = self.app.theme
        restyle = theme != self._theme_seen
        self._theme_seen = theme
        ordered = sorted(state.orders.values(), key=lambda o: (o.symbol, o.created, o.client_order_id))
        rows = {o.client_order_id: self._row(o, state.markets.get(o.symbol), now) for o in ordered}
        keys = list(rows)
        selected = self.selected_order
        at = self.cursor_row
        with self.app.batch_update():
            if keys != self._order:  # an order came or went: rebuild (a handful of rows), keep the cursor
                self._order = keys
                self.clear()
                for key, cells in rows.items():
                    self.add_row(
                        *(self._text(c, col[2]) for c, col in zip(cells, COLUMNS, strict=True)), key=key
                    )
                # on the same order; if it went, on the row where it was (never back to the top)
                row = keys.index(selected) if selected in rows else min(at, len(keys) - 1)
                if keys:
                    self.move_cursor(row=max(0, row), animate=False)
            else:
                for key, cells in rows.items():
                    old = self._rendered.get(key, ())
                    for cell, prev, (col, _, right) in zip(cells, old, COLUMNS, strict=True):
                        if cell != prev or restyle:
                            self.update_cell(key, col, self._text(cell, right), update_width=True)
            self._rendered = rows
        self.border_subtitle = orders_summary(state)

    def cell_text(self, row_key: str, column_key: str) -> str:
        return self.get_cell(row_key, column_key).plain.strip()

    # ----- internals ------------------------------------------------------------------------------------
    def _row(self, o: Order, market: MarketInfo | None, now: float) -> tuple[CellSpec, ...]:
        tick = market.price_step if market is not None else None
        step = market.amount_step if market is not None else None
        side_var = "pnl-up" if o.side == "buy" else "pnl-down"
        return (
            (display_symbol(o.symbol) + LEG_MARK[o.leg], "", False),  # a hedge leg's: L or S
            (o.side.upper(), side_var, False),
            (TYPE_LABELS.get(o.type, o.type.upper()), "warn" if is_conditional(o) else "", False),
            (fmt_step(o.price, tick) if o.price is not None else DASH, "", False),
            (fmt_step(o.trigger, tick) if o.trigger is not None else DASH, "", False),
            (fmt_step(o.amount, step, pad=False), "", False),
            (fmt_step(o.filled, step, pad=False) if o.filled != Decimal(0) else DASH, "", False),
            ("RO" if o.reduce_only else "", "", False),
            (order_age(now - o.created), "", False),
            (
                "cockpit" if o.origin == "cockpit" else o.origin,
                "muted" if o.origin != "cockpit" else "",
                False,
            ),
        )

    def _text(self, cell: CellSpec, right: bool) -> Text:
        text, variable, bold = cell
        style = theme_style(self.app, variable, bold) if variable or bold else ""
        return Text(f" {text}", style=style, justify="right" if right else "left", no_wrap=True)
