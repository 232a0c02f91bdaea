"""The clock check never cries wolf: rate limits, bans, maintenance and slow answers are not clock drift,
and a true skew still engages the kill switch. Unit tests of the filter on recorded sample sequences, then the
engine against the simulator's faults."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cockpit.engine.clock import ClockFilter, ClockSample, check
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, GatewayNotice
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET, EngineRun
from tests.waiting import wait_until

WARN_MS, KILL_MS = 500, 2000  # the defaults (risk.clock)
DEFAULT_CADENCE_S = 15.0  # EngineOptions.clock_every_s


def clean(offset_ms: float = 0.0, rtt_ms: float = 40.0) -> ClockSample:
    return ClockSample(offset_ms, rtt_ms)


def settled(*samples: ClockSample) -> ClockFilter:
    filt = ClockFilter(cap_ms=KILL_MS)
    for s in samples:
        filt.add(s)
    assert filt.estimate is not None and not filt.pending
    return filt


# ----- the filter, on recorded sequences --------------------------------------------------------------------
def test_the_issues_samples_are_discarded_and_never_move_the_estimate() -> None:
    filt = settled(clean(3), clean(1, 35), clean(-2, 41))
    # What the old check stored: a limiter cooldown, a maintenance window and a 12 s answer, timed as offset.
    for offset, rtt in ((2448, 10011), (8440, 20003), (5254, 12104), (1500, 3004)):
        verdict = filt.add(ClockSample(offset, rtt))
        assert verdict.kind == "discarded" and verdict.bound_ms == 500
    assert filt.estimate == clean(1, 35) and filt.estimate.status(WARN_MS, KILL_MS) == "ok"
    assert filt.discarded == 4


def test_a_slow_but_accepted_answer_does_not_shift_the_estimate() -> None:
    filt = settled(clean(3), clean(1, 35), clean(-2, 41))
    # 400 ms spent one way only: the midpoint is 200 ms off, but its error interval still holds the truth.
    verdict = filt.add(ClockSample(201, 400))
    assert verdict.kind == "estimate" and verdict.estimate == clean(1, 35)


def test_the_status_counts_only_the_offset_the_round_trip_proves() -> None:
    assert ClockSample(750, 1500).status(WARN_MS, KILL_MS) == "ok"  # could be 0: all the delay one way
    assert ClockSample(900, 10).status(WARN_MS, KILL_MS) == "drift"
    assert ClockSample(-2500, 10).status(WARN_MS, KILL_MS) == "kill"


def test_the_discard_bound_follows_a_link_that_is_slow_for_good() -> None:
    filt = settled(*(clean(0, 20) for _ in range(8)))
    assert filt.bound_ms() == 500
    kinds = [filt.add(clean(0, 700)).kind for _ in range(9)]
    assert kinds[:8] == ["discarded"] * 8  # while a fast answer is among the last 8, 700 ms is slow
    assert kinds[8] == "estimate" and filt.bound_ms() == 2000  # 3 × 700, capped at the kill limit


def test_the_estimate_follows_a_real_step_once_fresh_samples_confirm_it() -> None:
    filt = settled(clean(2, 12), clean(0), clean(1))  # a 12 ms round trip: the best, it would mask for long
    assert [filt.add(clean(3001)).kind, filt.add(clean(2999, 45)).kind] == ["confirming", "confirming"]
    assert filt.estimate == clean(2, 12)  # not acted on yet
    verdict = filt.add(clean(3002, 38))
    assert verdict.kind == "estimate" and verdict.estimate == clean(3002, 38) and verdict.samples == 3
    assert verdict.estimate.status(WARN_MS, KILL_MS) == "kill"  # the old 12 ms sample no longer counts


def test_a_lone_spike_is_forgotten_when_the_next_sample_agrees() -> None:
    filt = settled(clean(0), clean(1), clean(-1))
    assert filt.add(clean(2600, 50)).kind == "confirming"
    verdict = filt.add(clean(2))
    assert verdict.kind == "estimate" and not filt.pending
    assert verdict.estimate is not None and verdict.estimate.status(WARN_MS, KILL_MS) == "ok"


class VirtualExchange:
    """The exchange's clock in virtual time: offset 0, then `skew_ms` from `step_at`; round trips replayed."""

    def __init__(self, step_at: float, skew_ms: float, rtts: list[float]) -> None:
        self.now = 0.0
        self.step_at = step_at
        self.skew_ms = skew_ms
        self.rtts = rtts
        self.taken = 0

    async def sample(self) -> ClockSample | None:
        rtt = self.rtts[self.taken % len(self.rtts)]
        self.taken += 1
        if rtt < 0:  # a failed request (429, ban, timeout): no answer
            self.now += 1.0
            return None
        self.now += rtt / 1000
        return ClockSample(self.skew_ms if self.now >= self.step_at else 0.0, rtt)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def seconds_to_kill(step_at: float, rtts: list[float], skew_ms: float = 3000) -> float | None:
    """Run the real check at the default cadence in virtual time; seconds from the step to a kill verdict."""
    exchange = VirtualExchange(step_at, skew_ms, rtts)
    filt = ClockFilter(cap_ms=KILL_MS)
    while exchange.now < step_at + 120:
        await check(exchange.sample, filt, 1.0, exchange.sleep)
        estimate = filt.estimate
        if estimate is not None and estimate.status(WARN_MS, KILL_MS) == "kill":
            return exchange.now - step_at
        await exchange.sleep(DEFAULT_CADENCE_S)
    return None


STEPS = [20.0 + i * 0.25 for i in range(80)]  # every phase of the step against the 15 s checks, twice over


@pytest.mark.parametrize(
    "rtts",
    [
        [40.0],
        [38.0, 41.0, 900.0, 35.0, 44.0, -1.0, 39.0],  # a slow answer and a failed one among them
    ],
    ids=["steady", "with-slow-and-failed-answers"],
)
async def test_a_true_3s_skew_is_acted_on_within_30s_at_the_default_cadence(rtts: list[float]) -> None:
    waited = [await seconds_to_kill(step_at, rtts) for step_at in STEPS]
    assert all(w is not None for w in waited)
    assert max(w for w in waited if w is not None) <= 30.0
    assert await seconds_to_kill(STEPS[0], rtts, skew_ms=0) is None  # and no kill without the skew


# ----- the gateway's timed sample ---------------------------------------------------------------------------
@pytest.fixture
async def gateway(sim: SimServer) -> AsyncIterator[tuple[ExchangeGateway, list[GatewayNotice]]]:
    client = make_ccxt_client("binanceusdm", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=2000)
    gw = ExchangeGateway(client)
    notices: list[GatewayNotice] = []
    gw.add_listener(notices.append)
    try:
        yield gw, notices
    finally:
        await gw.close()


async def test_a_clock_sample_never_times_the_rate_limit_cooldown(
    sim: SimServer, gateway: tuple[ExchangeGateway, list[GatewayNotice]]
) -> None:
    gw, notices = gateway
    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 2})
    with pytest.raises(GatewayError):
        await gw.time_server_clock()  # the 429 is no sample, and is not retried inside the timed part
    assert [n.kind for n in notices] == ["rate_limited"]
    asked = time.monotonic()
    answer = await gw.time_server_clock()  # waits out Retry-After in the limiter, untimed
    assert time.monotonic() - asked >= 1.5
    sample = ClockSample.of(answer)
    assert sample.rtt_ms < 1500  # the 2 s cooldown was not timed
    assert abs(sample.offset_ms) <= sample.rtt_ms / 2 + 5  # one clock both ends: off by at most half the trip


# ----- the engine against the simulator ---------------------------------------------------------------------
FAULTS: dict[str, tuple[dict[str, Any], float]] = {  # the fault, and how long it disturbs the exchange (s)
    "429-retry-after": ({"kind": "rate_limit", "count": 2, "retry_after_s": 3}, 6.0),
    "418-ban": ({"kind": "ban", "seconds": 3}, 3.0),
    "maintenance": ({"kind": "maintenance", "seconds": 3}, 3.0),
    "slow-exchange": ({"kind": "latency", "ms": 3000, "seconds": 3}, 6.0),
    "12s-latency": ({"kind": "latency", "ms": 12000, "seconds": 1}, 13.0),
}
SEEN = {  # what shows the engine met the fault
    "429-retry-after": lambda run: run.of("exchange.rate_limited"),
    "418-ban": lambda run: run.of("exchange.banned"),
    "maintenance": lambda run: run.of("exchange.maintenance"),
    "slow-exchange": lambda run: any(e.payload.get("discarded") for e in run.of("clock.checked")),
    "12s-latency": lambda run: any(
        not s.ok for s in run.engine.gateway.latency.samples("fetch_time")
    ),  # the clock's request timed out
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_exchange_trouble_is_never_clock_drift(sim: SimServer, start_engine: Any, fault: str) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("clock.checked")
    spec, lasts = FAULTS[fault]
    await sim.inject(spec)
    over = time.time() + lasts

    def checked_after_the_fault() -> bool:
        return len([e for e in run.of("clock.checked") if e.ts > over]) >= 3

    await wait_until(checked_after_the_fault, lasts + 20, what="clock checks after the fault")
    assert SEEN[fault](run), f"the {fault} fault was not met"
    assert run.of("clock.drift") == []
    assert not run.engine.state.kill_switch.engaged
    assert run.engine.state.health_of("clock").status == "ok"


async def test_a_true_3s_skew_engages_the_kill_switch_by_clock(sim: SimServer, start_engine: Any) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("clock.checked")
    await sim.inject({"kind": "clock_skew", "ms": 3000})
    engaged = await run.wait_for("killswitch.engaged", within=10)
    assert engaged.payload["by"] == "clock"
    cause = re.match(r"clock offset \+(\d+) ms beyond 2000 ms", engaged.payload["cause"])
    assert cause is not None and 2950 < int(cause.group(1)) < 3050
    drift = run.of("clock.drift")[-1]
    assert drift.payload["status"] == "kill" and 2950 < drift.payload["offset_ms"] < 3050
    assert drift.payload["filtered"] is True and drift.payload["samples"] >= 3
    assert "midpoint" in drift.payload["message"] and "round trip" in drift.payload["message"]


async def test_a_clock_too_slow_to_measure_is_said_so_not_called_drift(
    sim: SimServer, start_engine: Any
) -> None:
    # Kill limit 300 ms caps the discard bound: every 400 ms answer is too slow to tell the offset with.
    run: EngineRun = await start_engine(risk={"clock_warn_ms": 100, "clock_kill_ms": 300}, clock_every_s=0.1)
    await run.wait_for("clock.checked")
    await sim.inject({"kind": "latency", "ms": 400, "seconds": 60})
    said = await run.wait_for(
        "alert", within=30, where=lambda e: "clock offset not measured" in e.payload["message"]
    )
    assert said.severity == "warning" and "not clock drift" in said.payload["message"]
    sim.clear_faults()
    await run.wait_for("alert", where=lambda e: e.payload["message"] == "clock offset measured again")
    assert run.of("clock.drift") == [] and not run.engine.state.kill_switch.engaged
