"""The periodic workers: clock offset, risk (drawdown bands, kill-switch triggers, flag file), rate-limit
publishing. Each is a coroutine the engine supervises (a crash is an event and a restart)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cockpit.core import events
from cockpit.core.domain import Severity
from cockpit.core.state import band_of
from cockpit.engine import account, archive, backups, file_watch, market, reconcile, rotation
from cockpit.engine.clock import ClockWatch
from cockpit.engine.killswitch import engage
from cockpit.exchange.gateway import GatewayError

if TYPE_CHECKING:
    from cockpit.engine.context import ClockContext, EngineContext, RiskContext, Trading


BAND_SEVERITY: dict[str, Severity] = {
    "green": "info",
    "yellow": "info",
    "orange": "warning",
    "red": "critical",
}


def all(engine: EngineContext) -> list[tuple[str, Callable[[], Awaitable[None]]]]:  # noqa: A001 - the engine's list
    """Every worker, each given its own part's context (the market loop takes the whole `EngineContext`)."""
    return [
        ("market", lambda: market.market_loop(engine)),
        ("account-poll", lambda: account.account_poll_loop(engine)),
        ("reconcile", lambda: reconcile.reconcile_loop(engine)),
        ("clock", lambda: clock_loop(engine)),
        ("risk", lambda: risk_loop(engine)),
        ("rate-limit", lambda: ratelimit_loop(engine)),
        ("backup", lambda: backups.backup_loop(engine)),
        ("tick-archive", lambda: archive.archive_loop(engine)),
        ("rotation", lambda: rotation.rotation_loop(engine)),
        ("session-file", lambda: file_watch.session_file_loop(engine)),
        ("order-ttl", lambda: order_ttl_loop(engine)),
    ]


async def clock_loop(engine: ClockContext) -> None:
    """The clock check every `clock_every_s` (method and thresholds: cockpit/engine/clock.py)."""
    watch = ClockWatch(engine)
    while True:
        await watch.check()
        await asyncio.sleep(engine.options.clock_every_s)


async def risk_tick(engine: RiskContext) -> None:
    state = engine.state
    risk = engine.config.risk
    drawdown = float(state.drawdown_pct)
    band = band_of(drawdown)
    if band != state.drawdown_band:
        engine.emit(
            "drawdown.band",
            events.drawdown_band(
                band=band,
                drawdown_pct=round(drawdown, 3),
                equity=str(state.equity),
                peak_equity=str(state.peak_equity),
                message=f"drawdown {drawdown:.2f}% ({band}); kill at {risk.kill_drawdown_pct}%",
            ),
            BAND_SEVERITY[band],
            "risk",
        )
    if drawdown >= risk.kill_drawdown_pct:
        await engage(engine, f"drawdown {drawdown:.2f}% reached the {risk.kill_drawdown_pct}% limit", "risk")
    if engine.kill_flag.exists():
        await engage(engine, f"flag file {engine.kill_flag.name} present", "flag-file")
    check_margin_block(engine)
    check_fill_rate(engine)


def check_margin_block(engine: RiskContext) -> None:
    available = engine.state.available
    if (
        engine.risk.margin_block is not None
        and available is not None
        and available > engine.risk.margin_block
    ):
        engine.risk.margin_block = None
        engine.emit(
            "alert",
            events.alert(message=f"margin freed: {available} USDT available; new orders allowed again"),
            "info",
            "risk",
        )


FILL_RATE_WARN = 0.8
FILL_RATE_MIN_ORDERS = 5


def check_fill_rate(engine: RiskContext) -> None:
    """WARNING when fewer than 80 % of cockpit's orders fill (runbook 000 §2), once per crossing."""
    counters = engine.state.counters
    outcomes = counters.orders_filled + counters.orders_rejected
    rate = counters.fill_rate
    if rate is None or outcomes < FILL_RATE_MIN_ORDERS:
        return
    low = rate < FILL_RATE_WARN
    if low != engine.risk.fill_rate_low:
        engine.risk.fill_rate_low = low
        state = "below" if low else "back above"
        engine.emit(
            "alert",
            events.alert(
                message=f"fill rate {rate:.0%} ({counters.orders_filled}/{outcomes} orders) {state} 80%",
                fill_rate=round(rate, 4),
            ),
            "warning" if low else "info",
            "risk",
        )


async def order_ttl_loop(engine: Trading) -> None:
    """Cancel the remainder of cockpit's partially filled orders after `order_ttl_s` (runbook 004 §4)."""
    asked: set[str] = set()
    while True:
        await asyncio.sleep(min(1.0, engine.options.order_ttl_s / 2))
        now = time.time()
        asked &= set(engine.state.orders)  # forget orders that are closed
        for order in list(engine.state.orders.values()):
            if order.origin != "cockpit" or order.status != "partially_filled" or order.order_id is None:
                continue
            if now - order.updated < engine.options.order_ttl_s or order.client_order_id in asked:
                continue
            asked.add(order.client_order_id)
            try:
                answer = await engine.gateway.cancel_order(order.order_id, order.symbol, gone_ok=True)
            except GatewayError as exc:  # rate-limited or the exchange is down: try again next time round
                asked.discard(order.client_order_id)
                engine.emit(
                    "alert",
                    events.alert(message=f"TTL cancel of {order.client_order_id} failed: {exc.detail}"),
                    "warning",
                    "risk",
                )
                continue
            if answer is None:
                continue  # it filled or was canceled meanwhile: the user stream and reconcile say which
            if order.client_order_id in engine.state.orders:
                engine.emit(
                    "order.canceled",
                    events.order_canceled(
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        status="canceled",
                        filled=str(order.filled),
                        remaining=str(order.remaining),
                        reason=f"TTL {engine.options.order_ttl_s:g} s: remainder canceled",
                        leg=order.leg,
                    ),
                    "info",
                    "risk",
                )


async def risk_loop(engine: RiskContext) -> None:
    """Fails closed: an error in a check engages the kill switch."""
    while True:
        try:
            await risk_tick(engine)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await engage(engine, f"risk check failed: {exc!r}", "risk")
        await asyncio.sleep(engine.options.risk_every_s)


async def ratelimit_loop(engine: Trading) -> None:
    last: tuple[Any, ...] | None = None
    while True:
        snap = engine.gateway.limiter.snapshot()
        busiest = snap.busiest
        key = (
            snap.used * 100 // max(1, snap.limit),
            snap.queued,
            snap.rejected_recent,
            snap.cooldown_until is not None,
            snap.banned_until is not None,
            busiest and (busiest.name, busiest.used * 10 // max(1, busiest.limit), busiest.limit),
            busiest is not None and busiest.cooldown_until is not None,
        )
        if key != last:
            last = key
            engine.emit(
                "ratelimit.updated",
                events.ratelimit_updated(
                    used=snap.used,
                    limit=snap.limit,
                    queued=snap.queued,
                    rejected_recent=snap.rejected_recent,
                    cooldown_until=snap.cooldown_until,
                    banned_until=snap.banned_until,
                    window_s=snap.window_s,
                    endpoint=busiest.name if busiest else None,
                    endpoint_used=busiest.used if busiest else 0,
                    endpoint_limit=busiest.limit if busiest else 0,
                    endpoint_cooldown_until=busiest.cooldown_until if busiest else None,
                ),
                "info",
                "exchange",
            )
        await asyncio.sleep(engine.options.ratelimit_every_s)
