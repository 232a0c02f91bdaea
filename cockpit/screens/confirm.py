"""Confirmation a stray key cannot give: type a word, or press the same key a second time. Escape cancels."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on the typed `word` (exactly) or a second press of `key`."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str, *, word: str | None = None, key: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        if (word is None) == (key is None):
            raise ValueError("confirm with either a word to type or a key to press again")
        self.title_text = title
        self.body = body
        self.word = word
        self.key = key

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(self.title_text, id="dialog-title")
            yield Static(self.body, id="dialog-body")
            if self.word is not None:
                yield Input(placeholder=f"type {self.word} to confirm", id="confirm-input")
                hint = f"Type {self.word} and press Enter to confirm · Escape cancels"
            else:
                hint = f"Press {self.key} again to confirm · Escape cancels"
            yield Static(hint, id="dialog-hint")
            yield Static("", id="dialog-error")

    def on_mount(self) -> None:
        if self.word is not None:
            self.query_one("#confirm-input", Input).focus()

    def on_key(self, event: events.Key) -> None:
        if self.key is not None and event.key == self.key:
            event.stop()
            self.dismiss(True)

    @on(Input.Submitted, "#confirm-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.word:
            self.dismiss(True)
        else:
            self.query_one("#dialog-error", Static).update(f"Not confirmed: type {self.word} exactly")
            event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)
