"""The budget of connection attempts: reconnects are rate-limited too (runbook 000 §3, 001 §2).

Binance allows 300 WebSocket connection attempts per 5 minutes per IP; a reconnect storm past that gets the
IP banned. Every socket to one exchange shares one budget; an attempt beyond it waits for the window to move.
"""

from __future__ import annotations

import asyncio
import time

from cockpit.core.window import SlidingWindow

BINANCE_CONNECTS_PER_WINDOW = 300
BINANCE_CONNECT_WINDOW_S = 300.0


class ConnectBudget:
    def __init__(
        self, limit: int = BINANCE_CONNECTS_PER_WINDOW, window_s: float = BINANCE_CONNECT_WINDOW_S
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"connect budget needs limit >= 1 and window_s > 0, got {limit}, {window_s}")
        self.limit = limit
        self.window_s = window_s
        self._attempts = SlidingWindow(window_s)
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time attempts spent waiting for the budget

    @property
    def used(self) -> int:
        return self._attempts.total(time.monotonic())

    async def acquire(self) -> float:
        """Take one attempt; returns how long it had to wait (0.0 within budget)."""
        waited = 0.0
        async with self._lock:
            while True:
                now = time.monotonic()
                if self._attempts.fits(now, 1, self.limit):
                    self._attempts.add(now)
                    self.waited_s += waited
                    return waited
                pause = self._attempts.wait(now)
                await asyncio.sleep(pause)
                waited += pause
