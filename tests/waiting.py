"""Waiting on conditions, not on fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(condition: Callable[[], object], within: float = 5.0, what: str = "condition") -> None:
    """Return as soon as `condition()` is truthy; fail the test if it is not within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.01)  # noqa: ASYNC110 - polling state owned by another task is the point here
