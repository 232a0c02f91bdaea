"""The base of dialogs that only show something (help, stats, dead letters, reconcile result, backups)."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual.binding import Binding, BindingType
from textual.screen import ModalScreen

Result = TypeVar("Result")


class ViewScreen(ModalScreen[Result]):
    """A modal that asks for nothing typed: the emergency key `k` still engages the kill switch over it.
    A modal hides the app's own bindings; dialogs that take typed words (ConfirmScreen) are not views."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("k", "app.kill_switch", "Kill switch", show=False),
    ]

    account = ""  # over a fleet: the account it shows, named in its title (cockpit/ui/fleet_app.py)

    def titled(self, title: str) -> str:
        """`title`, after the account's name over a fleet: "[alpha] Dead-letter queue: 2 open"."""
        return f"[{self.account}] {title}" if self.account else title
