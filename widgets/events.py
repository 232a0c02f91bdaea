"""The event log: one line per event (time, severity word, kind, summary), filterable, bounded."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from cockpit.core import events as ev
from cockpit.core.domain import ROUTINE_KEPT, ROUTINE_KINDS, Event
from cockpit.core.text import hms, one_line, truncate
from widgets._style import theme_style

MAX_LINES = 2000
SEVERITY_WORDS = {"info": "INFO", "warning": "WARN", "critical": "CRIT"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SEVERITY_ALIASES = {
    "info": "info",
    "warn": "warning",
    "warning": "warning",
    "crit": "critical",
    "critical": "critical",
}
SEVERITY_VARS = {"info": "", "warning": "warn", "critical": "critical"}
SUMMARY_WIDTH = 160
# keys of the order, fill and position payloads (cockpit/core/events.py), shown first when there is no message
HEAD_KEYS = ("symbol", "side", "amount", "qty")
PRICE_KEYS = ("price", "average", "entry")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(_value(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{…}" if value else "{}"
    return str(value)


def summarize(payload: Mapping[str, Any]) -> str:
    """`payload["message"]` when present, else "BTC/USDT:USDT sell 0.01 @ 64000.5 key=value …"."""
    message = cast(ev.Wording, payload).get("message")
    if message:
        return truncate(one_line(str(message)), SUMMARY_WIDTH)
    head = [_value(payload[k]) for k in HEAD_KEYS if payload.get(k) not in (None, "")]
    used = set(HEAD_KEYS)
    price = next((k for k in PRICE_KEYS if payload.get(k) not in (None, "", "0")), None)
    if price is not None and head:
        head.append(f"@ {_value(payload[price])}")
        used.add(price)
    rest = [f"{k}={_value(v)}" for k, v in payload.items() if k not in used and v is not None]
    return truncate(one_line(" ".join(head + rest)), SUMMARY_WIDTH)


def event_line(event: Event) -> str:
    word = SEVERITY_WORDS.get(event.severity, event.severity.upper())
    return f"{hms(event.ts)} {word:<4} {event.kind} {summarize(event.payload)}".rstrip()


class EventLog(RichLog):
    """A bounded log of events. The events are kept (deques) so filters can be changed without loss."""

    def __init__(
        self,
        *,
        show_routine: bool = False,
        name: str | None = None,
        id: str | None = None,  # noqa: A002
        classes: str | None = None,
    ) -> None:
        super().__init__(
            max_lines=MAX_LINES,
            min_width=20,
            wrap=False,
            markup=False,
            highlight=False,
            name=name,
            id=id,
            classes=classes,
        )
        self._events: deque[Event] = deque(maxlen=MAX_LINES)
        self._routine: deque[Event] = deque(maxlen=ROUTINE_KEPT)
        self._filter = ""
        self._min_rank = 0
        self._show_routine = show_routine
        self._shown: deque[str] = deque(maxlen=MAX_LINES)
        self._width = 0

    # ----- the contract ---------------------------------------------------------------------------------
    @property
    def show_routine(self) -> bool:
        return self._show_routine

    @show_routine.setter
    def show_routine(self, value: bool) -> None:
        if value != self._show_routine:
            self._show_routine = value
            self._rebuild()

    @property
    def shown_lines(self) -> list[str]:
        """The plain text of the lines currently shown, oldest first."""
        return list(self._shown)

    def add(self, events: Sequence[Event]) -> None:
        written = False
        for event in events:
            (self._routine if event.kind in ROUTINE_KINDS else self._events).append(event)
            if self._visible(event):
                self._write(event, scroll=False if self._size_known else None)  # deferred: RichLog's
                written = True
        if written and self.auto_scroll and self._size_known:
            # now, in the frame that shows the new lines (RichLog's own scroll waits for the next refresh)
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def reset(self, events: Sequence[Event] = ()) -> None:
        """Forget every event and show these instead (a replay that seeks)."""
        self._events.clear()
        self._routine.clear()
        for event in events:
            (self._routine if event.kind in ROUTINE_KINDS else self._events).append(event)
        self._rebuild()

    def set_filter(self, text: str) -> None:
        """Case-insensitive substring on kind, source and message; "" shows all."""
        text = text.strip().lower()
        if text != self._filter:
            self._filter = text
            self._rebuild()

    def set_min_severity(self, level: str) -> None:
        """ "info" (all), "warning"/"warn" or "critical"/"crit"."""
        severity = SEVERITY_ALIASES.get(level.strip().lower())
        if severity is None:
            raise ValueError(f"unknown severity {level!r}; one of info, warning, critical")
        rank = SEVERITY_RANK[severity]
        if rank != self._min_rank:
            self._min_rank = rank
            self._rebuild()

    # ----- internals ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._rebuild())

    def on_resize(self, event: Resize) -> None:
        # Lines are rendered (and ellipsized) at the width they were written at: re-render on a new width.
        if self.scrollable_content_region.width != self._width and self._shown:
            self._rebuild()

    def _visible(self, event: Event) -> bool:
        if event.kind in ROUTINE_KINDS and not self._show_routine:
            return False
        if SEVERITY_RANK.get(event.severity, 0) < self._min_rank:
            return False
        if not self._filter:
            return True
        message = str(cast(ev.Wording, event.payload).get("message", ""))
        haystack = f"{event.kind}\n{event.source}\n{message}\n{summarize(event.payload)}".lower()
        return self._filter in haystack

    def _write(self, event: Event, scroll: bool | None = None) -> None:
        line = event_line(event)
        self._shown.append(line)
        variable = SEVERITY_VARS.get(event.severity, "")
        style = theme_style(self.app, variable, bold=event.severity == "critical") if variable else ""
        # An explicit width: measuring would cap lines at the console's width, not this widget's.
        width = self.scrollable_content_region.width
        self._width = width
        text = Text(line, style=style, no_wrap=True, overflow="ellipsis")
        if width > 0:
            self.write(text, width=width, scroll_end=scroll)
        else:
            self.write(text, scroll_end=scroll)

    def _all(self) -> Iterable[Event]:
        if not self._show_routine:
            return self._events
        return heapq.merge(self._events, self._routine, key=lambda e: e.seq)

    def _rebuild(self) -> None:
        self.clear()
        self._shown.clear()
        visible = [e for e in self._all() if self._visible(e)][-MAX_LINES:]
        with self.app.batch_update():
            for event in visible:
                self._write(event)
