"""The request budget: Binance's per-endpoint weights, the used-weight header, Retry-After and bans.

Every REST call asks `acquire(weight)` first. The limiter keeps its own rolling one-minute ledger and trusts
the exchange's `X-MBX-USED-WEIGHT-1M` header over it when the header says more. A 429 pauses requests for
Retry-After; a 418 ban blocks every request until it ends. `snapshot()` is what the rate-limit pane shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cockpit.core.window import SlidingWindow

DEFAULT_LIMIT_1M = 2400
WINDOW_S = 60.0
REJECTIONS_SPAN_S = 300.0  # 429s counted as recent for five minutes


@dataclass(frozen=True)
class RateLimitSnapshot:
    used: int  # weight used in the current minute (ours or the exchange's figure, whichever is higher)
    limit: int
    queued: int  # requests waiting for budget, a cooldown or a ban to end
    rejected_recent: int  # 429s in the last five minutes
    rejected_total: int  # 429s and 418s since the limiter started
    banned_total: int  # of which 418 bans
    cooldown_until: float | None  # wall-clock time Retry-After ends, if one is in force
    banned_until: float | None  # wall-clock time a 418 ban ends, if one is in force

    @property
    def usage(self) -> float:
        return self.used / self.limit if self.limit else 0.0


class RateLimiter:
    def __init__(
        self, limit_1m: int = DEFAULT_LIMIT_1M, headroom: float = 0.9, window_s: float = WINDOW_S
    ) -> None:
        self.limit = limit_1m
        self._window = window_s
        self._budget = int(limit_1m * headroom)
        self._spent = SlidingWindow(window_s)  # our own ledger of the rolling minute
        self._header_used = 0
        self._header_at = 0.0
        self._queued = 0
        self._rejections = SlidingWindow(REJECTIONS_SPAN_S)
        self._rejected_total = 0
        self._banned_total = 0
        self._cooldown_until = 0.0  # monotonic
        self._banned_until = 0.0  # monotonic
        # a ban whose end the exchange did not name: when its wait is over, one request (the probe) goes and
        # the others wait for its answer — never a burst of every queued request at a banned IP
        self._probing = False
        self._probe_out = False
        self._lock = asyncio.Lock()

    # ----- the gate -------------------------------------------------------------------------------
    async def acquire(self, weight: int = 1) -> None:
        """Wait until the request may go: no ban, no cooldown, and budget in the rolling minute."""
        self._queued += 1
        try:
            async with self._lock:  # FIFO: requests leave in the order they asked
                while True:
                    delay = self._delay(weight)
                    if delay <= 0:
                        break
                    await asyncio.sleep(delay)
                if self._probing:
                    self._probe_out = True
                self._spent.add(time.monotonic(), weight)
        finally:
            self._queued -= 1

    def _delay(self, weight: int) -> float:
        now = time.monotonic()
        wait = max(self._banned_until - now, self._cooldown_until - now, 0.0)
        if wait > 0:
            return wait
        if self._probing and self._probe_out:
            return 0.05  # the probe is out: its answer says whether the ban is over
        if self._used(now) + weight > self._budget and self._spent.total(now) > 0:
            return max(0.01, self._spent.wait(now))
        return 0.0

    # ----- what the exchange told us ---------------------------------------------------------------
    def observe_headers(self, headers: Mapping[str, str] | None) -> None:
        if not headers:
            return
        for name, value in headers.items():
            if name.lower() == "x-mbx-used-weight-1m":
                try:
                    self._header_used = int(value)
                    self._header_at = time.monotonic()
                except ValueError:
                    return

    def on_rate_limited(self, retry_after_s: float | None, banned: bool, probe: bool = False) -> None:
        """A 429 (cooldown) or a ban; `probe`: a ban whose end is not named, tried one request at a time."""
        now = time.monotonic()
        self._rejections.add(now)
        self._rejected_total += 1
        self._banned_total += 1 if banned else 0
        wait = retry_after_s if retry_after_s is not None else (60.0 if banned else 5.0)
        if banned:
            self._banned_until = max(self._banned_until, now + wait)
        else:
            self._cooldown_until = max(self._cooldown_until, now + wait)
        self._probing = banned and probe
        self._probe_out = False

    def answered(self) -> None:
        """An answer other than a ban came back: a ban being probed is over."""
        self._probing = False
        self._probe_out = False

    # ----- reading -------------------------------------------------------------------------------
    def snapshot(self) -> RateLimitSnapshot:
        now = time.monotonic()
        wall = time.time()
        return RateLimitSnapshot(
            used=self._used(now),
            limit=self.limit,
            queued=self._queued,
            rejected_recent=self._rejections.total(now),
            rejected_total=self._rejected_total,
            banned_total=self._banned_total,
            cooldown_until=wall + (self._cooldown_until - now) if self._cooldown_until > now else None,
            banned_until=wall + (self._banned_until - now) if self._banned_until > now else None,
        )

    @property
    def banned(self) -> bool:
        return self._banned_until > time.monotonic()

    def _used(self, now: float) -> int:
        header = self._header_used if now - self._header_at < self._window else 0
        return max(self._spent.total(now), header)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After in seconds (Binance sends a number of seconds), or None."""
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
