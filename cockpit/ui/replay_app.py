"""`cockpit replay SESSION.duckdb`: the cockpit's own panes, fed by the stored events — marked REPLAY.

The panes, their repaint, the themes and the palette are the live cockpit's (`PanesApp`,
cockpit/ui/panes.py), composed here under a timeline; the live app's actions are not: no key and no palette
command of this app reaches an exchange or the session file.

Keys: space play/pause, `+`/`-` speed (1× … 1000×), `.`/`,` step one event, `n`/`p` next/previous incident
(to its first symptom: one jump per episode, `cockpit.core.incidents`),
Home/End start/end, `g` go to a time, `/` filter the events, `a` the session's stats, `?` help, `q` quit.
"""

from __future__ import annotations

import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from cockpit.replay.session import SPEEDS
from cockpit.ui.backend import ReplayBackend
from cockpit.ui.panes import PanesApp
from widgets.timeline import TimelineBar

TICK_S = 0.1


class GoToTimeScreen(ModalScreen[str | None]):
    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Go to time (HH:MM:SS, local time of the session's day)", id="dialog-title")
            yield Input(placeholder="e.g. 14:03:30", id="goto-input")

    def on_mount(self) -> None:
        self.query_one("#goto-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReplayApp(PanesApp, inherit_bindings=False):
    """The shared panes under a timeline, and the replay's controls. n/p and the timeline show the stored
    session's incidents (the live app toasts its own as they open)."""

    TITLE = "cockpit replay"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "play_pause", "Play/pause", id="replay.play"),
        Binding("plus", "faster", "Faster", id="replay.faster"),
        Binding("minus", "slower", "Slower", id="replay.slower"),
        Binding("full_stop", "step_forward", "Step", id="replay.step"),
        Binding("comma", "step_back", "Back", id="replay.back"),
        Binding("n", "next_incident", "Next incident", id="replay.next"),
        Binding("p", "previous_incident", "Prev incident", id="replay.prev"),
        Binding("home", "start", "Start", id="replay.start", show=False, priority=True),
        Binding("end", "end", "End", id="replay.end", show=False, priority=True),
        Binding("g", "go_to_time", "Go to", id="replay.goto"),
        Binding("slash", "filter_events", "Filter", id="filter"),
        Binding("a", "stats", "Stats", id="stats"),
        Binding("o", "orders", "Orders", id="orders", show=False),
        Binding("q", "quit_replay", "Quit", id="replay.quit"),
        Binding("question_mark", "help", "Help", id="help", show=False),
    ]

    def __init__(self, backend: ReplayBackend, load_seconds: float = 0.0) -> None:
        super().__init__(backend)
        self.replay = backend
        self.playing = False
        self.speed_index = SPEEDS.index(10)
        self.load_seconds = load_seconds
        self._last_tick = time.monotonic()
        self._incidents = backend.session.incident_list

    @property
    def speed(self) -> int:
        return SPEEDS[self.speed_index]

    def compose(self) -> ComposeResult:
        yield TimelineBar(id="timeline")
        yield from super().compose()

    def panes_ready(self) -> None:
        self.notify(
            f"REPLAY of {self.replay.session.path.name}: {self.replay.session.total:,} events loaded in "
            f"{self.load_seconds:.2f} s — space plays, n/p jump between incidents",
            timeout=6,
        )
        self.set_interval(TICK_S, self._tick)
        self._show_timeline()

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        session = self.replay.session
        if not self.playing or session.position >= session.total:
            self.playing = self.playing and session.position < session.total
            return
        target = session.current_ts + elapsed * self.speed
        count = max(1, session.position_at(target) - session.position)
        self.replay.advance(count)
        self._show_timeline()

    def refresh_panes(self) -> None:
        if self.replay.reset:
            self.replay.reset = False
            self.events_pane.reset(self.replay.take_events())
            self._seq_shown = -1
        super().refresh_panes()

    def _show_timeline(self) -> None:
        session = self.replay.session
        self.query_one("#timeline", TimelineBar).show(
            session.position, session.total, session.current_ts, self._incidents, self.playing, self.speed
        )

    def _seek(self, position: int) -> None:
        self.replay.seek(position)
        self.refresh_panes()
        self._show_timeline()

    # ----- keys -----------------------------------------------------------------------------------
    def action_play_pause(self) -> None:
        self.playing = not self.playing
        self._last_tick = time.monotonic()
        self._show_timeline()

    def action_faster(self) -> None:
        self.speed_index = min(len(SPEEDS) - 1, self.speed_index + 1)
        self._show_timeline()

    def action_slower(self) -> None:
        self.speed_index = max(0, self.speed_index - 1)
        self._show_timeline()

    def action_step_forward(self) -> None:
        self.replay.advance(1)
        self.refresh_panes()
        self._show_timeline()

    def action_step_back(self) -> None:
        self._seek(self.replay.session.position - 1)

    def action_next_incident(self) -> None:
        after = [n for n, (i, _) in enumerate(self._incidents) if i > self.replay.session.position]
        if after:
            self._jump(after[0])
        else:
            self.notify("no later incident")

    def action_previous_incident(self) -> None:
        before = [n for n, (i, _) in enumerate(self._incidents) if i < self.replay.session.position]
        if before:
            self._jump(before[-1])
        else:
            self.notify("no earlier incident")

    def _jump(self, index: int) -> None:
        """To just after the first symptom of incident `index`, saying which one it is."""
        self._seek(self._incidents[index][0])
        episodes = self.replay.session.episodes
        if index < len(episodes):
            incident = episodes[index]
            self.notify(
                f"incident {index + 1}/{len(episodes)} · {incident.severity} · {incident.title}",
                severity="error" if incident.severity == "critical" else "warning",
                timeout=4,
            )

    def action_start(self) -> None:
        self._seek(0)

    def action_end(self) -> None:
        self._seek(self.replay.session.total)

    @work(group="replay", exit_on_error=False)
    async def action_go_to_time(self) -> None:
        text = await self.push_screen_wait(GoToTimeScreen())
        if not text:
            return
        try:
            parts = [int(p) for p in text.split(":")]
            while len(parts) < 3:
                parts.append(0)
            hour, minute, second = parts[:3]
        except ValueError:
            self.notify(f"not a time: {text!r} (HH:MM:SS)", severity="error")
            return
        day = time.localtime(self.replay.session.first_ts)
        target = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hour, minute, second, 0, 0, -1))
        self._seek(self.replay.session.position_at(target))

    def action_quit_replay(self) -> None:
        self.exit(0)

    async def panes_closing(self) -> None:
        self.replay.session.close()
