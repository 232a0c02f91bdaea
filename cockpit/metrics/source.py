"""What the collector reads at scrape time: a small protocol the engine's adapter implements
(cockpit/engine/metrics_source.py). Nothing here is called on the engine's hot path: each method is read once
per scrape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cockpit.core.state import State
from cockpit.exchange.ratelimit import RateLimitSnapshot


class MetricsSource(Protocol):
    @property
    def state(self) -> State:
        """The engine's State now (immutable: read once per scrape)."""
        ...

    @property
    def exchange(self) -> str:
        """The exchange id of the config (`binanceusdm`)."""
        ...

    @property
    def mode(self) -> str:
        """live | demo | dry-run."""
        ...

    @property
    def started_at(self) -> float:
        """Unix time the engine started."""
        ...

    def rate_limit(self) -> RateLimitSnapshot:
        """The exchange gateway's limiter now (fresher than State's `ratelimit.updated` figures)."""
        ...

    def writer_queue(self) -> int:
        """Items emitted and not yet committed by the session store's writer."""
        ...

    def events_committed(self) -> int:
        """Events this engine committed to its session file (rotations included)."""
        ...

    def last_event_ts(self) -> float | None:
        """Event time of the last committed event; None before the first."""
        ...

    def ticks_received(self) -> int:
        """Market ticks (best bid/ask updates) received since the engine started."""
        ...

    def reconnects(self) -> Mapping[str, int]:
        """`feed.reconnected` events per stream (names as in State.streams) since the engine started."""
        ...

    def stream_ages(self) -> Mapping[str, float]:
        """Seconds since each stream last delivered a message (streams that never delivered: absent)."""
        ...

    def open_incidents(self) -> Mapping[str, int]:
        """Open incidents by severity (warning, critical)."""
        ...

    def notify_targets(self) -> Mapping[str, tuple[bool, int]]:
        """Per notification target: (ok: its last delivery succeeded, failures: deliveries failed so far)."""
        ...
