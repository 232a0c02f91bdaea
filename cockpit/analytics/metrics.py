"""Session analytics from the events of a session file: equity and drawdown, fills, rejections, order
latency, 429s and bans, feed and exchange outages, kill-switch episodes, incidents (`cockpit.core.incidents`)
and what resolved them.

DuckDB does the filtering and JSON extraction (in C++, in parallel); Polars does the grouping, joins and
quantiles; only the few hundred incident-like events are parsed in Python.

Equity is what the fold (`cockpit.core.state.apply`) says it is. Replaying the fold costs ~30 µs an event,
so a session with more than `FOLD_LIMIT` equity events (balances, positions, marks) is valued column-wise
instead: wallet + Σ qty × (last mark − entry) per symbol held, the same arithmetic as `State._revalue` in
floats. The tests check that both give the same curve on a real session.

A `drawdown.peak_reset` (an operator's `reset-peak`, or a reconcile that found cockpit held a position the
exchange denies) says the peak it replaced was not the account's: in both paths the peak starts again from the
reset's new peak, and the points measured from the discarded peak (since the previous reset) are measured from
the new one instead, so a bad sample's ~100 % drawdown is not the session's maximum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import orjson
import polars as pl

from cockpit.analytics.episodes import read_incidents
from cockpit.analytics.reading import ReadableSession, open_for_reading
from cockpit.core import events as ev
from cockpit.core.domain import SEVERITIES, Event, Severity, dec
from cockpit.core.incidents import Incident
from cockpit.core.state import State, apply

FOLD_LIMIT = 20_000
EQUITY_KINDS = (
    "balance.updated",
    "position.changed",
    "position.ghost",
    "market.marks",
    "drawdown.peak_reset",
)
PEAK_RESET = "drawdown.peak_reset"
ORDER_KINDS = (
    "order.submitted",
    "order.accepted",
    "order.filled",
    "order.partially_filled",
    "order.rejected",
)
RESPONSE_KINDS = ORDER_KINDS[1:]
FILL_KINDS = ("order.filled", "order.partially_filled")
EXCHANGE_DOWN = ("exchange.rate_limited", "exchange.banned", "exchange.maintenance", "exchange.auth_failed")
RESOLUTION_KINDS = (
    "operator.action",
    "reconcile.done",
    "flatten.done",
    "db.restored",
    "killswitch.engaged",
    "killswitch.released",
    "exchange.recovered",
    "feed.reconnected",
)
_NOTABLE = (
    *RESOLUTION_KINDS,
    "feed.connected",
    "feed.disconnected",
    *EXCHANGE_DOWN,
    "session.started",
    "session.stopped",
    "dlq.added",
)


@dataclass(frozen=True, slots=True)
class Outage:
    """A stream (`what` = its key) or the exchange (`what` = "exchange") down from `start` to `end`."""

    what: str
    kind: str  # the event that opened it
    start: float
    end: float | None  # None: still down when the file ends
    seconds: float  # to `end`, or to the last event
    reason: str
    events: int  # events of this outage (reconnect attempts, repeated 429s)


@dataclass(frozen=True, slots=True)
class KillEpisode:
    start: float
    end: float | None  # None: still engaged when the file ends
    seconds: float
    cause: str
    by: str
    released_by: str | None


@dataclass(frozen=True, slots=True)
class Action:
    """Something that resolved or contained trouble: an operator action or an automatic recovery."""

    seq: int
    ts: float
    kind: str
    automatic: bool
    text: str


@dataclass(frozen=True, slots=True)
class EquityCurve:
    points: pl.DataFrame  # seq, ts, equity, peak, drawdown_pct: one row each time equity changed
    method: str  # fold | columns

    @property
    def max_drawdown_pct(self) -> float | None:
        if self.points.height == 0:
            return None
        return float(cast(float, self.points["drawdown_pct"].max()))

    def value(self, column: str, at: int) -> float | None:
        return float(self.points[column][at]) if self.points.height else None


@dataclass
class SessionMetrics:
    path: Path
    meta: dict[str, str]
    start: float
    end: float
    events: int
    worst_severity: str
    kinds: dict[str, int]
    fills: int
    orders_filled: int
    orders_rejected: int
    rejections_by_reason: dict[str, int]
    latency_ms: dict[str, float | None]  # p50, p95, p99
    latency_samples: int
    rate_limited: int
    bans: int
    feed_disconnects: list[Outage]
    exchange_outages: list[Outage]
    kill_switch_episodes: list[KillEpisode]
    incidents: list[Incident]  # episodes (cockpit.core.incidents), in the order they opened
    incident_first: dict[int, Event]  # the first event of each incident, by its seq
    actions: list[Action]
    realized_pnl: Decimal
    commission: Decimal
    funding: Decimal  # received > 0, paid < 0 (each payment once: `funding.paid` is recorded once per id)
    dead_letters: int
    equity: EquityCurve
    notes: list[str] = field(default_factory=list)

    @property
    def fill_rate(self) -> float | None:
        done = self.orders_filled + self.orders_rejected
        return self.orders_filled / done if done else None

    @property
    def downtime_s(self) -> float:
        """Seconds during which some stream or the exchange was down (overlaps counted once)."""
        return union_seconds([(o.start, o.start + o.seconds) for o in self.outages])

    @property
    def outages(self) -> list[Outage]:
        return [*self.feed_disconnects, *self.exchange_outages]


def session_metrics(path: Path) -> SessionMetrics:
    with open_for_reading(path) as session:
        return compute(session)


def compute(session: ReadableSession) -> SessionMetrics:
    kinds_frame = session.frame(
        "SELECT kind, severity, count(*) AS n, min(ts) AS first, max(ts) AS last FROM events GROUP BY ALL"
    )
    kinds: dict[str, int] = {}
    for kind, n in kinds_frame.group_by("kind").agg(pl.col("n").sum()).iter_rows():
        kinds[str(kind)] = int(n)
    seen = set(kinds_frame["severity"].to_list())
    worst = next((s for s in reversed(SEVERITIES) if s in seen), "info")
    start = float(cast(float, kinds_frame["first"].min()))
    end = float(cast(float, kinds_frame["last"].max()))

    orders = _orders(session)
    fills = orders.filter(pl.col("kind").is_in(FILL_KINDS))
    mine = pl.col("origin").fill_null("cockpit") == "cockpit"
    filled = orders.filter((pl.col("kind") == "order.filled") & mine).height
    rejected = orders.filter((pl.col("kind") == "order.rejected") & mine & pl.col("dry_run").is_null())
    by_reason = (
        rejected.group_by(pl.col("reason").fill_null("(no reason given)"))
        .agg(pl.len().alias("n"))
        .sort(["n", "reason"], descending=[True, False])
    )
    latency = _latency(orders)
    quantiles = {
        f"p{q}": (float(cast(float, latency.quantile(q / 100, "linear"))) if latency.len() else None)
        for q in (50, 95, 99)
    }
    notable = _notable(session, start, end)
    incidents, firsts = read_incidents(session.con)
    dead_letters = kinds.get("dlq.added", 0)
    if "dead_letters" in session.tables:
        dead_letters = max(dead_letters, int(session.rows("SELECT count(*) FROM dead_letters")[0][0]))
    return SessionMetrics(
        path=session.path,
        meta=session.meta,
        start=start,
        end=end,
        events=session.event_count,
        worst_severity=worst,
        kinds=kinds,
        fills=fills.height,
        orders_filled=filled,
        orders_rejected=rejected.height,
        rejections_by_reason={str(r): int(n) for r, n in by_reason.iter_rows()},
        latency_ms=quantiles,
        latency_samples=latency.len(),
        rate_limited=_notices(session, "exchange.rate_limited", "rate_limited"),
        bans=_notices(session, "exchange.banned", "banned"),
        feed_disconnects=notable.feeds,
        exchange_outages=notable.exchange,
        kill_switch_episodes=notable.kill,
        incidents=incidents,
        incident_first=firsts,
        actions=notable.actions,
        realized_pnl=_decimal_sum(fills["realized_pnl"]),
        commission=_decimal_sum(fills["commission"]),
        funding=_funding(session),
        dead_letters=dead_letters,
        equity=equity_curve(session),
    )


def _notices(session: ReadableSession, kind: str, key: str) -> int:
    """How many times the exchange said it: an event stands for `notices` answers (1 before the engine
    folded repeats), and `exchange.recovered` carries those held after the last event."""
    ((said, held),) = session.rows(
        f"""
        SELECT sum(coalesce(TRY_CAST(payload->>'$.notices' AS BIGINT), 1)) FILTER (WHERE kind = '{kind}'),
               sum(TRY_CAST(payload->>'$.held_notices.{key}' AS BIGINT))
                   FILTER (WHERE kind = 'exchange.recovered')
        FROM events
        """
    )
    return int(said or 0) + int(held or 0)


# ----- orders, fills, latency -----------------------------------------------------------------------
def _orders(session: ReadableSession) -> pl.DataFrame:
    kinds = ", ".join(f"'{k}'" for k in ORDER_KINDS)
    return session.frame(
        f"""
        SELECT seq, ts, kind, source,
               payload->>'$.client_order_id' AS cid,
               payload->>'$.origin' AS origin,
               payload->>'$.reason' AS reason,
               payload->>'$.refused_by' AS refused_by,
               payload->>'$.dry_run' AS dry_run,
               payload->>'$.realized_pnl' AS realized_pnl,
               payload->>'$.commission' AS commission
        FROM events WHERE kind IN ({kinds}) ORDER BY seq
        """
    )


def _latency(orders: pl.DataFrame) -> pl.Series:
    """Milliseconds from each `order.submitted` to the first answer about that client order id.

    Orders refused before they were sent (risk, dry run) never reached the exchange and are left out."""
    local = orders.filter(
        (pl.col("kind") == "order.rejected")
        & (pl.col("refused_by").is_not_null() | pl.col("dry_run").is_not_null())
    ).select("cid")
    submitted = (
        orders.filter(pl.col("kind") == "order.submitted")
        .select("cid", pl.col("seq").alias("seq0"), pl.col("ts").alias("ts0"))
        .join(local, on="cid", how="anti")
    )
    answers = orders.filter(pl.col("kind").is_in(RESPONSE_KINDS)).select("cid", "seq", "ts")
    first = (
        submitted.join(answers, on="cid", how="inner")
        .filter(pl.col("seq") > pl.col("seq0"))
        .group_by("cid", "ts0")
        .agg(pl.col("ts").min())
    )
    return ((first["ts"] - first["ts0"]) * 1000.0).alias("latency_ms")


def _funding(session: ReadableSession) -> Decimal:
    rows = session.rows(
        "SELECT DISTINCT payload->>'$.income_id', payload->>'$.amount' FROM events "
        "WHERE kind = 'funding.paid' AND coalesce(payload->>'$.asset', 'USDT') = 'USDT'"
    )
    return sum((dec(amount) for _, amount in rows if amount), Decimal(0))


def _decimal_sum(values: pl.Series) -> Decimal:
    return sum((dec(v) for v in values.drop_nulls().to_list() if v != ""), Decimal(0))


# ----- incidents, outages, episodes, actions --------------------------------------------------------
@dataclass
class _Notable:
    feeds: list[Outage] = field(default_factory=list)
    exchange: list[Outage] = field(default_factory=list)
    kill: list[KillEpisode] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


@dataclass
class _Open:
    kind: str
    start: float
    reason: str
    events: int = 1


def message(kind: str, payload: Mapping[str, Any]) -> str:
    """What an event says, as the fold's alerts word it (message, reason, cause, detail, else the kind)."""
    if kind == "operator.action" and "message" not in payload:
        action = cast(ev.OperatorAction, payload)
        details = ", ".join(f"{k}={v}" for k, v in sorted(action.items()) if k not in ("action", "by"))
        return f"{action.get('action', 'action')} by {action.get('by', '?')}" + (
            f" ({details})" if details else ""
        )
    said = cast(ev.Wording, payload)
    return str(said.get("message") or said.get("reason") or said.get("cause") or said.get("detail") or kind)


def _notable(session: ReadableSession, start: float, end: float) -> _Notable:
    kinds = ", ".join(f"'{k}'" for k in _NOTABLE)
    frame = session.frame(
        f"SELECT seq, ts, kind, severity, source, payload FROM events WHERE kind IN ({kinds}) ORDER BY seq"
    )
    found = _Notable()
    feeds: dict[str, _Open] = {}
    exchange: _Open | None = None
    kill: tuple[float, str, str] | None = None

    def close_feed(key: str, at: float) -> None:
        down = feeds.pop(key)
        found.feeds.append(Outage(key, down.kind, down.start, at, at - down.start, down.reason, down.events))

    for seq, ts, kind, _severity, source, raw in frame.iter_rows():
        p: dict[str, Any] = orjson.loads(raw)  # read below as its kind's TypedDict (cockpit/core/events.py)
        if kind == "feed.disconnected":
            lost = cast(ev.FeedDisconnected, p)
            key = str(lost.get("stream") or lost.get("feed") or source)
            if key in feeds:
                feeds[key].events += 1
            else:
                feeds[key] = _Open(kind, ts, str(lost.get("reason") or ""))
        elif kind in ("feed.connected", "feed.reconnected"):
            up = cast(ev.FeedConnected | ev.FeedReconnected, p)
            key = str(up.get("stream") or up.get("feed") or source)
            if key in feeds:
                close_feed(key, ts)
        elif kind == "session.stopped":
            for key in list(feeds):  # the engine stopped: its streams are closed, not down
                close_feed(key, ts)
        elif kind in EXCHANGE_DOWN:
            if exchange is None:
                exchange = _Open(kind, ts, message(kind, p))
            else:
                exchange.events += 1
        elif kind == "exchange.recovered" and exchange is not None:
            found.exchange.append(
                Outage(
                    "exchange",
                    exchange.kind,
                    exchange.start,
                    ts,
                    ts - exchange.start,
                    exchange.reason,
                    exchange.events,
                )
            )
            exchange = None
        elif kind == "killswitch.engaged" and kill is None:
            engaged = cast(ev.KillswitchEngaged, p)
            kill = (ts, str(engaged.get("cause", "")), str(engaged.get("by", source)))
        elif kind == "killswitch.released" and kill is not None:
            by = str(cast(ev.KillswitchReleased, p).get("by", source))
            found.kill.append(KillEpisode(kill[0], ts, ts - kill[0], kill[1], kill[2], by))
            kill = None
        if kind in RESOLUTION_KINDS:
            action = _action(seq, ts, kind, source, p)
            if action is not None:
                found.actions.append(action)
    for key, down in feeds.items():
        found.feeds.append(
            Outage(key, down.kind, down.start, None, end - down.start, down.reason, down.events)
        )
    if exchange is not None:
        found.exchange.append(
            Outage(
                "exchange",
                exchange.kind,
                exchange.start,
                None,
                end - exchange.start,
                exchange.reason,
                exchange.events,
            )
        )
    if kill is not None:
        found.kill.append(KillEpisode(kill[0], None, end - kill[0], kill[1], kill[2], None))
    found.feeds.sort(key=lambda o: o.start)
    return found


def _action(seq: int, ts: float, kind: str, source: str, p: dict[str, Any]) -> Action | None:
    said_by = (
        ev.OperatorAction | ev.FlattenDone | ev.KillswitchEngaged | ev.KillswitchReleased | ev.DbRestored
    )
    by = cast(said_by, p).get("by")
    if kind == "operator.action":
        action = cast(ev.OperatorAction, p)
        what = str(action.get("action", "action"))
        details = ", ".join(f"{k}={v}" for k, v in sorted(p.items()) if k not in ("action", "by", "message"))
        text = f"operator {by or '?'}: {what}" + (f" ({details})" if details else "")
        return Action(seq, ts, kind, False, text)
    if kind == "reconcile.done":
        done = cast(ev.ReconcileDone, p)
        recovered = int(done.get("recovered_fills", 0))
        ghosts = list(done.get("ghosts") or [])
        added, removed = int(done.get("orders_added", 0)), int(done.get("orders_removed", 0))
        if not (recovered or ghosts or added or removed):
            return None
        parts = [f"{recovered} missed fill(s) recovered"] if recovered else []
        parts += [f"ghost position(s) {', '.join(map(str, ghosts))}"] if ghosts else []
        parts += [f"open orders +{added}/-{removed}"] if added or removed else []
        return Action(seq, ts, kind, True, f"reconcile ({done.get('trigger', '')}): " + "; ".join(parts))
    if kind == "flatten.done":
        return Action(seq, ts, kind, False, f"flatten by {by or '?'}: {message(kind, p)}")
    if kind == "db.restored":
        return Action(seq, ts, kind, False, message(kind, p))
    if kind == "killswitch.engaged":
        return Action(
            seq,
            ts,
            kind,
            by in ("risk", "clock", "flag-file", "store"),
            f"kill switch engaged by {by or source}: {cast(ev.KillswitchEngaged, p).get('cause', '')}",
        )
    if kind == "killswitch.released":
        return Action(seq, ts, kind, False, f"kill switch released by {by or source}")
    if kind == "exchange.recovered":
        return Action(seq, ts, kind, True, "exchange answering again")
    if kind == "feed.reconnected":
        back = cast(ev.FeedReconnected, p)
        down = back.get("down_for_s")
        after = f" after {float(down):.1f} s" if isinstance(down, int | float) else ""
        return Action(seq, ts, kind, True, f"stream {back.get('stream', '?')} reconnected{after}")
    return None


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi <= reach:
            continue
        total += hi - max(lo, reach)
        reach = hi
    return total


# ----- equity ---------------------------------------------------------------------------------------
def equity_curve(session: ReadableSession, *, method: str | None = None) -> EquityCurve:
    """Equity each time it changed, with peak and drawdown; by the fold unless the session is large."""
    if method is None:
        kinds = ", ".join(f"'{k}'" for k in EQUITY_KINDS)
        n = int(session.rows(f"SELECT count(*) FROM events WHERE kind IN ({kinds})")[0][0])
        method = "fold" if n <= FOLD_LIMIT else "columns"
    if method == "fold":
        return EquityCurve(_honour_resets(_curve_by_fold(session), _peak_resets(session)), "fold")
    if method == "columns":
        resets = _peak_resets(session)
        return EquityCurve(_honour_resets(_curve_by_columns(session, resets), resets), "columns")
    raise ValueError(f"unknown equity method {method!r}: fold or columns")


def _peak_resets(session: ReadableSession) -> pl.DataFrame:
    """Each `drawdown.peak_reset`: its seq, who asked, the peak it discarded and the one it set (one the fold
    would refuse is left out)."""
    frame = session.frame(
        f"""
        SELECT seq, payload->>'$.by' AS by,
               TRY_CAST(payload->>'$.old_peak' AS DOUBLE) AS old_peak,
               TRY_CAST(payload->>'$.new_peak' AS DOUBLE) AS new_peak
        FROM events WHERE kind = '{PEAK_RESET}' ORDER BY seq
        """
    )
    return frame.filter(pl.col("new_peak").is_not_null() & pl.col("new_peak").is_finite())


def _honour_resets(curve: pl.DataFrame, resets: pl.DataFrame) -> pl.DataFrame:
    """Re-measure the points measured from a peak a reset discarded; every other point keeps its drawdown.

    Which points those are, per stretch between resets: for a reconcile's reset, those whose peak is above the
    peak it went back to (the last one measured on a reconciled account); for an operator's, which sets the
    equity of the moment, those from where the running peak reached the discarded one, measured from the peak
    before that (or the new one, if higher). A real drawdown before the bad sample stays in the report."""
    if resets.height == 0 or curve.height == 0:
        return curve
    seqs: list[int] = curve["seq"].to_list()
    peaks: list[float] = curve["peak"].to_list()
    equities: list[float] = curve["equity"].to_list()
    drawdowns: list[float] = curve["drawdown_pct"].to_list()
    lo = 0
    for reset in resets.iter_rows(named=True):
        hi = _first_at_or_after(seqs, int(reset["seq"]), lo)
        ref = _reference(peaks[lo:hi], reset)
        for j in range(lo, hi):
            if peaks[j] > ref:
                peaks[j] = ref
                drawdowns[j] = max((ref - equities[j]) / ref * 100.0, 0.0) if ref > 0 else 0.0
        lo = hi
    return curve.with_columns(
        pl.Series("peak", peaks, dtype=pl.Float64), pl.Series("drawdown_pct", drawdowns, dtype=pl.Float64)
    )


def _first_at_or_after(seqs: list[int], seq: int, lo: int) -> int:
    from bisect import bisect_left

    return bisect_left(seqs, seq, lo)


def _reference(peaks: list[float], reset: dict[str, Any]) -> float:
    """The peak the points of one stretch are measured from at most (see `_honour_resets`)."""
    new_peak = float(reset["new_peak"])
    old_peak = reset["old_peak"]
    if reset["by"] == "reconcile" or old_peak is None or not peaks:
        return new_peak
    reached = next((i for i, peak in enumerate(peaks) if peak >= old_peak * (1 - 1e-12)), None)
    if reached is None or reached == 0:
        return new_peak
    return max(new_peak, peaks[reached - 1])


_CURVE_SCHEMA: dict[str, Any] = {
    "seq": pl.Int64,
    "ts": pl.Float64,
    "equity": pl.Float64,
    "peak": pl.Float64,
    "drawdown_pct": pl.Float64,
}


def _curve_by_fold(session: ReadableSession) -> pl.DataFrame:
    kinds = ", ".join(f"'{k}'" for k in EQUITY_KINDS)
    rows = session.rows(
        f"SELECT seq, ts, kind, severity, source, payload FROM events WHERE kind IN ({kinds}) ORDER BY seq"
    )
    state = State()
    points: list[tuple[int, float, float, float, float]] = []
    last: Decimal | None = None
    for seq, ts, kind, severity, source, payload in rows:
        # the equity handlers read only wallet, positions and marks, which no other kind changes; a peak reset
        # reads the equity and sets the peak, as live
        state = apply(state, Event(seq, ts, kind, cast(Severity, severity), source, orjson.loads(payload)))
        if state.equity is not None and state.equity != last:
            last = state.equity
            peak = state.peak_equity if state.peak_equity is not None else state.equity
            points.append((seq, ts, float(state.equity), float(peak), float(state.drawdown_pct)))
    return pl.DataFrame(points, schema=_CURVE_SCHEMA, orient="row")


def _curve_by_columns(session: ReadableSession, resets: pl.DataFrame) -> pl.DataFrame:
    # one column set per position: a symbol, or each leg of it on a hedge account (both valued at its mark)
    held = [
        (str(s), str(leg))
        for (s, leg) in session.rows(
            "SELECT DISTINCT payload->>'$.symbol', coalesce(payload->>'$.leg', 'both') FROM events "
            "WHERE kind IN ('position.changed', 'position.ghost') ORDER BY 1, 2"
        )
        if s is not None and '"' not in str(s) and str(leg) in ("both", "long", "short")
    ]
    columns = [
        "CASE WHEN kind = 'balance.updated' THEN TRY_CAST(payload->>'$.wallet' AS DOUBLE) END AS wallet"
    ]
    is_position = "kind IN ('position.changed', 'position.ghost')"
    for i, (symbol, leg) in enumerate(held):
        lit = symbol.replace("'", "''")
        this = f"{is_position} AND payload->>'$.symbol' = '{lit}'"
        this += f" AND coalesce(payload->>'$.leg', 'both') = '{leg}'"
        columns += [
            f"CASE WHEN kind = 'market.marks' "
            f"""THEN TRY_CAST(payload->>'$.marks."{lit}"' AS DOUBLE) END AS m{i}""",
            f"CASE WHEN {this} THEN TRY_CAST(payload->>'$.qty' AS DOUBLE) END AS q{i}",
            f"CASE WHEN {this} THEN TRY_CAST(payload->>'$.entry' AS DOUBLE) END AS e{i}",
        ]
    kinds = ", ".join(f"'{k}'" for k in EQUITY_KINDS)
    frame = session.frame(
        f"SELECT seq, ts, {', '.join(columns)} FROM events WHERE kind IN ({kinds}) ORDER BY seq"
    )
    frame = frame.with_columns(
        pl.col("wallet").forward_fill(),
        *(pl.col(f"m{i}").forward_fill() for i in range(len(held))),
        *(pl.col(f"q{i}").forward_fill().fill_null(0.0) for i in range(len(held))),
        *(pl.col(f"e{i}").forward_fill().fill_null(0.0) for i in range(len(held))),
    )
    upnl = [
        pl.when((pl.col(f"q{i}") != 0) & pl.col(f"m{i}").is_not_null())
        .then(pl.col(f"q{i}") * (pl.col(f"m{i}") - pl.col(f"e{i}")))
        .otherwise(0.0)
        for i in range(len(held))
    ]
    equity = pl.col("wallet") + (pl.sum_horizontal(upnl) if upnl else pl.lit(0.0))
    curve = (
        frame.select("seq", "ts", equity.alias("equity"))
        .filter(pl.col("equity").is_not_null())
        .filter((pl.col("equity") != pl.col("equity").shift(1)).fill_null(True))
    )
    # the running max starts again after each peak reset, from the peak it set (as State's fold does)
    stretch = resets["seq"].search_sorted(curve["seq"], side="left")
    start = pl.concat([pl.Series([None], dtype=pl.Float64), resets["new_peak"]]).gather(stretch)
    curve = (
        curve.with_columns(stretch.alias("stretch"), start.alias("start"))
        .with_columns(
            pl.max_horizontal(pl.col("equity").cum_max().over("stretch"), pl.col("start")).alias("peak")
        )
        .with_columns(
            pl.when(pl.col("peak") > 0)
            .then((pl.col("peak") - pl.col("equity")) / pl.col("peak") * 100.0)
            .otherwise(0.0)
            .alias("drawdown_pct")
        )
    )
    return curve.select(list(_CURVE_SCHEMA)).cast(pl.Schema(_CURVE_SCHEMA))
