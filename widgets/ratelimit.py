"""The exchange request budget: a drawn gauge of the shared budget (Binance's weight per minute, Bybit's
requests per IP per 5 s), the queue, recent 429s, the ban / cooldown countdown, and the busiest endpoint with
a budget of its own (Bybit's per-second ones) when one is in use."""

from __future__ import annotations

from textual.app import ComposeResult, RenderResult
from textual.widget import Widget

from cockpit.core.state import RateLimitView
from cockpit.core.text import fmt_countdown, per_window
from widgets._lines import StatusLine

WARN_AT = 60.0
CRITICAL_ABOVE = 85.0
FULL = "█"
EMPTY = "░"


def usage_pct(view: RateLimitView) -> float:
    if view.limit <= 0:
        return 100.0 if view.used else 0.0
    return view.used / view.limit * 100


def usage_class(pct: float) -> str:
    """<60 % ok, 60–85 % warn, >85 % critical."""
    return "-ok" if pct < WARN_AT else "-warn" if pct <= CRITICAL_ABOVE else "-critical"


def gauge_label(view: RateLimitView) -> str:
    """ "812/2400/min (34%)", "40/600/5s (7%)"."""
    return f"{view.used}/{view.limit}{per_window(view.window_s, short=True)} ({usage_pct(view):.0f}%)"


def endpoint_text(view: RateLimitView, now: float) -> tuple[str, str]:
    """The busiest endpoint: "order/create 7/10/s", or "order/create refused · 1s" while it waits for its
    reset after the exchange refused it; "" when no endpoint budget is in use."""
    if not view.endpoint:
        return "", ""
    if view.endpoint_cooldown_until is not None and view.endpoint_cooldown_until > now:
        return f"{view.endpoint} refused · {fmt_countdown(view.endpoint_cooldown_until - now)}", "-warn"
    pct = view.endpoint_used / view.endpoint_limit * 100 if view.endpoint_limit else 0.0
    return f"{view.endpoint} {view.endpoint_used}/{view.endpoint_limit}/s", usage_class(pct)  # per second


def hold_text(view: RateLimitView, now: float) -> tuple[str, str]:
    """ "BANNED 27s", "COOLDOWN 3s" or "no ban", with its status class."""
    if view.banned_until is not None and view.banned_until > now:
        return f"BANNED {fmt_countdown(view.banned_until - now)}", "-critical"
    if view.cooldown_until is not None and view.cooldown_until > now:
        return f"COOLDOWN {fmt_countdown(view.cooldown_until - now)}", "-warn"
    return "no ban", "-ok"


class Gauge(Widget):
    """A bar drawn with block characters, as wide as the widget, followed by "used/limit (pct%)"."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self.ratio = 0.0
        self.label = ""

    def set(self, ratio: float, label: str) -> None:
        ratio = min(1.0, max(0.0, ratio))
        if (ratio, label) != (self.ratio, self.label):
            self.ratio, self.label = ratio, label
            self.refresh()

    def render(self) -> RenderResult:
        suffix = f" {self.label}"
        width = max(4, self.size.width - len(suffix))
        filled = round(width * self.ratio)
        if self.ratio > 0 and filled == 0:
            filled = 1
        return FULL * filled + EMPTY * (width - filled) + suffix


class RateLimitPane(Widget):
    """Used/limit gauge (classes -ok/-warn/-critical by usage), queue and 429s, ban or cooldown countdown, and
    the busiest endpoint's own budget (hidden on an exchange without them)."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id, classes=classes)
        self._level = ""

    def compose(self) -> ComposeResult:
        yield StatusLine("Rate", id="rl-name")
        yield Gauge(id="rl-gauge")
        yield StatusLine("queued — · 429s —", id="rl-queue")
        yield StatusLine("no ban", id="rl-hold")
        endpoint = StatusLine("", id="rl-endpoint")
        endpoint.display = False  # shown on an exchange whose endpoints have budgets of their own, once used
        yield endpoint

    @property
    def gauge(self) -> Gauge:
        return self.query_one("#rl-gauge", Gauge)

    @property
    def lines_text(self) -> list[str]:
        """The lines shown: gauge, queue, hold, and the busiest endpoint when one is in use."""
        endpoint = self.query_one("#rl-endpoint", StatusLine)
        return [
            self.gauge.label,
            self.query_one("#rl-queue", StatusLine).text,
            self.query_one("#rl-hold", StatusLine).text,
            *([endpoint.text] if endpoint.display else []),
        ]

    def show(self, view: RateLimitView, now: float) -> None:
        pct = usage_pct(view)
        level = usage_class(pct)
        self.gauge.set(pct / 100, gauge_label(view))
        if level != self._level:
            for cls in ("-ok", "-warn", "-critical"):
                self.gauge.set_class(cls == level, cls)
                self.set_class(cls == level, cls)
            self._level = level
        queue = self.query_one("#rl-queue", StatusLine)
        queue.set(
            f"queued {view.queued} · 429s {view.rejected_recent}",
            "-warn" if view.rejected_recent or view.queued else "",
        )
        text, cls = hold_text(view, now)
        self.query_one("#rl-hold", StatusLine).set(text, cls)
        endpoint = self.query_one("#rl-endpoint", StatusLine)
        text, cls = endpoint_text(view, now)
        endpoint.display = bool(text)
        endpoint.set(text, cls)
