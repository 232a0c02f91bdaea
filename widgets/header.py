"""One line: exchange, mode badge, session file, local and UTC clock."""

from __future__ import annotations

from pathlib import PurePath

from textual.app import ComposeResult
from textual.widget import Widget

from cockpit.core.state import State
from cockpit.core.text import DASH, hms
from widgets._lines import StatusLine

MODE_WORDS = {"live": "LIVE", "dry-run": "DRY-RUN", "demo": "DEMO", "replay": "REPLAY"}
MODE_CLASSES = tuple(f"-mode-{m}" for m in MODE_WORDS)


class CockpitHeader(Widget):
    """`#hdr-title`, `#hdr-account` (-shown in a fleet),
    `#hdr-exchange`, `#hdr-mode` (class -mode-live/-dry-run/-demo/-replay), `#hdr-session`,
    `#hdr-clock`."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id, classes=classes)
        self._mode = ""

    def compose(self) -> ComposeResult:
        yield StatusLine("cockpit", id="hdr-title")
        yield StatusLine("", id="hdr-account")  # a fleet's selected account (hidden with one engine)
        yield StatusLine(DASH, id="hdr-exchange")
        yield StatusLine(DASH, id="hdr-mode")
        yield StatusLine("", id="hdr-session")
        yield StatusLine("", id="hdr-clock")

    @property
    def text(self) -> str:
        ids = ("hdr-title", "hdr-account", "hdr-exchange", "hdr-mode", "hdr-session", "hdr-clock")
        texts = [self.query_one(f"#{i}", StatusLine).text for i in ids]
        return " ".join(t for i, t in zip(ids, texts, strict=True) if t or i != "hdr-account")

    def show_account(self, account: str) -> None:
        """Which account of the fleet the panes show ("" hides it: one engine)."""
        line = self.query_one("#hdr-account", StatusLine)
        line.set(account)
        line.set_class(bool(account), "-shown")

    def show(self, state: State, now: float) -> None:
        self.query_one("#hdr-exchange", StatusLine).set(state.exchange or DASH)
        self.query_one("#hdr-mode", StatusLine).set(MODE_WORDS.get(state.mode, state.mode.upper()))
        if state.mode != self._mode:
            for mode in MODE_WORDS:
                self.query_one("#hdr-mode").set_class(mode == state.mode, f"-mode-{mode}")
            self._mode = state.mode
        session = PurePath(state.session_file).name if state.session_file else DASH
        self.query_one("#hdr-session", StatusLine).set(session)
        self.query_one("#hdr-clock", StatusLine).set(f"{hms(now)} · UTC {hms(now, utc=True)}")
