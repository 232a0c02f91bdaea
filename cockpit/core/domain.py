"""The vocabulary of cockpit: events, and the value types state is made of.

Everything the engine learns or does becomes an `Event`. Payloads are plain JSON values (str, int, float,
bool, None, lists, dicts); money is carried as decimal strings so nothing is lost between the exchange, the
database and the screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

# The event vocabulary. Every kind the engine emits is listed here (the README documents each).
EVENT_KINDS: dict[str, str] = {
    "session.started": "the engine started (mode, exchange, session file, restored or new)",
    "session.stopped": "the engine stopped cleanly",
    "session.rotated": "the session goes on in a new file (daily, or by size); the last event of a file",
    "feed.connected": "a market or user stream connected",
    "feed.disconnected": "a stream closed or failed; reconnect scheduled with the backoff delay",
    "feed.reconnected": "a stream is back after a disconnect, resubscribed",
    "feed.stale": "a stream has been silent longer than feeds.stale_after_s while its socket is open",
    "market.marks": "latest mark prices (each second while they move; source rest while the feed is down)",
    "market.info": "price tick and amount step of the followed and held symbols; feeds.stale_after_s",
    "exchange.rate_limited": "HTTP 429: requests wait out Retry-After (once, then every 30 s or on news)",
    "exchange.banned": "HTTP 418: every request held until the ban ends (once, then every 30 s or on news)",
    "exchange.maintenance": "HTTP 503 / maintenance: requests back off (once, then every 30 s)",
    "exchange.auth_failed": "the API key was refused (-2015/-1022): critical, no retry",
    "exchange.recovered": "the exchange answers again after one of the above",
    "exchange.error": "an exchange call failed for good (after its retries)",
    "ratelimit.updated": "request budget usage changed (used/limit, queue, 429s, ban)",
    "order.submitted": "an order intent, recorded before it is sent",
    "order.accepted": "the exchange acknowledged an order",
    "order.filled": "an order filled completely (or a fill recovered by reconcile)",
    "order.partially_filled": "an order filled in part; remaining quantity tracked",
    "order.rejected": "the exchange refused an order; the reason is recorded, never retried blindly",
    "order.canceled": "an order was canceled (or expired)",
    "order.triggered": "a conditional order's trigger was hit: the exchange placed the order it stood for",
    "funding.paid": "a funding payment on a position (paid or received), from the exchange's income history",
    "position.changed": "a position's size or entry changed (from the exchange)",
    "position.ghost": "the exchange holds a position no recorded trade explains",
    "balance.updated": "wallet, available margin and unrealized PnL from the exchange",
    "reconcile.started": "reconciliation with the exchange began (startup, periodic or on request)",
    "reconcile.done": "reconciliation finished: matched, recovered fills, ghosts, order differences",
    "killswitch.engaged": "no new risk: orders adding exposure are refused; positions stay open",
    "killswitch.released": "the kill switch was released by an operator",
    "killswitch.guard": "kill switch engaged, another client added exposure: canceled if open, else flagged",
    "flatten.started": "emergency flatten began (one symbol or all)",
    "flatten.done": "flatten finished; verified says whether the exchange confirmed flat",
    "clock.checked": "offset between this machine's clock and the exchange's",
    "clock.drift": "clock offset crossed the warn or kill threshold",
    "drawdown.band": "drawdown from peak equity moved into another band (green/yellow/orange/red)",
    "drawdown.peak_reset": "peak equity set to the equity now (an operator's reset-peak, or a reconcile that "
    "corrected the account the peak was measured on); recorded before it takes effect",
    "health.changed": "a health item (exchange, feed, user stream, database, clock) changed status",
    "event.refused": "an event with a value that cannot be folded or stored was refused (its seq not used)",
    "data.rejected": "the exchange sent a figure cockpit refuses (NaN, out of range, wrong type): dropped",
    "db.backup": "a verified backup of the session file was written",
    "db.archived": "market ticks older than the retention moved from the session file to Parquet",
    "db.corrupt": "the session file failed verification",
    "db.restored": "the session file was restored from a backup",
    "db.error": "a database write failed and is being retried (0, 2, 4, 8, 16 s)",
    "dlq.added": "an operation failed for good and was put in the dead-letter queue",
    "operator.action": "an operator asked for an action (key or ctl); recorded before it runs",
    "alert": "anything else the operator must see",
}


# Events that report rather than alert: the event log hides them unless asked and keeps only the last
# ROUTINE_KEPT of them (replay folds the older ones of a step without building them as Events).
ROUTINE_KINDS = frozenset({"market.marks", "clock.checked", "ratelimit.updated"})
ROUTINE_KEPT = 500


@dataclass(frozen=True, slots=True, init=False)
class Event:
    seq: int  # gap-free per session, from 1
    ts: float  # wall-clock seconds since the epoch
    kind: str
    severity: Severity
    source: str  # who said it: exchange, feed, user_stream, reconcile, operator, risk, store, engine …
    payload: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        seq: int,
        ts: float,
        kind: str,
        severity: Severity,
        source: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        # Sets the slots through their descriptors: the frozen dataclass's generated __init__ goes through
        # object.__setattr__ per field, twice as slow, and replay and restore build an Event per stored row.
        _SET_SEQ(self, seq)
        _SET_TS(self, ts)
        _SET_KIND(self, kind)
        _SET_SEVERITY(self, severity)
        _SET_SOURCE(self, source)
        _SET_PAYLOAD(self, {} if payload is None else payload)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind,
            "severity": self.severity,
            "source": self.source,
            "payload": self.payload,
        }


_SET_SEQ, _SET_TS, _SET_KIND, _SET_SEVERITY, _SET_SOURCE, _SET_PAYLOAD = (
    Event.__dict__[name].__set__ for name in ("seq", "ts", "kind", "severity", "source", "payload")
)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Live figures the engine measures but does not record as events (they change many times a second).
    The UI shows them beside State; a replay has none (all None)."""

    rest_p95_ms: float | None = None  # exchange REST latency, p95 over the recent calls
    last_error: str | None = None  # the last exchange error, "op: Type: reason"
    store_queue: int | None = None  # events/ticks waiting for the session writer
    last_commit_age_s: float | None = None  # seconds since the writer last committed
    last_backup_age_s: float | None = None  # seconds since the last verified backup (None: no backup yet)
    ticks_per_s: float | None = None  # market ticks received per second, recent
    now: float = 0.0  # wall-clock time these figures were taken (drives countdowns)


def dec(value: Any) -> Decimal:
    """A payload value (decimal string, int or float) as a Decimal; floats go through their repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def dstr(value: Decimal) -> str:
    """A Decimal as a plain string for payloads: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


# Position legs. A one-way account holds one position per symbol (leg "both"); a hedge-mode account may hold
# a LONG and a SHORT leg on the same symbol at once. A position is keyed by its symbol alone on a one-way
# account (so one-way State, files and messages read as they always did), by "<symbol> <leg>" for a hedge leg.
Leg = Literal["both", "long", "short"]
LEGS: tuple[Leg, ...] = ("both", "long", "short")


def leg_of(position_side: Any) -> Leg:
    """The leg an exchange's position side names (Binance's positionSide LONG | SHORT | BOTH; none: both)."""
    text = str(position_side or "").strip().lower()
    return "long" if text == "long" else "short" if text == "short" else "both"


def position_key(symbol: str, leg: Any = "both") -> str:
    """Where State keeps a position: the symbol on a one-way account, "<symbol> long|short" in hedge mode."""
    side = leg_of(leg)
    return symbol if side == "both" else f"{symbol} {side}"


def key_symbol(key: str) -> str:
    """The symbol of a position key."""
    return key.rsplit(" ", 1)[0] if key.endswith((" long", " short")) else key


def key_leg(key: str) -> Leg:
    """The leg of a position key ("both" for a one-way position)."""
    return "long" if key.endswith(" long") else "short" if key.endswith(" short") else "both"


def exchange_side(leg: Leg) -> str:
    """The position side an order on this leg carries (Binance's positionSide)."""
    return "LONG" if leg == "long" else "SHORT" if leg == "short" else "BOTH"


def closes_leg(leg: Leg, side: str) -> bool:
    """Whether an order of `side` on a hedge leg can only reduce it (sell on LONG, buy on SHORT): the exchange
    never lets such an order open or flip a position. On a one-way position ("both") this says nothing."""
    return (leg == "long" and side == "sell") or (leg == "short" and side == "buy")
