"""Which message goes where and when (cockpit/notify/router.py), fed by the real incident builder: one message
per incident however many events it groups, nothing for a warning cockpit resolved by itself, reminders of a
critical one until acknowledged, a rate per target folded into digests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cockpit.config.schema import NotifyConfig, TargetConfig
from cockpit.core import events as ev
from cockpit.core.domain import Event, Severity
from cockpit.core.incidents import IncidentBuilder
from cockpit.notify.messages import Composer
from cockpit.notify.router import STREAM_HOLD_S, Outgoing, Router

T0 = 1_800_000_000.0


class World:
    """Events in, messages out, on a clock the test moves."""

    def __init__(self, **notify: Any) -> None:
        targets = notify.pop(
            "targets",
            {"team": TargetConfig(), "phone": TargetConfig(min_severity="critical")},
        )
        self.config = replace(NotifyConfig(), targets=targets, **notify)
        self.router = Router(self.config, Composer("binanceusdm on test", None))
        self.builder = IncidentBuilder()
        self.now = T0
        self.seq = 0
        self.out: list[Outgoing] = []

    def event(self, kind: str, payload: Any, severity: Severity = "warning", source: str = "feed") -> None:
        self.seq += 1
        event = Event(self.seq, self.now, kind, severity, source, dict(payload))
        for change in self.builder.add(event):
            self.out += self.router.on_change(change, self.now)

    def wait(self, seconds: float, step: float = 1.0) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            self.out += self.router.tick(self.now)

    def drop(self, stream: str = "market:public", feed: str = "market") -> None:
        payload = ev.feed_disconnected(
            stream=stream,
            feed=feed,
            attempt=1,
            failures=1,
            retry_in_s=1.0,
            reason="connection refused",
            close_code=None,
            down_for_s=None,
        )
        self.event("feed.disconnected", payload)

    def back(self, stream: str = "market:public") -> None:
        self.event("feed.reconnected", ev.feed_reconnected(stream=stream, feed="market"), "info")

    def kill(self) -> None:
        payload = ev.killswitch_engaged(cause="drawdown 7.5% reached the 7% limit", by="risk", message="k")
        self.event("killswitch.engaged", payload, "critical", "risk")

    def sent(self, target: str | None = None, change: str | None = None) -> list[Outgoing]:
        return [
            o
            for o in self.out
            if (target is None or o.target == target) and (change is None or o.message.change == change)
        ]


def test_a_flapping_stream_is_one_message_when_it_opens_and_one_when_it_resolves() -> None:
    world = World(grace_s=10.0)
    for _ in range(20):  # down and up every two seconds for 40 s: one episode
        world.drop()
        world.wait(1)
        world.back()
        world.wait(1)
    world.drop()
    world.wait(15)
    world.back()
    world.wait(60)
    team = world.sent("team")
    assert [o.message.change for o in team] == ["opened", "resolved"]
    assert team[0].message.title.startswith("[cockpit WARNING] #1 Stream market:public down")
    assert "Cockpit already: reconnecting with backoff" in team[0].message.body
    assert "Do: cockpit attach" in team[0].message.body
    assert world.sent("phone") == []  # a warning: not for a critical-only target


def test_a_warning_cockpit_resolves_within_the_grace_is_not_sent() -> None:
    world = World(grace_s=30.0)
    world.drop()
    world.wait(5)
    world.back()
    world.wait(120)
    assert world.out == []


def test_a_critical_is_sent_at_once_and_repeats_until_acknowledged() -> None:
    world = World(repeat_critical_min=5)
    world.kill()
    assert [(o.target, o.message.change) for o in world.out] == [("team", "opened"), ("phone", "opened")]
    body = world.out[0].message.body
    assert "Acknowledge: A in the cockpit, or cockpit ctl ack 1" in body
    assert "cockpit ctl kill-switch off" in body
    world.wait(5 * 60 + 1)
    assert len(world.sent("phone", "repeat")) == 1
    assert world.sent("phone", "repeat")[0].message.title.startswith("[cockpit CRITICAL, still open] #1")
    world.wait(5 * 60)
    assert len(world.sent("phone", "repeat")) == 2
    assert world.router.acknowledge(None) == [1]
    world.wait(30 * 60)
    assert len(world.sent("phone", "repeat")) == 2  # acknowledged: no more reminders


def test_a_warning_that_becomes_critical_reaches_the_critical_only_target() -> None:
    world = World(grace_s=0.0)
    world.event(
        "clock.drift", {"status": "warn", "offset_ms": 700, "message": "clock 700 ms"}, "warning", "clock"
    )
    world.wait(1)
    assert [o.target for o in world.sent(change="opened")] == ["team"]
    world.event(
        "clock.drift", {"status": "kill", "offset_ms": 3000, "message": "clock 3 s"}, "critical", "clock"
    )
    assert [o.target for o in world.sent(change="opened")] == ["team", "phone"]


def test_kinds_choose_the_incidents_a_target_hears() -> None:
    world = World(grace_s=0.0, targets={"risk": TargetConfig(kinds=("killswitch", "drawdown"))})
    world.drop()
    world.wait(2)
    world.kill()
    assert [o.message.cause for o in world.sent("risk")] == ["killswitch"]


def test_the_rate_folds_what_a_target_cannot_take_into_one_digest() -> None:
    world = World(grace_s=0.0, targets={"team": TargetConfig(rate_per_hour=2)})
    for n in range(6):  # six ghost positions, each its own incident
        payload = ev.position_ghost(
            symbol=f"S{n}/USDT:USDT",
            qty="1",
            entry="10",
            local_qty="0",
            exchange_qty="1",
            unexplained_qty="1",
            booked_qty="0",
            message="no recorded trade explains it",
        )
        world.event("position.ghost", payload, "warning", "reconcile")
    world.wait(1)
    sent = world.sent("team")
    assert len(sent) == 2  # the rate
    world.wait(3600)
    digests = world.sent("team", "digest")
    assert len(digests) == 1
    assert digests[0].message.title == "[cockpit] 4 messages held by this target's rate limit"
    assert all(f"Ghost position S{n}/USDT:USDT" in digests[0].message.body for n in range(2, 6))


def test_one_off_incidents_are_sent_once_their_episode_is_over() -> None:
    world = World(grace_s=30.0)
    for n in range(5):  # five rejections within seconds: one incident, one message
        payload = ev.order_rejected(
            client_order_id=f"c{n}",
            symbol="BTC/USDT:USDT",
            side="buy",
            type="limit",
            amount="0.01",
            price="1",
            reduce_only=False,
            origin="cockpit",
            reason="insufficient margin",
        )
        world.event("order.rejected", payload, "warning", "exchange")
        world.wait(2)
    assert world.out == []
    world.wait(40)
    sent = world.sent("team")
    assert [o.message.change for o in sent] == ["opened"]
    assert "5 events" in sent[0].message.body


def test_a_stream_the_feed_calls_critical_wakes_the_phone_only_once_down_a_minute() -> None:
    world = World(grace_s=5.0)
    world.drop()
    world.seq += 1
    payload = ev.feed_disconnected(
        stream="market:public",
        feed="market",
        attempt=3,
        failures=3,
        retry_in_s=8.0,
        reason="connection refused",
        close_code=None,
        down_for_s=14.0,
    )
    world.event("feed.disconnected", payload, "critical")  # the third failed reconnect
    world.wait(STREAM_HOLD_S + 1)
    assert [o.target for o in world.sent(change="opened")] == ["team"]
    world.wait(58 - STREAM_HOLD_S)
    assert [o.target for o in world.sent(change="opened")] == ["team"]
    world.wait(10)  # down more than a minute: runbook 000's critical
    assert [o.target for o in world.sent(change="opened")] == ["team", "phone"]


def test_fills_recovered_after_an_outage_neither_lose_its_resolution_nor_reopen_it() -> None:
    world = World(grace_s=10.0)
    world.drop()
    world.wait(20)
    world.back()
    world.wait(5)
    recovered = {"recovered": True, "symbol": "BTC/USDT:USDT", "message": "fill recovered by reconcile"}
    world.event("order.filled", recovered, "warning", "reconcile")  # joins the outage that hid it
    world.wait(60)
    assert [o.message.change for o in world.sent("team")] == ["opened", "resolved"]
    assert world.router.open_numbers == []
    assert world.router._tracked == {}  # nothing kept once it is said


def test_streams_that_drop_just_before_maintenance_are_told_as_the_maintenance_only() -> None:
    # the sockets close first and the exchange's 503 comes seconds later: the builder folds the stream's
    # incident into the maintenance one, and the team must not have been told of it first, even with no grace
    world = World(grace_s=0.0)
    world.drop()
    world.wait(6)
    notice = ev.exchange_maintenance(op="fetch_positions", message="503 maintenance", notices=1)
    world.event("exchange.maintenance", notice, "warning", "exchange")
    world.wait(30)
    opened = world.sent("team", "opened")
    assert [o.message.cause for o in opened] == ["exchange:maintenance"]


def test_a_stream_down_with_no_maintenance_is_told_once_it_can_no_longer_be_absorbed() -> None:
    world = World(grace_s=0.0)
    world.drop()
    world.wait(STREAM_HOLD_S - 1)
    assert world.out == []
    world.wait(2)
    assert [o.message.change for o in world.sent("team")] == ["opened"]
