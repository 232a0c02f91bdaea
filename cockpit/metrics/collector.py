"""The exporter: a prometheus-client collector that reads the engine (a `MetricsSource`) at scrape time, and
the two histograms observed as their samples happen (exchange call latency, session store commit latency).

Everything but the histograms is read when Prometheus scrapes, from State and a few counters the engine keeps
anyway: the engine's hot path pays nothing for the endpoint. The names are the contract in names.py.

    metrics = EngineMetrics()               # one registry per engine (never prometheus-client's global one)
    metrics.source = adapter                # what the collector reads; None: only the process metrics
    gateway.latency.observers.append(metrics.observe_latency)
    store.commit_observers.append(metrics.observe_commit)
    body = metrics.exposition()             # the text format, CONTENT_TYPE_LATEST
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from decimal import Decimal

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from cockpit.core.state import DRAWDOWN_BANDS, HEALTH_ITEMS, State
from cockpit.exchange.latency import LatencySample
from cockpit.metrics.names import (
    COMMIT_LATENCY_BUCKETS,
    FILL_RATIO_MIN_OUTCOMES,
    INCIDENT_SEVERITIES,
    ORDER_LATENCY_BUCKETS,
)
from cockpit.metrics.source import MetricsSource

log = logging.getLogger(__name__)

# connected: the websocket is open (a stale stream's socket is still up: its silence is stale_seconds' news)
SOCKET_UP = ("connected", "stale")


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    """A gauge without labels, or nothing while its value is unknown (never NaN)."""
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


class CockpitCollector(Collector):
    """Every `cockpit_*` series but the histograms, read from `source()` at each scrape (nothing while it
    is None: between the engines of a restore)."""

    def __init__(self, source: Callable[[], MetricsSource | None]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        source = self._source()
        if source is None:
            return
        state = source.state
        yield from self._engine(source)
        yield from self._health(source, state)
        yield from self._account(state)
        yield from self._orders(state)
        yield from self._limits(source)
        yield from self._store(source)
        yield from self._incidents(source)

    # ----- the engine -----------------------------------------------------------------------------------
    @staticmethod
    def _engine(source: MetricsSource) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "cockpit_engine",
            "The engine: its exchange and mode (live, demo, dry-run)",
            value={"exchange": source.exchange, "mode": source.mode},
        )
        yield GaugeMetricFamily(
            "cockpit_engine_start_time_seconds", "Unix time the engine started", value=source.started_at
        )
        yield CounterMetricFamily(
            "cockpit_events_total",
            "Events this engine committed to its session file",
            value=source.events_committed(),
        )
        yield from _gauge(
            "cockpit_last_event_timestamp_seconds",
            "Unix time of the last committed event",
            source.last_event_ts(),
        )

    # ----- health ---------------------------------------------------------------------------------------
    @staticmethod
    def _health(source: MetricsSource, state: State) -> Iterator[Metric]:
        health = GaugeMetricFamily(
            "cockpit_health_ok",
            "1 while the component's health is ok, 0 otherwise (unknown while starting included)",
            labels=["component"],
        )
        # as `ctl status` lists them: "data" once bad data was refused, "notify" once a target failed
        items = (*HEALTH_ITEMS, *(item for item in ("data", "notify") if item in state.health))
        for item in items:
            health.add_metric([item], 1.0 if state.health_of(item).status == "ok" else 0.0)
        yield health
        connected = GaugeMetricFamily(
            "cockpit_stream_connected",
            "1 while the stream's websocket is open (connected or stale), 0 while it connects or is down",
            labels=["stream"],
        )
        for name, status in sorted(state.streams.items()):
            connected.add_metric([name], 1.0 if status.state in SOCKET_UP else 0.0)
        yield connected
        stale = GaugeMetricFamily(
            "cockpit_stream_stale_seconds",
            "Seconds since the stream last delivered a message",
            labels=["stream"],
        )
        for name, age in sorted(source.stream_ages().items()):
            stale.add_metric([name], max(0.0, age))
        yield stale
        reconnects = CounterMetricFamily(
            "cockpit_stream_reconnects_total",
            "Times the stream came back after a disconnect (feed.reconnected) since the engine started",
            labels=["stream"],
        )
        counted = source.reconnects()
        for name in sorted({*state.streams, *counted}):
            reconnects.add_metric([name], counted.get(name, 0))
        yield reconnects
        offset = state.clock_offset_ms
        yield from _gauge(
            "cockpit_clock_offset_seconds",
            "Clock offset, local minus exchange (positive: the local clock is ahead)",
            None if offset is None else -offset / 1000.0,
        )

    # ----- account and risk -----------------------------------------------------------------------------
    @staticmethod
    def _account(state: State) -> Iterator[Metric]:
        def usdt(value: Decimal | None) -> float | None:
            return None if value is None else float(value)

        yield from _gauge("cockpit_equity_usdt", "Equity: wallet plus unrealized PnL", usdt(state.equity))
        yield from _gauge("cockpit_wallet_balance_usdt", "Wallet balance", usdt(state.wallet))
        yield from _gauge("cockpit_available_balance_usdt", "Available balance", usdt(state.available))
        yield from _gauge(
            "cockpit_peak_equity_usdt", "Peak equity the drawdown is measured from", usdt(state.peak_equity)
        )
        yield GaugeMetricFamily(
            "cockpit_drawdown_ratio",
            "Drawdown from the peak equity, 0..1",
            value=float(state.drawdown_pct) / 100,
        )
        band = GaugeMetricFamily(
            "cockpit_drawdown_band", "1 for the drawdown's current band, 0 for the others", labels=["band"]
        )
        for name in DRAWDOWN_BANDS:
            band.add_metric([name], 1.0 if state.drawdown_band == name else 0.0)
        yield band
        ks = state.kill_switch
        yield GaugeMetricFamily(
            "cockpit_kill_switch_engaged",
            "1 while the kill switch is engaged",
            value=1.0 if ks.engaged else 0.0,
        )
        if ks.engaged:
            yield InfoMetricFamily(
                "cockpit_kill_switch",
                "Why and by whom the kill switch is engaged (present only while it is)",
                value={"cause": ks.cause, "by": ks.by},
            )
        yield GaugeMetricFamily("cockpit_open_positions", "Open positions", value=len(state.positions))
        size = GaugeMetricFamily(
            "cockpit_position_size", "Position size in contracts (absolute)", labels=["symbol", "side"]
        )
        notional = GaugeMetricFamily(
            "cockpit_position_notional_usdt", "Position notional: |size| x mark", labels=["symbol", "side"]
        )
        upnl = GaugeMetricFamily(
            "cockpit_position_unrealized_pnl_usdt",
            "Unrealized PnL of the position at its mark",
            labels=["symbol", "side"],
        )
        ghost = GaugeMetricFamily(
            "cockpit_position_ghost",
            "1 for a position no recorded trade explains (a ghost)",
            labels=["symbol", "side"],
        )
        # by symbol and side: a hedge account's LONG and SHORT legs of one symbol are two series
        for _key, p in sorted(state.positions.items()):
            labels = [p.symbol, p.side]
            size.add_metric(labels, float(abs(p.qty)))
            notional.add_metric(labels, float(p.notional))
            if p.mark is not None:
                upnl.add_metric(labels, float(p.upnl))
            ghost.add_metric(labels, 1.0 if p.ghost else 0.0)
        yield from (size, notional, upnl, ghost)
        yield GaugeMetricFamily("cockpit_open_orders", "Open orders", value=len(state.orders))

    # ----- orders -----------------------------------------------------------------------------------------
    @staticmethod
    def _orders(state: State) -> Iterator[Metric]:
        c = state.counters
        orders = CounterMetricFamily(
            "cockpit_orders_total",
            "Orders by outcome (submitted by cockpit; fills of its own)",
            labels=["outcome"],
        )
        for outcome, count in (
            ("submitted", c.orders_submitted),
            ("filled", c.orders_filled),
            ("rejected", c.orders_rejected),
            ("canceled", c.orders_canceled),
        ):
            orders.add_metric([outcome], count)
        yield orders
        yield CounterMetricFamily("cockpit_fills_total", "Fills (trades) recorded", value=c.fills)
        if c.orders_filled + c.orders_rejected >= FILL_RATIO_MIN_OUTCOMES and c.fill_rate is not None:
            yield GaugeMetricFamily(
                "cockpit_fill_ratio", "Filled / (filled + rejected) of cockpit's orders", value=c.fill_rate
            )

    # ----- exchange limits --------------------------------------------------------------------------------
    @staticmethod
    def _limits(source: MetricsSource) -> Iterator[Metric]:
        rl = source.rate_limit()
        yield GaugeMetricFamily(
            "cockpit_ratelimit_used_weight",
            "Request weight (Bybit: requests) used in the exchange's rolling window",
            value=rl.used,
        )
        yield GaugeMetricFamily(
            "cockpit_ratelimit_limit_weight",
            "Request weight (Bybit: requests) allowed per window",
            value=rl.limit,
        )
        yield GaugeMetricFamily(
            "cockpit_ratelimit_window_seconds",
            "The shared budget's window: 60 on Binance, 5 on Bybit",
            value=rl.window_s,
        )
        used = GaugeMetricFamily(
            "cockpit_ratelimit_endpoint_used_requests",
            "Requests in the current second to an endpoint with a budget of its own (Bybit)",
            labels=["endpoint"],
        )
        allowed = GaugeMetricFamily(
            "cockpit_ratelimit_endpoint_limit_requests",
            "An endpoint's own budget per second, as the exchange last stated it (Bybit)",
            labels=["endpoint"],
        )
        for endpoint in rl.endpoints:
            used.add_metric([endpoint.name], endpoint.used)
            allowed.add_metric([endpoint.name], endpoint.limit)
        yield used
        yield allowed
        yield GaugeMetricFamily(
            "cockpit_ratelimit_queued_requests",
            "Requests waiting for budget, a Retry-After or a ban to end",
            value=rl.queued,
        )
        yield CounterMetricFamily(
            "cockpit_rate_limited_total",
            "429 answers (rate limited) since the engine started",
            value=rl.rejected_total - rl.banned_total,
        )
        yield CounterMetricFamily("cockpit_bans_total", "418 answers (IP banned)", value=rl.banned_total)
        yield GaugeMetricFamily(
            "cockpit_ban_active",
            "1 while a 418 ban is in force",
            value=0.0 if rl.banned_until is None else 1.0,
        )

    # ----- the session store ------------------------------------------------------------------------------
    @staticmethod
    def _store(source: MetricsSource) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "cockpit_db_writer_queue_events",
            "Items queued for the session file's writer, not yet committed",
            value=source.writer_queue(),
        )
        yield CounterMetricFamily(
            "cockpit_ticks_total",
            "Market ticks received since the engine started",
            value=source.ticks_received(),
        )

    # ----- incidents and notifications --------------------------------------------------------------------
    @staticmethod
    def _incidents(source: MetricsSource) -> Iterator[Metric]:
        open_now = source.open_incidents()
        incidents = GaugeMetricFamily(
            "cockpit_open_incidents", "Open incidents by severity", labels=["severity"]
        )
        for severity in INCIDENT_SEVERITIES:
            incidents.add_metric([severity], open_now.get(severity, 0))
        yield incidents
        targets = source.notify_targets()
        failures = CounterMetricFamily(
            "cockpit_notify_failures_total", "Failed deliveries to the notification target", labels=["target"]
        )
        ok = GaugeMetricFamily(
            "cockpit_notify_target_ok", "1 while the target's last delivery succeeded", labels=["target"]
        )
        for name, (good, failed) in sorted(targets.items()):
            failures.add_metric([name], failed)
            ok.add_metric([name], 1.0 if good else 0.0)
        yield failures
        yield ok


class EngineMetrics:
    """One engine's registry: the collector above, the two histograms and prometheus-client's process and
    platform collectors. It outlives the engines of a restore: `source` is swapped, the histograms go on."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series: not in the contract
        self.registry = CollectorRegistry()
        self.source: MetricsSource | None = None
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.order_latency = Histogram(
            "cockpit_order_latency_seconds",
            "Exchange call latency by operation",
            ["op"],
            buckets=ORDER_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "cockpit_db_commit_latency_seconds",
            "Session store batch write and commit latency",
            buckets=COMMIT_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(CockpitCollector(lambda: self.source))

    def observe_latency(self, sample: LatencySample) -> None:
        """An exchange call's latency (LatencyRecorder's observer, on the event loop)."""
        self.order_latency.labels(sample.op).observe(sample.ms / 1000.0)

    def observe_commit(self, seconds: float) -> None:
        """A commit's latency (the session store's observer, on its writer thread: thread-safe)."""
        self.commit_latency.observe(seconds)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (`prometheus_client.CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
