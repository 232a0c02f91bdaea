"""Confirmation a stray key cannot give: type a word, or press the same key a second time. Escape cancels.

The dialog reads its keys itself, in the order they were typed: while it is on top the app hands it every
key the terminal sends (`take_key`), from the moment it is pushed — before it has even mounted. So a trader
who types `F FLATTEN⏎` or `q q` at once gets exactly what was typed: nothing is dropped into a half-built
dialog and no second dialog opens. The input box only shows what has been typed; it never takes focus.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True only on the typed `word` (exactly) + Enter, or a second press of `key`."""

    BINDINGS: ClassVar[list[BindingType]] = [("escape", "cancel", "Cancel")]

    def __init__(self, title: str, body: str, *, word: str | None = None, key: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        if (word is None) == (key is None):
            raise ValueError("confirm with either a word to type or a key to press again")
        self.title_text = title
        self.body = body
        self.word = word
        self.key = key
        self.typed = ""  # what the trader has typed so far (word dialogs)
        self.refusal = ""  # why the last Enter did not confirm
        self.answer: bool | None = None  # set once: the first decision wins

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Label(self.title_text, id="dialog-title", markup=False)  # names, engines' words: as typed
            yield Static(self.body, id="dialog-body", markup=False)
            if self.word is not None:
                box = Input(self.typed, placeholder=f"type {self.word} to confirm", id="confirm-input")
                box.can_focus = False  # a view of `typed`: the keys come to the screen, in order
                yield box
                hint = f"Type {self.word} and press Enter to confirm · Escape cancels"
            else:
                hint = f"Press {self.key} again to confirm · Escape cancels"
            yield Static(hint, id="dialog-hint", markup=False)
            yield Static(self.refusal, id="dialog-error", markup=False)

    def take_key(self, event: events.Key) -> bool:
        """One key the trader typed while this dialog is on top; True if it is the dialog's to use."""
        if self.answer is not None:
            return True  # decided, on its way out: nothing more to type into it
        if event.key == "escape":
            self._decide(False)
        elif self.key is not None:
            if event.key != self.key:
                return event.is_printable  # other letters are stray keys; ctrl+q and friends still work
            self._decide(True)
        elif event.key == "enter":
            self._submit()
        elif event.key == "backspace":
            self._type(self.typed[:-1])
        elif event.is_printable and event.character is not None:
            self._type(self.typed + event.character)
        else:
            return False
        return True

    def take_paste(self, text: str) -> None:
        """Pasted text types into the word (a pasted newline never submits)."""
        if self.answer is None and self.word is not None:
            self._type(self.typed + "".join(c for c in text if c.isprintable()))

    def _type(self, typed: str) -> None:
        self.typed = typed
        self._show()

    def _submit(self) -> None:
        if self.typed.strip() == self.word:
            self._decide(True)
            return
        self.refusal = f"Not confirmed: type {self.word} exactly"
        self._type("")

    def _show(self) -> None:
        try:  # not mounted yet: compose shows what was typed ahead
            self.query_one("#confirm-input", Input).value = self.typed
            self.query_one("#dialog-error", Static).update(self.refusal)
        except NoMatches:
            return

    def _decide(self, answer: bool) -> None:
        if self.answer is None:
            self.answer = answer
            self.dismiss(answer)

    def action_cancel(self) -> None:
        self._decide(False)
