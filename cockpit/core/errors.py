"""Cockpit's own error type: a short title, the detail, and the fix.

Library errors (ccxt, duckdb, OSError) are wrapped into these at the boundary. The CLI prints all three
and exits non-zero; the UI shows the title; the event log keeps all three.
"""

from __future__ import annotations


class CockpitError(Exception):
    """An error an operator can act on."""

    exit_code: int = 1

    def __init__(self, title: str, detail: str = "", fix: str = "") -> None:
        super().__init__(title if not detail else f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.fix = fix

    def render(self) -> str:
        lines = [f"error: {self.title}"]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class UsageError(CockpitError):
    """Bad input on the command line or in a file: exit code 2."""

    exit_code = 2
