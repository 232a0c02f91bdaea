"""The chaos schedule of issue 12 and what is measured against it.

A schedule is data: one entry per fault kind of the simulator, injected one after the other with quiet gaps
between them. Each fault has a *window* — from its injection to its end plus a recovery grace — and a
*detection*: the event kind(s) the engine must write, and how soon after the injection. Outside every window
the session must be quiet: no critical event, no kill switch, no ghost.

`analyse()` is pure: given the schedule as it ran, every event of the session file and the session report,
it returns the per-fault figures and the list of everything that is wrong (empty when the product is right).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cockpit.core.domain import Event

GHOST_SYMBOL = "SOL/USDT:USDT"  # the injected ghost; every other ghost is a false alarm
CLOCK_SKEW_MS = 3000  # beyond the 2000 ms kill threshold
KILL_BY_CLOCK_WITHIN_S = 30.0


def _always(event: Event) -> bool:
    return True


@dataclass(frozen=True)
class ScheduledFault:
    name: str
    spec: dict[str, Any]  # the body of POST /_sim/faults
    hold_s: float  # how long the fault is in force: its end is injection + hold_s (or when consumed)
    grace_s: float  # recovery allowed after its end; the window is injection → end + grace_s
    detect_within_s: float  # detection must be written this soon after the injection
    detected_by: tuple[str, ...]  # event kinds that count as detection
    match: Callable[[Event], bool] = _always  # a further condition on the detecting event
    recovered_by: tuple[str, ...] = ()  # event kinds that say it is over (checked within the window)
    recovered_match: Callable[[Event], bool] = _always
    until_consumed: bool = False  # a counted fault: it ends when the simulator no longer lists it
    clear_at_end: bool = False  # DELETE /_sim/faults at its end (the time sync fixed)


def _status(status: str) -> Callable[[Event], bool]:
    return lambda event: event.payload.get("status") == status


def _symbol(symbol: str) -> Callable[[Event], bool]:
    return lambda event: event.payload.get("symbol") == symbol


def schedule(stale_after_s: float) -> tuple[ScheduledFault, ...]:
    """Every fault kind of the issue, in its order, with a true clock skew last."""
    return (
        ScheduledFault(
            "rate_limit (429)",
            {"kind": "rate_limit", "count": 3, "retry_after_s": 5},
            hold_s=5.0,
            grace_s=8.0,
            detect_within_s=4.0,
            detected_by=("exchange.rate_limited",),
            recovered_by=("exchange.recovered",),
        ),
        ScheduledFault(
            "ban (418)",
            {"kind": "ban", "seconds": 6},
            hold_s=6.0,
            grace_s=8.0,
            detect_within_s=4.0,
            detected_by=("exchange.banned",),
            recovered_by=("exchange.recovered",),
        ),
        ScheduledFault(
            "maintenance (503)",
            {"kind": "maintenance", "seconds": 6},
            hold_s=6.0,
            grace_s=10.0,
            detect_within_s=4.0,
            detected_by=("exchange.maintenance",),
            recovered_by=("exchange.recovered",),
        ),
        ScheduledFault(
            "ws_drop",
            {"kind": "ws_drop", "refuse_s": 4},
            hold_s=4.0,
            grace_s=8.0,
            detect_within_s=3.0,
            detected_by=("feed.disconnected",),
            recovered_by=("feed.reconnected",),
        ),
        ScheduledFault(
            "ws_stall",
            {"kind": "ws_stall", "seconds": 5},
            hold_s=5.0,
            grace_s=7.0,
            detect_within_s=stale_after_s + 3.0,
            detected_by=("feed.stale",),
        ),
        ScheduledFault(
            "ghost_position",
            {"kind": "ghost_position", "symbol": "SOLUSDT", "side": "long", "qty": "5"},
            hold_s=0.0,
            grace_s=10.0,
            detect_within_s=8.0,
            detected_by=("position.ghost",),
            match=_symbol(GHOST_SYMBOL),
        ),
        ScheduledFault(  # the demo trader's next order fills half; a market order's rest expires
            "partial_fill",
            {"kind": "partial_fill", "count": 1, "ratio": 0.5},
            hold_s=15.0,
            grace_s=6.0,
            detect_within_s=18.0,
            detected_by=("order.partially_filled",),
            until_consumed=True,
        ),
        ScheduledFault(
            "clock_skew +3000 ms",
            {"kind": "clock_skew", "ms": CLOCK_SKEW_MS},
            hold_s=10.0,
            grace_s=6.0,
            detect_within_s=8.0,  # three agreeing samples a second apart, each may wait out a slow answer
            detected_by=("clock.drift",),
            match=_status("kill"),
            recovered_by=("clock.drift",),
            recovered_match=_status("ok"),
            clear_at_end=True,
        ),
    )


@dataclass
class FaultRun:
    """One fault as it ran: wall-clock times (epoch seconds, as event timestamps are)."""

    fault: ScheduledFault
    injected_at: float
    ended_at: float = 0.0  # the fault's end (injection + hold, or when consumed / cleared)
    window_end: float = 0.0  # ended_at + grace

    def contains(self, ts: float) -> bool:
        return self.injected_at <= ts <= self.window_end


@dataclass
class Analysis:
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def _first(
    events: Sequence[Event], kinds: tuple[str, ...], match: Callable[[Event], bool], after: float
) -> Event | None:
    return next((e for e in events if e.kind in kinds and e.ts >= after and match(e)), None)


def _describe(event: Event, t0: float) -> str:
    message = event.payload.get("message") or event.payload.get("cause") or event.payload.get("reason") or ""
    what = f" {event.payload['symbol']}" if "symbol" in event.payload else ""
    return f"t={event.ts - t0:+.1f}s seq {event.seq} {event.kind}{what} ({event.source}) {str(message)[:160]}"


def _meanwhile(f: ScheduledFault, run: FaultRun, events: Sequence[Event], t0: float) -> str:
    """For a fault on one symbol: what the engine wrote about that symbol while it should have noticed."""
    raw = f.spec.get("symbol")
    if not isinstance(raw, str):
        return ""
    symbol = raw.removesuffix("USDT") + "/USDT:USDT"
    said = [
        _describe(e, t0)
        + (
            f" {e.payload.get('side')} {e.payload['last_qty']}"
            if "last_qty" in e.payload
            else f" qty={e.payload.get('qty')}"
        )
        for e in events
        if e.payload.get("symbol") == symbol
        and run.injected_at <= e.ts <= run.injected_at + f.detect_within_s
        and e.kind in ("position.changed", "order.filled", "order.partially_filled", "reconcile.done")
    ]
    return "; meanwhile: " + " | ".join(said) if said else ""


def incident_start(incident: Mapping[str, Any]) -> float:
    """An incident's start, whichever shape the report gives it (an episode or a single event)."""
    for key in ("start_ts", "ts"):
        if isinstance(incident.get(key), int | float):
            return float(incident[key])
    raise KeyError(f"incident without a start time: {dict(incident)}")


def analyse(
    runs: Sequence[FaultRun], events: Sequence[Event], report: Mapping[str, Any], t0: float
) -> Analysis:
    out = Analysis()
    failures = out.failures
    skew = runs[-1]
    assert skew.fault.spec["kind"] == "clock_skew", "the true clock skew comes last"

    # 1. every fault detected within its window (and, where the product says so, recovered within it)
    incidents = list(report.get("incidents") or [])
    for run in runs:
        f = run.fault
        hit = _first(events, f.detected_by, f.match, run.injected_at)
        deadline = run.injected_at + f.detect_within_s
        row: dict[str, Any] = {
            "fault": f.name,
            "spec": f.spec,
            "injected_at_s": round(run.injected_at - t0, 2),
            "ended_at_s": round(run.ended_at - t0, 2),
            "window_end_s": round(run.window_end - t0, 2),
            "detected_by": "/".join(f.detected_by),
            "detected_at_s": round(hit.ts - t0, 2) if hit else None,
            "time_to_detect_s": round(hit.ts - run.injected_at, 3) if hit else None,
            "detect_within_s": f.detect_within_s,
        }
        if hit is None or hit.ts > deadline:
            seen = f"first seen at t={hit.ts - t0:+.1f}s" if hit else "never seen"
            failures.append(
                f"{f.name}: not detected within {f.detect_within_s:g} s of its injection "
                f"(t={run.injected_at - t0:+.1f}s) by {'/'.join(f.detected_by)}: {seen}"
                + _meanwhile(f, run, events, t0)
            )
        if f.recovered_by:
            back = _first(events, f.recovered_by, f.recovered_match, hit.ts if hit else run.injected_at)
            row["recovered_at_s"] = round(back.ts - t0, 2) if back else None
            if back is None or back.ts > run.window_end:
                seen = f"first seen at t={back.ts - t0:+.1f}s" if back else "never seen"
                failures.append(
                    f"{f.name}: no {'/'.join(f.recovered_by)} within its window "
                    f"(ends t={run.window_end - t0:+.1f}s): {seen}"
                )
        row["incidents"] = sum(1 for i in incidents if run.contains(incident_start(i)))
        row["critical_events"] = sum(1 for e in events if e.severity == "critical" and run.contains(e.ts))
        out.rows.append(row)

    # 2. no kill switch before the true clock skew; after it, engaged by the clock within 30 s
    engaged = [e for e in events if e.kind == "killswitch.engaged"]
    for e in engaged:
        if e.ts < skew.injected_at:
            failures.append(f"kill switch engaged before the clock skew: {_describe(e, t0)}")
    by_clock = [
        e
        for e in engaged
        if e.ts >= skew.injected_at
        and (e.payload.get("by") == "clock" or "clock" in str(e.payload.get("cause")))
    ]
    if not by_clock or by_clock[0].ts > skew.injected_at + KILL_BY_CLOCK_WITHIN_S:
        already = engaged and engaged[0].ts < skew.injected_at
        failures.append(
            f"clock skew {CLOCK_SKEW_MS} ms: kill switch not engaged by the clock "
            f"within {KILL_BY_CLOCK_WITHIN_S:g} s"
            + (" (it was already engaged, by an earlier false alarm)" if already else "")
        )
    out.figures["kill_switch"] = [_describe(e, t0) for e in engaged]
    out.figures["kill_by_clock_after_s"] = round(by_clock[0].ts - skew.injected_at, 3) if by_clock else None

    # 3. no ghost but the injected one
    ghosts = [e for e in events if e.kind == "position.ghost"]
    for e in ghosts:
        if e.payload.get("symbol") != GHOST_SYMBOL:
            failures.append(f"false ghost: {_describe(e, t0)}")
    out.figures["ghosts"] = [_describe(e, t0) for e in ghosts]

    # 4. no critical event outside a fault window
    quiet_criticals = [
        e for e in events if e.severity == "critical" and not any(run.contains(e.ts) for run in runs)
    ]
    for e in quiet_criticals[:20]:
        failures.append(f"critical event outside every fault window: {_describe(e, t0)}")
    if len(quiet_criticals) > 20:
        failures.append(f"… and {len(quiet_criticals) - 20} more critical events outside every fault window")
    out.figures["critical_outside_windows"] = len(quiet_criticals)
    out.figures["critical_by_kind"] = _count(e.kind for e in events if e.severity == "critical")

    # 5. the report groups the schedule into about one incident per fault
    n = len(runs)
    outside = [i for i in incidents if not any(run.contains(incident_start(i)) for run in runs)]
    out.figures["incidents"] = len(incidents)
    out.figures["incidents_outside_windows"] = len(outside)
    out.figures["incident_kinds"] = _count(str(i.get("cause") or i.get("kind") or "?") for i in incidents)
    if not n - 1 <= len(incidents) <= 2 * n:
        failures.append(
            f"the session report has {len(incidents)} incidents for {n} faults "
            f"(expected about one per fault: {n - 1}…{2 * n})"
        )
    out.figures["events"] = len(events)
    out.figures["guard_events"] = sum(1 for e in events if e.kind == "killswitch.guard")
    return out


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    def num(value: Any) -> str:
        return "—" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    header = (
        f"{'fault':<22} {'injected':>9} {'detected':>9} {'to detect':>9} {'recovered':>9} "
        f"{'incidents':>9} {'critical':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['fault']:<22} {num(r['injected_at_s']):>9} {num(r['detected_at_s']):>9} "
            f"{num(r['time_to_detect_s']):>9} {num(r.get('recovered_at_s')):>9} {r['incidents']:>9} "
            f"{r['critical_events']:>8}"
        )
    return "\n".join(lines)
