"""The outcome of a fleet-wide action: one line per account, verified or not, and what to do where not."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from cockpit.core.fleet import AccountOutcome, outcomes_summary
from cockpit.ui.screens.view import ViewScreen


class FleetOutcomeScreen(ViewScreen[None]):
    """Each account's verified outcome (`VERIFIED` / `NOT VERIFIED` and why). Enter or Escape closes."""

    BINDINGS = [*ViewScreen.BINDINGS, ("escape", "close", "Close"), ("enter", "close", "Close")]
    AUTO_FOCUS = ""

    def __init__(self, action: str, outcomes: list[AccountOutcome]) -> None:
        super().__init__(classes="dialog-screen")
        self.action = action
        self.outcomes = outcomes

    @property
    def lines(self) -> list[str]:
        return [f"{'VERIFIED' if o.verified else 'NOT VERIFIED'}  {o.line()}" for o in self.outcomes]

    def compose(self) -> ComposeResult:
        every = all(o.verified for o in self.outcomes)
        with Vertical(id="dialog", classes="fleet-outcome" + ("" if every else " -not-verified")):
            yield Label(outcomes_summary(self.action, self.outcomes), id="dialog-title", markup=False)
            yield Static("\n".join(self.lines), id="dialog-body", markup=False)  # engines' own words
            yield Static("Enter or Escape closes", id="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
