"""The line nobody can miss: kill switch engaged, reduce-only breaker, replay. Hidden when all is well."""

from __future__ import annotations

from textual.widgets import Static

from cockpit.state import State
from widgets.format import fmt_pct

BANNER_CLASSES = ("-kill", "-reduce-only", "-replay")


def banner_text(state: State, breaker_pct: float) -> tuple[str, str]:
    """The banner's text and class ("" when nothing is wrong)."""
    parts: list[str] = []
    cls = ""
    if state.kill_switch.engaged:
        ks = state.kill_switch
        parts.append(f"KILL SWITCH ENGAGED — {ks.cause or 'no cause given'} (by {ks.by or '?'})")
        cls = "-kill"
    elif float(state.drawdown_pct) >= breaker_pct:
        parts.append(f"REDUCE-ONLY — drawdown breaker at {fmt_pct(breaker_pct)}")
        cls = "-reduce-only"
    if state.mode == "replay":
        parts.append("REPLAY")
        cls = cls or "-replay"
    return "  ·  ".join(parts), cls


class AlertBanner(Static):
    """Full-width alert line; `-active` plus one of -kill / -reduce-only / -replay when shown."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__("", name=name, id=id, classes=classes, markup=False)
        self.text = ""
        self.kind = ""

    def show(self, state: State, breaker_pct: float) -> None:
        text, cls = banner_text(state, breaker_pct)
        if text != self.text:
            self.text = text
            self.update(text)
        if cls != self.kind:
            for name in BANNER_CLASSES:
                self.set_class(name == cls, name)
            self.set_class(bool(cls), "-active")
            self.kind = cls
