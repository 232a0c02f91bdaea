"""Bybit's per-endpoint, per-account request budgets: requests per rolling second.

Every private answer carries `X-Bapi-Limit` (the endpoint's budget), `X-Bapi-Limit-Status` (what is left
of it in the current second) and `X-Bapi-Limit-Reset-Timestamp` (ms when room opens again; now when there
is room). A request over budget is answered HTTP 200 with retCode 10006. The budgets are Bybit's defaults
for a unified account trading linear contracts (the exact table per account tier is not published in full;
these are the documented defaults).
"""

from __future__ import annotations

import time

from cockpit.core.window import SlidingWindow

DEFAULT_PER_SECOND = 50
PER_SECOND: dict[str, int] = {
    "/v5/order/create": 10,
    "/v5/order/cancel": 10,
    "/v5/order/cancel-all": 10,
    "/v5/position/set-leverage": 10,
    "/v5/position/switch-mode": 10,
    "/v5/order/realtime": 50,
    "/v5/position/list": 50,
    "/v5/execution/list": 50,
    "/v5/account/wallet-balance": 50,
}


class EndpointBudgets:
    """One rolling-second window per endpoint. `per_second` may be changed (tests shrink a budget)."""

    def __init__(self) -> None:
        self.per_second = dict(PER_SECOND)
        self._windows: dict[str, SlidingWindow] = {}

    def limit(self, path: str) -> int:
        return self.per_second.get(path, DEFAULT_PER_SECOND)

    def take(self, path: str, now_ms: int) -> tuple[bool, dict[str, str]]:
        """Count one request on `path`: (allowed, the headers to answer with)."""
        window = self._windows.setdefault(path, SlidingWindow(1.0))
        now = time.monotonic()
        limit = self.limit(path)
        allowed = window.fits(now, 1, limit)
        if allowed:
            window.add(now)
        left = max(0, limit - window.total(now))
        reset = now_ms if left > 0 else now_ms + int(window.wait(now) * 1000) + 1
        return allowed, headers(limit, left, reset)


def headers(limit: int, left: int, reset_ms: int) -> dict[str, str]:
    return {
        "X-Bapi-Limit": str(limit),
        "X-Bapi-Limit-Status": str(left),
        "X-Bapi-Limit-Reset-Timestamp": str(reset_ms),
    }
