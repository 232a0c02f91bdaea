"""The engine's notifier: follows the committed events into incidents (the same definition as the event log,
replay and the report), routes them (router.py) and hands the messages to each target's courier
(delivery.py); sends the daily summary and calls the heartbeat URL. Nothing here can block or stop the
engine: events are taken in a subscriber that only folds them into incidents, everything else runs in tasks
of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

from cockpit.config.schema import NotifyConfig
from cockpit.core import events as ev
from cockpit.core.domain import Event, Severity
from cockpit.core.incidents import CLOSER_KINDS, Incident, IncidentBuilder
from cockpit.core.state import State
from cockpit.notify.delivery import Courier, Send, apprise_send
from cockpit.notify.messages import Composer, Message, span, utc
from cockpit.notify.router import Outgoing, Router

log = logging.getLogger(__name__)

TICK_S = 1.0
DAY_S = 86_400.0
Emit = Callable[[str, ev.Payload, Severity, str], object]


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message handed to a courier, for the tests and the bench: when its incident's first event happened,
    when the message was queued."""

    target: str
    message: Message
    queued_at: float


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        urls: Mapping[str, str],
        composer: Composer,
        emit: Emit,
        state: Callable[[], State],
        send: Send = apprise_send,
        heartbeat_url: str | None = None,
        retry_delays_s: tuple[float, ...] | None = None,
    ) -> None:
        self.config = config
        self.composer = composer
        self._emit = emit
        self._state = state
        self.builder = IncidentBuilder()
        self.couriers = {
            name: Courier(name, urls[name], self._target_health, send)
            for name in config.targets
            if name in urls
        }
        if retry_delays_s is not None:
            for courier in self.couriers.values():
                courier.retry_delays_s = retry_delays_s
        self.router = Router(config, composer, failing=self.failing)
        self.heartbeat_url = heartbeat_url
        self.heartbeat_ok: bool | None = None
        self.sent: deque[Delivered] = deque(maxlen=10_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._next_summary = next_summary(config.summary_at, time.time())
        self._day: deque[tuple[float, Incident]] = deque()  # incidents opened, for the daily summary
        self._equity: deque[tuple[float, Decimal]] = deque()  # (ts, equity) once a minute, for the summary

    # ----- the engine's side -------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """An event committed (EventCore.stream): into incidents; what opens or reopens one is routed now."""
        if event.kind == "operator.action":
            action = cast(ev.OperatorAction, event.payload)
            if action.get("action") == "ack":  # recorded before the engine answered (actions.acknowledge)
                self.router.acknowledge(action.get("id"))
            return
        if event.severity == "info" and event.kind not in CLOSER_KINDS:
            return
        now = time.time()
        for change in self.builder.add(event):
            if change.change == "opened":
                self._day.append((now, change.incident))
            self._post(self.router.on_change(change, now))

    def acknowledge(self, number: int | None) -> list[int]:
        """The open incidents `number` names (None: every one) stop their reminders; the numbers."""
        return self.router.acknowledge(number)

    def failing(self) -> dict[str, bool]:
        return {name: not c.health.ok for name, c in self.couriers.items()}

    def open_by_severity(self) -> dict[str, int]:
        counts = {"warning": 0, "critical": 0}
        for incident in self.builder.open_incidents:
            if incident.severity in counts:
                counts[incident.severity] += 1
        return counts

    def targets_status(self) -> dict[str, tuple[bool, int]]:
        return {name: (c.health.ok, c.health.failures) for name, c in self.couriers.items()}

    # ----- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Idempotent: a restore starts the engine again with the same notifier."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        for courier in self.couriers.values():
            courier.start()
        self._tasks.append(loop.create_task(self._tick_loop(), name="notify-tick"))
        if self.heartbeat_url:
            self._tasks.append(loop.create_task(self._heartbeat_loop(), name="notify-heartbeat"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.tick(time.time())  # resolutions and digests due now still go
        await asyncio.gather(*(c.stop() for c in self.couriers.values()))

    # ----- the periodic side -------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            try:
                self.tick(time.time())
            except Exception:  # never the engine's problem: said in the log, tried again next second
                log.exception("notification tick failed")
            await asyncio.sleep(TICK_S)

    def tick(self, now: float) -> None:
        self._post(self.router.tick(now))
        equity = self._state().equity
        if equity is not None and (not self._equity or now - self._equity[-1][0] >= 60):
            self._equity.append((now, equity))
        while self._equity and now - self._equity[0][0] > DAY_S:
            self._equity.popleft()
        while self._day and now - self._day[0][0] > DAY_S:
            self._day.popleft()
        if self._next_summary is not None and now >= self._next_summary:
            self._next_summary = next_summary(self.config.summary_at, now)
            self._post(self.router.summary(self.daily_summary(now)))

    def daily_summary(self, now: float) -> Message:
        """The last 24 h: equity and its change, drawdown, fills and rejections, incidents, what is open."""
        state = self._state()
        lines = [f"{self.composer.where} · {utc(now - DAY_S)} → {utc(now)}"]
        if state.equity is not None:
            first = self._equity[0][1] if self._equity else state.equity
            change = state.equity - first
            lines.append(
                f"Equity {state.equity.quantize(Decimal('0.01'))} USDT ({change:+.2f} over "
                f"{span(now - self._equity[0][0]) if self._equity else '0 s'}) · peak "
                f"{state.peak_equity.quantize(Decimal('0.01')) if state.peak_equity is not None else '—'}"
                f" · drawdown {float(state.drawdown_pct):.2f}% ({state.drawdown_band})"
            )
        c = state.counters
        rate = f"{c.fill_rate:.0%}" if c.fill_rate is not None else "—"
        lines.append(
            f"Orders: {c.orders_submitted} sent, {c.orders_filled} filled, {c.orders_rejected} rejected "
            f"(fill rate {rate}) · {len(state.positions)} open positions"
        )
        opened = [incident for _, incident in self._day]
        critical = sum(1 for i in opened if i.severity == "critical")
        lines.append(f"Incidents: {len(opened)} opened ({critical} critical)")
        lines += [f"- {utc(i.start)} {i.severity} {i.title}" for i in opened[:15]]
        if len(opened) > 15:
            lines.append(f"- … {len(opened) - 15} more (cockpit report has them all)")
        still = self.builder.open_incidents
        if still:
            lines.append("Still open: " + "; ".join(f"#{i.number} {i.title}" for i in still[:5]))
        if state.kill_switch.engaged:
            lines.append(f"KILL SWITCH ENGAGED by {state.kill_switch.by}: {state.kill_switch.cause}")
        return Message(f"[cockpit daily] {self.composer.where}", "\n".join(lines), "info", change="summary")

    async def _heartbeat_loop(self) -> None:
        """A dead man's switch: the URL is called while the engine runs; its silence is the alarm."""
        import aiohttp

        assert self.heartbeat_url is not None
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    async with http.get(self.heartbeat_url) as answer:
                        ok = answer.status < 400
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok != self.heartbeat_ok:
                    if not ok or self.heartbeat_ok is not None:
                        log.warning("heartbeat URL %s", "answers again" if ok else "does not answer")
                    self.heartbeat_ok = ok
                await asyncio.sleep(self.config.heartbeat_every_s)

    # ----- to the couriers ---------------------------------------------------------------------------
    def _post(self, outgoing: list[Outgoing]) -> None:
        now = time.time()
        for out in outgoing:
            courier = self.couriers.get(out.target)
            if courier is None:
                continue
            courier.post(out.message)
            self.sent.append(Delivered(out.target, out.message, now))

    def _target_health(self, name: str, ok: bool, reason: str) -> None:
        """A target started failing, or delivers again: shown in Health and recorded."""
        failing = sorted(n for n, c in self.couriers.items() if not c.health.ok)
        severity: Severity
        if failing:
            detail = "; ".join(f"{n}: {self.couriers[n].health.last_error}" for n in failing)
            status, severity = "failing", "warning"
            message = f"notification target {', '.join(failing)} failing: {detail}"
        else:
            detail, status, severity = "", "ok", "info"
            message = f"notification target {name} delivers again"
        self._emit(
            "health.changed",
            ev.health_changed(item="notify", status=status, message=message, detail=detail or None),
            severity,
            "notify",
        )


def next_summary(at: str | None, now: float) -> float | None:
    """The next `HH:MM` UTC after `now`."""
    if at is None:
        return None
    hour, minute = (int(x) for x in at.split(":"))
    day = datetime.fromtimestamp(now, UTC)
    moment = day.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if moment.timestamp() <= now:
        moment += timedelta(days=1)
    return moment.timestamp()
