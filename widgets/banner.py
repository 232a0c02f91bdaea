"""The line nobody can miss: the engine unreachable (an attached cockpit), kill switch engaged, reduce-only
breaker, market data down for held positions, replay. Hidden when all is well."""

from __future__ import annotations

from textual.widgets import Static

from cockpit.core.domain import key_symbol
from cockpit.core.state import State
from cockpit.core.text import DASH, fmt_age, fmt_pct, hms
from widgets.positions import display_symbol, stale_symbols

BANNER_CLASSES = ("-unreachable", "-kill", "-reduce-only", "-stale", "-replay")


def banner_text(
    state: State, breaker_pct: float, now: float | None = None, link: str | None = None
) -> tuple[str, str]:
    """The banner's text and class ("" when nothing is wrong). `now` is the UI's clock (default: State's last
    event time): marks of held positions older than State's stale_after_s are market data down. `link`: what
    is wrong with the link to an attached engine; the State shown is then dated."""
    parts: list[str] = []
    cls = ""
    if link is not None:
        as_of = hms(state.ts) if state.ts else DASH
        parts.append(f"{link} — showing its State as of {as_of} (event {state.seq})")
        cls = "-unreachable"
    if state.kill_switch.engaged:
        ks = state.kill_switch
        parts.append(f"KILL SWITCH ENGAGED — {ks.cause or 'no cause given'} (by {ks.by or '?'})")
        cls = cls or "-kill"
    elif float(state.drawdown_pct) >= breaker_pct:
        parts.append(f"REDUCE-ONLY — drawdown breaker at {fmt_pct(breaker_pct)}")
        cls = "-reduce-only"
    at = state.ts if now is None else now
    stale = stale_symbols(state, at)
    if stale:
        symbols = dict.fromkeys(key_symbol(k) for k in stale)  # a hedge symbol's two legs: named once
        oldest = min(state.mark_ts[s] for s in symbols)
        names = ", ".join(display_symbol(s) for s in symbols)
        parts.append(
            f"MARKET DATA DOWN — {names} marks {fmt_age(at - oldest)} old; uPnL and drawdown are stale"
        )
        cls = cls or "-stale"
    if state.mode == "replay":
        parts.append("REPLAY")
        cls = cls or "-replay"
    return "  ·  ".join(parts), cls


class AlertBanner(Static):
    """Full-width alert line; `-active` plus one of -kill / -reduce-only / -stale / -replay when shown."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__("", name=name, id=id, classes=classes, markup=False)
        self.text = ""
        self.kind = ""

    def show(
        self, state: State, breaker_pct: float, now: float | None = None, link: str | None = None
    ) -> None:
        text, cls = banner_text(state, breaker_pct, now, link)
        if text != self.text:
            self.text = text
            self.update(text)
        if cls != self.kind:
            for name in BANNER_CLASSES:
                self.set_class(name == cls, name)
            self.set_class(bool(cls), "-active")
            self.kind = cls
