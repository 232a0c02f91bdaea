"""The one retry policy: the delays of every loop that tries again (gateway, reconnects, workers, writer)."""

from __future__ import annotations

import pytest

from cockpit.core.retry import Backoff
from cockpit.engine.engine import WORKER_RESTART
from cockpit.exchange.classify import ErrorClass
from cockpit.exchange.gateway import RetryPolicy
from cockpit.store.writer import DEFAULT_RETRY_DELAYS


def test_a_crashed_worker_restarts_after_1_2_4_8_16_then_30_s_for_ever() -> None:
    assert [WORKER_RESTART.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert WORKER_RESTART.allows(10_000)


def test_the_writer_retries_a_batch_five_times_then_gives_up() -> None:
    writes = Backoff.of(DEFAULT_RETRY_DELAYS, retries=len(DEFAULT_RETRY_DELAYS))
    assert list(writes) == [0.0, 2.0, 4.0, 8.0, 16.0]
    assert writes.allows(5) and not writes.allows(6)


def test_the_gateway_retries_each_error_class_as_its_policy_says() -> None:
    policy = RetryPolicy()
    assert policy.retries(ErrorClass.TRANSIENT) == 3
    assert [policy.wait(ErrorClass.TRANSIENT, n, 0.9) for n in (1, 2, 3)] == [0.5, 0.5, 0.5]
    assert policy.retries(ErrorClass.RECOVERABLE) == 5
    assert [policy.wait(ErrorClass.RECOVERABLE, n, 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 60]
    assert policy.wait(ErrorClass.RECOVERABLE, 2, 0.5) == 2.5  # jitter spreads clients apart
    assert policy.wait(ErrorClass.RECOVERABLE, 9, 0.99) == 60.0  # never past the cap
    assert policy.retries(ErrorClass.PERMANENT) == 0


def test_bad_schedules_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="empty"):
        Backoff(())
    with pytest.raises(ValueError, match=">= 0"):
        Backoff((1.0, -1.0))
    with pytest.raises(ValueError, match="first <= cap"):
        Backoff.doubling(0.0, 30.0)
