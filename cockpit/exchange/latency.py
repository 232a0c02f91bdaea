"""Latency of every exchange call, by operation, with percentiles over a recent window."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

WINDOW = 500  # samples kept per operation


@dataclass(frozen=True)
class LatencySample:
    op: str
    ms: float
    ok: bool
    at: float  # wall-clock seconds


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class LatencyRecorder:
    def __init__(self, window: int = WINDOW) -> None:
        self._by_op: dict[str, deque[LatencySample]] = {}
        self._window = window
        self.last: LatencySample | None = None
        # told every sample as it is recorded (the /metrics histogram): quick, and never raising into a call
        self.observers: list[Callable[[LatencySample], None]] = []

    def record(self, op: str, ms: float, ok: bool) -> LatencySample:
        sample = LatencySample(op, ms, ok, time.time())
        self._by_op.setdefault(op, deque(maxlen=self._window)).append(sample)
        self.last = sample
        for observer in self.observers:
            try:
                observer(sample)
            except Exception:
                log.exception("latency observer failed")
        return sample

    def samples(self, op: str | None = None) -> list[LatencySample]:
        if op is not None:
            return list(self._by_op.get(op, ()))
        return [s for q in self._by_op.values() for s in q]

    def p(self, pct: float, op: str | None = None) -> float:
        return percentile([s.ms for s in self.samples(op)], pct)
