"""Snapshots of the real cockpit main screen, with deterministic data, at 80×24 and 120×40."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cockpit.ui.app import CockpitApp
from cockpit.ui.backend import FixedBackend
from tests.test_widgets import TELEMETRY, make_state, sample_events


@pytest.fixture(autouse=True)
def utc_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fixed_app() -> CockpitApp:
    return CockpitApp(FixedBackend(make_state(), sample_events(), TELEMETRY, label="snapshot"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size)


async def test_a_fixed_view_refuses_actions_with_a_message() -> None:
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("k")
        await pilot.pause()
        assert any("read-only" in str(n.message) for n in app._notifications)
        assert not app.backend.state.kill_switch.engaged
