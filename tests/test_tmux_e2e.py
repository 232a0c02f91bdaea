"""End to end, as a trader runs it: `cockpit demo` in a detached tmux session, driven with send-keys and read
with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")


class TmuxCockpit:
    def __init__(self, name: str, exit_file: Path) -> None:
        self.name = name
        self.exit_file = exit_file

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
        cockpit = TmuxCockpit(name, exit_file)
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
    c.wait(lambda s: "stay open" in s, "the quit warning")
    c.keys("q")
    deadline = time.monotonic() + 20
    while not c.exit_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert c.exit_file.read_text().strip() == "0"


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
