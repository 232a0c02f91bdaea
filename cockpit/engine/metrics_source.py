"""The engine as the /metrics collector's source (cockpit/metrics/source.py), and the endpoint a Runtime runs.

The collector reads State and figures the engine keeps anyway (the limiter, the event core's queue, the
feeds' last frames, the tick count) when Prometheus scrapes. What the engine does not count already is counted
here by an event subscriber, off the tick path: events committed, the last event's time, reconnects per
stream. The two histograms are fed by plain observer hooks of the gateway's latency recorder and the session
store (which know nothing of Prometheus).

Open incidents and the notification targets' status come from the notifier (`serve_metrics`'s
`notifications`). Without one (no target configured) there is no target, and the open incidents are followed
here with the same definition (cockpit/core/incidents.py), so an alert on them works all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from cockpit.config.settings import Config
from cockpit.core.domain import Event
from cockpit.core.incidents import CLOSER_KINDS, IncidentBuilder
from cockpit.core.state import State
from cockpit.engine.context import MetricsContext
from cockpit.exchange.ratelimit import RateLimitSnapshot
from cockpit.feeds import MarketFeed, UserFeed
from cockpit.feeds.bybit.user import BybitUserFeed
from cockpit.metrics.collector import EngineMetrics
from cockpit.metrics.server import MetricsServer

OpenIncidents = Callable[[], Mapping[str, int]]
NotifyTargets = Callable[[], Mapping[str, tuple[bool, int]]]


def _no_targets() -> Mapping[str, tuple[bool, int]]:
    return {}


class EngineMetricsSource:
    """One engine, read for a scrape (satisfies `cockpit.metrics.source.MetricsSource`)."""

    def __init__(
        self,
        engine: MetricsContext,
        open_incidents: OpenIncidents | None = None,
        notify_targets: NotifyTargets = _no_targets,
    ) -> None:
        self.engine = engine
        # the notifier's count, else incidents followed here (only warnings, criticals and their closers)
        self._incidents = IncidentBuilder() if open_incidents is None else None
        self.open_incidents: OpenIncidents = open_incidents or self._own_incidents
        self.notify_targets = notify_targets
        self._events = 0
        self._last_ts: float | None = None
        self._reconnects: dict[str, int] = {}
        self.unsubscribe = engine.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        """Told each event once committed (seq 0: shown unrecorded, the store had failed)."""
        if event.seq:
            self._events += 1
            self._last_ts = event.ts
        if event.kind == "feed.reconnected":
            stream = str(event.payload.get("stream", "market"))
            self._reconnects[stream] = self._reconnects.get(stream, 0) + 1
        if self._incidents is not None and (event.severity != "info" or event.kind in CLOSER_KINDS):
            self._incidents.add(event)

    def _own_incidents(self) -> Mapping[str, int]:
        counts = {"warning": 0, "critical": 0}
        for incident in self._incidents.open_incidents if self._incidents is not None else ():
            if incident.severity in counts:
                counts[incident.severity] += 1
        return counts

    @property
    def state(self) -> State:
        return self.engine.state

    @property
    def exchange(self) -> str:
        return self.engine.config.exchange.id

    @property
    def mode(self) -> str:
        return self.engine.options.mode

    @property
    def started_at(self) -> float:
        return self.engine.started_at

    def rate_limit(self) -> RateLimitSnapshot:
        return self.engine.gateway.limiter.snapshot()

    def writer_queue(self) -> int:
        return self.engine.core.pending

    def events_committed(self) -> int:
        return self._events

    def last_event_ts(self) -> float | None:
        return self._last_ts

    def ticks_received(self) -> int:
        return self.engine.market.ticks_seen

    def reconnects(self) -> Mapping[str, int]:
        return dict(self._reconnects)

    def stream_ages(self) -> Mapping[str, float]:
        """Per socket (its name in State.streams: `market:market`, `user`) and per market stream of it
        (`market:market/btcusdt@markPrice@1s`, as a stale stream is named there): seconds since its last
        frame (the feeds stamp frames with the loop's clock)."""
        loop = self.engine.loop
        if loop is None:
            return {}
        now = loop.time()
        ages: dict[str, float] = {}
        for feed in self.engine.feeds:
            if isinstance(feed, MarketFeed):
                for group in feed.groups:
                    conn = group.conn
                    if conn is None:
                        continue
                    if conn.last_rx:
                        ages[conn.name] = now - conn.last_rx
                    for stream, at in list(group.last_rx.items()):
                        ages[f"{conn.name}/{stream}"] = now - at
            elif isinstance(feed, UserFeed | BybitUserFeed) and feed.conn.last_rx:
                ages[feed.conn.name] = now - feed.conn.last_rx
        return ages


class MetricsEndpoint:
    """A Runtime's `/metrics`: one registry and one server for the Runtime's life, across the engines of a
    restore (the histograms go on; the counters of the engine's own start again with the new engine)."""

    def __init__(self, listen: str) -> None:
        self.metrics = EngineMetrics()
        self.server = MetricsServer(self.metrics.exposition, listen)
        self.source: EngineMetricsSource | None = None
        self.open_incidents: OpenIncidents | None = None  # the notifier's (None: followed by the source)
        self.notify_targets: NotifyTargets = _no_targets

    @property
    def address(self) -> tuple[str, int] | None:
        return self.server.address

    async def start(self) -> None:
        await self.server.start()

    def follow(self, engine: MetricsContext) -> EngineMetricsSource:
        """Read `engine` from now on; its gateway and session store feed the histograms."""
        self.forget()
        source = EngineMetricsSource(engine, self.open_incidents, self.notify_targets)
        engine.gateway.latency.observers.append(self.metrics.observe_latency)
        engine.store.commit_observers.append(self.metrics.observe_commit)  # shared by the files it rotates to
        self.source = self.metrics.source = source
        return source

    def forget(self) -> None:
        """The engine stopped: only the process metrics until the next one."""
        if self.source is not None:
            self.source.unsubscribe()
        self.source = self.metrics.source = None

    async def stop(self) -> None:
        self.forget()
        await self.server.stop()


class Notifications(Protocol):
    """What the endpoint reads of the notifier (cockpit/notify/notifier.py)."""

    def open_by_severity(self) -> Mapping[str, int]: ...

    def targets_status(self) -> Mapping[str, tuple[bool, int]]: ...


async def serve_metrics(
    endpoint: MetricsEndpoint | None,
    config: Config,
    engine: MetricsContext,
    notifications: Notifications | None = None,
) -> MetricsEndpoint | None:
    """`endpoint` (started the first time, when `[metrics] listen` is set) reading `engine` and the
    notifier; None without `[metrics] listen`. MetricsListenError (exit 2): the address cannot be bound."""
    listen = config.metrics.listen
    if listen is None:
        return None
    if endpoint is None:
        endpoint = MetricsEndpoint(listen)
        await endpoint.start()
    if notifications is not None:
        endpoint.open_incidents = notifications.open_by_severity
        endpoint.notify_targets = notifications.targets_status
    endpoint.follow(engine)
    return endpoint
