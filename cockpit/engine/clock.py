"""The clock check: how far the exchange's clock is from ours, measured so that it never cries wolf.

The method is NTP's, against one server:

- A **sample** is one `fetch_time`, timed around that single HTTP exchange (the gateway takes the limiter slot
  first and retries nothing): offset = the exchange's time − the midpoint of our send and receive times,
  round trip = receive − send. Whatever the network does, the true offset lies within ± round trip / 2 of that
  figure (the sample's error bound).
- A **failed** sample (429, 418 ban, maintenance, timeout) is no sample at all: the gateway reports those as
  exchange events; they say nothing about the clock. The check asks once more a second later.
- A **slow** sample is discarded: its round trip must be at most max(500 ms, 3 × the shortest of the last 8
  round trips), and never above the kill limit. 500 ms keeps the error bound at ± 250 ms, half the default
  warning; 3 × the recent shortest lets the bound follow a link that is slower for good (the 8 include
  discarded samples, so it adapts within 8 checks); beyond the kill limit a sample cannot tell a good clock
  from one at the limit. A discarded scheduled sample is also asked again once; after 8 checks in a row
  with nothing but slow answers an `alert` says the clock is not being measured (it is not drift).
- The **estimate** is the sample with the shortest round trip among the last 4 that agree (their error
  intervals overlap). A sample that disagrees with the estimate — or the very first one — is a suspected
  step: the loop re-samples about 1 s apart and adopts the step once 3 samples in a row agree, dropping the
  older samples so that they cannot mask it. A lone spike is forgotten as soon as a sample agrees with the
  estimate again.
- The **status** counts only the offset the measurement proves, |offset| − round trip / 2, against the warn
  and kill limits.

At the default cadence (15 s) a true step of the exchange's clock is seen by the next check (≤ 15 s) and
confirmed by two more samples 1 s apart: acted on within about 17 s (about 20 s if answers are lost or slow
meanwhile; tests/test_clock.py replays such sequences).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cockpit.core import events
from cockpit.core.domain import Severity
from cockpit.engine.killswitch import engage
from cockpit.exchange.gateway import GatewayError, ServerTime

if TYPE_CHECKING:
    from cockpit.engine.context import ClockContext

WINDOW = 4  # agreeing samples the estimate is chosen from
RECENT_RTTS = 8  # round trips (accepted or not) the discard bound is derived from
RTT_FLOOR_MS = 500.0
RTT_FACTOR = 3.0
CONFIRM_SAMPLES = 3  # samples in a row that must agree before a step is believed
CONFIRM_GAP_S = 1.0  # between confirming samples (shorter when the cadence itself is shorter)
CONFIRM_TRIES = 5  # fresh samples one check may take to confirm; then the next check carries on
RESAMPLE_UNANSWERED = 1  # extra samples a check takes when its answer failed or was too slow
AGREE_SLACK_MS = 10.0  # millisecond rounding of the exchange's time and of ours
UNMEASURED_ALERT_AFTER = 8  # checks in a row whose every answer was too slow to measure with
METHOD = "ntp-midpoint"

Status = Literal["ok", "drift", "kill"]
VerdictKind = Literal["estimate", "confirming", "discarded"]


@dataclass(frozen=True)
class ClockSample:
    offset_ms: float  # the exchange's time minus the midpoint of our send and receive (positive: it is ahead)
    rtt_ms: float

    @classmethod
    def of(cls, answer: ServerTime) -> ClockSample:
        midpoint_ms = (answer.sent_at + answer.rtt_s / 2) * 1000
        return cls(answer.server_ms - midpoint_ms, answer.rtt_s * 1000)

    @property
    def error_ms(self) -> float:
        """The true offset lies within ± this of `offset_ms`."""
        return self.rtt_ms / 2

    def agrees(self, other: ClockSample) -> bool:
        gap = abs(self.offset_ms - other.offset_ms)
        return gap <= self.error_ms + other.error_ms + AGREE_SLACK_MS

    def status(self, warn_ms: float, kill_ms: float) -> Status:
        proven = max(0.0, abs(self.offset_ms) - self.error_ms)
        return "ok" if proven < warn_ms else "drift" if proven < kill_ms else "kill"


def best(samples: Iterable[ClockSample]) -> ClockSample:
    return min(samples, key=lambda s: s.rtt_ms)


@dataclass(frozen=True)
class Verdict:
    """What one sample did to the filter."""

    kind: VerdictKind
    sample: ClockSample
    bound_ms: float  # the round trip a sample could have to be accepted
    estimate: ClockSample | None  # the filtered estimate in force after this sample
    samples: int  # how many agreeing samples the estimate is the best of


class ClockFilter:
    """Pure: samples in, a filtered estimate out. No I/O, no clock of its own."""

    def __init__(self, cap_ms: float) -> None:
        self.cap_ms = cap_ms
        self.window: deque[ClockSample] = deque(maxlen=WINDOW)
        self.pending: list[ClockSample] = []  # a suspected step, awaiting confirmation
        self.rtts: deque[float] = deque(maxlen=RECENT_RTTS)
        self.discarded = 0  # samples discarded so far (the reporter reads and resets it)

    @property
    def estimate(self) -> ClockSample | None:
        return best(self.window) if self.window else None

    def bound_ms(self) -> float:
        shortest = min(self.rtts, default=0.0)
        return min(self.cap_ms, max(RTT_FLOOR_MS, RTT_FACTOR * shortest))

    def add(self, sample: ClockSample) -> Verdict:
        bound = self.bound_ms()
        self.rtts.append(sample.rtt_ms)
        if sample.rtt_ms > bound:
            self.discarded += 1
            return self._verdict("discarded", sample, bound)
        estimate = self.estimate
        if self.pending:
            if sample.agrees(best(self.pending)):
                self.pending.append(sample)
                if len(self.pending) >= CONFIRM_SAMPLES:
                    self.window = deque(self.pending[-WINDOW:], maxlen=WINDOW)
                    self.pending = []
                    return self._verdict("estimate", sample, bound)
                return self._verdict("confirming", sample, bound)
            if estimate is not None and sample.agrees(estimate):
                self.pending = []  # the suspect was a spike
                self.window.append(sample)
                return self._verdict("estimate", sample, bound)
            self.pending = [sample]
            return self._verdict("confirming", sample, bound)
        if estimate is not None and sample.agrees(estimate):
            self.window.append(sample)
            return self._verdict("estimate", sample, bound)
        self.pending = [sample]
        return self._verdict("confirming", sample, bound)

    def _verdict(self, kind: VerdictKind, sample: ClockSample, bound: float) -> Verdict:
        return Verdict(kind, sample, bound, self.estimate, len(self.window))


Sampler = Callable[[], Awaitable[ClockSample | None]]  # None: the exchange did not answer


async def check(
    sample: Sampler,
    filt: ClockFilter,
    gap_s: float = CONFIRM_GAP_S,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Verdict | None:
    """One check: a sample, then — while a suspected step awaits confirmation — fresh samples `gap_s` apart.

    A scheduled sample that failed or was discarded is taken once more after `gap_s` (a single lost answer
    must not cost a whole cadence); no more than that, so a maintenance window is not hammered. Returns the
    last sample's verdict, or None when no sample was taken (every request failed).
    """
    verdict: Verdict | None = None
    for attempt in range(1 + CONFIRM_TRIES):
        if attempt:
            await sleep(gap_s)
        taken = await sample()
        accepted = False
        if taken is not None:
            verdict = filt.add(taken)
            accepted = verdict.kind != "discarded"
        if filt.pending:
            continue
        if accepted or attempt >= RESAMPLE_UNANSWERED:
            break
    return verdict


class ClockWatch:
    """The engine's clock check: samples through the gateway, the filter, and the events it emits."""

    def __init__(self, engine: ClockContext) -> None:
        self.engine = engine
        self.filter = ClockFilter(cap_ms=engine.config.risk.clock_kill_ms)
        self.unmeasured = 0  # checks in a row that ended on a discarded sample

    async def sample(self) -> ClockSample | None:
        try:
            answer = await self.engine.gateway.time_server_clock()
        except GatewayError:
            return None  # a 429, ban, maintenance or timeout: the gateway has reported it; no clock sample
        return ClockSample.of(answer)

    async def check(self) -> ClockSample | None:
        """Sample (and confirm if needed); report the estimate when there is one. Returns the estimate."""
        gap = min(CONFIRM_GAP_S, self.engine.options.clock_every_s)
        verdict = await check(self.sample, self.filter, gap)
        if verdict is None:
            return self.filter.estimate
        if verdict.kind == "discarded":
            self._unmeasured(verdict)
        elif verdict.kind == "estimate":
            await self._report(verdict)
        return self.filter.estimate

    async def _report(self, verdict: Verdict) -> None:
        engine = self.engine
        estimate = verdict.estimate
        assert estimate is not None  # an "estimate" verdict always has one
        risk = engine.config.risk
        if self.unmeasured >= UNMEASURED_ALERT_AFTER:
            engine.emit("alert", events.alert(message="clock offset measured again"), "info", "clock")
        self.unmeasured = 0
        status = estimate.status(risk.clock_warn_ms, risk.clock_kill_ms)
        previous = engine.state.health_of("clock").status
        checked = events.clock_checked(
            offset_ms=round(estimate.offset_ms, 1),
            status=status,
            rtt_ms=round(estimate.rtt_ms, 1),
            error_ms=round(estimate.error_ms, 1),
            warn_ms=risk.clock_warn_ms,
            kill_ms=risk.clock_kill_ms,
            samples=verdict.samples,
            discarded=self.filter.discarded,
            filtered=True,
            method=METHOD,
        )
        self.filter.discarded = 0
        if status != previous and not (status == "ok" and previous == "unknown"):
            severity: Severity = "info" if status == "ok" else "warning" if status == "drift" else "critical"
            message = (
                f"clock offset {estimate.offset_ms:+.0f} ms ± {estimate.error_ms:.0f} ms ({status}; warn "
                f"{risk.clock_warn_ms}, kill {risk.clock_kill_ms}): {describe(estimate, verdict.samples)}"
            )
            engine.emit(
                "clock.drift", events.clock_drift(checked=checked, message=message), severity, "clock"
            )
        else:
            engine.emit("clock.checked", checked, "info", "clock")
        if status == "kill":
            await engage(
                engine,
                f"clock offset {estimate.offset_ms:+.0f} ms beyond {risk.clock_kill_ms} ms "
                f"({describe(estimate, verdict.samples)})",
                "clock",
            )

    def _unmeasured(self, verdict: Verdict) -> None:
        self.unmeasured += 1
        if self.unmeasured == UNMEASURED_ALERT_AFTER:
            self.engine.emit(
                "alert",
                events.alert(
                    message=(
                        f"clock offset not measured for {self.unmeasured} checks: every answer took longer "
                        f"than {verdict.bound_ms:.0f} ms (a slow exchange or network, not clock drift); "
                        "the last estimate stands"
                    )
                ),
                "warning",
                "clock",
            )


def describe(estimate: ClockSample, samples: int) -> str:
    """How the figure was measured, in the operator's words."""
    return (
        f"exchange time vs the midpoint of our request, best of {samples} agreeing samples, "
        f"round trip {estimate.rtt_ms:.0f} ms; rate limits, maintenance and slow answers are never counted"
    )
