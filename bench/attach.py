"""Attach: a cockpit attached to an engine that runs in another process, as a service runs it.

Processes. The simulator runs in its own process (`bench.ingest.start_sim`), the engine in another (`python -m
bench.attach engine`: a `Runtime`, as `cockpit run --headless` builds it, its startup heap frozen as that
does; it also runs bench/ui.py's `Pacer`, so the load generator is beside the engine, not in the cockpit's
process). The cockpit is this process: `CockpitApp(AttachedBackend(socket))` under `run_test()`, with
bench/ui.py's frame serialisation and virtual screen (`_UiApp`) and its key driver (`KeyDriver`). A second
simulator, idle until then, serves only the raw websocket client of part 3, so the engine's feed never carries
the raw client's frames. The children answer one JSON line per command line on their stdin. Timestamps
compared across processes are `time.monotonic()`: CLOCK_MONOTONIC on Linux, one clock for every process of the
machine. All of it shares the machine's cores (2 here): the engine ingesting 25 k ticks/s and the simulator
sending them use most of them, and that, not the attach protocol, is what an attached cockpit competes with.

1. Key to render (`key_to_render_*`, `idle_key_to_render_*`). bench/ui.py's `s` series (the positions table's
   sort label, a key injected as Textual's input thread does, until a painted frame shows the new label), with
   the engine's firehose at `RATE`/s and with none, in alternating blocks (idle, loaded, idle, loaded). The
   key is handled in the cockpit alone (no engine round trip), so the difference is what the engine's
   ingest and its broadcast cost the cockpit's process: CPU contention, and the events and telemetry folded.
   `ticks_per_s_during` is what the engine counted (`ticks_seen`, asked at each block's start and end); the
   engine's and the simulator's processes' CPU over the blocks are beside it. Once attached, the cockpit
   freezes its startup heap (`freeze_startup_heap`), as the app does in a terminal and skips when headless
   (bench/ui.py's app does not): unfrozen, its full collections pause it 100-260 ms, a few per minute, and
   whether two of them land in one condition's 200 samples decides that condition's p99.

2. Committed event to visible (`event_to_render_*`). With the firehose on, the engine emits an `alert` every
   50-150 ms (random), its message `bench-mark NNNNNN`. A subscriber of the engine's core (told after the
   commit, just before the broadcast is) takes the time of each. The cockpit takes, for each mark, the first
   painted frame (bench/ui.py's definition: serialised, replayed on the virtual screen) that shows it in the
   Events pane, and the moment its backend folded the `events` line that carried it (`event_to_fold_*`, the
   link alone). The first `VERIFY` marks are checked against the compositor's own render. Between the two:
   `event_to_repaint_*`, until the panes' repaint (5 Hz, `REFRESH_S`) took it from the backend, and
   `repaint_to_render_*`, from there to the frame that shows it (the Events pane is a RichLog: its scroll to
   the new last line waits for the next screen refresh, so the line shows a frame later).

3. Ingest with cockpits attached (`ingest_ratio_*`). bench/ingest.py's measurement, taken of the engine
   process: its loop posts a firehose of `Sizes.ingest` frames (`ingest._firehose`) and times until its
   engine has counted that many more ticks (`engine.market.ticks_seen`, polled every ms), beside
   `ingest.raw_client` (bare websockets + orjson) against the second simulator. Rounds alternate with none
   and with three `AttachedBackend`s attached (ABBA order), held by one more process (`python -m bench.attach
   cockpits`), which reads their State, telemetry and events five times a second as the app's repaint does;
   that process exists in both conditions, only attached or not. A first run of each, not counted, warms
   them. The figure is the median ratio (engine / raw, each pair taken back to back) with three over the
   median with none; `ingest_ticks_per_s_3_vs_0` is the engine's rates alone. The cockpits' process does
   not count against the engine's CPU time, but it does run on the same two cores as the engine and the
   simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from textual.screen import Screen

from bench.ingest import _firehose, raw_client, start_sim
from bench.ui import (
    GAP_S,
    POSITIONS,
    RATE,
    SCREEN,
    VERIFY,
    KeyDriver,
    Pacer,
    Size,
    Window,
    _UiApp,
    engine_spec,
    ms_figures,
    open_positions,
    wait_until,
)
from cockpit.commands.demo import _stop_with_parent
from cockpit.core import events
from cockpit.core.domain import Event
from cockpit.engine.runtime import Runtime, freeze_startup_heap
from cockpit.engine.shared import MarketBuffers
from cockpit.ui.attached import AttachedBackend


@dataclass(frozen=True)
class Sizes:
    keys_per_block: int  # `s` samples per block; blocks alternate idle and loaded, BLOCKS of each
    marks: int  # marked events under load
    ingest: int  # firehose frames per ingest measurement
    rounds: int  # ingest rounds; each measures both conditions (ABBA)
    warmup_s: float  # the firehose up to speed before a loaded block


SIZES = {
    "tiny": Sizes(3, 5, 5_000, 1, 0.3),
    "quick": Sizes(100, 300, 100_000, 5, 1.5),
    "full": Sizes(500, 1_000, 500_000, 5, 5.0),
}
BLOCKS = 2
COCKPITS = 3
MARK = "bench-mark"
MARK_SOURCE = "bench"
MARK_RE = re.compile(MARK + r" (\d{6})")
MARK_TIMEOUT_S = 10.0  # a mark not painted by then fails the run
POLL_S = 0.001  # the engine's ingest measurement polls its tick count this often
ANSWER_S = 120.0  # a child that does not answer a command within this (plus the command's own time) fails

assert time.get_clock_info("monotonic").implementation == "clock_gettime(CLOCK_MONOTONIC)", "one clock needed"


def mark_number(event: Event) -> int | None:
    if event.kind != "alert" or event.source != MARK_SOURCE:
        return None
    match = MARK_RE.fullmatch(str(event.payload.get("message", "")))
    return int(match.group(1)) if match else None


# ----- the children ---------------------------------------------------------------------------------------
class Child:
    """A `python -m bench.attach ROLE …` process: one command line in, one JSON line out."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self.role = " ".join(args)
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.attach", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=out,
                preexec_fn=_stop_with_parent,  # no child left behind if the bench dies
            )
        self.pid = self.proc.pid
        self.lock = threading.Lock()
        self._buffer = b""

    @functools.cached_property
    def hello(self) -> dict[str, Any]:
        """Its first line, once it is ready (children start side by side: their imports take a second)."""
        return self._answer(ANSWER_S)

    def ask(self, *words: object, within: float = 0.0) -> dict[str, Any]:
        """Thread-safe: the key driver's thread asks for tick counts, the event loop's threads the rest."""
        assert self.proc.stdin is not None
        with self.lock:
            _ = self.hello
            self.proc.stdin.write((" ".join(str(w) for w in words) + "\n").encode())
            self.proc.stdin.flush()
            return self._answer(ANSWER_S + within)

    def ticks(self) -> int:
        return int(self.ask("ticks")["ticks"])

    def _answer(self, within: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + within
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.proc.kill()
                tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
                why = "timed out" if not ready else f"exited {self.proc.wait()}"
                raise RuntimeError(f"bench.attach {self.role} {why}:\n{tail}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = orjson.loads(line)
        if "error" in answer:
            raise RuntimeError(f"bench.attach {self.role}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


async def _commands() -> AsyncIterator[list[str]]:
    """Each command line on stdin, split into words, until stdin closes or says `stop`."""
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "stop":
            return
        yield words


async def engine_child(base: str, session: Path) -> None:
    """The engine, as a service runs it; commands: ticks, load RATE, unload, marks N, ingest COUNT."""
    _, spec = engine_spec(base, session)
    runtime = Runtime(spec)
    committed: dict[int, float] = {}

    def on_event(event: Event) -> None:  # told after the commit, just before the broadcast (core.deliver)
        number = mark_number(event)
        if number is not None:
            committed[number] = time.monotonic()

    runtime.add_subscriber(on_event)
    engine = await runtime.start()
    freeze_startup_heap()  # as `cockpit run --headless` does once its engine runs
    pacer: Pacer | None = None
    rng = random.Random(11)
    marked = 0
    try:
        await wait_until(lambda: engine.state.last_reconcile is not None, 30, "the engine to reconcile")
        assert runtime.control is not None
        _say({"socket": str(runtime.control.path), "pid": os.getpid()})
        async for words in _commands():
            command, args = words[0], [int(w) for w in words[1:]]
            if command == "ticks":
                _say({"ticks": engine.market.ticks_seen})
            elif command == "load":
                pacer = Pacer(base, args[0])
                pacer.start()
                _say({"ok": True})
            elif command == "unload" and pacer is not None:
                pacer.stop.set()
                await asyncio.to_thread(pacer.join, 10)
                offered = pacer.sent / max(1e-9, time.perf_counter() - pacer.started_at)
                if pacer.error is not None:
                    _say({"error": repr(pacer.error)})
                else:
                    _say({"offered_ticks_per_s": round(offered)})
                pacer = None
            elif command == "marks":
                committed.clear()
                for _ in range(args[0]):
                    await asyncio.sleep(rng.uniform(*GAP_S))
                    engine.emit("alert", events.alert(message=f"{MARK} {marked:06d}"), "info", MARK_SOURCE)
                    marked += 1
                await engine.core.drain()
                _say({"committed": {str(n): at for n, at in committed.items()}})
            elif command == "ingest":
                _say({"ticks_per_s": await _ingest(base, args[0], engine.market)})
            else:
                _say({"error": f"unknown command {words}"})
    finally:
        if pacer is not None:
            pacer.stop.set()
            pacer.join(10)
        await runtime.stop()


async def _ingest(base: str, count: int, market: MarketBuffers) -> float:
    """bench/ingest.py's engine_path timing, of the running engine: a firehose of `count` frames posted from
    its loop, until its market feed has counted them all."""
    before = market.ticks_seen
    blast = asyncio.create_task(_firehose(base, count))
    started = time.perf_counter()
    deadline = time.monotonic() + 60 + count / 5_000
    while market.ticks_seen - before < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine counted {market.ticks_seen - before} of {count} firehose ticks")
        await asyncio.sleep(POLL_S)
    seconds = time.perf_counter() - started
    await blast
    return count / seconds


async def cockpits_child(count: int) -> None:
    """`count` attached cockpits read as the app's repaint reads them; attach SOCKET, detach"""
    backends: list[AttachedBackend] = []
    reading: asyncio.Task[None] | None = None

    async def read_like_the_app() -> None:
        while True:
            for backend in backends:
                backend.take_events()
                _ = backend.state, backend.telemetry(), backend.link_problem()
            await asyncio.sleep(0.2)  # cockpit/ui/panes.py REFRESH_S

    _say({"pid": os.getpid()})
    async for words in _commands():
        if words[0] == "attach" and not backends:
            socket = Path(" ".join(words[1:]))
            backends = [AttachedBackend(socket, label=f"bench {i}") for i in range(count)]
            await asyncio.gather(*(backend.start() for backend in backends))
            reading = asyncio.create_task(read_like_the_app())
            _say({"attached": len(backends)})
        elif words[0] == "detach":
            snapshots = sum(backend.snapshots for backend in backends)
            attaches = sum(backend.attaches for backend in backends)
            if reading is not None:
                reading.cancel()
            await asyncio.gather(*(backend.stop() for backend in backends))
            backends = []
            _say({"snapshots": snapshots, "attaches": attaches})
        else:
            _say({"error": f"unknown command {words}"})


# ----- the cockpit: parts 1 and 2 ------------------------------------------------------------------------
class _TimedBackend(AttachedBackend):
    """The attached cockpit's backend, noting when each mark was folded (the link alone, before any paint) and
    when the app's repaint took it (`take_events`, on the panes' 5 Hz timer)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.folded: dict[int, float] = {}
        self.taken: dict[int, float] = {}

    def take_events(self) -> list[Event]:
        events = super().take_events()
        now = time.monotonic()
        for event in events:
            number = mark_number(event)
            if number is not None:
                self.taken.setdefault(number, now)
        return events

    def _fold(self, events: list[Event]) -> None:
        super()._fold(events)
        now = time.monotonic()
        for event in events:
            number = mark_number(event)
            if number is not None:
                self.folded.setdefault(number, now)


class _AttachApp(_UiApp):
    """bench/ui.py's app, also noting the first painted frame that shows each mark."""

    def __init__(self, backend: _TimedBackend, kill_pct: float, breaker_pct: float) -> None:
        super().__init__(backend, kill_pct, breaker_pct)
        self.watch_marks = False
        self.painted: dict[int, float] = {}
        self.mark_checks = 0

    def _display(self, screen: Screen[Any], renderable: Any) -> None:
        frames = self.frames
        super()._display(screen, renderable)
        if not self.watch_marks or self.frames == frames:  # not a painted frame
            return
        now = time.monotonic()
        for match in MARK_RE.finditer(self.vscreen.text()):
            number = int(match.group(1))
            if number not in self.painted:
                self.painted[number] = now
                if self.mark_checks < VERIFY:  # after the timestamp, as bench/ui.py does
                    self.mark_checks += 1
                    self.vscreen_checks.append(self._agrees(screen, match.group(0)))


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 where /proc is not there)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Condition:
    """Samples and windows of one condition (idle or loaded) over its blocks."""

    keys: list[float]
    dispatch: list[float]
    windows: list[Window]
    cpu: dict[str, float]  # process -> CPU seconds over the blocks
    wall_s: float = 0.0

    def figures(self, prefix: str) -> dict[str, Any]:
        seconds = sum(w.seconds for w in self.windows)
        ticks = sum(w.ticks[1] - w.ticks[0] for w in self.windows)
        on_cpu = sum(w.sched[1][0] - w.sched[0][0] for w in self.windows)
        waiting = sum(w.sched[1][1] - w.sched[0][1] for w in self.windows)
        return {
            **ms_figures(f"{prefix}key_to_render", self.keys),
            **ms_figures(f"{prefix}key_to_dispatch", self.dispatch),
            f"{prefix}samples": len(self.keys),
            f"{prefix}ticks_per_s_during": round(ticks / max(1e-9, seconds)),
            f"{prefix}seconds": round(seconds, 1),
            f"{prefix}loop_on_cpu_share": round(on_cpu / max(1e-9, seconds), 2),
            f"{prefix}loop_waiting_for_cpu_share": round(waiting / max(1e-9, seconds), 2),
            **{
                f"{prefix}{name}_process_cpu_share": round(cpu / max(1e-9, self.wall_s), 2)
                for name, cpu in self.cpu.items()
            },
        }


async def _keys_and_marks(
    size: Sizes, engine: Child, base: str, pids: dict[str, int], kill_pct: float, breaker_pct: float
) -> dict[str, Any]:
    backend = _TimedBackend(Path(engine.hello["socket"]))
    app = _AttachApp(backend, kill_pct, breaker_pct)
    loop_tid = threading.get_native_id()
    conditions = {loaded: Condition([], [], [], dict.fromkeys(pids, 0.0)) for loaded in (False, True)}
    offered: list[int] = []
    async with app.run_test(size=SCREEN, notifications=True, message_hook=app.on_message_seen):
        await wait_until(backend.attached.is_set, 30, "the cockpit to attach")
        # what the app does once attached in a terminal (CockpitApp._start_engine), and skips when headless
        freeze_startup_heap()
        await open_positions(base)
        await wait_until(
            lambda: app.positions_pane.row_count == len(POSITIONS) + 1, 10, "the positions on screen"
        )
        loadavg = os.getloadavg()[0]
        for block in range(2 * BLOCKS):
            loaded = block % 2 == 1
            condition = conditions[loaded]
            if loaded:
                await asyncio.to_thread(engine.ask, "load", RATE)
            await asyncio.sleep(size.warmup_s)  # the firehose up to speed (or gone) before the first key
            keys = KeyDriver(app, Size(size.keys_per_block, 0, 0.0), loop_tid, engine.ticks)
            keys.rng = random.Random(block)
            cpu = {name: _proc_cpu_s(pid) for name, pid in pids.items()}
            started = time.monotonic()
            keys.start()
            await wait_until(lambda: not keys.is_alive(), size.keys_per_block * 31, "the key samples")  # noqa: B023
            condition.wall_s += time.monotonic() - started
            for name, pid in pids.items():
                condition.cpu[name] += _proc_cpu_s(pid) - cpu[name]
            if loaded:
                offered.append((await asyncio.to_thread(engine.ask, "unload"))["offered_ticks_per_s"])
            if keys.error is not None:
                raise keys.error
            condition.keys += keys.sort
            condition.dispatch += keys.sort_dispatch
            condition.windows.append(keys.sort_window)

        # 2. marked events, the firehose on
        await asyncio.to_thread(engine.ask, "load", RATE)
        await asyncio.sleep(size.warmup_s)
        app.watch_marks = True
        window = Window(started=time.perf_counter(), ticks=(await asyncio.to_thread(engine.ticks), 0))
        answer = await asyncio.to_thread(engine.ask, "marks", size.marks, within=size.marks * 0.2)
        window.ticks = (window.ticks[0], await asyncio.to_thread(engine.ticks))
        window.ended = time.perf_counter()
        committed = {int(n): at for n, at in answer["committed"].items()}
        await wait_until(lambda: set(committed) <= set(app.painted), MARK_TIMEOUT_S, "every mark painted")
        offered.append((await asyncio.to_thread(engine.ask, "unload"))["offered_ticks_per_s"])
        app.watch_marks = False
        await app.stop_engine()
    if not all(app.vscreen_checks):
        raise RuntimeError(f"the virtual screen differs from the compositor's render: {app.vscreen_checks}")
    if len(committed) != size.marks:
        raise RuntimeError(f"{len(committed)} of {size.marks} marks committed")
    result: dict[str, Any] = {
        **conditions[True].figures(""),
        **conditions[False].figures("idle_"),
        "key": "s: positions sort, until a frame shows the new label",
        "offered_ticks_per_s": round(statistics.median(offered)),
        "loadavg_1m_before": round(loadavg, 2),
        **ms_figures("event_to_render", [app.painted[n] - at for n, at in committed.items()]),
        **ms_figures("event_to_fold", [backend.folded[n] - at for n, at in committed.items()]),
        **ms_figures("event_to_repaint", [backend.taken[n] - at for n, at in committed.items()]),
        **ms_figures("repaint_to_render", [app.painted[n] - backend.taken[n] for n in committed]),
        "events_marked": len(committed),
        "events_ticks_per_s_during": round((window.ticks[1] - window.ticks[0]) / window.seconds),
        "frames": app.frames,
        "frame_serialise_ms_mean": round(app.serialise_s / max(1, app.frames) * 1000, 3),
        "vscreen_checked_frames": len(app.vscreen_checks),
        "cockpit_snapshots": backend.snapshots,
    }
    result["key_to_render_p99_ratio"] = round(
        result["key_to_render_p99_ms"] / result["idle_key_to_render_p99_ms"], 2
    )
    return result


# ----- part 3: ingest with and without cockpits ---------------------------------------------------------
async def _ingest_rounds(size: Sizes, engine: Child, cockpits: Child, raw_base: str) -> dict[str, Any]:
    rounds: dict[int, list[dict[str, float]]] = {0: [], COCKPITS: []}
    snapshots = attaches = 0
    detail: list[list[float]] = []  # [cockpits attached, engine ticks/s, raw msg/s, ratio], in order
    await raw_client(raw_base, size.ingest)  # a first run of each, not counted: both warm
    await asyncio.to_thread(engine.ask, "ingest", size.ingest, within=size.ingest / 5_000)
    for r in range(size.rounds):
        for attached in (0, COCKPITS) if r % 2 == 0 else (COCKPITS, 0):
            if attached:
                await asyncio.to_thread(cockpits.ask, "attach", engine.hello["socket"])
                await asyncio.sleep(0.5)  # snapshots sent, the cockpits settled
            raw = await raw_client(raw_base, size.ingest)
            answer = await asyncio.to_thread(engine.ask, "ingest", size.ingest, within=size.ingest / 5_000)
            if attached:
                detached = await asyncio.to_thread(cockpits.ask, "detach")
                snapshots += detached["snapshots"]
                attaches += detached["attaches"]
            engine_rate = float(answer["ticks_per_s"])
            rounds[attached].append({"ticks_per_s": engine_rate, "raw": raw, "ratio": engine_rate / raw})
            detail.append([attached, round(engine_rate), round(raw), round(engine_rate / raw, 3)])
    out: dict[str, Any] = {}
    for attached, measured in rounds.items():
        out[f"ingest_ticks_per_s_{attached}"] = round(statistics.median(m["ticks_per_s"] for m in measured))
        out[f"ingest_raw_ws_msgs_per_s_{attached}"] = round(statistics.median(m["raw"] for m in measured))
        out[f"ingest_ratio_{attached}"] = round(statistics.median(m["ratio"] for m in measured), 3)
    out[f"ingest_ratio_{COCKPITS}_vs_0"] = round(out[f"ingest_ratio_{COCKPITS}"] / out["ingest_ratio_0"], 3)
    # the engine's own rate alone, the raw ceiling left out (it moves by ~10 % from one run to the next)
    out[f"ingest_ticks_per_s_{COCKPITS}_vs_0"] = round(
        out[f"ingest_ticks_per_s_{COCKPITS}"] / out["ingest_ticks_per_s_0"], 3
    )
    out["ingest_measurements"] = detail
    out["ingest_messages"] = size.ingest
    out["ingest_rounds"] = size.rounds
    out["ingest_cockpit_snapshots"] = snapshots  # one per attach; more: a cockpit fell behind
    out["ingest_cockpit_attaches"] = attaches
    return out


async def measure(size: Sizes, work: Path) -> dict[str, Any]:
    sim, base = start_sim()
    raw_sim, raw_base = start_sim()
    children: list[Child] = []
    try:
        config, _ = engine_spec(base, work / "attach.duckdb")
        engine = Child(work / "engine.log", "engine", base, str(work / "attach.duckdb"))
        children.append(engine)
        cockpits = Child(work / "cockpits.log", "cockpits", str(COCKPITS))  # idle until part 3
        children.append(cockpits)
        pids = {"engine": engine.pid, "sim": sim.pid}
        risk = config.risk
        result = await _keys_and_marks(
            size, engine, base, pids, risk.kill_drawdown_pct, risk.breaker_drawdown_pct
        )
        result.update(await _ingest_rounds(size, engine, cockpits, raw_base))
    finally:
        for child in reversed(children):
            child.close()
        for proc in (sim, raw_sim):
            proc.terminate()
            proc.wait(timeout=10)
    return result


def run(work: Path, size: str) -> dict[str, Any]:
    """In a fresh process, as bench/ui.py does: the cockpit's event loop and threads to itself."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.attach", "measure", size, str(work / f"attach-{size}")],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.attach failed ({out.returncode}):\n{out.stderr[-4000:]}")
    result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    # python -m bench.attach measure SIZE WORK_DIR | engine SIM_BASE SESSION | cockpits COUNT
    role, *rest = sys.argv[1:]
    if role == "measure":
        Path(rest[1]).mkdir(parents=True, exist_ok=True)
        print(orjson.dumps(asyncio.run(measure(SIZES[rest[0]], Path(rest[1])))).decode())
    elif role == "engine":
        asyncio.run(engine_child(rest[0], Path(rest[1])))
    elif role == "cockpits":
        asyncio.run(cockpits_child(int(rest[0])))
    else:
        raise SystemExit(f"unknown role {role!r}")
