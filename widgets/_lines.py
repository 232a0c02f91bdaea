"""A Label that only repaints when its text or status class changes (cheap, idempotent updates)."""

from __future__ import annotations

from textual.widgets import Label

STATUS_CLASSES = ("-ok", "-warn", "-critical", "-stale", "-muted")


class StatusLine(Label):
    """One line of a pane: text plus one status class (-ok, -warn, -critical, -stale, -muted)."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(text, id=id, classes=classes, markup=False)
        self._text = text
        self._status = ""

    @property
    def text(self) -> str:
        return self._text

    @property
    def status(self) -> str:
        return self._status

    def set(self, text: str, status: str = "") -> None:
        if text != self._text:
            self._text = text
            self.update(text)
        if status != self._status:
            if self._status:
                self.remove_class(self._status)
            if status:
                self.add_class(status)
            self._status = status
