"""How often the engine's workers run and how its actions behave: the cadences a test or the demo shortens."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    mode: str = "live"  # live | demo | dry-run
    account_poll_s: float = 10.0
    reconcile_every_s: float = 60.0
    clock_every_s: float = 15.0
    risk_every_s: float = 0.5
    marks_every_s: float = 1.0
    ticks_flush_s: float = 0.25
    ratelimit_every_s: float = 1.0
    feed_backoff: tuple[float, ...] = (2.0, 4.0, 8.0)
    flatten_rounds: int = 5
    flatten_engages_kill_switch: bool = True
    backup_every_s: float = 3600.0
    order_ttl_s: float = 60.0  # a partially filled order's remainder is canceled after this long
    backup_retention_days: float = 30.0
    rotation_check_s: float = 60.0  # is it a new day (UTC), or the file over [session] rotate_mb?
    archive_every_s: float = 60.0  # ticks older than [session] tick_retention_h move to Parquet this often
    critical_errors_to_kill: int = 5
    session_file_check_s: float = 2.0  # is the session path still the open file (deleted, replaced)?
