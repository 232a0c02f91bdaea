"""UI: key-to-render latency of the real cockpit app (Textual, headless under Pilot) while its own engine
ingests ≥ 20 k bookTicker ticks/s from the simulator's firehose.

Set-up. The simulator runs in its own process (`bench.ingest.start_sim`); three positions are opened on the
account by "another client" (signed REST), so the positions table has rows whose marks move. The app is the
real `CockpitApp` over an `EngineBackend(Runtime(spec))`, as `cockpit run` builds it, run by
`app.run_test()` (Textual's headless driver) at 120×40 with notifications on. A pacer thread, with its own
event loop, asks the simulator for the firehose in chunks of 1 000 frames on a fixed schedule (`RATE`/s);
the frames reach the app's engine over its real websocket and are parsed in the app's event loop.

A sample. A second thread plays the terminal's input thread: it takes `perf_counter()`, then hands a `Key`
to the driver's `process_message()`, the very call Textual's Linux driver makes from its input thread for
a real keystroke. The time the busy event loop takes to notice the key is therefore in the figure (a
coroutine posting the key would only run once the loop is already free). The key is `s`: it cycles the
positions table's sort column, which the pane shows in its bottom border ("… · sort Mark"). The sample ends
when a painted frame shows the new label. Samples are spaced by a random 50–150 ms gap, so they do not lock
to the 5 Hz pane-repaint timer. A second, smaller series times `?` (the help dialog: a screen push and a
Markdown document mounted) until its heading is on screen; Escape closes it (not timed), and the next sample
waits until the dialog is torn down and gone from the screen. The `s` series runs first, on its own, so the
dialog's set-up and teardown never land in it.

What "painted" means. Every Textual frame goes through `App._display(screen, update)`: the screen's update
timer (or a layout refresh) has the compositor render the changed regions (`render_update()`: the widgets'
lines become strips) and hands the result to `_display`, which on a real terminal turns it into escape
sequences (`update.render_segments(console)`) and writes them to the driver. The headless driver skips the
serialisation, so `_UiApp._display`, the bench's only change to the app, does it for every frame: the cost
a terminal would impose, paid in the same place on the event loop. It then replays the bytes on a virtual
screen (cursor moves and text; styles ignored). A sample's render time is the moment, inside that
`_display` call, that the virtual screen first contains the expected text. The figure thus covers the key
reaching the app, the binding and the action, layout, the compositor's render and the frame's
serialisation: everything short of the terminal emulator drawing it. A message merely handled, or a widget
merely marked dirty, does not count. For the first `VERIFY` samples of each series the compositor's own
full render of the screen is taken at that moment (after the timestamp) and must show the text at the same
row and column; a difference fails the run. `key_to_dispatch_*` is the first part alone: until the app's
message pump dispatches the Key (a `run_test` message hook).

Load during the samples is what the engine itself counted (`engine.market.ticks_seen`, one per parsed
bookTicker) over the series' window, not what was asked of the simulator (`offered_ticks_per_s`). On a
small shared machine the figures depend on what else runs, so the event-loop thread's share of the window
on a CPU, and waiting for one (its run-queue delay, /proc schedstat), are reported beside them.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.cells import cell_len
from textual import events
from textual._compositor import CompositorUpdate
from textual.message import Message
from textual.screen import Screen

from bench.ingest import start_sim
from cockpit.config.secrets import Credentials
from cockpit.config.settings import Config, ExchangeConfig, SessionConfig, default_config
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.client import SignedClient
from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET
from cockpit.ui.app import CockpitApp
from cockpit.ui.backend import Backend, EngineBackend
from cockpit.ui.screens.dialogs import HelpScreen
from widgets.positions import COLUMN_KEYS, SORT_LABELS


@dataclass(frozen=True)
class Size:
    sort_samples: int
    help_samples: int
    warmup_s: float


SIZES = {"tiny": Size(8, 1, 0.5), "quick": Size(200, 12, 1.5), "full": Size(1000, 50, 5.0)}
RATE = 25_000  # firehose frames/s asked of the simulator
CHUNK = 1_000
SCREEN = (120, 40)
GAP_S = (0.05, 0.15)  # random spacing between samples
TIMEOUT_S = 30.0  # a key whose effect is not painted by then fails the run
VERIFY = 3  # samples per series whose frame is checked against the compositor's own render
HELP_MARK = "cockpit — keys"  # the help dialog's heading
POSITIONS = (("BTCUSDT", "BUY", "0.01"), ("ETHUSDT", "SELL", "0.2"), ("SOLUSDT", "BUY", "5"))

# cursor moves (\x1b[y;xH), any other CSI sequence (styles), OSC sequences (links), newlines
_TOKENS = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\n")


class VirtualScreen:
    """The characters a terminal shows after the frames written so far (cursor moves and text only)."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.rows = [[" "] * width for _ in range(height)]

    def feed(self, data: str) -> None:
        x = y = pos = 0
        for match in _TOKENS.finditer(data):
            if match.start() > pos:
                x = self._put(data[pos : match.start()], x, y)
            if match.group(1) is not None:
                y, x = int(match.group(1)) - 1, int(match.group(2)) - 1
            elif match.group(0) == "\n":
                x, y = 0, y + 1
            pos = match.end()
        if pos < len(data):
            self._put(data[pos:], x, y)

    def _put(self, text: str, x: int, y: int) -> int:
        if not (0 <= y < len(self.rows) and 0 <= x < self.width):
            return x + cell_len(text)
        row = self.rows[y]
        if cell_len(text) == len(text):
            end = min(x + len(text), self.width)
            row[x:end] = text[: end - x]
            return x + len(text)
        for char in text:  # a wide character takes two cells
            width = cell_len(char)
            if x < self.width:
                row[x] = char
            if width == 2 and x + 1 < self.width:
                row[x + 1] = ""
            x += width
        return x

    def text(self) -> str:
        return "\n".join("".join(row) for row in self.rows)

    def find(self, text: str) -> tuple[int, int]:
        """Row and column (in characters, as `Strip.text` counts them) where `text` first shows; (-1, -1)."""
        for y, row in enumerate(self.rows):
            x = "".join(row).find(text)
            if x >= 0:
                return y, x
        return -1, -1


@dataclass
class Probe:
    """One pending sample: the key, the text that shows its effect, and when each step happened."""

    key: str
    expect: str
    dispatched_at: float | None = None  # the app's message pump took the Key off its queue
    shown_at: float | None = None  # a painted frame showed `expect`
    verify: bool = False  # then compare the virtual screen with the compositor's full render
    done: threading.Event = field(default_factory=threading.Event)


class _UiApp(CockpitApp):
    """The cockpit app, plus the frame serialisation a terminal needs, replayed on a virtual screen."""

    def __init__(self, backend: Backend, kill_pct: float, breaker_pct: float) -> None:
        super().__init__(backend, kill_pct=kill_pct, breaker_pct=breaker_pct)
        self.vscreen = VirtualScreen(*SCREEN)
        self.probe: Probe | None = None
        self.frames = 0
        self.serialise_s = 0.0  # render_segments: what a terminal would cost
        self.vscreen_s = 0.0  # replaying on the virtual screen: the bench's own overhead
        self.vscreen_checks: list[bool] = []  # virtual screen == the compositor's own full render?

    def on_message_seen(self, message: Message) -> None:
        """run_test's message hook, called as a pump dispatches a message: the App's pump sees a Key first."""
        probe = self.probe
        if (
            probe is not None
            and probe.dispatched_at is None
            and isinstance(message, events.Key)
            and message.key == probe.key
        ):
            probe.dispatched_at = time.perf_counter()

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        painted = renderable is not None and not self._batch_count and self._running and not self._closed
        super()._display(screen, renderable)  # headless: nothing is serialised nor written
        if not painted or not isinstance(renderable, CompositorUpdate):
            return
        started = time.perf_counter()
        data = renderable.render_segments(self.console)  # what the driver would write to the terminal
        serialised = time.perf_counter()
        self.vscreen.feed(data)
        self.frames += 1
        probe = self.probe
        if probe is not None and probe.shown_at is None and probe.expect in self.vscreen.text():
            probe.shown_at = time.perf_counter()
            if probe.verify:  # after the timestamp, and only for a few samples: a full render is not free
                self.vscreen_checks.append(self._agrees(screen, probe.expect))
            probe.done.set()
        self.serialise_s += serialised - started
        self.vscreen_s += time.perf_counter() - serialised

    def _agrees(self, screen: Screen[Any], expect: str) -> bool:
        """Does the compositor's own render of the screen show `expect` where the virtual screen has it?

        Only that place: elsewhere a widget may already hold newer content than the frame just painted
        (changed, its refresh not yet processed by the screen), which the next frame will carry.
        """
        row, column = self.vscreen.find(expect)
        return screen._compositor.render_strips()[row].text.find(expect) == column


class Pacer(threading.Thread):
    """Asks the simulator for `rate` firehose frames/s, in CHUNK-sized requests, from its own event loop."""

    def __init__(self, base: str, rate: int) -> None:
        super().__init__(name="bench-ui-pacer", daemon=True)
        self.base = base
        self.rate = rate
        self.stop = threading.Event()
        self.sent = 0
        self.started_at = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._pace())
        except BaseException as exc:  # re-raised by the caller
            self.error = exc

    async def _pace(self) -> None:
        async with aiohttp.ClientSession() as http:
            self.started_at = due = time.perf_counter()
            while self.rate > 0 and not self.stop.is_set():
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.5:  # far behind: start the schedule again rather than burst to catch up
                    due = time.perf_counter()
                async with http.post(
                    self.base + "/_sim/firehose", json={"symbol": "BTCUSDT", "count": CHUNK}
                ) as resp:
                    await resp.read()
                self.sent += CHUNK
                due += CHUNK / self.rate


def percentile(values: list[float], q: int) -> float:
    if len(values) >= 100:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]
    ranked = sorted(values)  # nearest rank: with few samples the p99 is the maximum
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


def ms_figures(prefix: str, seconds: list[float], qs: tuple[int, ...] = (50, 90, 99)) -> dict[str, float]:
    if not seconds:
        return {}
    ms = [s * 1000 for s in seconds]
    out = {f"{prefix}_p{q}_ms": round(percentile(ms, q), 2) for q in qs}
    out[f"{prefix}_max_ms"] = round(max(ms), 2)
    return out


def _schedstat(tid: int) -> tuple[float, float]:
    """Seconds a thread has spent on a CPU, and runnable but waiting for one (0, 0 where not available)."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            on_cpu, waiting, _ = f.read().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(on_cpu) / 1e9, int(waiting) / 1e9


@dataclass
class Window:
    """A series' wall time, ticks the engine counted, and how the event-loop thread spent it."""

    started: float = 0.0
    ended: float = 0.0
    ticks: tuple[int, int] = (0, 0)
    sched: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))

    @property
    def seconds(self) -> float:
        return max(1e-9, self.ended - self.started)

    def figures(self, prefix: str = "") -> dict[str, float]:
        (cpu0, wait0), (cpu1, wait1) = self.sched
        return {
            f"{prefix}ticks_per_s_during": round((self.ticks[1] - self.ticks[0]) / self.seconds),
            f"{prefix}seconds": round(self.seconds, 1),
            f"{prefix}loop_on_cpu_share": round((cpu1 - cpu0) / self.seconds, 2),
            f"{prefix}loop_waiting_for_cpu_share": round((wait1 - wait0) / self.seconds, 2),
        }


class KeyDriver(threading.Thread):
    """The terminal's input thread: sends keys to the app through its driver and times their frames.

    `ticks` is the engine's count of parsed ticks (`engine.market.ticks_seen`), read at each series' start and
    end: the engine in this process, or one in another process (bench/attach.py asks it)."""

    def __init__(self, app: _UiApp, size: Size, loop_tid: int, ticks: Callable[[], int]) -> None:
        super().__init__(name="bench-ui-keys", daemon=True)
        self.app = app
        self.size = size
        self.loop_tid = loop_tid
        self.ticks = ticks
        self.sort: list[float] = []
        self.sort_dispatch: list[float] = []
        self.help: list[float] = []
        self.sort_window = Window()
        self.help_window = Window()
        self.error: BaseException | None = None
        self.rng = random.Random(7)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised by the caller
            self.error = exc

    def _run(self) -> None:
        table = self.app.positions_pane
        self._open(self.sort_window)
        for i in range(self.size.sort_samples):
            time.sleep(self.rng.uniform(*GAP_S))
            following = COLUMN_KEYS[(COLUMN_KEYS.index(table.sort_column) + 1) % len(COLUMN_KEYS)]
            label = f"· sort {SORT_LABELS[following]}"
            self.sort.append(self._sample("s", "s", label, self.sort_dispatch, i < VERIFY))
        self._close(self.sort_window)
        if self.size.help_samples:
            self._help_series()

    def _help_series(self) -> None:
        self._open(self.help_window)
        for i in range(self.size.help_samples):
            time.sleep(self.rng.uniform(*GAP_S))
            self.help.append(self._sample("question_mark", "?", HELP_MARK, [], i < VERIFY))
            screen = self.app.screen
            if not isinstance(screen, HelpScreen):
                raise RuntimeError(f"? showed the help heading but the screen is {screen!r}")
            self._send("escape", None)
            self._wait(lambda: screen._closed, "the help screen to be torn down")  # noqa: B023
            self._wait(lambda: HELP_MARK not in self.app.vscreen.text(), "a frame without the dialog")
        self._close(self.help_window)

    def _open(self, window: Window) -> None:
        window.started = time.perf_counter()
        window.ticks = (self.ticks(), 0)
        window.sched = (_schedstat(self.loop_tid), (0.0, 0.0))

    def _close(self, window: Window) -> None:
        window.ended = time.perf_counter()
        window.ticks = (window.ticks[0], self.ticks())
        window.sched = (window.sched[0], _schedstat(self.loop_tid))

    def _send(self, key: str, char: str | None) -> None:
        driver = self.app._driver
        assert driver is not None
        driver.process_message(events.Key(key, char))  # what the Linux driver's input thread calls

    def _sample(self, key: str, char: str, expect: str, dispatch: list[float], verify: bool) -> float:
        if expect in self.app.vscreen.text():
            raise RuntimeError(f"{expect!r} is on screen before the key: the sample would prove nothing")
        probe = Probe(key, expect, verify=verify)
        self.app.probe = probe
        pressed = time.perf_counter()
        self._send(key, char)
        shown = probe.done.wait(TIMEOUT_S)
        self.app.probe = None
        if not shown or probe.shown_at is None:  # never painted: a bug to look at, not a slow sample
            raise TimeoutError(f"{key!r} pressed, {expect!r} not painted within {TIMEOUT_S} s")
        if probe.dispatched_at is not None:
            dispatch.append(probe.dispatched_at - pressed)
        return probe.shown_at - pressed

    def _wait(self, condition: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {TIMEOUT_S} s waiting for {what}")
            time.sleep(0.005)


async def open_positions(base: str) -> None:
    async with SignedClient(base, DEMO_API_KEY, DEMO_API_SECRET) as client:
        for symbol, side, qty in POSITIONS:
            body = await client.request(
                "POST", "/fapi/v1/order", {"symbol": symbol, "side": side, "type": "MARKET", "quantity": qty}
            )
            if "code" in body:
                raise RuntimeError(f"the simulator refused an order: {body}")


async def wait_until(condition: Callable[[], object], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)  # noqa: ASYNC110 - state owned by other tasks and threads


def engine_spec(base: str, session: Path) -> tuple[Config, RunSpec]:
    """The engine the UI benches run: the default config against the simulator at `base`, demo mode."""
    config = default_config()
    config = replace(config, exchange=ExchangeConfig(base_url=base), session=SessionConfig(path=session))
    options = EngineOptions(mode="demo")
    return config, RunSpec(config, Credentials(DEMO_API_KEY, DEMO_API_SECRET), session, options)


async def measure(size: Size, session: Path, rate: int = RATE) -> dict[str, Any]:
    proc, base = start_sim()
    pacer = Pacer(base, rate)
    try:
        config, spec = engine_spec(base, session)
        backend = EngineBackend(Runtime(spec), session.name)
        app = _UiApp(backend, config.risk.kill_drawdown_pct, config.risk.breaker_drawdown_pct)

        def ticks() -> int:
            return int(backend.engine.market.ticks_seen) if backend.engine is not None else 0

        keys = KeyDriver(app, size, threading.get_native_id(), ticks)
        async with app.run_test(size=SCREEN, notifications=True, message_hook=app.on_message_seen):
            await wait_until(
                lambda: backend.engine is not None and backend.engine.state.last_reconcile is not None,
                30,
                "the engine to start and reconcile",
            )
            await open_positions(base)
            await wait_until(
                lambda: app.positions_pane.row_count == len(POSITIONS) + 1, 10, "the positions on screen"
            )
            pacer.start()
            await asyncio.sleep(size.warmup_s)  # the firehose up to speed before the first key
            loadavg = os.getloadavg()[0]
            keys.start()
            await wait_until(
                lambda: not keys.is_alive(),
                (size.sort_samples + 3 * size.help_samples) * (TIMEOUT_S + 1),
                "the key samples",
            )
            pacer.stop.set()
            offered = pacer.sent / max(1e-9, time.perf_counter() - pacer.started_at)
            await app.stop_engine()
    finally:
        pacer.stop.set()
        if pacer.is_alive():
            pacer.join(timeout=10)
        proc.terminate()
        proc.wait(timeout=10)
    for error in (keys.error, pacer.error):
        if error is not None:
            raise error
    if not all(app.vscreen_checks):
        raise RuntimeError(f"the virtual screen differs from the compositor's render: {app.vscreen_checks}")
    return {
        **ms_figures("key_to_render", keys.sort),
        **keys.sort_window.figures(),
        "key": "s: positions sort, until a frame shows the new label",
        "samples": len(keys.sort),
        **ms_figures("key_to_dispatch", keys.sort_dispatch),
        "offered_ticks_per_s": round(offered),
        "loadavg_1m_before": round(loadavg, 2),
        **ms_figures("help_open", keys.help, (50, 99)),
        "help_samples": len(keys.help),
        **keys.help_window.figures("help_"),
        "frames": app.frames,
        "frame_serialise_ms_mean": round(app.serialise_s / max(1, app.frames) * 1000, 3),
        "bench_vscreen_ms_mean": round(app.vscreen_s / max(1, app.frames) * 1000, 3),
        "vscreen_checked_frames": len(app.vscreen_checks),
    }


def run(work: Path, size: str) -> dict[str, Any]:
    """In a fresh process, as memory does: the app's event loop and threads to itself."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.ui", size, str(work / f"ui-{size}.duckdb")],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.ui failed ({out.returncode}):\n{out.stderr[-4000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    # python -m bench.ui SIZE SESSION_FILE [RATE]: RATE 0 measures the same keys with no firehose
    rate = int(sys.argv[3]) if len(sys.argv) > 3 else RATE
    print(orjson.dumps(asyncio.run(measure(SIZES[sys.argv[1]], Path(sys.argv[2]), rate))).decode())
