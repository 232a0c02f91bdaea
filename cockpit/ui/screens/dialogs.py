"""The app's informational dialogs: reconcile result (with ghost choices), help, dead letters, backups."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from rich.markdown import Markdown as RichMarkdown
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Label, Static

from cockpit.core.commands import ReconcileResult
from cockpit.core.text import fmt_age
from cockpit.engine.backups import BackupInfo
from cockpit.store import DeadLetterRow
from cockpit.ui.screens.view import ViewScreen


class ReconcileScreen(ViewScreen[tuple[str, str] | None]):
    """What a reconcile found; for each ghost, Adopt or Flatten. Dismisses with (action, symbol) or None."""

    BINDINGS = [("escape", "close", "Close"), ("enter", "close", "Close")]
    # nothing focused at first: Enter closes, never adopts the first ghost (Tab reaches the buttons)
    AUTO_FOCUS = ""

    def __init__(self, result: ReconcileResult) -> None:
        super().__init__(classes="dialog-screen")
        self.result = result

    def compose(self) -> ComposeResult:
        r = self.result
        ghosts = r.ghosts_open
        by_symbol = ", ".join(f"{s} {n}" for s, n in r.recovered_by_symbol.items())
        with Vertical(id="dialog", classes="reconcile"):
            yield Label(
                self.titled("Reconcile: the exchange is the source of truth"), id="dialog-title", markup=False
            )
            lines = [
                f"trigger: {r.trigger}  ·  {r.seconds:.2f} s",
                f"matched positions: {r.matched}",
                f"recovered fills: {r.recovered_fills}" + (f" ({by_symbol})" if by_symbol else ""),
                f"corrected from recovered fills: {', '.join(r.corrected) or 'none'}",
                f"adopted (open before the session): {', '.join(r.adopted) or 'none'}",
                f"orders only at the exchange: {r.orders_added}  ·  only here, closed: {r.orders_removed}",
                f"GHOSTS: {len(ghosts)} (found now: {len(r.ghosts)})" if ghosts else "ghosts: none",
            ]
            yield Static("\n".join(lines), id="dialog-body")
            for index, symbol in enumerate(ghosts):
                with Horizontal(classes="ghost-row"):
                    yield Label(f"GHOST {symbol}", classes="ghost-label")
                    yield Button("Adopt", id=f"adopt-{index}", classes="ghost-adopt")
                    yield Button("Flatten", id=f"flatten-{index}", variant="error", classes="ghost-flatten")
            yield Static("Enter or Escape closes", id="dialog-hint")

    @on(Button.Pressed)
    def _choice(self, event: Button.Pressed) -> None:
        action, _, index = (event.button.id or "").partition("-")
        self.dismiss((action, self.result.ghosts_open[int(index)]))

    def action_close(self) -> None:
        self.dismiss(None)


def help_text() -> str:
    return resources.files("cockpit.ui.screens").joinpath("help.md").read_text(encoding="utf-8")


class HelpScreen(ViewScreen[None]):
    BINDINGS = [("escape", "close", "Close"), ("question_mark", "close", "Close"), ("q", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        # One widget rendering the whole document (Rich's Markdown): Textual's Markdown widget builds
        # ~750 widgets for these tables, which made `?` take 0.3–0.6 s to open.
        with VerticalScroll(id="dialog", classes="help"):
            yield Static(RichMarkdown(help_text()), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)


class DeadLettersScreen(ViewScreen[None]):
    BINDINGS = [("escape", "close", "Close"), ("d", "close", "Close")]

    def __init__(self, rows: list[DeadLetterRow], now: float | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.rows = rows
        self.now = now or time.time()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dlq"):
            yield Label(
                self.titled(f"Dead-letter queue: {len(self.rows)} open"), id="dialog-title", markup=False
            )
            table: DataTable[str] = DataTable(id="dlq-table", cursor_type="row", zebra_stripes=True)
            table.add_columns("id", "age", "operation", "class", "error", "reason", "tries")
            for row in self.rows:
                table.add_row(
                    str(row.id),
                    fmt_age(self.now - row.ts),
                    row.op,
                    row.error_class,
                    row.error_type,
                    row.reason,
                    str(row.attempts),
                    key=str(row.id),
                )
            yield table
            if not self.rows:
                yield Static("Nothing has failed for good.", id="dialog-body")
            yield Static("Escape closes · `cockpit dlq` lists, retries and removes them", id="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)


class RestoreScreen(ViewScreen[Path | None]):
    """Pick a backup (newest first, with age, size and verification); dismisses with its path or None."""

    BINDINGS = [("escape", "close", "Cancel")]

    def __init__(self, backups: list[BackupInfo], now: float | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.backups = backups
        self.now = now or time.time()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="restore"):
            yield Label(self.titled("Restore the session from a backup"), id="dialog-title", markup=False)
            table: DataTable[str] = DataTable(id="backup-table", cursor_type="row")
            table.add_columns("backup", "age", "size", "verified", "events")
            for info in self.backups:
                verified = {True: "VERIFIED", False: f"BAD {info.problem}"[:40], None: "unchecked"}[
                    info.verified
                ]
                table.add_row(
                    info.path.name,
                    fmt_age(self.now - info.created),
                    f"{info.size_bytes / 1e6:.1f} MB",
                    verified,
                    str(info.last_seq or "—"),
                    key=str(info.path),
                )
            yield table
            if not self.backups:
                yield Static("No backups yet: press b to take one.", id="dialog-body")
            yield Static("Enter picks a verified backup · Escape cancels", id="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#backup-table", DataTable).focus()

    @on(DataTable.RowSelected, "#backup-table")
    def _picked(self, event: DataTable.RowSelected) -> None:
        info = next(b for b in self.backups if str(b.path) == event.row_key.value)
        if info.verified is False:
            self.notify(f"{info.path.name} failed verification: pick another", severity="error")
            return
        self.dismiss(info.path)

    def action_close(self) -> None:
        self.dismiss(None)
