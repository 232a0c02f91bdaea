"""Incidents: episodes derived from events — first symptom → recovery or operator action — with a cause.

One definition for the event log, replay's `n`/`p` and timeline, `cockpit sessions`, the report, the stats
screen and notifications. Pure: no I/O, no Textual.

- A **cause** is a short key: `feed:<stream>`, `feed:<feed>/stale` (its streams silent),
  `exchange:maintenance`, `exchange:rate_limit`, `exchange:ban`, `exchange:auth`, `exchange:error`,
  `clock`, `drawdown`, `ghost:<symbol>`, `database`, `backup`, `killswitch`, `order:rejected`,
  `reconcile`, `flatten`, `dead_letter`, `alert:<source>` (and `<kind>` for anything else that is not info).
- A **symptom** opens an incident of its cause, or joins the cause's latest incident while that one is open or
  ended less than `MERGE_S` ago (a flapping stream, a second 429 burst: the same episode).
- A **closer** resolves the open incident of a cause: `feed.connected` / `feed.reconnected` for its stream,
  `exchange.recovered` for exchange trouble, `health.changed` ok for its item, `clock.drift` ok,
  `drawdown.band` back to an info band, `killswitch.released`, a `reconcile.done` that no longer lists the
  ghost (or the operator adopting it), `db.restored`; `session.stopped` closes streams (closed on purpose)
  and bad data.
- One-off causes (a rejection, a failed call, a recovered fill, an alert) have no closer: their incident ends
  at its last symptom, and symptoms within `MERGE_S` of it join it.
- While the exchange is in maintenance or has banned us, streams dropping and calls failing for good are part
  of that incident, not incidents of their own; so are streams that dropped up to `ABSORB_S` before it opened.
- The severity is the worst of the incident's events; an incident still open when the events end has no end.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

from cockpit.core import events as ev
from cockpit.core.domain import SEVERITIES, Event, Severity, position_key

MERGE_S = 30.0  # a symptom this soon after its cause's incident ended belongs to that incident

# Info events that can close an incident; with every warning and critical event, all the builder reads.
CLOSER_KINDS: tuple[str, ...] = (
    "feed.connected",
    "feed.reconnected",
    "exchange.recovered",
    "health.changed",
    "clock.drift",
    "drawdown.band",
    "killswitch.released",
    "reconcile.done",
    "db.restored",
    "db.backup",
    "session.stopped",
)
RELEVANT_SQL = "severity <> 'info' OR kind IN ({})".format(", ".join(f"'{k}'" for k in CLOSER_KINDS))

EXCHANGE_TROUBLE = {
    "exchange.maintenance": "exchange:maintenance",
    "exchange.rate_limited": "exchange:rate_limit",
    "exchange.banned": "exchange:ban",
    "exchange.auth_failed": "exchange:auth",
}
# open incidents of these causes take the streams' drops and the calls' failures as their own symptoms
INHIBITING = ("exchange:maintenance", "exchange:ban")
ABSORB_S = 10.0  # and their open stream incidents that started this shortly before they opened
# causes something closes (see _route); every other cause is a one-off: it ends at its last symptom
CLOSABLE_PREFIXES = (
    "feed:",
    "exchange:maintenance",
    "exchange:rate_limit",
    "exchange:ban",
    "exchange:auth",
    "clock",
    "drawdown",
    "ghost:",
    "killswitch",
    "database",
    "backup",
    "bad_data",
    "health:notify",
)
# what the operator does, and what it changes, is no trouble (its outcome may be: flatten.done)
NOT_TROUBLE = ("operator.action", "flatten.started", "position.changed", "db.restored")

# merged: the incident became part of another one (opened in the same step), e.g. streams into maintenance
Change = Literal["opened", "updated", "resolved", "merged"]


@dataclass(frozen=True, slots=True)
class Incident:
    number: int  # an id: 1, 2, … in the order incidents opened (a merged one's number is not reused)
    cause: str
    severity: Severity
    start: float  # the first symptom's ts
    end: float | None  # recovery, operator action or last one-off symptom; None while open
    title: str
    seqs: tuple[int, ...]  # every event of the episode, symptoms and closer, in order
    last: float  # ts of its latest event

    @property
    def open(self) -> bool:
        return self.end is None

    @property
    def first_seq(self) -> int:
        return self.seqs[0]

    def duration(self, now: float) -> float:
        """Seconds from the first symptom to the end (or to `now` while open)."""
        return (now if self.end is None else self.end) - self.start


@dataclass(frozen=True, slots=True)
class IncidentChange:
    change: Change
    incident: Incident


@dataclass
class _Draft:
    number: int
    cause: str
    severity: Severity
    start: float
    title: str
    one_off: bool
    end: float | None = None
    last: float = 0.0
    seqs: list[int] = field(default_factory=list)
    reopened: tuple[float, float, int] | None = None  # when, the end it had, how many seqs it had then

    def take(self, event: Event) -> None:
        self.seqs.append(event.seq)
        self.last = event.ts
        if SEVERITIES.index(event.severity) > SEVERITIES.index(self.severity):
            self.severity = event.severity

    def frozen(self) -> Incident:
        return Incident(
            self.number,
            self.cause,
            self.severity,
            self.start,
            self.end,
            self.title,
            tuple(self.seqs),
            self.last,
        )


class IncidentBuilder:
    """Feed events in seq order (`add`); each returns what it did to incidents (opened, updated, resolved).
    Events other than warnings, criticals and `CLOSER_KINDS` change nothing and may be left out."""

    def __init__(self, merge_s: float = MERGE_S) -> None:
        self.merge_s = merge_s
        self._all: list[_Draft] = []
        self._opened = 0
        self._silent: dict[str, set[str]] = {}  # stale cause -> its streams still silent
        self._down: dict[str, set[str]] = {}  # open stream-down cause -> the streams still down in it
        self._latest: dict[str, _Draft] = {}

    @property
    def incidents(self) -> list[Incident]:
        """Every incident, by start."""
        return sorted((d.frozen() for d in self._all), key=lambda i: i.first_seq)

    @property
    def open_incidents(self) -> list[Incident]:
        return [d.frozen() for d in self._all if d.end is None]

    def add(self, event: Event) -> list[IncidentChange]:
        changes: dict[int, tuple[Change, _Draft]] = {}
        opened = {cause for cause, d in self._latest.items() if d.end is None}
        if event.kind == "session.stopped":
            self._down.clear()  # every stream closed on purpose
        steps = [*self._stale_steps(event), *(self._outage_steps(event, opened) or _route(event, opened))]
        if steps == [("symptom", "reconcile")] and self._after_outage(event, changes):
            steps = []  # the fills the outage hid, recovered: part of the outage
        for role, cause in steps:
            draft = self._latest.get(cause)
            if role == "symptom":
                changes.update(self._symptom(cause, event))
            elif draft is not None and draft.end is None and draft.number not in changes:
                draft.take(event)
                if role == "close":
                    draft.end = event.ts
                changes[draft.number] = ("resolved" if role == "close" else "updated", draft)
        if (
            not changes
            and event.severity != "info"
            and event.kind not in NOT_TROUBLE
            and all(role != "close" for role, _ in steps)
        ):
            changes.update(self._symptom(_fallback(event), event))
        return [IncidentChange(what, d.frozen()) for what, d in changes.values()]

    def _stale_steps(self, e: Event) -> list[Step]:
        """A feed's silent streams: its stale incident ends when the last of them flows again (or the feed
        reconnects, which resubscribes them all)."""
        if e.kind not in ("feed.stale", "feed.connected", "feed.reconnected"):
            return []
        stream = _stream(e)
        cause = stale_cause(stream)
        silent = self._silent.setdefault(cause, set())
        if e.kind == "feed.stale":
            silent.add(stream)
            return []
        if "/" not in stream:
            silent.clear()
            return []
        if stream not in silent:
            return []
        silent.discard(stream)
        return [("join", cause)] if silent else [("close", cause)]

    def _outage_steps(self, e: Event, opened: set[str]) -> list[Step] | None:
        """Streams dropping together (one network or exchange blip closes every socket) are one outage: while
        a stream-down incident is open, another stream's drop joins it, and it resolves when the last of its
        streams is back. None: the usual route."""
        if e.kind not in ("feed.disconnected", "feed.connected", "feed.reconnected"):
            return None
        stream = _stream(e)
        if "/" in stream or any(c in opened for c in INHIBITING):
            return None
        if e.kind == "feed.disconnected":
            host = next((c for c in sorted(opened) if c in self._down), f"feed:{stream}")
            self._down.setdefault(host, set()).add(stream)
            return [("join" if host in opened else "symptom", host)]
        back = next((c for c, down in self._down.items() if stream in down), None)
        if back is None:
            return None
        host, down = back, self._down[back]
        down.discard(stream)
        if not down:
            del self._down[host]
        return [("join" if down else "close", host), ("close", stale_cause(stream))]

    def _after_outage(self, e: Event, changes: dict[int, tuple[Change, _Draft]]) -> bool:
        """A reconcile that recovers fills during or just after a stream outage is the outage's aftermath."""
        outages = [d for c, d in self._latest.items() if c.startswith("feed:") and not c.endswith("/stale")]
        recent = [d for d in outages if d.end is None or e.ts - d.end <= self.merge_s]
        if not recent:
            return False
        draft = max(recent, key=lambda d: d.start)
        draft.take(e)
        changes[draft.number] = ("updated", draft)
        return True

    def _symptom(self, cause: str, event: Event) -> dict[int, tuple[Change, _Draft]]:
        draft = self._latest.get(cause)
        one_off = not cause.startswith(CLOSABLE_PREFIXES)
        if draft is not None and (draft.end is None or event.ts - draft.end <= self.merge_s):
            if draft.end is not None and not one_off:
                draft.reopened = (event.ts, draft.end, len(draft.seqs))
            draft.take(event)
            draft.end = event.ts if one_off else None
            return {draft.number: ("updated", draft)}
        self._opened += 1
        draft = _Draft(
            number=self._opened,
            cause=cause,
            severity=event.severity,
            start=event.ts,
            title=title(cause, event),
            one_off=one_off,
        )
        draft.take(event)
        draft.end = event.ts if one_off else None
        self._all.append(draft)
        self._latest[cause] = draft
        changes: dict[int, tuple[Change, _Draft]] = {draft.number: ("opened", draft)}
        if cause in INHIBITING:
            changes.update(self._absorb_streams(draft))
        return changes

    def _absorb_streams(self, into: _Draft) -> dict[int, tuple[Change, _Draft]]:
        """Streams that dropped in the seconds before the exchange said maintenance (or ban) dropped because
        of it: their open incidents become part of this one (a stream incident reopened then gives up what
        came after the reopening, and ends where it had ended)."""
        changes: dict[int, tuple[Change, _Draft]] = {}
        since = into.start - ABSORB_S
        for draft in [d for d in self._all if d.end is None and d.cause.startswith("feed:")]:
            if draft.start >= since:
                self._all.remove(draft)
                del self._latest[draft.cause]
                self._down.pop(draft.cause, None)
                moved, into.start = draft.seqs, min(into.start, draft.start)
                if SEVERITIES.index(draft.severity) > SEVERITIES.index(into.severity):
                    into.severity = draft.severity
                changes[draft.number] = ("merged", draft)
            elif draft.reopened is not None and draft.reopened[0] >= since:
                at, draft.end, kept = draft.reopened
                moved, draft.seqs, draft.last, draft.reopened = (
                    draft.seqs[kept:],
                    draft.seqs[:kept],
                    draft.end,
                    None,
                )
                into.start = min(into.start, at)
                changes[draft.number] = ("resolved", draft)
            else:
                continue
            into.seqs = sorted([*moved, *into.seqs])
        return changes


def incidents_from(events: Iterable[Event]) -> list[Incident]:
    """The incidents of a list of events (a session file, a replay, a test), in the order they opened."""
    builder = IncidentBuilder()
    for event in events:
        builder.add(event)
    return builder.incidents


# ----- which events open, join and close which cause -------------------------------------------------
Step = tuple[Literal["symptom", "join", "close"], str]


def stale_cause(stream: str) -> str:
    """Silent streams of one feed (`market:market/btcusdt@markPrice@1s`, …) are one incident of the feed."""
    return f"feed:{stream.split('/', 1)[0]}/stale"


def _stream(e: Event) -> str:
    """A feed event's stream (`<feed>` or `<feed>/<stream>`), else its source."""
    p = cast(ev.FeedRead, e.payload)
    return str(p.get("stream") or p.get("feed") or e.source)


def _route(e: Event, opened: set[str]) -> list[Step]:
    """What `e` does, given the causes with an open incident. Each kind's payload is read as its TypedDict
    (cockpit/core/events.py)."""
    kind = e.kind
    inhibitor = next((c for c in INHIBITING if c in opened), None)
    if kind in ("feed.disconnected", "feed.stale"):
        cause = stale_cause(_stream(e)) if kind == "feed.stale" else f"feed:{_stream(e)}"
        return [("join" if inhibitor else "symptom", inhibitor or cause)]
    if kind in ("feed.connected", "feed.reconnected"):
        stream = _stream(e)
        if "/" in stream:  # data flowing again on one stream of a feed: see IncidentBuilder._stale_steps
            return []
        return [("close", f"feed:{stream}"), ("close", stale_cause(stream))]
    if kind in EXCHANGE_TROUBLE:
        return [("symptom", EXCHANGE_TROUBLE[kind])]
    if kind == "exchange.recovered":
        return [("close", cause) for cause in EXCHANGE_TROUBLE.values()]
    if kind in ("exchange.error", "dlq.added"):
        return [("join", inhibitor)] if inhibitor else [("join", c) for c in EXCHANGE_TROUBLE.values()]
    if kind == "health.changed":
        return _health(e)
    if kind == "data.rejected":  # the first refusal and its 30 s summaries: one episode until data is ok
        return [("symptom", "bad_data")]
    if kind == "clock.drift":
        return [("close" if e.severity == "info" else "symptom", "clock")]
    if kind == "drawdown.band":
        return [("close" if e.severity == "info" else "symptom", "drawdown")]
    if kind == "killswitch.engaged":
        return [("symptom", "killswitch")]
    if kind == "killswitch.guard" or (kind == "alert" and e.source == "risk" and "killswitch" in opened):
        return [("join", "killswitch")]  # the guard at work (and what it could not cancel)
    if kind == "killswitch.released":
        return [("close", "killswitch")]
    if kind == "position.ghost":
        ghost = cast(ev.PositionGhost, e.payload)
        return [("symptom", f"ghost:{position_key(ghost.get('symbol', '?'), ghost.get('leg'))}")]
    if kind == "position.changed":
        changed = cast(ev.PositionChanged, e.payload)
        if changed.get("ghost") is False:  # adopted, or explained by recorded fills
            # a hedge leg's cause is its key ("ghost:BTC/USDT:USDT short"), as reconcile.done names it
            return [("close", f"ghost:{position_key(changed.get('symbol', '?'), changed.get('leg'))}")]
        return []
    if kind == "reconcile.done":
        return _reconcile(e, opened)
    if kind == "order.filled" and e.severity != "info":
        # a fill the engine missed, recovered (files from before `recovered` was always set: by its source)
        if cast(ev.OrderFilled, e.payload).get("recovered", e.source == "reconcile"):
            return [("symptom", "reconcile")]
        return []
    if kind == "order.rejected" and e.severity != "info":
        if cast(ev.OrderRejected, e.payload).get("refused_by") == "risk" and "killswitch" in opened:
            return [("join", "killswitch")]  # refused because the kill switch is engaged: that incident
        return [("symptom", "order:rejected")]
    if kind in ("db.error", "db.corrupt"):
        return [("symptom", "database")]
    if kind == "db.restored":
        return [("close", "database")]
    if kind == "db.backup":
        return [("close" if e.severity == "info" else "symptom", "backup")]
    if kind == "session.stopped":
        # streams closed on purpose; bad data ends with the run (its quiet-minute timer stops with the engine)
        return [("close", c) for c in sorted(opened) if c.startswith("feed:") or c == "bad_data"]
    return []


_HEALTH_CAUSES = {
    "exchange": tuple(EXCHANGE_TROUBLE.values()),
    "database": ("database",),
    "clock": ("clock",),
    "data": ("bad_data",),  # ok again after a quiet minute (engine/baddata.py)
    "notify": ("health:notify",),  # a notification target delivers again (cockpit/notify/delivery.py)
}


def _health(e: Event) -> list[Step]:
    p = cast(ev.HealthChanged, e.payload)
    item, status = str(p.get("item", "")), str(p.get("status", ""))
    if status == "ok":
        return [("close", c) for c in _HEALTH_CAUSES.get(item, ())]
    return [] if e.severity == "info" else [("symptom", f"health:{item}")]


def _reconcile(e: Event, opened: set[str]) -> list[Step]:
    p = cast(ev.ReconcileDone, e.payload)
    steps: list[Step] = [("join", f"ghost:{s}") for s in p.get("ghosts") or ()]
    if "ghosts_open" in p:
        still = {f"ghost:{s}" for s in p.get("ghosts_open") or ()}
        steps += [("close", c) for c in sorted(opened) if c.startswith("ghost:") and c not in still]
    if p.get("recovered_fills") or p.get("orders_added") or p.get("orders_removed"):
        steps.append(("symptom", "reconcile"))
    return steps


def _fallback(e: Event) -> str:
    if e.kind in ("exchange.error",):
        return "exchange:error"
    if e.kind == "dlq.added":
        return "dead_letter"
    if e.kind == "killswitch.guard":
        return "killswitch"
    if e.kind == "flatten.done":
        return "flatten"
    if e.kind == "alert":
        return f"alert:{e.source}"
    if e.kind == "reconcile.done":
        return "reconcile"
    return e.kind


# ----- titles --------------------------------------------------------------------------------------
_LABELS = {
    "exchange:maintenance": "Exchange maintenance",
    "exchange:rate_limit": "Rate limited (429)",
    "exchange:ban": "Banned by the exchange (418)",
    "exchange:auth": "API key refused",
    "exchange:error": "Exchange call failed",
    "clock": "Clock drift",
    "drawdown": "Drawdown",
    "database": "Database writes failing",
    "health:database": "Database",
    "health:notify": "Notification target failing",
    "backup": "Backup failed",
    "killswitch": "Kill switch engaged",
    "order:rejected": "Order rejected",
    "reconcile": "Reconcile found differences",
    "flatten": "Flatten not verified",
    "dead_letter": "Operation failed for good",
    "bad_data": "Bad exchange data refused",
}
TITLE_MAX = 100


def title(cause: str, event: Event) -> str:
    """`<what> — <what the first symptom said>`, e.g. `Stream market:public down — connection refused`."""
    if cause.startswith("feed:") and cause.endswith("/stale"):
        label = f"Streams of {cause[5:-6]} silent"
    elif cause.startswith("feed:"):
        label = f"Stream {cause[5:]} down"
    elif cause.startswith("ghost:"):
        label = f"Ghost position {cause[6:]}"
    elif cause.startswith("alert:"):
        label = f"Alert from {cause[6:]}"
    else:
        label = _LABELS.get(cause, cause)
    p = cast(ev.Wording, event.payload)
    said = str(p.get("message") or p.get("reason") or p.get("cause") or "")
    text = f"{label} — {said}" if said and said != label else label
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"


# ----- a repeated condition updates its incident --------------------------------------------------
REPEAT_EVERY_S = 30.0


class Repeats:
    """Which notices of a persisting trouble become events: the first, then at most one every `every_s`
    unless its facts change (e.g. a new Retry-After). Each one let through says how many notices it stands
    for, so nothing is lost from the counts; `clear()` when the trouble ends."""

    def __init__(self, every_s: float = REPEAT_EVERY_S) -> None:
        self.every_s = every_s
        self._said: dict[str, tuple[float, object]] = {}  # key -> (when, facts) of the last event
        self._held: dict[str, int] = {}

    def let_through(self, key: str, facts: object, now: float) -> int | None:
        """None: hold this notice (same trouble, same facts, said less than every_s ago); else the number of
        notices the event stands for (itself and those held since the last one)."""
        said = self._said.get(key)
        if said is not None and said[1] == facts and now - said[0] < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._said[key] = (now, facts)
        return self._held.pop(key, 0) + 1

    def clear(self) -> dict[str, int]:
        """The trouble ended: start afresh. Returns the notices held since their last event, by key."""
        held = {key: n for key, n in self._held.items() if n}
        self._said.clear()
        self._held.clear()
        return held
