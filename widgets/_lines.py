"""A Label that only repaints when its text or status class changes (cheap, idempotent updates)."""

from __future__ import annotations

from rich.cells import cell_len
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
            # A new layout only when the line's size can follow its text (width: auto, as in the header)
            # and the text's width changed; otherwise a repaint of this line is enough (a layout of the
            # whole screen per changed line was a third of the frames under load).
            width = self.styles.width
            resize = (width is None or width.is_auto) and cell_len(text) != cell_len(self._text)
            self._text = text
            self.update(text, layout=resize)
        if status != self._status:
            if self._status:
                self.remove_class(self._status)
            if status:
                self.add_class(status)
            self._status = status
