"""The metric names: a contract between the exporter (collector.py), the shipped alert rules and the Grafana
dashboard. A name here changes only together with the rules and the dashboard that read it.

Names as a scrape shows them: a counter with its `_total`, a histogram by its base name (the scrape shows its
`_bucket`, `_sum` and `_count` series). No other `cockpit_*` name is exposed (tests/test_metrics.py holds the
exporter to this list). Money in USDT, times in seconds, ratios 0..1.
"""

from __future__ import annotations

ENGINE = (
    "cockpit_engine_info",
    "cockpit_engine_start_time_seconds",
    "cockpit_events_total",
    "cockpit_last_event_timestamp_seconds",
)
HEALTH = (
    "cockpit_health_ok",
    "cockpit_stream_connected",
    "cockpit_stream_stale_seconds",
    "cockpit_stream_reconnects_total",
    "cockpit_clock_offset_seconds",
)
ACCOUNT = (
    "cockpit_equity_usdt",
    "cockpit_wallet_balance_usdt",
    "cockpit_available_balance_usdt",
    "cockpit_peak_equity_usdt",
    "cockpit_drawdown_ratio",
    "cockpit_drawdown_band",
    "cockpit_kill_switch_engaged",
    "cockpit_kill_switch_info",
    "cockpit_open_positions",
    "cockpit_position_size",
    "cockpit_position_notional_usdt",
    "cockpit_position_unrealized_pnl_usdt",
    "cockpit_position_ghost",
    "cockpit_open_orders",
)
ORDERS = (
    "cockpit_order_latency_seconds",
    "cockpit_orders_total",
    "cockpit_fills_total",
    "cockpit_fill_ratio",
)
EXCHANGE_LIMITS = (
    "cockpit_ratelimit_used_weight",
    "cockpit_ratelimit_limit_weight",
    "cockpit_ratelimit_window_seconds",
    "cockpit_ratelimit_endpoint_used_requests",
    "cockpit_ratelimit_endpoint_limit_requests",
    "cockpit_ratelimit_queued_requests",
    "cockpit_rate_limited_total",
    "cockpit_bans_total",
    "cockpit_ban_active",
)
STORE = (
    "cockpit_db_writer_queue_events",
    "cockpit_db_commit_latency_seconds",
    "cockpit_ticks_total",
)
INCIDENTS = (
    "cockpit_open_incidents",
    "cockpit_notify_failures_total",
    "cockpit_notify_target_ok",
)

METRIC_NAMES: tuple[str, ...] = (*ENGINE, *HEALTH, *ACCOUNT, *ORDERS, *EXCHANGE_LIMITS, *STORE, *INCIDENTS)

HISTOGRAMS = ("cockpit_order_latency_seconds", "cockpit_db_commit_latency_seconds")

# prometheus-client's process collector (only these are part of the contract; it exposes a few more)
PROCESS_NAMES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
)

ORDER_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

ORDER_OUTCOMES = ("submitted", "filled", "rejected", "canceled")
INCIDENT_SEVERITIES = ("warning", "critical")
FILL_RATIO_MIN_OUTCOMES = 5  # cockpit_fill_ratio is absent until this many fills and rejections
