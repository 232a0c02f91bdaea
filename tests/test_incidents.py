"""Incidents: one episode per trouble (first symptom → recovery or operator action), not one per event."""

from __future__ import annotations

from typing import Any

from cockpit.analytics import build_report
from cockpit.core.domain import Event, Severity
from cockpit.core.incidents import IncidentBuilder, Repeats, incidents_from
from cockpit.sim.server import SimServer
from tests.conftest import EngineRun, stop


class Tape:
    """Hand-made events with gap-free seqs and explicit times."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def at(
        self, ts: float, kind: str, severity: Severity = "info", source: str = "engine", **p: Any
    ) -> Event:
        event = Event(len(self.events) + 1, 1_000.0 + ts, kind, severity, source, p)
        self.events.append(event)
        return event

    def drop(self, ts: float, attempts: int, up_after: float, stream: str = "market:public") -> None:
        for n in range(attempts):
            severity: Severity = "critical" if n >= 2 else "warning"
            self.at(ts + 2 * n, "feed.disconnected", severity, "feed", stream=stream, attempt=n + 1)
        self.at(ts + up_after, "feed.reconnected", "info", "feed", stream=stream, down_for_s=up_after)


def test_a_ws_drop_with_three_reconnect_attempts_is_one_incident() -> None:
    tape = Tape()
    tape.at(0, "session.started")
    tape.at(1, "feed.connected", stream="market:public")
    tape.at(2, "market.marks", marks={"BTC/USDT:USDT": "100"})
    tape.drop(10, attempts=3, up_after=9)
    (incident,) = incidents_from(tape.events)
    assert incident.cause == "feed:market:public"
    assert incident.start == 1_010.0 and incident.end == 1_019.0
    assert incident.seqs == (4, 5, 6, 7)  # three attempts and the reconnect
    assert incident.title.startswith("Stream market:public down")


def test_maintenance_with_twenty_notices_is_one_incident_resolved_by_recovery() -> None:
    tape = Tape()
    for n in range(20):
        tape.at(n * 1.5, "exchange.maintenance", "warning", "exchange", message="503 maintenance")
    tape.at(31, "exchange.recovered", "info", "exchange", message="exchange answers again")
    (incident,) = incidents_from(tape.events)
    assert incident.cause == "exchange:maintenance" and len(incident.seqs) == 21
    assert not incident.open and incident.duration(now=0) == 31.0
    assert incident.title == "Exchange maintenance — 503 maintenance"


def test_two_drops_minutes_apart_are_two_incidents_and_a_flap_is_one() -> None:
    tape = Tape()
    tape.drop(0, attempts=1, up_after=3)
    tape.drop(30, attempts=1, up_after=3)  # 27 s after the first came back: the same flapping stream
    tape.drop(300, attempts=2, up_after=5)
    first, second = incidents_from(tape.events)
    assert first.start == 1_000.0 and first.end == 1_033.0 and len(first.seqs) == 4
    assert second.start == 1_300.0 and second.end == 1_305.0


def test_severity_is_the_worst_of_its_events() -> None:
    tape = Tape()
    tape.drop(0, attempts=3, up_after=8)  # attempts 1-2 warning, 3 critical
    tape.drop(500, attempts=1, up_after=2)
    worst, mild = incidents_from(tape.events)
    assert worst.severity == "critical" and mild.severity == "warning"


def test_an_incident_still_open_at_the_end_has_no_end() -> None:
    tape = Tape()
    tape.at(0, "position.ghost", "critical", "reconcile", symbol="BTC/USDT:USDT", message="ghost")
    tape.at(60, "reconcile.done", "info", "reconcile", ghosts=[], ghosts_open=["BTC/USDT:USDT"])
    tape.at(90, "killswitch.engaged", "critical", "operator", cause="manual", by="operator")
    tape.at(95, "killswitch.guard", "warning", "risk", message="other clients keep trading")
    tape.at(96, "alert", "warning", "risk", message="kill switch guard could not cancel 42")
    ghost, kill = incidents_from(tape.events)
    assert ghost.cause == "ghost:BTC/USDT:USDT" and ghost.open and ghost.end is None
    assert ghost.duration(now=1_100.0) == 100.0
    assert kill.cause == "killswitch" and kill.open and kill.seqs == (3, 4, 5)


def test_a_ghost_ends_when_reconcile_no_longer_lists_it_or_the_operator_adopts_it() -> None:
    tape = Tape()
    tape.at(0, "position.ghost", "critical", "reconcile", symbol="SOL/USDT:USDT")
    tape.at(
        0.1, "reconcile.done", "warning", "reconcile", ghosts=["SOL/USDT:USDT"], ghosts_open=["SOL/USDT:USDT"]
    )
    tape.at(60, "reconcile.done", "info", "reconcile", ghosts=[], ghosts_open=[])
    tape.at(100, "position.ghost", "critical", "reconcile", symbol="ETH/USDT:USDT")
    tape.at(110, "position.changed", "warning", "operator", symbol="ETH/USDT:USDT", ghost=False)
    sol, eth = incidents_from(tape.events)
    assert sol.seqs == (1, 2, 3) and sol.end == 1_060.0
    assert eth.cause == "ghost:ETH/USDT:USDT" and eth.end == 1_110.0


def test_a_ghost_hedge_leg_is_an_incident_of_its_own_that_stays_open_while_reconcile_lists_it() -> None:
    """A hedge account's ghost leg is named by its key ("<symbol> short"), as reconcile.done lists it: the
    incident stays open while it is listed (never closed by the next pass for want of the bare symbol), and
    ends when the leg is adopted."""
    tape = Tape()
    tape.at(0, "position.ghost", "critical", "reconcile", symbol="BTC/USDT:USDT", leg="short")
    short = "BTC/USDT:USDT short"
    tape.at(0.1, "reconcile.done", "warning", "reconcile", ghosts=[short], ghosts_open=[short])
    tape.at(60, "reconcile.done", "info", "reconcile", ghosts=[], ghosts_open=[short])
    builder = IncidentBuilder()
    for e in tape.events:
        builder.add(e)
    (open_one,) = builder.open_incidents
    assert open_one.cause == f"ghost:{short}" and "Ghost position BTC/USDT:USDT short" in open_one.title
    tape.at(70, "position.changed", "warning", "operator", symbol="BTC/USDT:USDT", leg="short", ghost=False)
    (ended,) = incidents_from(tape.events)
    assert ended.end == 1_070.0


def test_streams_dropping_during_maintenance_belong_to_the_maintenance() -> None:
    tape = Tape()
    tape.at(0, "exchange.maintenance", "warning", "exchange", message="503")
    tape.drop(1, attempts=3, up_after=12)
    tape.at(10, "exchange.error", "warning", "exchange", op="fetch_balance")
    tape.at(12, "exchange.recovered", "info", "exchange")
    (incident,) = incidents_from(tape.events)
    assert incident.cause == "exchange:maintenance" and incident.severity == "critical"
    assert incident.end == 1_012.0


def test_every_stream_closed_by_one_drop_is_one_outage_until_the_last_is_back() -> None:
    tape = Tape()
    for stream in ("market:public", "market:market", "user"):
        tape.at(0.1, "feed.disconnected", "warning", "feed", stream=stream, attempt=1)
    builder = IncidentBuilder()
    said = [[c.change for c in builder.add(e)] for e in tape.events]
    assert said == [["opened"], ["updated"], ["updated"]]
    tape.at(3, "feed.reconnected", "info", "feed", stream="market:public")
    tape.at(3.1, "feed.reconnected", "info", "feed", stream="user")
    assert [c.change for e in tape.events[3:] for c in builder.add(e)] == ["updated", "updated"]
    assert builder.open_incidents  # market:market is still down
    (back,) = builder.add(tape.at(5, "feed.reconnected", "info", "feed", stream="market:market"))
    assert back.change == "resolved" and back.incident.end == 1_005.0
    assert back.incident.seqs == (1, 2, 3, 4, 5, 6) and len(builder.incidents) == 1


def test_fills_a_reconcile_recovers_right_after_an_outage_are_part_of_it() -> None:
    tape = Tape()
    tape.drop(0, attempts=2, up_after=4)
    tape.at(5, "order.filled", "warning", "reconcile", symbol="BTC/USDT:USDT", recovered=True)
    tape.at(5.1, "reconcile.done", "warning", "reconcile", recovered_fills=1, ghosts=[], ghosts_open=[])
    tape.at(60, "order.filled", "warning", "reconcile", symbol="BTC/USDT:USDT", recovered=True)
    outage, later = incidents_from(tape.events)
    assert outage.cause == "feed:market:public" and outage.seqs == (1, 2, 3, 4, 5)
    assert outage.end == 1_004.0  # still ended when the stream came back
    assert later.cause == "reconcile" and later.seqs == (6,)  # long after: an incident of its own


def test_streams_that_dropped_just_before_the_maintenance_notice_are_part_of_it() -> None:
    tape = Tape()
    tape.at(0, "feed.disconnected", "warning", "user_stream", stream="user", attempt=1)
    tape.at(0.2, "feed.disconnected", "warning", "feed", stream="market:public", attempt=1)
    builder = IncidentBuilder()
    for e in tape.events:
        builder.add(e)
    said = builder.add(tape.at(1.5, "exchange.maintenance", "warning", "exchange", message="503"))
    assert sorted(c.change for c in said) == ["merged", "opened"]  # the two streams' one outage
    builder.add(tape.at(4, "feed.reconnected", "info", "feed", stream="market:public"))
    builder.add(tape.at(6, "exchange.recovered", "info", "exchange"))
    (incident,) = builder.incidents
    assert incident.cause == "exchange:maintenance" and incident.start == 1_000.0
    assert incident.seqs == (1, 2, 3, 5) and incident.end == 1_006.0


def test_the_builder_says_opened_updated_resolved_once_each_step() -> None:
    tape = Tape()
    builder = IncidentBuilder()
    said = [
        [(c.change, c.incident.cause) for c in builder.add(e)]
        for e in (
            tape.at(0, "exchange.rate_limited", "warning", "exchange", retry_after_s=2.0),
            tape.at(1, "market.marks", marks={}),
            tape.at(30, "exchange.rate_limited", "warning", "exchange", retry_after_s=5.0),
            tape.at(31, "exchange.recovered", "info", "exchange"),
            tape.at(32, "exchange.recovered", "info", "exchange"),
        )
    ]
    assert said == [
        [("opened", "exchange:rate_limit")],
        [],
        [("updated", "exchange:rate_limit")],
        [("resolved", "exchange:rate_limit")],
        [],
    ]
    assert builder.open_incidents == [] and len(builder.incidents) == 1


def test_one_off_troubles_group_within_the_quiet_time_and_info_is_never_an_incident() -> None:
    tape = Tape()
    tape.at(0, "order.rejected", "warning", "exchange", reason="margin insufficient")
    tape.at(20, "order.rejected", "warning", "exchange", reason="margin insufficient")
    tape.at(25, "order.rejected", "info", "engine", reason="dry-run: not sent", dry_run=True)
    tape.at(200, "order.rejected", "warning", "exchange", reason="price filter")
    tape.at(210, "killswitch.released", "warning", "operator", by="ops")  # engaged before this file
    first, second = incidents_from(tape.events)
    assert (first.cause, first.start, first.end, len(first.seqs)) == ("order:rejected", 1_000.0, 1_020.0, 2)
    assert second.title == "Order rejected — price filter" and second.end == 1_200.0


def test_repeats_let_the_first_through_then_one_every_30_s_or_when_the_facts_change() -> None:
    repeats = Repeats(every_s=30.0)
    said = [repeats.let_through("maintenance", None, t) for t in (0.0, 1.5, 3.0, 29.0, 31.0, 32.0)]
    assert said == [1, None, None, None, 4, None]  # the update at 31 s stands for itself and 3 held
    assert repeats.let_through("rate_limited", 5, 33.0) == 1
    assert repeats.let_through("rate_limited", 9, 34.0) == 1  # a new Retry-After is news
    assert repeats.clear() == {"maintenance": 1}
    assert repeats.let_through("maintenance", None, 35.0) == 1  # a new trouble after the recovery


async def test_a_few_seconds_of_maintenance_are_a_handful_of_events_and_one_incident(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    told: list[str] = []
    run.engine.gateway.add_listener(lambda notice: told.append(notice.kind))
    await sim.inject({"kind": "maintenance", "seconds": 6.0})
    first = await run.wait_for("exchange.maintenance", within=15)
    recovered = await run.wait_for("exchange.recovered", within=40, where=lambda e: e.seq > first.seq)
    await run.engine.core.drain()
    await stop(run)

    events = run.of("exchange.maintenance")
    notices = told.count("maintenance")
    assert notices > len(events) and len(events) <= 2, (notices, len(events))  # not one per retry
    held = recovered.payload.get("held_notices", {}).get("maintenance", 0)
    assert sum(e.payload["notices"] for e in events) + held == notices  # every notice still counted

    report = build_report(run.engine.store.path)
    # one incident: the streams the maintenance dropped, the retries, the calls that gave up, the recovery
    [incident] = report["incidents"]
    assert incident["cause"] == "exchange:maintenance" and incident["end_ts"] == recovered.ts
    assert first.ts - 10 <= incident["start_ts"] <= first.ts
    troubled = [e.seq for e in run.events if e.severity != "info"]
    assert set(troubled) <= set(incident["seqs"]) and len(troubled) > 1
    assert incident["title"].startswith("Exchange maintenance") and incident["events"] >= len(events) + 1
    assert report["exchange_outages"][0]["events"] == len(events)


def test_a_stream_back_for_a_few_seconds_then_dropped_by_maintenance_keeps_its_first_episode() -> None:
    tape = Tape()
    tape.drop(0, attempts=2, up_after=8)  # its own episode, 0 → 8 s
    tape.at(20, "feed.disconnected", "warning", "feed", stream="market:public", attempt=1)  # reopens it…
    tape.at(21, "exchange.maintenance", "warning", "exchange", message="503")  # …but this was the cause
    tape.at(30, "feed.reconnected", "info", "feed", stream="market:public")
    tape.at(31, "exchange.recovered", "info", "exchange")
    drop, maintenance = incidents_from(tape.events)
    assert drop.cause == "feed:market:public" and drop.seqs == (1, 2, 3) and drop.end == 1_008.0
    assert maintenance.start == 1_020.0 and maintenance.seqs == (4, 5, 7) and maintenance.end == 1_031.0


def test_no_warning_or_critical_event_opens_an_incident_that_nothing_can_close() -> None:
    from cockpit.core.domain import EVENT_KINDS
    from cockpit.core.incidents import CLOSABLE_PREFIXES

    for kind in EVENT_KINDS:
        for severity in ("warning", "critical"):
            builder = IncidentBuilder()
            tape = Tape()
            p = {"symbol": "BTC/USDT:USDT", "stream": "market:public", "item": "feed", "status": "down"}
            builder.add(tape.at(0, kind, severity, "engine", **p))
            for incident in builder.open_incidents:  # an open one must have a closer
                assert incident.cause.startswith(CLOSABLE_PREFIXES), (kind, severity, incident.cause)


def test_an_operator_action_is_no_incident() -> None:
    tape = Tape()
    tape.at(0, "operator.action", "warning", "operator", action="kill_switch", on=True, by="ui")
    tape.at(0.1, "operator.action", "warning", "operator", action="flatten", symbols="all", by="ui")
    tape.at(0.2, "flatten.started", "warning", "operator", symbols=["BTC/USDT:USDT"], by="ui")
    assert incidents_from(tape.events) == []


def test_an_exchange_sending_bad_data_for_minutes_is_one_incident_until_its_data_is_ok_again() -> None:
    """The first refusal and a summary every 30 s (timers run a little late) are one episode, not one
    incident per summary; it resolves when the data item is ok again after a quiet minute."""
    tape = Tape()
    for n in range(8):  # 0, 30.2, 60.4 … s: the summaries never land exactly 30 s apart
        tape.at(n * 30.2, "data.rejected", "warning", "feed", reason="p: NaN", count=3)
    tape.at(8 * 30.2 + 60, "health.changed", "info", "engine", item="data", status="ok")
    tape.at(900, "data.rejected", "warning", "exchange", reason="not a list", count=1)
    first, second = incidents_from(tape.events)
    assert (first.cause, first.title.split(" — ")[0], len(first.seqs)) == (
        "bad_data",
        "Bad exchange data refused",
        9,
    )
    assert first.end == 1_000.0 + 8 * 30.2 + 60
    assert second.cause == "bad_data" and second.end is None  # a new episode, still open


def test_bad_data_ends_with_the_run_and_the_next_run_starts_with_data_ok() -> None:
    """An engine stopped during a bad-data episode (its quiet-minute timer stops with it): the incident ends
    at the stop and the next run's Health does not carry 'bad data' on for ever."""
    from cockpit.core.state import fold

    tape = Tape()
    tape.at(0, "session.started", mode="live", exchange="x", session_file="s", restored=False, restored_seq=0)
    rejected = {"source": "market_feed", "reason": "p: NaN", "count": 1, "totals": {"market_feed": 1}}
    tape.events.append(Event(2, 1_005.0, "data.rejected", "warning", "feed", {**rejected, "message": "m"}))
    assert fold(tape.events).health_of("data").status == "bad data"
    tape.at(10, "session.stopped", seq=3)
    tape.at(
        3_600, "session.started", mode="live", exchange="x", session_file="s", restored=True, restored_seq=3
    )
    [incident] = incidents_from(tape.events)
    assert incident.cause == "bad_data" and incident.end == 1_010.0
    assert fold(tape.events).health_of("data").status == "ok"
