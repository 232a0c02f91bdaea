"""What a notification says: the incident, since when, what cockpit already did, and the one command that
helps. Pure: no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from cockpit.config.schema import INCIDENT_FAMILIES
from cockpit.core.domain import Severity
from cockpit.core.incidents import Incident

# what the engine does by itself about each kind of incident (cockpit/core/incidents.py names the causes)
DONE: dict[str, str] = {
    "feed": "reconnecting with backoff and resubscribing; marks come from REST while the stream is down",
    "exchange:maintenance": "new orders held; streams and calls resume when the exchange is back",
    "exchange:rate_limit": "requests paced to the exchange's limit, Retry-After honoured; orders wait",
    "exchange:ban": "every request stopped until the ban ends (retrying early would lengthen it)",
    "exchange:auth": "calls that need the API key are failing; nothing is retried until the key works",
    "exchange": "the call was retried with backoff; one that failed for good is in the dead-letter queue",
    "clock": "offset measured against the exchange's clock; past risk.clock.kill_ms the kill switch engages",
    "drawdown": "drawdown watched each second; the kill switch engages at risk.kill_drawdown_pct",
    "killswitch": "new orders refused; orders other clients place on the account are canceled by the guard",
    "ghost": "the position is marked GHOST and left out of automatic actions; reconcile checks it again",
    "database": "events kept in order and retried; if the store cannot recover, the kill switch engages",
    "backup": "the next backup is tried at its interval",
    "order": "the order was not placed; nothing is retried automatically",
    "reconcile": "the differences were recorded: missing fills recovered, orders added or removed",
    "flatten": "what is still open is shown; nothing more is sent automatically",
    "dead_letter": "kept in the dead-letter queue, to retry or remove",
    "bad_data": "the bad data was refused at the boundary; State did not take it",
    "notify": "the other targets are told; the failing one is retried with each message",
    "engine": "the supervisor restarts it (systemd Restart=on-failure)",
}


def family(cause: str) -> str:
    """The kind of incident a target asks for (`notify.targets.<name>.kinds`)."""
    if cause == "health:notify":
        return "notify"
    head = cause.split(":", 1)[0]
    return head if head in INCIDENT_FAMILIES else "other"


def done_for(cause: str) -> str:
    for key in (cause, cause.split("/", 1)[0], family(cause)):
        if key in DONE:
            return DONE[key]
    return "recorded in the session file; nothing else is done automatically"


def help_for(cause: str, config: Path | None) -> str:
    """The one command that helps first."""
    with_config = f" --config {config}" if config is not None else ""
    kind = family(cause)
    if kind == "drawdown":
        return f"cockpit ctl flatten --all{with_config}  (after looking: cockpit attach{with_config})"
    if kind == "killswitch":
        return f"cockpit ctl status{with_config}; release: cockpit ctl kill-switch off{with_config}"
    if kind in ("ghost", "reconcile"):
        return f"cockpit ctl reconcile{with_config}"
    if kind == "dead_letter":
        return f"cockpit dlq list{with_config}"
    if kind == "database":
        return f"cockpit attach{with_config}  (R: restore from a verified backup)"
    if kind == "engine":
        return "systemctl status cockpit; journalctl -u cockpit -n 50"
    if kind == "notify":
        return f"cockpit notify test{with_config}"
    return f"cockpit attach{with_config}"


def utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    severity: Severity  # info for a resolution, the daily summary, a test
    incident: int | None = None  # the engine's incident number
    cause: str | None = None
    change: str = "opened"  # opened | repeat | resolved | digest | summary | test

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


@dataclass(frozen=True, slots=True)
class Composer:
    """Writes the messages of one engine (`where`: e.g. `binanceusdm on host`)."""

    where: str
    config: Path | None = None
    ackable: bool = True  # the engine's incidents are acknowledged with `ctl ack N`; the watchdog's are not

    def opened(
        self, incident: Incident, now: float, repeat: bool = False, severity: Severity | None = None
    ) -> Message:
        """`severity`: as the targets are told it (a stream is a warning for its first minute)."""
        severity = severity or incident.severity
        tag = severity.upper() + (", still open" if repeat else "")
        lines = [
            incident.title,
            f"Since {utc(incident.start)} (open {span(now - incident.start)}) · {self.where}",
            f"Cockpit already: {done_for(incident.cause)}",
            f"Do: {help_for(incident.cause, self.config)}",
        ]
        if severity == "critical" and self.ackable:
            with_config = f" --config {self.config}" if self.config is not None else ""
            lines.append(
                f"Acknowledge: A in the cockpit, or cockpit ctl ack {incident.number}{with_config}"
                " (stops the reminders)"
            )
        lines.append(f"Incident #{incident.number} · cause {incident.cause} · {len(incident.seqs)} events")
        return Message(
            f"[cockpit {tag}] #{incident.number} {_label(incident.title)}",
            "\n".join(lines),
            severity,
            incident.number,
            incident.cause,
            "repeat" if repeat else "opened",
        )

    def resolved(self, incident: Incident) -> Message:
        end = incident.end if incident.end is not None else incident.last
        return Message(
            f"[cockpit resolved] #{incident.number} {_label(incident.title)}",
            f"Resolved at {utc(end)} after {span(end - incident.start)} · {self.where}\n"
            f"Incident #{incident.number} · cause {incident.cause} · worst {incident.severity} · "
            f"{len(incident.seqs)} events",
            "info",
            incident.number,
            incident.cause,
            "resolved",
        )

    def digest(self, held: list[Message]) -> Message:
        """Messages the target's rate limit held, folded into one."""
        worst: Severity = "critical" if any(m.severity == "critical" for m in held) else "warning"
        shown = [f"- {m.title}" for m in held[:20]]
        if len(held) > 20:
            shown.append(f"- … and {len(held) - 20} more (cockpit report has them all)")
        return Message(
            f"[cockpit] {len(held)} messages held by this target's rate limit",
            "\n".join([f"{self.where}", *shown]),
            worst,
            change="digest",
        )


def _label(title: str) -> str:
    """The incident's title before its ` — ` detail (the body has the whole)."""
    return title.split(" — ", 1)[0]
