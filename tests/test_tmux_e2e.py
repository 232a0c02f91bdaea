"""End to end, as a trader runs it: `cockpit demo` in a detached tmux session, driven with send-keys and read
with capture-pane."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cockpit.core.commands import Status
from cockpit.engine.control import ask, engine_running, socket_path_for
from cockpit.sim.server import SimServer
from tests.test_cli_engine import HeadlessEngine, cli_env, write_config
from tests.test_engine import BTC, trade
from tests.waiting import wait_until

TMUX = shutil.which("tmux")


class TmuxCockpit:
    def __init__(self, name: str, exit_file: Path, session: Path | None = None) -> None:
        self.name = name
        self.exit_file = exit_file
        self.session = session or Path("-")

    def tmux(self, *args: str) -> str:
        assert TMUX is not None, "tmux is required for the end-to-end test (.ci/run installs it)"
        return subprocess.run([TMUX, *args], check=True, capture_output=True, text=True).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait(self, condition: Callable[[str], bool], what: str, within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        text = ""
        while time.monotonic() < deadline:
            if self.exit_file.exists():
                raise AssertionError(f"cockpit exited while waiting for {what}: {self.exit_file.read_text()}")
            text = self.screen()
            if condition(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")

    def alive(self) -> bool:
        assert TMUX is not None
        return subprocess.run([TMUX, "has-session", "-t", self.name], capture_output=True).returncode == 0


@pytest.fixture
def demo_in_tmux(tmp_path: Path) -> Iterator[Callable[..., TmuxCockpit]]:
    started: list[TmuxCockpit] = []

    def start(width: int = 120, height: int = 40, **env: str) -> TmuxCockpit:
        name = f"cockpit-e2e-{uuid.uuid4().hex[:8]}"
        exit_file = tmp_path / f"{name}.exit"
        environment = {
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "TERM": "screen-256color",
            **env,
        }
        exports = " ".join(f"{k}={v}" for k, v in environment.items())
        command = (
            f"cd {Path.cwd()} && env {exports} {sys.executable} -m cockpit demo --seed 3 "
            f"--session {tmp_path / 'demo.duckdb'}; echo $? > {exit_file}"
        )
        assert TMUX is not None, "tmux is required for the end-to-end test (.ci/run installs it)"
        subprocess.run(
            [TMUX, "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), command],
            check=True,
            env={**os.environ, "TERM": "screen-256color"},
        )
        cockpit = TmuxCockpit(name, exit_file, tmp_path / "demo.duckdb")
        started.append(cockpit)
        return cockpit

    yield start
    for cockpit in started:
        if cockpit.alive():
            subprocess.run([TMUX or "tmux", "kill-session", "-t", cockpit.name], capture_output=True)


def test_demo_cockpit_in_tmux(demo_in_tmux: Callable[..., TmuxCockpit]) -> None:
    c = demo_in_tmux()
    screen = c.wait(
        lambda s: all(t in s for t in ("Positions", "Health", "Rate limit", "Drawdown", "Events")),
        "the five panes",
    )
    c.wait(lambda s: "r Reconcile" in s and "q Quit" in s, "the key map in the footer")
    c.wait(lambda s: "DEMO" in s, "the demo mode badge once the engine runs")
    screen = c.wait(
        lambda s: "/USDT" in s and "open ·" in s and " 0 open" not in s, "a live position row", 45
    )

    c.keys("k")
    c.wait(lambda s: "KILL SWITCH ENGAGED" in s, "the kill switch banner")

    c.keys("F")
    c.wait(lambda s: "Flatten ALL positions?" in s, "the flatten confirmation")
    c.keys("Escape")
    c.wait(lambda s: "Flatten ALL positions?" not in s, "the confirmation to close")
    assert "/USDT" in c.screen()  # cancelled: the positions are still there

    c.tmux("resize-window", "-t", c.name, "-x", "80", "-y", "24")
    screen = c.wait(
        lambda s: max(len(line) for line in s.splitlines()) <= 80 and "Positions" in s and "q Quit" in s,
        "the 80×24 layout",
    )
    assert "Events" in screen

    c.keys("q")
    c.wait(lambda s: "stops with it" in s, "the quit warning: the demo's own engine stops with the demo")
    c.keys("q")
    deadline = time.monotonic() + 20
    while not c.exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.exit_file.read_text().strip() == "0"
    assert not engine_running(c.session), "no demo engine is left behind"


def test_demo_cockpit_without_colour_says_everything_in_words(
    demo_in_tmux: Callable[..., TmuxCockpit],
) -> None:
    c = demo_in_tmux(width=100, height=30, NO_COLOR="1")
    screen = c.wait(lambda s: "Exchange" in s and "OK" in s and "GREEN" in s, "health and drawdown in words")
    assert "DEMO" in screen and "Kill" in screen
    c.keys("q")
    c.wait(lambda s: "stay open" in s, "the quit warning")
    c.keys("q")
    deadline = time.monotonic() + 20
    while not c.exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.exit_file.read_text().strip() == "0"


async def _wait_screen(
    c: TmuxCockpit, condition: Callable[[str], bool], what: str, within: float = 30.0
) -> str:
    """`TmuxCockpit.wait` for async tests: the simulator in this process keeps serving meanwhile."""
    deadline = time.monotonic() + within
    text = ""
    while time.monotonic() < deadline:
        if c.exit_file.exists():
            raise AssertionError(f"cockpit exited while waiting for {what}: {c.exit_file.read_text()}")
        text = await asyncio.to_thread(c.screen)
        if condition(text):
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; screen:\n{text}")


def _attach_in_tmux(tmp_path: Path, config: Path, started: list[TmuxCockpit]) -> TmuxCockpit:
    name = f"cockpit-attach-{uuid.uuid4().hex[:8]}"
    exit_file = tmp_path / f"{name}.exit"
    env = {**cli_env(tmp_path), "TERM": "screen-256color"}
    exports = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith(("COCKPIT_", "XDG_", "TERM")))
    command = (
        f"cd {Path.cwd()} && env {exports} {sys.executable} -m cockpit attach --config {config}; "
        f"echo $? > {exit_file}"
    )
    assert TMUX is not None, "tmux is required for the end-to-end test (.ci/run installs it)"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", name, "-x", "120", "-y", "40", command], check=True, env=env
    )
    cockpit = TmuxCockpit(name, exit_file)
    started.append(cockpit)
    return cockpit


async def _quit(c: TmuxCockpit, warning: str) -> None:
    c.keys("q")
    await _wait_screen(c, lambda s: warning in s, "the quit warning")
    c.keys("q")
    await wait_until(c.exit_file.exists, 20, "the cockpit to exit")
    assert c.exit_file.read_text().strip() == "0"


async def test_attach_detach_and_reattach_to_an_engine_that_runs_as_a_service(
    sim: SimServer, tmp_path: Path
) -> None:
    """The engine runs headless (as its service would); cockpits attach, detach and re-attach in tmux, and
    one of them sees the engine killed and back."""
    session = tmp_path / "service.duckdb"
    config = write_config(tmp_path, sim.base_url, session)
    engine = await HeadlessEngine.start(config, tmp_path)
    started: list[TmuxCockpit] = []
    try:
        await engine.wait_for("reconcile.done")
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.010")
        first = _attach_in_tmux(tmp_path, config, started)
        await _wait_screen(first, lambda s: "BTC/USDT" in s and "Positions" in s, "the position, attached")
        await _quit(first, "keeps running")
        status = await ask(socket_path_for(session), Status(by="test"))  # detached: the engine runs on
        assert [p.symbol for p in status.positions] == [BTC]

        again = _attach_in_tmux(tmp_path, config, started)
        await _wait_screen(again, lambda s: "BTC/USDT" in s, "the position, attached again")
        engine.proc.send_signal(signal.SIGKILL)
        await engine.proc.wait()
        screen = await _wait_screen(again, lambda s: "ENGINE UNREACHABLE" in s, "the engine unreachable")
        assert "BTC/USDT" in screen  # the last State stays, dated
        again.keys("r")  # an action while the engine is away is refused, and says why
        await _wait_screen(again, lambda s: "actions are disabled" in s, "the refused reconcile")

        engine = await HeadlessEngine.start(config, tmp_path)
        await _wait_screen(
            again, lambda s: "ENGINE UNREACHABLE" not in s and "BTC/USDT" in s, "re-attached by itself", 45
        )
        await _quit(again, "keeps running")
    finally:
        for c in started:
            if c.alive():
                await asyncio.to_thread(c.tmux, "kill-session", "-t", c.name)
        await engine.finish()


def test_closing_the_demos_terminal_stops_its_engine(demo_in_tmux: Callable[..., TmuxCockpit]) -> None:
    """The demo's engine runs in a process of its own: a terminal closed under it (tmux kill-session, an SSH
    session gone) must not leave it running, watching and trading on its own."""
    c = demo_in_tmux()
    c.wait(lambda s: "DEMO" in s and "Positions" in s, "the demo attached to its engine")
    assert engine_running(c.session)
    c.tmux("kill-session", "-t", c.name)
    deadline = time.monotonic() + 30
    while engine_running(c.session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not engine_running(c.session), "the demo's engine outlived its terminal"
