"""The request budget: an exchange's limits as its dialect describes them (`LimitModel`), what its answers'
headers say of them, Retry-After and bans.

Every REST call asks `acquire(weight, op)` first. Two kinds of budget, each exchange using what it has:
- the shared one: Binance's request weight per rolling minute (2400), Bybit's requests per IP per 5 s (600);
  the limiter keeps its own ledger and trusts the exchange's figure (`X-MBX-USED-WEIGHT-1M`) when it says
  more;
- one per endpoint: Bybit's per-account requests per second (`order/create` 10/s, `position/list` 50/s…).
  Its answers say the endpoint's limit, what is left and when it resets (`X-Bapi-Limit*`): the limit the
  account really has replaces the default, and an endpoint with nothing left waits for its reset alone.
A 429 pauses every request for Retry-After; an endpoint's refusal (Bybit's 10006) pauses that endpoint; a
ban blocks every request until it ends. `snapshot()` is what the rate-limit pane shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from cockpit.core.window import SlidingWindow

DEFAULT_LIMIT_1M = 2400
WINDOW_S = 60.0
REJECTIONS_SPAN_S = 300.0  # 429s counted as recent for five minutes


@dataclass(frozen=True)
class LimitModel:
    """An exchange's request limits, as its dialect states them."""

    limit: int = DEFAULT_LIMIT_1M  # the shared budget per window (weight, or requests)
    window_s: float = WINDOW_S
    endpoints: Mapping[str, int] = field(default_factory=dict)  # an endpoint's budget per endpoint_window_s
    endpoint_of: Mapping[str, str] = field(default_factory=dict)  # gateway operation -> its endpoint
    endpoint_window_s: float = 1.0


@dataclass(frozen=True)
class LimitReading:
    """What one answer's headers say of the budget (a dialect reads its exchange's header names)."""

    used: int | None = None  # the shared budget used in its window (Binance's used weight)
    endpoint_limit: int | None = None  # the called endpoint's budget (Bybit's X-Bapi-Limit)
    endpoint_left: int | None = None  # what is left of it (X-Bapi-Limit-Status)
    endpoint_reset_ms: int | None = None  # exchange time it has room again (X-Bapi-Limit-Reset-Timestamp)


@dataclass(frozen=True)
class EndpointBudget:
    name: str  # the exchange's endpoint, e.g. "order/create"
    used: int  # requests in its current window (ours, or the exchange's figure when higher)
    limit: int
    cooldown_until: float | None  # wall-clock time the endpoint has room again after a refusal

    @property
    def usage(self) -> float:
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class RateLimitSnapshot:
    used: int  # the shared budget used in the current window (ours or the exchange's figure, the higher)
    limit: int
    queued: int  # requests waiting for budget, a cooldown or a ban to end
    rejected_recent: int  # 429s (and endpoint refusals) in the last five minutes
    rejected_total: int  # 429s, endpoint refusals and bans since the limiter started
    banned_total: int  # of which bans
    cooldown_until: float | None  # wall-clock time Retry-After ends, if one is in force
    banned_until: float | None  # wall-clock time a ban ends, if one is in force
    window_s: float = WINDOW_S  # the shared budget's window
    endpoints: tuple[EndpointBudget, ...] = ()  # the endpoints with a budget of their own, as used

    @property
    def usage(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    @property
    def busiest(self) -> EndpointBudget | None:
        """The endpoint to show: one waiting for its reset, else the one nearest its limit, else (all idle)
        the tightest budget of those called so far — a line that stays, not one that comes and goes; None
        before any endpoint with a budget of its own was called (and always on Binance)."""
        cooling = [e for e in self.endpoints if e.cooldown_until is not None]
        if cooling:
            return max(cooling, key=lambda e: e.cooldown_until or 0.0)
        return max(self.endpoints, key=lambda e: (e.usage, e.used, -e.limit), default=None)


class _Endpoint:
    """One endpoint's budget: our ledger of its window, the exchange's last figures, a refusal's wait."""

    def __init__(self, name: str, limit: int, window_s: float) -> None:
        self.name = name
        self.limit = limit
        self.window_s = window_s
        self.spent = SlidingWindow(window_s)
        self.header_used = 0
        self.header_at = -window_s
        self.until = 0.0  # monotonic: no room before this (nothing left, or refused)
        self.refused_until = 0.0  # monotonic: of which a refusal's (shown as a cooldown)
        self.lock = asyncio.Lock()

    def used(self, now: float) -> int:
        header = self.header_used if now - self.header_at < self.window_s else 0
        return max(self.spent.total(now), header)

    def delay(self, now: float, headroom: float) -> float:
        """Seconds before one more request fits: the budget counts ours and, while it is fresh, what the
        exchange last said was used (other clients on the same account spend it too)."""
        if self.until > now:
            return self.until - now
        budget = max(1, int(self.limit * headroom))
        if self.used(now) + 1 <= budget:
            return 0.0
        waits = [self.spent.wait(now)] if self.spent.total(now) else []
        if now - self.header_at < self.window_s and self.header_used + 1 > budget:
            waits.append(self.header_at + self.window_s - now)
        return max(0.01, min(waits)) if waits else 0.0


class RateLimiter:
    def __init__(
        self,
        limit: int = DEFAULT_LIMIT_1M,
        headroom: float = 0.9,
        window_s: float = WINDOW_S,
        model: LimitModel | None = None,
    ) -> None:
        model = model or LimitModel(limit=limit, window_s=window_s)
        self.model = model
        self.limit = model.limit
        self.headroom = headroom
        self._window = model.window_s
        self._budget = int(model.limit * headroom)
        self._spent = SlidingWindow(model.window_s)  # our own ledger of the shared window
        self._header_used = 0
        self._header_at = 0.0
        self._endpoints: dict[str, _Endpoint] = {}
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
    async def acquire(self, weight: int = 1, op: str | None = None) -> None:
        """Wait until the request may go: no ban, no cooldown, room in its endpoint's budget (if it has
        one) and in the shared window. Requests leave in the order they asked (per endpoint, then shared)."""
        self._queued += 1
        try:
            endpoint = self._endpoint(op)
            if endpoint is None:
                await self._acquire_shared(weight)
                return
            async with endpoint.lock:
                while True:
                    delay = endpoint.delay(time.monotonic(), self.headroom)
                    if delay > 0:
                        await asyncio.sleep(delay)
                        continue
                    await self._acquire_shared(weight)
                    # a refusal that came while it waited for the shared budget holds it again (the shared
                    # budget it took stays spent: a little early is never too late)
                    if endpoint.until <= time.monotonic():
                        break
                    self.not_sent()  # if it was a ban's probe, it did not go: the next request probes
                endpoint.spent.add(time.monotonic())
        finally:
            self._queued -= 1

    async def _acquire_shared(self, weight: int) -> None:
        async with self._lock:  # FIFO: requests leave in the order they asked
            while True:
                delay = self._delay(weight)
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            if self._probing:
                self._probe_out = True
            self._spent.add(time.monotonic(), weight)

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

    def _endpoint(self, op: str | None) -> _Endpoint | None:
        name = self.model.endpoint_of.get(op) if op is not None else None
        if name is None:
            return None
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            limit = self.model.endpoints.get(name, 1)
            endpoint = self._endpoints[name] = _Endpoint(name, limit, self.model.endpoint_window_s)
        return endpoint

    # ----- what the exchange told us ---------------------------------------------------------------
    def observe(
        self, reading: LimitReading, op: str | None = None, server_now_ms: float | None = None
    ) -> None:
        """An answer's budget figures (`op`: the call it answered; `server_now_ms`: the exchange's clock now,
        to read an endpoint's reset time)."""
        now = time.monotonic()
        if reading.used is not None:
            self._header_used, self._header_at = reading.used, now
        endpoint = self._endpoint(op)
        if endpoint is None:
            return
        if reading.endpoint_limit is not None and reading.endpoint_limit > 0:
            endpoint.limit = reading.endpoint_limit  # the account's own limit, not the documented default
        if reading.endpoint_left is not None:
            endpoint.header_used = max(0, endpoint.limit - reading.endpoint_left)
            endpoint.header_at = now
            if reading.endpoint_left <= 0:
                endpoint.until = max(endpoint.until, now + self._reset_wait(reading, server_now_ms))

    def on_endpoint_limited(
        self, op: str, reading: LimitReading, server_now_ms: float | None = None
    ) -> float | None:
        """The exchange refused `op` for its endpoint's budget (Bybit's 10006): that endpoint waits for its
        reset, the others go on. The wait in seconds, or None when `op` has no budget of its own."""
        endpoint = self._endpoint(op)
        if endpoint is None:
            return None
        now = time.monotonic()
        self._rejections.add(now)
        self._rejected_total += 1
        self.observe(reading, op, server_now_ms)
        wait = self._reset_wait(reading, server_now_ms)
        endpoint.until = max(endpoint.until, now + wait)
        endpoint.refused_until = max(endpoint.refused_until, now + wait)
        return wait

    def _reset_wait(self, reading: LimitReading, server_now_ms: float | None) -> float:
        """Seconds until the endpoint's reset, never more than its window (a rolling window has room again
        within it whatever the clocks say); the whole window when the answer did not say, or when the reset
        is already past by our clock (the clocks disagree more than the answer took)."""
        window = self.model.endpoint_window_s
        if reading.endpoint_reset_ms is None or server_now_ms is None:
            return window
        wait = (reading.endpoint_reset_ms - server_now_ms) / 1000
        return min(max(wait, 0.05), window) if wait > 0 else window

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

    def held(self, name: str) -> bool:
        """Is endpoint `name` refused, or was it within its last window (a burst of refusals is one)?"""
        endpoint = self._endpoints.get(name)
        return endpoint is not None and endpoint.refused_until + endpoint.window_s > time.monotonic()

    def not_sent(self) -> None:
        """A request that took its turn never went (cancelled, or failed before it was sent): if it was a
        ban's probe, the next request probes instead (else every request would wait for its answer)."""
        self._probe_out = False

    def answered(self) -> None:
        """An answer other than a ban came back: a ban being probed is over."""
        self._probing = False
        self._probe_out = False

    # ----- reading -------------------------------------------------------------------------------
    def snapshot(self) -> RateLimitSnapshot:
        now = time.monotonic()
        wall = time.time()

        def at(until: float) -> float | None:
            return wall + (until - now) if until > now else None

        endpoints = tuple(
            EndpointBudget(e.name, e.used(now), e.limit, at(e.refused_until))
            for e in sorted(self._endpoints.values(), key=lambda e: e.name)
        )
        return RateLimitSnapshot(
            used=self._used(now),
            limit=self.limit,
            queued=self._queued,
            rejected_recent=self._rejections.total(now),
            rejected_total=self._rejected_total,
            banned_total=self._banned_total,
            cooldown_until=at(self._cooldown_until),
            banned_until=at(self._banned_until),
            window_s=self._window,
            endpoints=endpoints,
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


def header(headers: Mapping[str, str] | None, name: str) -> int | None:
    """An integer header, by name in any case; None when absent or not a number."""
    if not headers:
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
