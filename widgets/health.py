"""Health of every part the cockpit depends on, one line each, with the status as a word."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from cockpit.core.domain import Telemetry
from cockpit.core.state import SESSION_FILE_GONE, HealthItem, State, StreamStatus
from cockpit.core.text import (
    DASH,
    fmt_age,
    fmt_countdown,
    fmt_ms,
    fmt_offset_ms,
    one_line,
    truncate,
)
from widgets._lines import StatusLine

NAME_WIDTH = 9
ERROR_WIDTH = 60
MODE_WORDS = {"live": "LIVE", "dry-run": "DRY-RUN", "demo": "DEMO", "replay": "REPLAY"}
CRITICAL_STATUSES = {
    "banned",
    "auth_failed",
    "failed",
    "corrupt",
    "disconnected",
    "kill",
    "critical",
    *SESSION_FILE_GONE,
}
STREAM_RANK = {"connected": 0, "connecting": 1, "stale": 2, "reconnecting": 3, "disconnected": 4}


def _line(name: str, rest: str) -> str:
    return f"{name:<{NAME_WIDTH}} {rest}"


def _word(status: str) -> str:
    return "OK" if status == "ok" else status.replace("_", " ").upper()


def _health_class(item: HealthItem) -> str:
    if item.status == "ok":
        return "-ok"
    if item.status == "unknown":
        return "-muted"
    if item.status == "stale":
        return "-stale"
    return "-critical" if item.status in CRITICAL_STATUSES else "-warn"


def stream_text(status: StreamStatus, now: float) -> tuple[str, str]:
    """A stream's status word and class: "OK", "RECONNECTING #2 in 4s", "STALE 6.2s", "DISCONNECTED"."""
    live = now > 0 and now >= status.since  # a replay has no clock: show the recorded figures
    if status.state == "connected":
        return "OK", "-ok"
    if status.state == "reconnecting":
        retry = status.retry_in_s
        if retry is not None and live:
            retry = max(0.0, status.since + retry - now)
        when = f" in {fmt_countdown(retry)}" if retry is not None else ""
        return f"RECONNECTING #{status.attempt}{when}", "-critical" if status.attempt >= 3 else "-warn"
    if status.state == "stale":
        silent = status.silent_s
        if silent is not None and live:
            silent += now - status.since
        return f"STALE {fmt_age(silent)}", "-stale"
    if status.state == "disconnected":
        return "DISCONNECTED", "-critical"
    return status.state.upper(), "-muted"


class HealthPane(Widget):
    """Exchange, market feed (one line per stream), user stream, database, clock, bad exchange data (once
    there was some), a failing notification target (while it fails), mode and kill switch."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id, classes=classes)
        self._feeds: dict[str, StatusLine] = {}

    def compose(self) -> ComposeResult:
        yield StatusLine(_line("Exchange", DASH), id="health-exchange")
        yield StatusLine(_line("Feed", DASH), id="health-feed-none", classes="health-feed -muted")
        yield StatusLine(_line("User", DASH), id="health-user")
        yield StatusLine(_line("Database", DASH), id="health-db")
        yield StatusLine(_line("Clock", DASH), id="health-clock")
        data = StatusLine(_line("Data", DASH), id="health-data")
        data.display = False  # shown once the exchange sent something cockpit refused (data.rejected)
        yield data
        notify = StatusLine(_line("Notify", DASH), id="health-notify")
        notify.display = False  # shown while a notification target fails (cockpit/notify/delivery.py)
        yield notify
        yield StatusLine(_line("Mode", DASH), id="health-mode")
        yield StatusLine(_line("Kill", DASH), id="health-kill")

    def line(self, line_id: str) -> StatusLine:
        """A line by id (health-exchange, health-feed-<n>, health-user, health-db, health-clock, …)."""
        return self.query_one(f"#{line_id}", StatusLine)

    @property
    def lines_text(self) -> list[str]:
        return [line.text for line in self.query(StatusLine) if line.display]

    def show(self, state: State, telemetry: Telemetry) -> None:
        now = telemetry.now
        # Exchange
        ex = state.health_of("exchange")
        parts = [_word(ex.status), f"p95 {fmt_ms(telemetry.rest_p95_ms)}"]
        if ex.detail and not ex.ok:
            parts.append(truncate(one_line(ex.detail), ERROR_WIDTH))
        if telemetry.last_error:
            parts.append("last: " + truncate(one_line(telemetry.last_error), ERROR_WIDTH))
        self.line("health-exchange").set(_line("Exchange", " · ".join(parts)), _health_class(ex))

        # Market streams: one line each
        market = {n: s for n, s in sorted(state.streams.items()) if not n.startswith("user")}
        self._sync_feeds(market, now)

        # User stream(s): the worst one
        users = [(n, s) for n, s in sorted(state.streams.items()) if n.startswith("user")]
        if users:
            _, worst = max(users, key=lambda ns: STREAM_RANK.get(ns[1].state, 1))
            word, cls = stream_text(worst, now)
            self.line("health-user").set(_line("User", word), cls)
        else:
            user = state.health_of("user_stream")
            self.line("health-user").set(_line("User", _word(user.status)), _health_class(user))

        # Database
        db = state.health_of("database")
        parts = [_word(db.status)]
        if db.detail and not db.ok:
            parts.append(truncate(one_line(db.detail), ERROR_WIDTH))
        parts.append(f"commit {fmt_age(telemetry.last_commit_age_s)}")
        parts.append(f"queue {telemetry.store_queue if telemetry.store_queue is not None else DASH}")
        parts.append(f"backup {fmt_age(telemetry.last_backup_age_s)}")
        self.line("health-db").set(_line("Database", " · ".join(parts)), _health_class(db))

        # Clock
        clock = state.health_of("clock")
        self.line("health-clock").set(
            _line("Clock", f"{_word(clock.status)} {fmt_offset_ms(state.clock_offset_ms)}"),
            _health_class(clock),
        )

        # Bad exchange data refused at the boundary (a line only once there was some)
        data = state.health.get("data")
        line = self.line("health-data")
        line.display = data is not None
        if data is not None:
            parts = [_word(data.status)]
            if data.detail and not data.ok:
                parts.append(truncate(one_line(data.detail), ERROR_WIDTH))
            line.set(_line("Data", " · ".join(parts)), _health_class(data))

        # Notification targets: a line while one fails (it says which, and why)
        notify = state.health.get("notify")
        line = self.line("health-notify")
        line.display = notify is not None and not notify.ok
        if notify is not None and not notify.ok:
            parts = [_word(notify.status)]
            if notify.detail:
                parts.append(truncate(one_line(notify.detail), ERROR_WIDTH))
            line.set(_line("Notify", " · ".join(parts)), "-warn")

        # Mode and kill switch
        mode = MODE_WORDS.get(state.mode, state.mode.upper())
        self.line("health-mode").set(_line("Mode", mode), "-warn" if state.mode == "live" else "-muted")
        ks = state.kill_switch
        if ks.engaged:
            self.line("health-kill").set(_line("Kill", f"ENGAGED: {ks.cause or '?'}"), "-critical")
        else:
            self.line("health-kill").set(_line("Kill", "OFF"), "-ok")

    def _sync_feeds(self, market: dict[str, StreamStatus], now: float) -> None:
        placeholder = self.line("health-feed-none")
        placeholder.display = not market
        for name in [n for n in self._feeds if n not in market]:
            self._feeds.pop(name).remove()
        for name, status in market.items():
            label = self._feeds.get(name)
            if label is None:
                label = StatusLine(classes="health-feed")
                self._feeds[name] = label
                self.mount(label, before=self.line("health-user"))
            shown = name.removeprefix("market/") if name != "market" else name
            word, cls = stream_text(status, now)
            label.set(_line("Feed", f"{shown} {word}"), cls)
