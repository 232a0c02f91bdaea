"""Which message goes to which target, and when. Pure: it is told incident changes and the time, and answers
with the messages to deliver; delivery is cockpit/notify/delivery.py.

- One message when an incident opens and one when it resolves, however many events it groups. A critical one
  is sent at once; a warning once it has been open `grace_s` (a warning cockpit resolves sooner is left to the
  daily summary: a blip the engine handled is no reason to wake anyone).
- A resolution is sent `settle_s` after it (the incident builder's merge window): a symptom within it reopens
  the same incident, and then nothing is sent — no "resolved … opened again" pairs from a flapping stream.
- An incident merged into another one (streams dropping into exchange maintenance) says nothing more: the one
  it joined speaks for it. So that it has said nothing before either, a stream's incident waits
  `STREAM_HOLD_S` (the builder's absorbing window and a margin for the events' way here), whatever
  `grace_s` is.
- A stream's incident is a warning for the targets until it has been down `FEED_CRITICAL_AFTER_S` (the
  runbook's threshold), however early the feed calls it critical.
- A critical incident still open is sent again every `repeat_critical_min` until acknowledged.
- Each target takes at most `rate_per_hour` messages in any hour; what it cannot take now is held and folded
  into one digest when it can.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cockpit.config.schema import NotifyConfig, TargetConfig
from cockpit.core.domain import SEVERITIES, Severity
from cockpit.core.incidents import ABSORB_S, CLOSABLE_PREFIXES, MERGE_S, Incident, IncidentChange
from cockpit.notify.messages import Composer, Message, family

HOUR_S = 3600.0
# runbook 000: "websocket down > 60 s" is what is critical; the feed marks a stream critical from its third
# failed reconnect (seconds, with a fast backoff): until a stream incident has been open this long it is a
# warning for the targets, so a phone is not woken by a reconnect that takes a few tries
FEED_CRITICAL_AFTER_S = 60.0
# a stream incident can still be absorbed by maintenance or a ban opening up to ABSORB_S after it started (the
# exchange's notice comes after the sockets close): it is not told before then, plus the time an event takes
# from the engine to the router (committed, then handed on)
STREAM_HOLD_S = ABSORB_S + 5.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    target: str
    message: Message


@dataclass
class _Tracked:
    incident: Incident
    sent_to: set[str] = field(default_factory=set)  # targets told it opened
    resolved_at: float | None = None  # when the builder resolved it (its resolution waits settle_s)
    last_sent: float = 0.0
    acked: bool = False
    done: bool = False  # resolution sent, or merged, or resolved before anyone was told
    one_off: bool = False  # nothing closes it (a rejection, an alert): no resolution is sent


@dataclass
class _Budget:
    per_hour: int
    sent: deque[float] = field(default_factory=deque)
    held: list[Message] = field(default_factory=list)

    def free(self, now: float) -> bool:
        while self.sent and now - self.sent[0] >= HOUR_S:
            self.sent.popleft()
        return len(self.sent) < self.per_hour


class Router:
    def __init__(
        self,
        notify: NotifyConfig,
        composer: Composer,
        settle_s: float = MERGE_S,
        failing: Callable[[], Mapping[str, bool]] = dict,
    ) -> None:
        self.config = notify
        self.composer = composer
        self.settle_s = settle_s
        self.stream_hold_s = STREAM_HOLD_S
        self.failing = failing  # targets whose delivery keeps failing: not sent news of their own failure
        self._tracked: dict[int, _Tracked] = {}
        self._budgets = {name: _Budget(t.rate_per_hour) for name, t in notify.targets.items()}

    # ----- what happened ---------------------------------------------------------------------------
    def on_change(self, change: IncidentChange, now: float) -> list[Outgoing]:
        incident = change.incident
        tracked = self._tracked.get(incident.number)
        if tracked is None:
            one_off = not incident.cause.startswith((*CLOSABLE_PREFIXES, "engine:"))  # engine: the watchdog's
            tracked = self._tracked[incident.number] = _Tracked(incident, one_off=one_off)
        tracked.incident = incident
        if tracked.one_off:  # a critical one is said at once; a warning once its episode is over
            return (
                [o for o in self._announce(tracked, now) if o.target]
                if incident.severity == "critical"
                else []
            )
        if change.change == "merged":
            del self._tracked[incident.number]  # the incident it joined speaks for it
            return []
        if change.change == "resolved":
            tracked.resolved_at = now
            return []
        if not incident.open:  # joined after it ended (fills an outage hid): its resolution still stands
            return []
        tracked.resolved_at = None  # open (again): a resolution not yet sent is not sent
        if tracked.done and incident.open:
            tracked.done = False
        return [o for o in self._announce(tracked, now) if o.target]

    def acknowledge(self, number: int | None) -> list[int]:
        """Stop the reminders of incident `number` (None: every open one); the numbers acknowledged."""
        acked = []
        for tracked in self._tracked.values():
            incident = tracked.incident
            if (number is None or incident.number == number) and incident.open and not tracked.acked:
                tracked.acked = True
                acked.append(incident.number)
        return acked

    def tick(self, now: float) -> list[Outgoing]:
        """Warnings past their grace, resolutions past settling, reminders, digests a budget can now take."""
        out: list[Outgoing] = []
        repeat_s = self.config.repeat_critical_min * 60.0
        for number, tracked in list(self._tracked.items()):
            incident = tracked.incident
            if tracked.one_off:
                if now - incident.last >= self.settle_s:  # no symptom joined it for settle_s: it is over
                    out += self._announce(tracked, now, graced=True)
                    del self._tracked[number]
                continue
            if tracked.resolved_at is not None and now - tracked.resolved_at >= self.settle_s:
                tracked.resolved_at = None
                tracked.done = True
                message = self.composer.resolved(incident)
                out += [self._through(name, message, now) for name in sorted(tracked.sent_to)]
            elif incident.open and not tracked.done:
                out += self._announce(tracked, now)
                if (
                    incident.severity == "critical"
                    and repeat_s > 0
                    and not tracked.acked
                    and tracked.sent_to
                    and now - tracked.last_sent >= repeat_s
                ):
                    tracked.last_sent = now
                    message = self.composer.opened(incident, now, repeat=True)
                    out += [self._through(name, message, now) for name in sorted(tracked.sent_to)]
            if tracked.done and tracked.resolved_at is None and not incident.open:
                del self._tracked[number]  # nothing more to say about it
        for name, budget in self._budgets.items():
            if budget.held and budget.free(now):
                held, budget.held = budget.held, []
                message = held[0] if len(held) == 1 else self.composer.digest(held)
                budget.sent.append(now)
                out.append(Outgoing(name, message))
        return [o for o in out if o.target]

    def summary(self, message: Message) -> list[Outgoing]:
        """The daily summary, to every target that asked for it (not counted against the rate)."""
        return [Outgoing(name, message) for name, t in self.config.targets.items() if t.summary]

    # ----- who hears it ----------------------------------------------------------------------------
    def _announce(self, tracked: _Tracked, now: float, graced: bool = False) -> list[Outgoing]:
        """Tell the targets that should know of this incident and were not told yet (a warning once it has
        been open `grace_s`, unless `graced`)."""
        incident = tracked.incident
        severity = incident.severity
        if (
            severity == "critical"
            and family(incident.cause) == "feed"
            and now - incident.start < FEED_CRITICAL_AFTER_S
        ):
            severity = "warning"
        if severity != "critical" and not graced and now - incident.start < self.config.grace_s:
            return []
        if incident.cause.startswith("feed:") and now - incident.start < self.stream_hold_s:
            return []  # maintenance may yet absorb it
        failing = self.failing()
        names = [
            name
            for name, target in self.config.targets.items()
            if name not in tracked.sent_to
            and wants(target, incident, severity)
            and not (family(incident.cause) == "notify" and failing.get(name, False))
        ]
        if not names:
            return []
        tracked.sent_to.update(names)
        tracked.last_sent = now
        message = self.composer.opened(incident, now, severity=severity)
        return [self._through(name, message, now) for name in names]

    def _through(self, name: str, message: Message, now: float) -> Outgoing:
        """`message` for `name` now, or held for its next digest (then an Outgoing with no target)."""
        budget = self._budgets[name]
        if budget.held or not budget.free(now):
            budget.held.append(message)
            return Outgoing("", message)
        budget.sent.append(now)
        return Outgoing(name, message)

    @property
    def open_numbers(self) -> list[int]:
        return [n for n, t in self._tracked.items() if t.incident.open]


def wants(target: TargetConfig, incident: Incident, severity: Severity | None = None) -> bool:
    """Whether `target` hears `incident` (as of `severity`: its own unless said)."""
    if SEVERITIES.index(severity or incident.severity) < SEVERITIES.index(target.min_severity):
        return False
    return "all" in target.kinds or family(incident.cause) in target.kinds
