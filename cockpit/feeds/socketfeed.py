"""The lifecycle of a feed over one socket (the user streams: Binance's listenKey feed, Bybit's private
socket): its connection runs as a task, with the loops of its own beside it; stop cancels them all and marks
the connection stopped (no reconnect, no status after it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Self

from cockpit.feeds.connection import StreamConnection, cancel_tasks

Loop = Callable[[], Coroutine[Any, Any, None]]


class SocketFeed:
    name: str
    conn: StreamConnection

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []

    def _loops(self) -> dict[str, Loop]:
        """What runs beside the connection while the feed runs, by name (nothing by default)."""
        return {}

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self.conn.run(), name=f"{self.name}-run")]
        for suffix, loop in self._loops().items():
            self._tasks.append(asyncio.create_task(loop(), name=f"{self.name}-{suffix}"))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_tasks(tasks)
        self.conn.mark_stopped()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def connected(self) -> bool:
        """Open and ready: whatever its feed does on opening (a login, a subscribe) done — not merely a socket
        open while a login is still being answered (or refused)."""
        return self.conn.open.is_set()

    async def wait_connected(self) -> None:
        """Until the socket is open (and whatever its feed does on opening — a login, a subscribe — done)."""
        await self.conn.open.wait()
