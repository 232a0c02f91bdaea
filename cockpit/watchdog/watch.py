"""`cockpit watchdog`: a process of its own that asks the engine for its status every `watchdog.every_s` and
tells the notification targets when the engine

- **does not answer** while it is recorded as running (killed, crashed, hung): critical, at the first check
  that fails — a dead engine is never silent;
- **is not running** (stopped cleanly, or never started) for `silent_after_s`: a warning — a planned restart
  is back before then;
- **commits no event** for `silent_after_s` while it answers: critical (its store or its loop is stuck);
- **hears no market data** for `silent_after_s` while it answers: critical.

Each condition is an incident of its own (cause `engine:…`), through the same router and couriers as the
engine's own notifications: one message when it starts, one when it ends, reminders while a critical one
lasts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from cockpit.config.settings import Config
from cockpit.core.commands import StatusReport
from cockpit.core.domain import Severity
from cockpit.core.incidents import Incident, IncidentChange
from cockpit.notify.delivery import Courier, Send, apprise_send
from cockpit.notify.messages import Composer
from cockpit.notify.router import Router

log = logging.getLogger(__name__)

# cause → (severity, title)
CONDITIONS: dict[str, tuple[Severity, str]] = {
    "engine:unreachable": ("critical", "Engine not answering"),
    "engine:stopped": ("warning", "Engine not running"),
    "engine:silent": ("critical", "Engine commits no events"),
    "engine:no_market_data": ("critical", "Engine hears no market data"),
}


@dataclass
class Reading:
    """What one check found: the engine's status, or why there is none."""

    at: float
    status: StatusReport | None = None
    error: str = ""
    recorded_running: bool = False  # the account's or session folder's record says an engine runs


@dataclass
class _Open:
    number: int
    since: float
    detail: str
    seqs: int = 1


@dataclass
class Watch:
    """The conditions, from one reading to the next (pure: readings in, incident changes out)."""

    silent_after_s: float
    open: dict[str, _Open] = field(default_factory=dict)
    numbers: int = 0
    last_seq: int | None = None
    seq_since: float = 0.0  # when the seq last moved
    down_since: float | None = None  # when the engine was first found not running
    answering_since: float | None = None  # when it answered first after not answering (or at the start)

    def read(self, reading: Reading) -> list[IncidentChange]:
        now = reading.at
        found: dict[str, str] = {}
        status = reading.status
        if status is None:
            if reading.recorded_running:
                found["engine:unreachable"] = reading.error
            else:
                self.down_since = self.down_since if self.down_since is not None else now
                if now - self.down_since >= self.silent_after_s:
                    found["engine:stopped"] = f"{reading.error} (for {now - self.down_since:.0f} s)"
            self.last_seq = None
            self.answering_since = None
        else:
            self.down_since = None
            if self.answering_since is None:
                self.answering_since = now
            if status.seq != self.last_seq:
                self.last_seq, self.seq_since = status.seq, now
            elif now - self.seq_since >= self.silent_after_s:
                found["engine:silent"] = (
                    f"no event committed for {now - self.seq_since:.0f} s (seq {status.seq}); "
                    f"{status.session_file}"
                )
            market = status.market_data_ts
            if market is not None:  # a restarted engine's restored marks are old: counted from its answer
                market = max(market, self.answering_since)
            if market is not None and now - market >= self.silent_after_s:
                found["engine:no_market_data"] = f"the newest mark is {now - market:.0f} s old"
        return self._changes(found, now)

    def _changes(self, found: dict[str, str], now: float) -> list[IncidentChange]:
        changes: list[IncidentChange] = []
        for cause, detail in found.items():
            current = self.open.get(cause)
            if current is None:
                self.numbers += 1
                self.open[cause] = current = _Open(self.numbers, now, detail)
                changes.append(IncidentChange("opened", self._incident(cause, current, now)))
            else:
                current.seqs += 1
                current.detail = detail
                changes.append(IncidentChange("updated", self._incident(cause, current, now)))
        for cause in [c for c in self.open if c not in found]:
            current = self.open.pop(cause)
            changes.append(IncidentChange("resolved", self._incident(cause, current, now, end=now)))
        return changes

    @staticmethod
    def _incident(cause: str, current: _Open, now: float, end: float | None = None) -> Incident:
        severity, label = CONDITIONS[cause]
        title = f"{label} — {current.detail}" if current.detail else label
        return Incident(current.number, cause, severity, current.since, end, title, (0,) * current.seqs, now)


Asker = Callable[[], Awaitable[Reading]]


class Watchdog:
    def __init__(
        self,
        config: Config,
        urls: dict[str, str],
        ask: Asker,
        where: str,
        send: Send = apprise_send,
    ) -> None:
        self.config = config
        self.every_s = config.watchdog.every_s
        self.watch = Watch(config.watchdog.silent_after_s)
        self.ask = ask
        self.couriers = {name: Courier(name, url, self._health, send) for name, url in urls.items()}
        # the watchdog's own messages are never held back by a grace: it speaks of the engine itself
        # no reminders: nothing can acknowledge the watchdog's messages (its numbers are not the engine's)
        self.router = Router(
            replace(config.notify, grace_s=0.0, summary_at=None, repeat_critical_min=0),
            Composer(f"watchdog of {where}", config.source, ackable=False),
            settle_s=0.0,
        )
        self.readings = 0

    def _health(self, name: str, ok: bool, reason: str) -> None:
        log.warning("notification target %s %s", name, "delivers again" if ok else f"failing: {reason}")

    async def check(self) -> None:
        reading = await self.ask()
        self.readings += 1
        now = reading.at
        for change in self.watch.read(reading):
            for out in self.router.on_change(change, now):
                self.couriers[out.target].post(out.message)
        for out in self.router.tick(now):
            self.couriers[out.target].post(out.message)

    async def run(self, stop: asyncio.Event) -> None:
        for courier in self.couriers.values():
            courier.start()
        try:
            while not stop.is_set():
                try:
                    await self.check()
                except Exception:  # the watchdog must outlive its own bugs: said, and tried again
                    log.exception("watchdog check failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.every_s)
        finally:
            await asyncio.gather(*(c.stop() for c in self.couriers.values()))
