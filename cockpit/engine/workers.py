"""The periodic workers: clock offset, risk (drawdown bands, kill-switch triggers, flag file), rate-limit
publishing. Each is a coroutine the engine supervises (a crash is an event and a restart)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cockpit.domain import Severity
from cockpit.engine import account, backups, market, reconcile
from cockpit.engine.killswitch import engage

if TYPE_CHECKING:
    from cockpit.engine.engine import Engine

BANDS: tuple[tuple[float, str], ...] = ((3.0, "green"), (5.0, "yellow"), (7.0, "orange"))
BAND_SEVERITY: dict[str, Severity] = {
    "green": "info",
    "yellow": "info",
    "orange": "warning",
    "red": "critical",
}


def band_of(drawdown_pct: float) -> str:
    """green < 3 %, yellow 3–5 %, orange 5–7 %, red > 7 %."""
    for limit, band in BANDS:
        if drawdown_pct < limit:
            return band
    return "red"


def all(engine: Engine) -> list[tuple[str, Callable[[], Awaitable[None]]]]:  # noqa: A001 - the engine's list
    return [
        ("market", lambda: market.market_loop(engine)),
        ("account-poll", lambda: account.account_poll_loop(engine)),
        ("reconcile", lambda: reconcile.reconcile_loop(engine)),
        ("clock", lambda: clock_loop(engine)),
        ("risk", lambda: risk_loop(engine)),
        ("rate-limit", lambda: ratelimit_loop(engine)),
        ("backup", lambda: backups.backup_loop(engine)),
    ]


async def check_clock(engine: Engine) -> float:
    """Offset of the exchange's clock from ours, in ms (positive: the exchange is ahead)."""
    before = time.time()
    server_ms = await engine.gateway.fetch_time()
    after = time.time()
    offset = server_ms - (before + after) / 2 * 1000
    risk = engine.config.risk
    status = (
        "ok" if abs(offset) < risk.clock_warn_ms else "drift" if abs(offset) < risk.clock_kill_ms else "kill"
    )
    previous = engine.state.health_of("clock").status
    payload: dict[str, Any] = {
        "offset_ms": round(offset, 1),
        "status": status,
        "rtt_ms": round((after - before) * 1000, 1),
        "warn_ms": risk.clock_warn_ms,
        "kill_ms": risk.clock_kill_ms,
    }
    if status != previous and not (status == "ok" and previous == "unknown"):
        severity: Severity = "info" if status == "ok" else "warning" if status == "drift" else "critical"
        payload["message"] = (
            f"clock offset {offset:+.0f} ms ({status}; warn {risk.clock_warn_ms}, kill {risk.clock_kill_ms})"
        )
        engine.emit("clock.drift", payload, severity, "clock")
    else:
        engine.emit("clock.checked", payload, "info", "clock")
    if status == "kill":
        await engage(engine, f"clock offset {offset:+.0f} ms beyond {risk.clock_kill_ms} ms", "clock")
    return offset


async def clock_loop(engine: Engine) -> None:
    while True:
        await check_clock(engine)
        await asyncio.sleep(engine.options.clock_every_s)


async def risk_tick(engine: Engine) -> None:
    state = engine.state
    risk = engine.config.risk
    drawdown = float(state.drawdown_pct)
    band = band_of(drawdown)
    if band != state.drawdown_band:
        engine.emit(
            "drawdown.band",
            {
                "band": band,
                "drawdown_pct": round(drawdown, 3),
                "equity": str(state.equity),
                "peak_equity": str(state.peak_equity),
                "message": f"drawdown {drawdown:.2f}% ({band}); kill at {risk.kill_drawdown_pct}%",
            },
            BAND_SEVERITY[band],
            "risk",
        )
    if drawdown >= risk.kill_drawdown_pct:
        await engage(engine, f"drawdown {drawdown:.2f}% reached the {risk.kill_drawdown_pct}% limit", "risk")
    if engine.kill_flag.exists():
        await engage(engine, f"flag file {engine.kill_flag.name} present", "flag-file")


async def risk_loop(engine: Engine) -> None:
    """Fails closed: an error in a check engages the kill switch."""
    while True:
        try:
            await risk_tick(engine)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await engage(engine, f"risk check failed: {exc!r}", "risk")
        await asyncio.sleep(engine.options.risk_every_s)


async def ratelimit_loop(engine: Engine) -> None:
    last: tuple[Any, ...] | None = None
    while True:
        snap = engine.gateway.limiter.snapshot()
        key = (
            snap.used // 24,
            snap.queued,
            snap.rejected_recent,
            snap.cooldown_until is not None,
            snap.banned_until is not None,
        )
        if key != last:
            last = key
            engine.emit(
                "ratelimit.updated",
                {
                    "used": snap.used,
                    "limit": snap.limit,
                    "queued": snap.queued,
                    "rejected_recent": snap.rejected_recent,
                    "cooldown_until": snap.cooldown_until,
                    "banned_until": snap.banned_until,
                },
                "info",
                "exchange",
            )
        await asyncio.sleep(engine.options.ratelimit_every_s)
