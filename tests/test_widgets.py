"""Widgets as an operator sees them: hand-built State in, words and rows out. Plus themes and snapshots."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import Grid
from textual.theme import BUILTIN_THEMES
from textual.widget import Widget
from textual.widgets import Footer

from cockpit.core.domain import Event, Telemetry
from cockpit.core.state import (
    HealthItem,
    KillSwitch,
    MarketInfo,
    Order,
    Position,
    RateLimitView,
    State,
    StreamStatus,
)
from cockpit.core.text import fmt_age, fmt_countdown, fmt_money, fmt_pct, fmt_price, hms, truncate
from widgets._lines import StatusLine
from widgets.banner import AlertBanner
from widgets.drawdown import HISTORY, DrawdownPane, band_of
from widgets.events import MAX_LINES, EventLog, summarize
from widgets.header import CockpitHeader
from widgets.health import HealthPane
from widgets.orders import OrdersTable
from widgets.positions import TOTAL_KEY, PositionsTable, display_symbol
from widgets.ratelimit import RateLimitPane
from widgets.theme_data import REQUIRED_VARIABLES, load_themes

ROOT = Path(__file__).resolve().parent.parent
TCSS = ROOT / "themes" / "cockpit.tcss"
THEMES_TOML = (ROOT / "themes" / "themes.toml").read_text()
NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"


@pytest.fixture(autouse=True)
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC in these tests, so the clock on screen is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ----- deterministic data ----------------------------------------------------------------------------------
def positions() -> dict[str, Position]:
    return {
        BTC: Position(BTC, D("0.010"), D("64000.5"), D("64210.1"), 10, D("58000")),
        ETH: Position(ETH, D("-0.5"), D("3100.25"), D("3150.00"), 5, D("3700"), ghost=True),
        SOL: Position(SOL, D("12"), D("142.10"), D("139.55"), 3, None),
    }


def orders() -> dict[str, Order]:
    """A strategy's resting limit order and cockpit's reduce-only stop on the short."""
    return {
        "strat-7": Order("strat-7", BTC, "buy", "limit", D("0.005"), price=D("60000.00"), status="open",
                         origin="external", order_id="8101", created=NOW - 300),
        "ck-stop-1": Order("ck-stop-1", ETH, "buy", "stop_market", D("0.5"), trigger=D("3300.123"),
                           status="open", reduce_only=True, order_id="8102", created=NOW - 4000,
                           conditional=True),
    }  # fmt: skip


MARKETS = {
    BTC: MarketInfo(D("0.1"), D("0.001")),
    ETH: MarketInfo(D("0.01"), D("0.001")),
    SOL: MarketInfo(D("0.0100"), D("1")),
}


def make_state(**overrides: Any) -> State:
    base: dict[str, Any] = dict(
        seq=42,
        ts=NOW,
        mode="live",
        exchange="binanceusdm",
        session_file="/var/lib/cockpit/2026-09-21-live.duckdb",
        positions=positions(),
        orders=orders(),
        markets=MARKETS,
        mark_ts=dict.fromkeys([BTC, ETH, SOL], NOW - 1),
        wallet=D("10000"),
        equity=D("9978.35"),
        peak_equity=D("10412.00"),
        drawdown_pct=D("4.165"),
        drawdown_band="yellow",
        health={
            "exchange": HealthItem("ok"),
            "feed": HealthItem("stale"),
            "user_stream": HealthItem("reconnecting"),
            "database": HealthItem("ok"),
            "clock": HealthItem("ok"),
        },
        streams={
            "market": StreamStatus("stale", silent_s=6.2, since=NOW),
            "user": StreamStatus("reconnecting", attempt=2, retry_in_s=4.0, since=NOW),
        },
        clock_offset_ms=12.0,
        rate_limit=RateLimitView(used=812, limit=2400, queued=3, rejected_recent=1, banned_until=NOW + 27),
    )
    base.update(overrides)
    return State(**base)


TELEMETRY = Telemetry(
    rest_p95_ms=142.0, store_queue=3, last_commit_age_s=0.4, last_backup_age_s=720.0, now=NOW
)


def event(seq: int, kind: str, severity: Any = "info", source: str = "engine", **payload: Any) -> Event:
    return Event(seq, NOW - 100 + seq, kind, severity, source, payload)


def sample_events() -> list[Event]:
    out: list[Event] = []
    for i in range(12):
        seq = i + 1
        if i % 3 == 0:
            out.append(
                event(seq, "order.filled", "info", "exchange", symbol=BTC, side="sell", amount="0.01",
                      price="64000.5", client_order_id=f"ck-{i}")
            )  # fmt: skip
        elif i % 3 == 1:
            out.append(event(seq, "feed.stale", "warning", "feed", message=f"market silent {i}.0 s"))
        else:
            out.append(event(seq, "killswitch.engaged", "critical", "risk", cause="drawdown 7.2%", by="risk"))
    return out


# ----- test apps -------------------------------------------------------------------------------------------
class ThemedApp(App[None]):
    CSS_PATH = str(TCSS)

    def __init__(self, theme: str = "cockpit-dark") -> None:
        super().__init__()
        for t in load_themes(THEMES_TOML):
            self.register_theme(t)
        self.theme = theme


class OneWidget(ThemedApp):
    def __init__(self, widget: Widget, theme: str = "cockpit-dark") -> None:
        super().__init__(theme)
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


class CockpitLayout(ThemedApp):
    """The main screen as the App composes it, with fixed data and a frozen clock."""

    def __init__(self, state: State, theme: str = "cockpit-dark") -> None:
        super().__init__(theme)
        self.state = state

    def compose(self) -> ComposeResult:
        yield CockpitHeader(id="header")
        yield AlertBanner(id="banner")
        with Grid(id="panes"):
            yield PositionsTable(id="positions")
            yield HealthPane(id="health")
            yield RateLimitPane(id="ratelimit")
            yield DrawdownPane(id="drawdown")
            yield OrdersTable(id="orders")
            yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        titles = {"positions": "Positions", "health": "Health", "ratelimit": "Rate limit"}
        titles |= {"drawdown": "Drawdown", "orders": "Orders", "events": "Events"}
        for pane, title in titles.items():
            self.query_one(f"#{pane}").border_title = title
        self.query_one(CockpitHeader).show(self.state, NOW)
        self.query_one(AlertBanner).show(self.state, 5.0)
        self.query_one(PositionsTable).show(self.state)
        self.query_one(OrdersTable).show(self.state, NOW)
        self.query_one(HealthPane).show(self.state, TELEMETRY)
        self.query_one(RateLimitPane).show(self.state.rate_limit, NOW)
        drawdown = self.query_one(DrawdownPane)
        drawdown.reset_history([10000 + 50 * ((i * 7) % 11) - i * 3 for i in range(80)])
        drawdown.show(self.state, 10.0, 5.0)
        self.query_one(EventLog).add(sample_events())
        self.screen.set_class(self.size.width < 110 or self.size.height < 32, "-compact")


# ----- formatting ------------------------------------------------------------------------------------------
def test_numbers_and_ages_read_the_way_an_operator_expects() -> None:
    assert fmt_price(D("64000.50")) == "64000.50"
    assert fmt_price(None) == "—"
    assert fmt_money(D("-1234.567")) == "-1,234.57"
    assert fmt_money(D("2.1"), signed=True) == "+2.10"
    assert fmt_money(D("-0.001"), signed=True) == "0.00"
    assert fmt_pct(D("4.165")) == "4.16%"  # half-even on the exact value, whatever ccxt did to the context
    assert fmt_pct(D("0.25"), signed=True) == "+0.25%"
    assert fmt_age(6.24) == "6.2s"
    assert fmt_age(192) == "3m12s"
    assert fmt_age(7500) == "2h05m"
    assert fmt_age(None) == "—"
    assert fmt_countdown(26.2) == "27s"
    assert fmt_countdown(27.0) == "27s"
    assert fmt_countdown(65) == "1m05s"
    assert hms(NOW, utc=True) == "14:13:20"
    assert truncate("abcdef", 4) == "abc…"
    assert display_symbol(BTC) == "BTC/USDT"
    assert display_symbol("BTC/USD:BTC") == "BTC/USD:BTC"


def test_payload_summary_uses_message_or_a_compact_order_line() -> None:
    assert summarize({"message": "market silent\n6 s"}) == "market silent 6 s"
    order = {"symbol": BTC, "side": "sell", "amount": "0.01", "price": "64000.5", "client_order_id": "c1"}
    line = summarize(order)
    assert line == "BTC/USDT:USDT sell 0.01 @ 64000.5 client_order_id=c1"
    assert summarize({"matched": 3, "ghosts": ["ETH/USDT:USDT"]}) == "matched=3 ghosts=ETH/USDT:USDT"


# ----- themes ----------------------------------------------------------------------------------------------
def test_every_theme_defines_every_variable_the_tcss_uses() -> None:
    themes = load_themes(THEMES_TOML)
    names = ["cockpit-dark", "cockpit-light", "cockpit-high-contrast", "cockpit-ansi"]
    assert [t.name for t in themes] == names
    builtin = set(BUILTIN_THEMES["textual-dark"].to_color_system().generate())
    used = set(re.findall(r"\$([a-z][a-z0-9-]*)", TCSS.read_text()))
    custom = used - builtin
    assert {"pnl-up", "pnl-down", "stale", "warn", "critical", "ok", "dd-green", "dd-red"} <= custom
    for theme in themes:
        missing = (custom | set(REQUIRED_VARIABLES)) - set(theme.variables)
        assert not missing, f"{theme.name} lacks {sorted(missing)}"
    ansi = next(t for t in themes if t.name == "cockpit-ansi")
    assert ansi.ansi
    colours = [v for v in (ansi.primary, ansi.error, *ansi.variables.values()) if v]
    assert all(v.startswith("ansi_") for v in colours)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[theme]]\nname = "x"\nprimary = "nocolour"\nforeground = "#000"\nbackground = "#fff"\n'
         'dark = true\n',
         ["'x'", "primary", "nocolour"]),
        ('[[theme]]\nname = "x"\nprimary = "#fff"\nforeground = "#000"\nbackground = "#fff"\ndark = 1\n',
         ["'x'", "dark"]),
        ('[[theme]]\nname = "x"\nprimary = "#fff"\nforeground = "#000"\nbackground = "#fff"\ndark = true\n'
         'shiny = "#fff"\n', ["'x'", "shiny"]),
        ('[[theme]]\nname = "x"\nprimary = "#fff"\nforeground = "#000"\nbackground = "#fff"\ndark = true\n',
         ["'x'", "variables.pnl-up", "missing"]),
        ("[[theme]]\nprimary = 1\n", ["name"]),
        ("not toml [", ["TOML"]),
    ],
)  # fmt: skip
def test_bad_theme_data_is_refused_naming_theme_and_field(text: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        load_themes(text)
    for word in words:
        assert word in str(info.value)


# ----- isolation -------------------------------------------------------------------------------------------
def test_widgets_never_load_the_engine_store_gateway_or_ccxt() -> None:
    code = (
        "import sys\n"
        "import widgets.banner, widgets.drawdown, widgets.events, cockpit.core.text, widgets.header\n"
        "import widgets.health, widgets.positions, widgets.ratelimit, widgets.theme_data\n"
        "bad = ('cockpit.engine', 'cockpit.store', 'cockpit.exchange', 'cockpit.feeds', 'cockpit.sim',\n"
        "       'cockpit.ui.app', 'cockpit.ui.screens', 'ccxt', 'duckdb', 'websockets')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(bad))\n"
        "print(','.join(loaded))\n"
    )
    command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# ----- positions -------------------------------------------------------------------------------------------
def row_keys(table: PositionsTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def test_positions_show_each_symbol_with_signed_pnl_ghost_and_totals_last() -> None:
    table = PositionsTable()
    async with OneWidget(table).run_test(size=(120, 20)) as pilot:
        table.show(make_state())
        await pilot.pause()
        assert row_keys(table) == [BTC, ETH, SOL, TOTAL_KEY]
        assert table.cell_text(BTC, "symbol") == "BTC/USDT"
        assert table.cell_text(BTC, "side") == "LONG"
        assert table.cell_text(ETH, "side") == "SHORT GHOST"
        assert table.cell_text(BTC, "upnl") == "+2.10"
        assert table.cell_text(ETH, "upnl") == "-24.88"
        assert table.cell_text(ETH, "size") == "0.5"
        assert table.cell_text(BTC, "lev") == "10x"
        assert table.cell_text(BTC, "liq") == "9.67%"
        assert table.cell_text(SOL, "liq") == "—"
        assert table.cell_text(TOTAL_KEY, "upnl") == "-53.38"
        assert table.cell_text(TOTAL_KEY, "notional") == "3,891.70"
        # colour as well as sign: up and down use different theme colours
        up = table.get_cell(BTC, "upnl").style
        down = table.get_cell(ETH, "upnl").style
        assert up and down and up != down
        assert table.get_cell(ETH, "side").style != table.get_cell(BTC, "side").style
        assert str(table.border_subtitle).startswith("3 open")


async def test_a_closed_position_vanishes_and_the_cursor_stays_on_its_symbol() -> None:
    table = PositionsTable()
    selected: list[str | None] = []

    class Watch(OneWidget):
        def on_positions_table_selected(self, message: PositionsTable.Selected) -> None:
            selected.append(message.symbol)

    async with Watch(table).run_test(size=(120, 20)) as pilot:
        table.show(make_state())
        await pilot.pause()
        table.move_cursor(row=table.get_row_index(SOL))
        await pilot.pause()
        assert table.selected_symbol == SOL
        assert selected[-1] == SOL

        calls: list[Any] = []
        original = table.update_cell
        table.update_cell = lambda *a, **k: (calls.append(a), original(*a, **k))  # type: ignore[method-assign]
        table.show(make_state())  # the same figures: nothing repainted
        assert calls == []

        without_btc = {k: v for k, v in positions().items() if k != BTC}
        marked = {**without_btc, SOL: replace(without_btc[SOL], mark=D("150.00"))}
        table.show(make_state(positions=marked))
        await pilot.pause()
        assert row_keys(table) == [ETH, SOL, TOTAL_KEY]
        assert table.selected_symbol == SOL
        assert table.cell_text(SOL, "mark") == "150.00"
        assert table.cell_text(SOL, "upnl") == "+94.80"
        assert [c[1] for c in calls if c[0] == SOL] == ["mark", "upnl", "notional"]

        table.move_cursor(row=table.get_row_index(TOTAL_KEY))
        await pilot.pause()
        assert table.selected_symbol is None
        assert selected[-1] is None


async def test_sorting_keeps_the_cursor_on_the_same_symbol_and_totals_at_the_bottom() -> None:
    table = PositionsTable()
    async with OneWidget(table).run_test(size=(120, 20)) as pilot:
        table.show(make_state())
        await pilot.pause()
        table.move_cursor(row=table.get_row_index(BTC))
        table.focus()
        await pilot.pause()
        table.sort_by("upnl")  # worst first
        await pilot.pause()
        assert row_keys(table) == [SOL, ETH, BTC, TOTAL_KEY]
        assert table.selected_symbol == BTC
        table.sort_by("liq")  # closest to liquidation first, unknown last
        assert row_keys(table) == [BTC, ETH, SOL, TOTAL_KEY]
        assert table.selected_symbol == BTC
        await pilot.press("s")  # liq -> symbol (wraps)
        assert table.sort_column == "symbol"
        await pilot.press("s")
        assert table.sort_column == "side"
        # a new position lands in sort order, above the totals
        more = {**positions(), "ADA/USDT:USDT": Position("ADA/USDT:USDT", D("100"), D("0.5"), D("0.51"))}
        table.sort_by("symbol")
        table.show(make_state(positions=more))
        await pilot.pause()
        assert row_keys(table) == ["ADA/USDT:USDT", BTC, ETH, SOL, TOTAL_KEY]
        assert table.selected_symbol == BTC
        with pytest.raises(ValueError, match="unknown column"):
            table.sort_by("colour")


async def test_no_positions_shows_an_empty_table_and_zero_open() -> None:
    table = PositionsTable()
    async with OneWidget(table).run_test(size=(80, 10)) as pilot:
        table.show(make_state())
        await pilot.pause()
        table.show(make_state(positions={}))
        await pilot.pause()
        assert table.row_count == 0
        assert table.selected_symbol is None
        assert str(table.border_subtitle).startswith("0 open")


async def test_orders_show_at_the_markets_precision_and_follow_state_keeping_the_cursor() -> None:
    table = OrdersTable()
    async with OneWidget(table).run_test(size=(100, 10)) as pilot:
        table.show(make_state(), NOW)
        await pilot.pause()
        assert [k.value for k in table.rows] == ["strat-7", "ck-stop-1"]  # by symbol, then age
        assert (
            table.cell_text("strat-7", "price") == "60000.0" and table.cell_text("strat-7", "trigger") == "—"
        )
        assert table.cell_text("ck-stop-1", "trigger") == "3300.12"  # the tick is 0.01
        assert (
            table.cell_text("ck-stop-1", "type") == "STOP MKT"
            and table.cell_text("ck-stop-1", "flags") == "RO"
        )
        assert table.cell_text("strat-7", "age") == "5m" and table.cell_text("ck-stop-1", "age") == "1h"
        assert table.cell_text("strat-7", "by") == "external"
        assert str(table.border_subtitle) == "2 open · 1 conditional"
        table.move_cursor(row=1)
        assert table.selected_order == "ck-stop-1"
        partly = {**orders(), "strat-7": replace(orders()["strat-7"], filled=D("0.002"))}
        table.show(make_state(orders=partly), NOW + 60)
        await pilot.pause()
        assert table.cell_text("strat-7", "filled") == "0.002" and table.cell_text("strat-7", "age") == "6m"
        table.show(make_state(orders={"ck-stop-1": orders()["ck-stop-1"]}), NOW + 61)
        await pilot.pause()
        assert table.row_count == 1 and table.selected_order == "ck-stop-1"  # the cursor stays on its order
        table.show(make_state(orders={}), NOW + 62)
        await pilot.pause()
        assert table.row_count == 0 and table.selected_order is None
        assert str(table.border_subtitle) == "none open"


async def test_a_hedge_accounts_legs_are_rows_of_their_own_and_their_orders_say_which_leg() -> None:
    long = Position(BTC, D("0.030"), D("64000.5"), D("64210.1"), 10, D("58000"), leg="long")
    short = Position(BTC, D("-0.010"), D("64500.0"), D("64210.1"), 10, D("70000"), leg="short")
    legs = {long.key: long, short.key: short}
    stop = Order("tp-long", BTC, "sell", "limit", D("0.01"), price=D("70000"), status="open",
                 origin="external", order_id="9", created=NOW - 60, leg="long")  # fmt: skip
    state = make_state(positions=legs, orders={"tp-long": stop}, mark_ts={BTC: NOW - 30}, stale_after_s=5.0)
    table = PositionsTable()
    async with OneWidget(table).run_test(size=(120, 20)) as pilot:
        table.show(state)
        await pilot.pause()
        assert row_keys(table) == [f"{BTC} long", f"{BTC} short", TOTAL_KEY]
        assert table.cell_text(f"{BTC} long", "symbol") == "BTC/USDT L"
        assert table.cell_text(f"{BTC} short", "symbol") == "BTC/USDT S"
        assert (table.cell_text(f"{BTC} long", "side"), table.cell_text(f"{BTC} short", "side")) == (
            "LONG",
            "SHORT",
        )
        assert table.cell_text(f"{BTC} long", "upnl") == "+6.29"
        assert table.cell_text(f"{BTC} short", "upnl") == "+2.90"
        assert table.cell_text(TOTAL_KEY, "upnl") == "+9.19"  # both legs, each at the mark
        table.move_cursor(row=1)
        assert table.selected_symbol == f"{BTC} short"  # f flattens this leg alone
    orders_table = OrdersTable()
    async with OneWidget(orders_table).run_test(size=(100, 6)) as pilot:
        orders_table.show(state, NOW)
        await pilot.pause()
        assert orders_table.cell_text("tp-long", "symbol") == "BTC/USDT L"
    banner = AlertBanner()
    async with OneWidget(banner).run_test(size=(120, 5)) as pilot:
        banner.show(state, 5.0, now=NOW)
        await pilot.pause()
        assert banner.text.startswith("MARKET DATA DOWN — BTC/USDT marks 30.0s old")  # named once


XRP = "XRP/USDT:USDT"


async def test_prices_and_sizes_read_at_the_markets_precision_and_money_at_cents() -> None:
    table = PositionsTable()
    held = {
        BTC: Position(BTC, D("0.01"), D("63949.123456"), D("64006.0"), 10, D("58000.55")),
        XRP: Position(XRP, D("-1234"), D("0.612345"), D("0.6"), 5, D("0")),
    }
    markets = {BTC: MarketInfo(D("0.1"), D("0.001")), XRP: MarketInfo(D("0.0001"), D("0.1"))}
    async with OneWidget(table).run_test(size=(120, 20)) as pilot:
        table.show(make_state(positions=held, markets=markets, mark_ts={}))
        await pilot.pause()
        assert table.cell_text(BTC, "entry") == "63949.1"  # an average with more digits than the tick
        assert table.cell_text(BTC, "mark") == "64006.0"
        assert table.cell_text(BTC, "size") == "0.01"
        assert table.cell_text(BTC, "upnl") == "+0.57"  # 0.5687…: money at cents
        assert table.cell_text(BTC, "liq") == "9.38%"
        assert table.cell_text(XRP, "entry") == "0.6123"
        assert table.cell_text(XRP, "mark") == "0.6000"
        assert table.cell_text(XRP, "size") == "1234"
        assert table.cell_text(XRP, "upnl") == "+15.23"
        assert table.cell_text(XRP, "notional") == "740.40"
        assert table.cell_text(XRP, "liq") == "none"  # the exchange says "0": no liquidation at this margin
        assert table.cell_text(TOTAL_KEY, "upnl") == "+15.80"
        # a market whose steps are not known yet: as given, never a guess
        table.show(make_state(positions=held, markets={}, mark_ts={}))
        await pilot.pause()
        assert table.cell_text(BTC, "entry") == "63949.123456"


async def test_a_mark_older_than_stale_after_s_reads_stale_even_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    table = PositionsTable()
    async with OneWidget(table).run_test(size=(120, 20)) as pilot:
        state = make_state(stale_after_s=5.0, mark_ts={BTC: NOW - 6, ETH: NOW - 1, SOL: NOW - 4.9})
        table.show(state, now=NOW)
        await pilot.pause()
        assert table.cell_text(BTC, "mark") == "64210.1 STALE"
        assert table.cell_text(ETH, "mark") == "3150.00" and table.cell_text(SOL, "mark") == "139.55"
        assert table.get_cell(BTC, "mark").style != table.get_cell(ETH, "mark").style  # $stale, bold
        assert table.stale == (BTC,)
        # the UI's clock moves on: SOL's mark is now older than 5 s too
        table.show(state, now=NOW + 0.2)
        await pilot.pause()
        assert table.cell_text(SOL, "mark") == "139.55 STALE"
        # a fresh mark: the word goes
        fresh = replace(state, mark_ts={BTC: NOW, ETH: NOW, SOL: NOW})
        table.show(fresh, now=NOW + 0.2)
        await pilot.pause()
        assert table.cell_text(BTC, "mark") == "64210.1" and table.stale == ()
        # every column still readable at 120 columns while a mark is stale: nothing scrolled off
        table.show(state, now=NOW + 0.2)
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width


async def test_banner_says_market_data_is_down_for_held_positions() -> None:
    banner = AlertBanner()
    async with OneWidget(banner).run_test(size=(120, 5)) as pilot:
        stale = make_state(stale_after_s=5.0, mark_ts={BTC: NOW - 23, ETH: NOW - 21, SOL: NOW})
        banner.show(stale, 5.0, now=NOW)
        await pilot.pause()
        assert banner.text.startswith("MARKET DATA DOWN — BTC/USDT, ETH/USDT marks 23.0s old")
        assert banner.has_class("-stale") and banner.region.height == 1
        banner.show(replace(stale, mark_ts={BTC: NOW, ETH: NOW, SOL: NOW}), 5.0, now=NOW)
        await pilot.pause()
        assert banner.text == "" and not banner.has_class("-active")
        # nothing held: no alarm about marks, however old
        banner.show(replace(stale, positions={}), 5.0, now=NOW)
        assert banner.text == ""


# ----- health ----------------------------------------------------------------------------------------------
async def test_health_names_each_problem_in_words() -> None:
    pane = HealthPane()
    async with OneWidget(pane).run_test(size=(100, 20)) as pilot:
        pane.show(make_state(), TELEMETRY)
        await pilot.pause()
        lines = pane.lines_text
        assert lines[0].startswith("Exchange") and "OK" in lines[0] and "p95 142 ms" in lines[0]
        assert any("market STALE 6.2s" in line for line in lines)
        assert any(line.startswith("User") and "RECONNECTING #2 in 4s" in line for line in lines)
        db = next(line for line in lines if line.startswith("Database"))
        assert "queue 3" in db and "commit 0.4s" in db and "backup 12m00s" in db
        assert any(line.startswith("Clock") and "+12 ms" in line for line in lines)
        assert any(line.startswith("Mode") and "LIVE" in line for line in lines)
        assert any(line.startswith("Kill") and "OFF" in line for line in lines)
        assert pane.line("health-user").has_class("-warn")

        # three seconds later: the countdown and the silence move; a second market stream appears
        streams = {**make_state().streams, "market/ethusdt": StreamStatus("connected", since=NOW)}
        later = replace(TELEMETRY, now=NOW + 3)
        killed = KillSwitch(True, "clock drift 2400 ms", "risk", NOW)
        pane.show(make_state(streams=streams, kill_switch=killed, mode="replay"), later)
        await pilot.pause()
        lines = pane.lines_text
        assert any("market STALE 9.2s" in line for line in lines)
        assert any("ethusdt OK" in line for line in lines)
        assert any("RECONNECTING #2 in 1s" in line for line in lines)
        assert any("ENGAGED: clock drift 2400 ms" in line for line in lines)
        assert any(line.startswith("Mode") and "REPLAY" in line for line in lines)
        assert pane.line("health-kill").has_class("-critical")

        # a replay has no telemetry: dashes, not zeros
        pane.show(make_state(streams={}), Telemetry())
        await pilot.pause()
        lines = pane.lines_text
        assert "p95 —" in lines[0]
        assert any(line.startswith("Feed") and "—" in line for line in lines)
        db = next(line for line in lines if line.startswith("Database"))
        assert "queue —" in db and "commit —" in db and "backup —" in db


async def test_health_shows_bad_exchange_data_only_once_some_was_refused() -> None:
    pane = HealthPane()
    async with OneWidget(pane).run_test(size=(100, 20)) as pilot:
        pane.show(make_state(), TELEMETRY)
        await pilot.pause()
        assert not any(line.startswith("Data ") for line in pane.lines_text)
        detail = "rejected: market feed 3; last (market feed): markPriceUpdate: p (mark price) is not finite"
        health = {**make_state().health, "data": HealthItem("bad data", detail, NOW)}
        pane.show(make_state(health=health), TELEMETRY)
        await pilot.pause()
        line = next(line for line in pane.lines_text if line.startswith("Data "))
        assert "BAD DATA" in line and "market feed 3" in line
        assert pane.line("health-data").has_class("-warn")


async def test_health_shows_a_failing_notification_target_while_it_fails() -> None:
    pane = HealthPane()
    async with OneWidget(pane).run_test(size=(100, 20)) as pilot:
        pane.show(make_state(), TELEMETRY)
        await pilot.pause()
        assert not any(line.startswith("Notify") for line in pane.lines_text)
        failing = HealthItem("failing", "phone: no answer within 30 s", NOW)
        pane.show(make_state(health={**make_state().health, "notify": failing}), TELEMETRY)
        await pilot.pause()
        line = next(line for line in pane.lines_text if line.startswith("Notify"))
        assert "FAILING" in line and "phone: no answer within 30 s" in line
        pane.show(make_state(health={**make_state().health, "notify": HealthItem("ok", "", NOW)}), TELEMETRY)
        await pilot.pause()
        assert not any(line.startswith("Notify") for line in pane.lines_text)


# ----- rate limit ------------------------------------------------------------------------------------------
async def test_rate_limit_gauge_counts_down_a_ban() -> None:
    pane = RateLimitPane()
    async with OneWidget(pane).run_test(size=(60, 10)) as pilot:
        pane.show(make_state().rate_limit, NOW)
        await pilot.pause()
        gauge, queue, hold = pane.lines_text
        assert gauge == "812/2400/min (34%)"
        assert queue == "queued 3 · 429s 1"
        assert hold == "BANNED 27s"
        assert pane.gauge.has_class("-ok")
        rendered = str(pane.gauge.render())
        assert "█" in rendered and "░" in rendered and rendered.endswith("812/2400/min (34%)")

        pane.show(RateLimitView(used=1800, limit=2400, cooldown_until=NOW + 2.4), NOW)
        await pilot.pause()
        assert pane.lines_text[0] == "1800/2400/min (75%)"
        assert pane.lines_text[2] == "COOLDOWN 3s"
        assert pane.gauge.has_class("-warn") and not pane.gauge.has_class("-ok")

        pane.show(RateLimitView(used=2300, limit=2400, banned_until=NOW - 1), NOW)
        await pilot.pause()
        assert pane.gauge.has_class("-critical")
        assert pane.lines_text[2] == "no ban"


async def test_rate_limit_pane_shows_bybits_ip_window_and_its_busiest_endpoint() -> None:
    """Bybit: the shared budget is per 5 s; an endpoint near its own per-second budget is named, and one the
    exchange refused counts down to its reset — not a ban, and the hold line says so."""
    pane = RateLimitPane()
    async with OneWidget(pane).run_test(size=(60, 10)) as pilot:
        view = RateLimitView(used=40, limit=600, window_s=5.0, endpoint="order/create", endpoint_used=9,
                             endpoint_limit=10)  # fmt: skip
        pane.show(view, NOW)
        await pilot.pause()
        gauge, _queue, hold, endpoint = pane.lines_text
        assert gauge == "40/600/5s (7%)" and hold == "no ban"
        assert endpoint == "order/create 9/10/s"
        assert pane.query_one("#rl-endpoint", StatusLine).has_class("-critical")

        pane.show(RateLimitView(used=41, limit=600, window_s=5.0, endpoint="order/create", endpoint_used=10,
                                endpoint_limit=10, endpoint_cooldown_until=NOW + 0.4), NOW)  # fmt: skip
        await pilot.pause()
        assert pane.lines_text[2:] == ["no ban", "order/create refused · 1s"]

        pane.show(RateLimitView(used=2, limit=600, window_s=5.0), NOW)  # the endpoints idle again: hidden
        await pilot.pause()
        assert len(pane.lines_text) == 3


# ----- drawdown --------------------------------------------------------------------------------------------
async def test_drawdown_band_word_class_and_bounded_history() -> None:
    pane = DrawdownPane()
    async with OneWidget(pane).run_test(size=(60, 16)) as pilot:
        pane.show(make_state(), kill_pct=10.0, breaker_pct=5.0)
        await pilot.pause()
        now_line, equity, limits = pane.lines_text
        assert now_line == "Drawdown 4.16% YELLOW"
        assert equity == "Equity 9,978.35 · peak 10,412.00"
        assert limits == "Breaker 5.00% · kill 10.00%"
        assert pane.has_class("-band-yellow")

        pane.show(make_state(drawdown_pct=D("7.5"), drawdown_band="red", equity=D("9631.1")), 10.0, 5.0)
        await pilot.pause()
        assert "RED" in pane.lines_text[0]
        assert pane.has_class("-band-red") and not pane.has_class("-band-yellow")
        # no band from the engine: computed from the figure
        pane.show(make_state(drawdown_pct=D("5.5"), drawdown_band="", equity=D("9839.3")), 10.0, 5.0)
        assert pane.band == "orange"
        assert [band_of(x) for x in (0.0, 2.99, 3.0, 5.0, 7.0, 7.01)] == [
            "green", "green", "yellow", "orange", "orange", "red",
        ]  # fmt: skip

        assert list(pane.equity_history) == [9978.35, 9631.1, 9839.3]
        pane.show(make_state(drawdown_pct=D("5.5"), drawdown_band="", equity=D("9839.3")), 10.0, 5.0)
        assert len(pane.equity_history) == 3  # unchanged equity: no new sample
        pane.reset_history([float(i) for i in range(1, HISTORY + 50)])
        assert len(pane.equity_history) == HISTORY
        assert pane.equity_history[-1] == HISTORY + 49
        assert len(pane.drawdown_history) == HISTORY


# ----- events ----------------------------------------------------------------------------------------------
async def test_event_log_filters_without_losing_lines() -> None:
    log = EventLog()
    async with OneWidget(log).run_test(size=(100, 20)) as pilot:
        routine = [event(100 + i, "market.marks", marks={BTC: "64000"}) for i in range(5)]
        log.add([*sample_events(), *routine])
        await pilot.pause()
        lines = log.shown_lines
        assert len(lines) == 12  # routine marks skipped by default
        assert lines[0] == "14:11:41 INFO order.filled BTC/USDT:USDT sell 0.01 @ 64000.5 client_order_id=ck-0"
        assert lines[1] == "14:11:42 WARN feed.stale market silent 1.0 s"
        assert lines[2].startswith("14:11:43 CRIT killswitch.engaged cause=drawdown 7.2% by=risk")
        assert len(log.lines) == 12

        log.set_filter("FEED")
        await pilot.pause()
        assert len(log.shown_lines) == 4 and all("feed.stale" in line for line in log.shown_lines)
        log.set_filter("risk")  # the source matches too
        assert len(log.shown_lines) == 4 and all("killswitch" in line for line in log.shown_lines)
        log.set_filter("")
        assert log.shown_lines == lines

        log.set_min_severity("warn")
        assert len(log.shown_lines) == 8
        log.set_min_severity("CRIT")
        assert len(log.shown_lines) == 4
        log.set_min_severity("info")
        log.show_routine = True
        assert len(log.shown_lines) == 17
        log.show_routine = False
        assert log.shown_lines == lines
        with pytest.raises(ValueError):
            log.set_min_severity("loud")


async def test_event_log_keeps_the_last_2000_lines() -> None:
    log = EventLog()
    async with OneWidget(log).run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        log.add([event(i, "alert", "warning", message=f"line {i}") for i in range(1, 2501)])
        await pilot.pause()
        assert len(log.shown_lines) == MAX_LINES
        assert len(log.lines) == MAX_LINES
        assert log.shown_lines[0].endswith("line 501")
        assert log.shown_lines[-1].endswith("line 2500")
        log.set_filter("line 25")
        log.set_filter("")
        assert len(log.shown_lines) == MAX_LINES


# ----- banner and header -----------------------------------------------------------------------------------
async def test_banner_says_kill_switch_reduce_only_or_replay_and_hides_otherwise() -> None:
    banner = AlertBanner()
    async with OneWidget(banner).run_test(size=(100, 5)) as pilot:
        banner.show(make_state(), breaker_pct=5.0)
        await pilot.pause()
        assert not banner.has_class("-active") and banner.text == ""
        assert banner.region.height == 0

        killed = KillSwitch(True, "drawdown 10.2% over limit", "risk", NOW)
        banner.show(make_state(kill_switch=killed, drawdown_pct=D("10.2")), 5.0)
        await pilot.pause()
        assert banner.text == "KILL SWITCH ENGAGED — drawdown 10.2% over limit (by risk)"
        assert banner.has_class("-active") and banner.has_class("-kill")
        assert banner.region.height == 1

        banner.show(make_state(drawdown_pct=D("5.2")), 5.0)
        assert banner.text == "REDUCE-ONLY — drawdown breaker at 5.00%"
        assert banner.has_class("-reduce-only") and not banner.has_class("-kill")

        banner.show(make_state(mode="replay"), 5.0)
        assert banner.text == "REPLAY"
        assert banner.has_class("-replay")

        banner.show(make_state(), 5.0)
        await pilot.pause()
        assert not banner.has_class("-active")


async def test_header_shows_exchange_mode_session_and_both_clocks() -> None:
    header = CockpitHeader()
    async with OneWidget(header).run_test(size=(100, 3)) as pilot:
        header.show(make_state(mode="dry-run"), NOW)
        await pilot.pause()
        assert header.text == "cockpit binanceusdm DRY-RUN 2026-09-21-live.duckdb 14:13:20 · UTC 14:13:20"
        assert header.query_one("#hdr-mode").has_class("-mode-dry-run")


# ----- the whole layout ------------------------------------------------------------------------------------
def test_layout_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(CockpitLayout(make_state()), terminal_size=(80, 24))


def test_layout_at_120x40(snap_compare: Any) -> None:
    assert snap_compare(CockpitLayout(make_state()), terminal_size=(120, 40))


def test_layout_kill_switch_high_contrast_at_120x40(snap_compare: Any) -> None:
    killed = KillSwitch(True, "drawdown 7.2% over limit", "risk", NOW)
    state = make_state(kill_switch=killed, drawdown_pct=D("7.2"), drawdown_band="red")
    assert snap_compare(CockpitLayout(state, theme="cockpit-high-contrast"), terminal_size=(120, 40))


def test_layout_ansi_theme_at_80x24(snap_compare: Any) -> None:
    app = CockpitLayout(make_state(mode="replay"), theme="cockpit-ansi")
    assert snap_compare(app, terminal_size=(80, 24))
