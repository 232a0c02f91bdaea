"""The session report: JSON facts (`build_report`) and an incident report in Markdown (`render_markdown`).

The Markdown follows the team's incident report template: title, date, duration, severity, summary,
timeline, root cause, impact, resolution, prevention and lessons learned. Everything the file can tell is
filled in; root cause, prevention and lessons learned are left for a human.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cockpit.analytics.metrics import SessionMetrics, message, session_metrics
from cockpit.analytics.timefmt import clock, iso
from cockpit.core.domain import dstr
from cockpit.core.errors import UsageError
from cockpit.core.incidents import Incident
from cockpit.core.text import fmt_duration

FORMATS = ("json", "md")
TIMELINE_MAX = 60  # lines in the Markdown timeline; the JSON keeps every incident
LIST_MAX = 30


def build_report(path: Path) -> dict[str, Any]:
    """Facts about one session file, JSON-ready. Raises CockpitError (SessionFileError) for bad input."""
    return report_from_metrics(session_metrics(Path(path)))


def report_from_metrics(m: SessionMetrics) -> dict[str, Any]:
    curve = m.equity
    equity_start, equity_end = curve.value("equity", 0), curve.value("equity", -1)
    return {
        "file": str(m.path),
        "session_id": m.meta.get("session_id", ""),
        "exchange": m.meta.get("exchange", ""),
        "mode": m.meta.get("mode", ""),
        "start": iso(m.start),
        "end": iso(m.end),
        "start_ts": m.start,
        "end_ts": m.end,
        "duration_s": round(m.end - m.start, 3),
        "events": m.events,
        "severity": m.worst_severity,
        "fills": m.fills,
        "orders_filled": m.orders_filled,
        "orders_rejected": m.orders_rejected,
        "fill_rate": m.fill_rate,
        "max_drawdown_pct": _round(curve.max_drawdown_pct, 4),
        "equity": {
            "start": equity_start,
            "end": equity_end,
            "peak": _round(float(curve.points["peak"].max()), 8) if curve.points.height else None,  # type: ignore[arg-type]
            "points": curve.points.height,
            "method": curve.method,
        },
        "latency_p50_ms": _round(m.latency_ms["p50"], 1),
        "latency_p95_ms": _round(m.latency_ms["p95"], 1),
        "latency_p99_ms": _round(m.latency_ms["p99"], 1),
        "latency_samples": m.latency_samples,
        "rate_limited": m.rate_limited,
        "bans": m.bans,
        "feed_disconnects": [
            {
                "stream": o.what,
                "start": iso(o.start),
                "end": iso(o.end),
                "start_ts": o.start,
                "end_ts": o.end,
                "seconds": round(o.seconds, 3),
                "reason": o.reason,
                "attempts": o.events,
            }
            for o in m.feed_disconnects
        ],
        "exchange_outages": [
            {
                "kind": o.kind,
                "start": iso(o.start),
                "end": iso(o.end),
                "start_ts": o.start,
                "end_ts": o.end,
                "seconds": round(o.seconds, 3),
                "reason": o.reason,
                "events": o.events,
            }
            for o in m.exchange_outages
        ],
        "downtime_s": round(m.downtime_s, 3),
        "kill_switch_episodes": [
            {
                "start": iso(k.start),
                "end": iso(k.end),
                "start_ts": k.start,
                "end_ts": k.end,
                "seconds": round(k.seconds, 3),
                "cause": k.cause,
                "by": k.by,
                "released_by": k.released_by,
            }
            for k in m.kill_switch_episodes
        ],
        "rejections_by_reason": m.rejections_by_reason,
        "incidents": [_incident(i, m) for i in m.incidents],
        "resolution": [
            {
                "seq": a.seq,
                "kind": a.kind,
                "time": iso(a.ts),
                "ts": a.ts,
                "automatic": a.automatic,
                "text": a.text,
            }
            for a in m.actions
        ],
        "dead_letters": m.dead_letters,
        "pnl": {
            "realized": dstr(m.realized_pnl),
            "commission": dstr(m.commission),
            "funding": dstr(m.funding),
            "net": dstr(m.realized_pnl - m.commission + m.funding),
            "equity_change": _round(equity_end - equity_start, 8)
            if equity_start is not None and equity_end is not None
            else None,
        },
        "events_by_kind": dict(sorted(m.kinds.items())),
    }


def _incident(i: Incident, m: SessionMetrics) -> dict[str, Any]:
    """One incident (cockpit.core.incidents): cause, severity, start, end, duration, title, its events; `seq`,
    `kind`, `source`, `ts`/`time` and `message` are those of its first symptom."""
    first = m.incident_first.get(i.first_seq)
    return {
        "cause": i.cause,
        "severity": i.severity,
        "title": i.title,
        "start": iso(i.start),
        "end": iso(i.end),
        "start_ts": i.start,
        "end_ts": i.end,
        "duration_s": round(i.duration(m.end), 3),
        "events": len(i.seqs),
        "seqs": list(i.seqs),
        "seq": i.first_seq,
        "kind": first.kind if first else "",
        "source": first.source if first else "",
        "time": iso(i.start),
        "ts": i.start,
        "message": message(first.kind, first.payload) if first else i.title,
    }


def report_command(path: Path, fmt: str) -> str:
    """The text `cockpit report --format json|md` prints."""
    if fmt not in FORMATS:
        raise UsageError(
            f"unknown report format {fmt!r}", f"formats: {', '.join(FORMATS)}", "use --format json or md"
        )
    report = build_report(path)
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    return render_markdown(report)


# ----- Markdown -------------------------------------------------------------------------------------
def render_markdown(report: Mapping[str, Any]) -> str:
    start, end = float(report["start_ts"]), float(report["end_ts"])
    multi_day = _day(start) != _day(end)

    def at(ts: float) -> str:
        return iso(ts) or "" if multi_day else clock(ts)

    lines = [
        f"## Incident Report: {_title(report)}",
        "",
        f"**Date**: {datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M} UTC",
        f"**Duration**: {fmt_duration(float(report['duration_s']))} ({report['start']} → {report['end']})",
        f"**Severity**: {str(report['severity']).capitalize()} (the worst event severity in the session)",
        "",
        "### Summary",
        _summary(report),
        "",
        "### Timeline",
        *_timeline(report, at),
        "",
        "### Root Cause",
        "_To be filled in by a human: what caused the incident._",
        "",
        "### Impact",
        *_impact(report),
        "",
        "### Resolution",
        *_resolution(report, at),
        "",
        "### Prevention",
        "- [ ] _action item_",
        "",
        "### Lessons Learned",
        "_To be filled in by a human._",
        "",
    ]
    return "\n".join(lines)


def _title(r: Mapping[str, Any]) -> str:
    parts = []
    if r["feed_disconnects"]:
        parts.append("feed disconnects")
    if r["rate_limited"]:
        parts.append("rate limiting (429)")
    if r["bans"]:
        parts.append("exchange ban (418)")
    if r["kill_switch_episodes"]:
        parts.append("kill switch")
    if r["orders_rejected"]:
        parts.append("order rejections")
    if r["dead_letters"]:
        parts.append("dead letters")
    what = ", ".join(parts) if parts else ("incidents" if r["incidents"] else "quiet session")
    return f"{Path(str(r['file'])).name} — {what}"


def _summary(r: Mapping[str, Any]) -> str:
    where = " ".join(x for x in (str(r["exchange"]), f"({r['mode']})" if r["mode"] else "") if x)
    text = [
        f"Session {Path(str(r['file'])).name}{' on ' + where if where else ''} ran for "
        f"{fmt_duration(float(r['duration_s']))} and recorded {r['events']} events, {r['fills']} fill(s) and "
        f"{r['orders_rejected']} rejected order(s)"
        + (f" (fill rate {float(r['fill_rate']) * 100:.0f} %)" if r["fill_rate"] is not None else "")
        + "."
    ]
    counts: dict[str, int] = {}
    for i in r["incidents"]:
        counts[i["severity"]] = counts.get(i["severity"], 0) + 1
    if counts:
        text.append(
            f"It had {len(r['incidents'])} incident(s) "
            f"({counts.get('critical', 0)} critical, {counts.get('warning', 0)} warning)."
        )
    else:
        text.append("It had no incident (no warning or critical event).")
    trouble = []
    if r["feed_disconnects"]:
        total = sum(float(o["seconds"]) for o in r["feed_disconnects"])
        trouble.append(f"streams disconnected {len(r['feed_disconnects'])} time(s) for {total:.1f} s in all")
    if r["rate_limited"] or r["bans"]:
        trouble.append(f"the exchange answered 429 {r['rate_limited']} time(s) and 418 {r['bans']} time(s)")
    if r["kill_switch_episodes"]:
        causes = "; ".join(str(k["cause"]) for k in r["kill_switch_episodes"][:3])
        trouble.append(f"the kill switch was engaged {len(r['kill_switch_episodes'])} time(s) ({causes})")
    if r["rejections_by_reason"]:
        top = next(iter(r["rejections_by_reason"]))
        trouble.append(f"the most common rejection was “{top}”")
    if trouble:
        text.append(_sentence("; ".join(trouble)))
    pnl = r["pnl"]
    dd = r["max_drawdown_pct"]
    text.append(
        f"Realized PnL {pnl['realized']} (commission {pnl['commission']}, funding {pnl['funding']})"
        + (f"; max drawdown {float(dd):.2f} %." if dd is not None else "; no equity recorded.")
    )
    return " ".join(text)


def _timeline(r: Mapping[str, Any], at: Any) -> list[str]:
    """A line per incident (first symptom → end), and the actions that were not part of one, by time."""
    items: list[tuple[float, str]] = []
    grouped: set[int] = set()
    for i in r["incidents"]:
        grouped.update(int(s) for s in i["seqs"])
        end = (
            f"{at(float(i['end_ts']))} ({fmt_duration(float(i['duration_s']))})"
            if i["end_ts"] is not None
            else f"still open at the end of the file ({fmt_duration(float(i['duration_s']))})"
        )
        items.append(
            (
                float(i["start_ts"]),
                f"- {at(float(i['start_ts']))} → {end} — {str(i['severity']).upper()} `{i['cause']}`: "
                f"{i['title']} ({i['events']} event(s), first {i['kind']})",
            )
        )
    for a in r["resolution"]:
        if int(a["seq"]) not in grouped:
            what = "auto" if a["automatic"] else "action"
            items.append((float(a["ts"]), f"- {at(float(a['ts']))} — {what}: {a['text']}"))
    if not items:
        return ["- no incident in this session"]
    items.sort(key=lambda item: item[0])
    lines = [text for _, text in items[:TIMELINE_MAX]]
    if len(items) > TIMELINE_MAX:
        lines.append(f"- … {len(items) - TIMELINE_MAX} more (see the JSON report for every incident)")
    return lines


def _impact(r: Mapping[str, Any]) -> list[str]:
    feeds: Sequence[Mapping[str, Any]] = r["feed_disconnects"]
    outages: Sequence[Mapping[str, Any]] = r["exchange_outages"]
    lines = [
        f"- Trading: {float(r['downtime_s']):.1f} s of downtime (stream or exchange outage, overlaps counted "
        f"once): {len(feeds)} stream outage(s), {len(outages)} exchange outage(s)"
    ]
    lines += [
        f"  - stream {o['stream']}: {float(o['seconds']):.1f} s from {o['start']}"
        + (f" to {o['end']}" if o["end"] else " (still down at the end of the file)")
        for o in feeds[:LIST_MAX]
    ]
    lines += [
        f"  - exchange {o['kind']}: {float(o['seconds']):.1f} s from {o['start']}"
        + (f" to {o['end']}" if o["end"] else " (not recovered at the end of the file)")
        for o in outages[:LIST_MAX]
    ]
    for k in r["kill_switch_episodes"][:LIST_MAX]:
        lines.append(
            f"- Kill switch: engaged {k['start']} by {k['by']} ({k['cause']})"
            + (
                f", released {k['end']} by {k['released_by']} after {float(k['seconds']):.1f} s"
                if k["end"]
                else f", still engaged at the end of the file ({float(k['seconds']):.1f} s)"
            )
        )
    pnl = r["pnl"]
    change = pnl["equity_change"]
    lines.append(
        f"- Financial: realized PnL {pnl['realized']}, commission {pnl['commission']}, "
        f"funding {pnl['funding']}, net {pnl['net']}"
        + (f"; equity change {change:+.2f}" if change is not None else "")
        + (
            f"; max drawdown {float(r['max_drawdown_pct']):.2f} %"
            if r["max_drawdown_pct"] is not None
            else ""
        )
    )
    rejections = r["rejections_by_reason"]
    if rejections:
        lines.append(f"- Orders: {r['orders_rejected']} rejected")
        lines += [f"  - {n} × {reason}" for reason, n in list(rejections.items())[:LIST_MAX]]
    lines.append(
        f"- Data: {r['dead_letters']} dead letter(s) (operations that failed for good)"
        if r["dead_letters"]
        else "- Data: nothing lost (no dead letters)"
    )
    return lines


def _resolution(r: Mapping[str, Any], at: Any) -> list[str]:
    actions: Sequence[Mapping[str, Any]] = r["resolution"]
    if not actions:
        return ["- no operator action or automatic recovery recorded"]
    lines = [
        f"- {at(float(a['ts']))} — {'automatic' if a['automatic'] else 'operator'}: {a['text']}"
        for a in actions[:TIMELINE_MAX]
    ]
    if len(actions) > TIMELINE_MAX:
        lines.append(f"- … {len(actions) - TIMELINE_MAX} more (see the JSON report)")
    return lines


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None
