"""The exchange gateway against the simulator: error classes, retry by class, limiter, orders once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt
import pytest

from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.classify import ErrorClass, classify
from cockpit.exchange.dlq import DeadLetterBuffer
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, GatewayNotice, OrderIntent, RetryPolicy
from cockpit.exchange.ratelimit import RateLimiter
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
FAST = RetryPolicy(
    transient_wait_s=0.05, recoverable_initial_s=0.2, recoverable_cap_s=2.0, order_confirm_window_s=0.6
)


class Harness:
    def __init__(self, gateway: ExchangeGateway, dlq: DeadLetterBuffer) -> None:
        self.gateway = gateway
        self.dlq = dlq
        self.notices: list[GatewayNotice] = []
        gateway.add_listener(self.notices.append)

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notices]


@pytest.fixture
async def gw(sim: SimServer) -> AsyncIterator[Harness]:
    dlq = DeadLetterBuffer()
    client = make_ccxt_client("binanceusdm", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=2000)
    gateway = ExchangeGateway(client, policy=FAST, dead_letters=dlq)
    await gateway.load_markets()
    try:
        yield Harness(gateway, dlq)
    finally:
        await gateway.close()


def test_ccxt_parents_the_mapping_depends_on() -> None:
    # If ccxt moves these classes, the error classes below change meaning: this test must then be revisited.
    assert issubclass(ccxt.OnMaintenance, ccxt.ExchangeNotAvailable)
    assert issubclass(ccxt.ExchangeNotAvailable, ccxt.NetworkError)
    assert issubclass(ccxt.NetworkError, ccxt.OperationFailed)
    assert issubclass(ccxt.DDoSProtection, ccxt.NetworkError)
    assert issubclass(ccxt.RateLimitExceeded, ccxt.NetworkError)
    assert not issubclass(ccxt.RateLimitExceeded, ccxt.DDoSProtection)
    assert issubclass(ccxt.InvalidNonce, ccxt.NetworkError)
    assert issubclass(ccxt.RequestTimeout, ccxt.NetworkError)
    assert issubclass(ccxt.AuthenticationError, ccxt.ExchangeError)
    assert issubclass(ccxt.PermissionDenied, ccxt.AuthenticationError)
    assert issubclass(ccxt.InsufficientFunds, ccxt.ExchangeError)
    assert issubclass(ccxt.OrderNotFound, ccxt.InvalidOrder)
    assert issubclass(ccxt.InvalidOrder, ccxt.ExchangeError)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ccxt.RequestTimeout("t"), ErrorClass.TRANSIENT),
        (ccxt.OperationFailed('{"code":-1001}'), ErrorClass.TRANSIENT),
        (ccxt.NetworkError("x"), ErrorClass.TRANSIENT),
        (TimeoutError(), ErrorClass.TRANSIENT),
        (ccxt.DDoSProtection("binanceusdm 429"), ErrorClass.RECOVERABLE),
        (ccxt.RateLimitExceeded("x"), ErrorClass.RECOVERABLE),
        (ccxt.OnMaintenance("x"), ErrorClass.RECOVERABLE),
        (ccxt.ExchangeNotAvailable("x"), ErrorClass.RECOVERABLE),
        (ccxt.InvalidNonce("x"), ErrorClass.RECOVERABLE),
        (ccxt.InsufficientFunds("x"), ErrorClass.PERMANENT),
        (ccxt.InvalidOrder("x"), ErrorClass.PERMANENT),
        (ccxt.OrderNotFound("x"), ErrorClass.PERMANENT),
        (ccxt.ExchangeError("x"), ErrorClass.PERMANENT),
        (ValueError("x"), ErrorClass.PERMANENT),
        (ccxt.AuthenticationError("x"), ErrorClass.CRITICAL),
        (ccxt.PermissionDenied("x"), ErrorClass.CRITICAL),
        (ccxt.DDoSProtection('binanceusdm {"code":-2015,"msg":"Invalid API-key"}'), ErrorClass.CRITICAL),
    ],
)
def test_error_classes_follow_the_most_specific_ccxt_parent(exc: BaseException, expected: ErrorClass) -> None:
    assert classify(exc) is expected


async def test_transient_blip_is_absorbed_by_short_retries(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "http_error", "status": 500, "count": 2})
    balance = await gw.gateway.fetch_balance()
    assert balance.wallet == 10_000
    outcomes = [s.ok for s in gw.gateway.latency.samples("fetch_balance")]
    assert outcomes == [False, False, True]
    assert gw.dlq.letters == []


async def test_transient_error_stops_after_three_retries_and_is_dead_lettered(
    sim: SimServer, gw: Harness
) -> None:
    await sim.inject({"kind": "http_error", "status": 500, "count": 50})
    served = sim.rest.requests_served
    with pytest.raises(GatewayError) as info:
        await gw.gateway.fetch_balance()
    assert info.value.error_class is ErrorClass.TRANSIENT and info.value.attempts == 4
    assert sim.rest.requests_served - served == 4
    [letter] = gw.dlq.letters
    assert letter.op == "fetch_balance" and letter.attempts == 4 and letter.error_class == "transient"


async def test_rate_limit_waits_out_retry_after_then_succeeds(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 1})
    started = time.monotonic()
    assert (await gw.gateway.fetch_balance()).wallet == 10_000
    assert time.monotonic() - started >= 0.95
    snapshot = gw.gateway.limiter.snapshot()
    assert snapshot.rejected_total == 1 and snapshot.rejected_recent == 1
    assert gw.kinds() == ["rate_limited", "recovered"]
    assert gw.notices[0].retry_after_s == 1.0


async def test_ban_blocks_every_request_until_it_ends(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "ban", "seconds": 1.5})
    banned = asyncio.Event()
    gw.gateway.add_listener(lambda notice: banned.set() if notice.kind == "banned" else None)
    first = asyncio.create_task(gw.gateway.fetch_balance())
    await asyncio.wait_for(banned.wait(), 5)
    assert gw.gateway.limiter.banned
    served_during_ban = sim.rest.requests_served
    assert gw.gateway.limiter.snapshot().banned_until is not None
    others = [asyncio.create_task(gw.gateway.fetch_time()) for _ in range(3)]
    await wait_until(lambda: gw.gateway.limiter.snapshot().queued == 4, what="all four to queue")
    # everyone waits; nobody hammers the exchange
    assert sim.rest.requests_served == served_during_ban
    results = await asyncio.gather(first, *others)
    assert results[0].wallet == 10_000
    assert "banned" in gw.kinds() and gw.kinds()[-1] == "recovered"


async def test_maintenance_backs_off_exponentially_and_resumes(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "maintenance", "seconds": 1.0})
    started = time.monotonic()
    positions = await gw.gateway.fetch_positions()
    assert positions == []
    assert time.monotonic() - started >= 1.0
    failures = [s for s in gw.gateway.latency.samples("fetch_positions") if not s.ok]
    assert 2 <= len(failures) <= 4  # 0.2 s, 0.4 s, 0.8 s (+ jitter) apart, not a hammering loop
    assert gw.kinds()[0] == "maintenance" and gw.kinds()[-1] == "recovered"


async def test_bad_api_key_is_critical_not_retried_and_halts(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "auth_fail", "seconds": 30})
    served = sim.rest.requests_served
    with pytest.raises(GatewayError) as info:
        await gw.gateway.fetch_positions()
    assert info.value.error_class is ErrorClass.CRITICAL
    assert sim.rest.requests_served - served == 1
    assert "cockpit keys" in info.value.fix
    assert "halt" in gw.kinds() and "auth_failed" in gw.kinds()
    assert TEST_SECRET not in info.value.render()


async def test_rejected_order_is_permanent_never_retried_and_dead_lettered(
    sim: SimServer, gw: Harness
) -> None:
    await sim.inject({"kind": "reject_orders", "count": 5, "code": -2019})
    served = sim.rest.requests_served
    with pytest.raises(GatewayError) as info:
        await gw.gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01")))
    assert isinstance(info.value.cause, ccxt.InsufficientFunds)
    assert sim.rest.requests_served - served == 1
    [letter] = gw.dlq.letters
    assert letter.op == "create_order" and letter.reason == "Margin is insufficient."
    assert letter.params["amount"] == "0.01"
    assert sim.state()["positions"] == []


async def test_applied_order_with_5xx_answer_is_resolved_by_lookup_not_resent(
    sim: SimServer, gw: Harness
) -> None:
    await sim.inject({"kind": "apply_then_fail", "count": 1})
    ack = await gw.gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01")))
    assert ack.resolved_by_lookup and ack.status == "closed" and ack.filled == Decimal("0.01")
    assert [(p["symbol"], p["qty"]) for p in sim.state()["positions"]] == [("BTCUSDT", "0.01")]
    assert len(sim.account.trades) == 1


async def test_unapplied_order_with_5xx_is_confirmed_absent_then_sent_once(
    sim: SimServer, gw: Harness
) -> None:
    await sim.inject({"kind": "http_error", "status": 503, "count": 1})
    ack = await gw.gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    assert not ack.resolved_by_lookup and ack.filled == Decimal("0.01")
    assert [(p["symbol"], p["qty"]) for p in sim.state()["positions"]] == [("BTCUSDT", "-0.01")]
    assert len(sim.account.trades) == 1


async def test_order_rate_limited_is_sent_again_after_retry_after(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 1})
    ack = await gw.gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.002")))
    assert ack.filled == Decimal("0.002") and len(sim.account.trades) == 1


async def test_order_amount_and_price_use_the_exchange_precision(sim: SimServer, gw: Harness) -> None:
    price = gw.gateway.price_to_precision(BTC, Decimal(str(sim.prices.prices["BTCUSDT"])) * Decimal("0.5"))
    ack = await gw.gateway.create_order(
        OrderIntent(BTC, "buy", "limit", Decimal("0.01299999"), price=price, time_in_force="GTC")
    )
    assert ack.amount == Decimal("0.012") and ack.status == "open"
    [order] = sim.state()["orders"]
    assert order["qty"] == "0.012" and Decimal(order["price"]) == price
    assert Decimal(order["price"]) % Decimal("0.1") == 0


async def test_clock_skew_is_resynced_and_the_call_succeeds(sim: SimServer, gw: Harness) -> None:
    await sim.inject({"kind": "clock_skew", "ms": 30_000})
    balance = await gw.gateway.fetch_balance()
    assert balance.wallet == 10_000
    assert [s.ok for s in gw.gateway.latency.samples("fetch_balance")] == [False, True]


async def test_used_weight_header_and_latency_are_observable(sim: SimServer, gw: Harness) -> None:
    await gw.gateway.fetch_balance()
    await gw.gateway.fetch_positions()
    snapshot = gw.gateway.limiter.snapshot()
    assert snapshot.used >= 11 and snapshot.limit == 2400
    assert gw.gateway.latency.p(95, "fetch_balance") > 0


async def test_limiter_queues_requests_beyond_the_budget() -> None:
    limiter = RateLimiter(limit=10, headroom=1.0, window_s=0.5)
    for _ in range(10):
        await limiter.acquire(1)
    assert limiter.snapshot().used == 10
    started = time.monotonic()
    waiter = asyncio.create_task(limiter.acquire(1))
    await wait_until(lambda: limiter.snapshot().queued == 1, what="the request to queue")
    await waiter
    assert time.monotonic() - started >= 0.4
    assert limiter.snapshot().queued == 0


async def test_trade_history_is_read_page_by_page(
    sim: SimServer, gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gw.gateway.dialect, "trades_page", 3)  # Binance's page is 1000; 3 keeps it small
    since = sim.clock.now_ms()
    for _ in range(7):
        await gw.gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.002")))
    trades = await gw.gateway.fetch_my_trades(BTC, since)
    assert [t.trade_id for t in trades] == [str(t.trade_id) for t in sim.account.trades]
    assert len(trades) == 7


def test_testnet_points_every_futures_url_at_binances_testnet() -> None:
    client = make_ccxt_client("binanceusdm", "k", "s", testnet=True)
    assert client.urls["api"]["fapiPrivate"].startswith("https://testnet.binancefuture.com/")
    production = make_ccxt_client("binanceusdm", "k", "s")
    assert production.urls["api"]["fapiPrivate"].startswith("https://fapi.binance.com/")


async def test_a_ban_of_unknown_end_is_probed_by_one_request_not_a_burst() -> None:
    """Bybit's IP ban names no end: when its wait is over one request goes, the others wait for its answer —
    another ban, and they keep waiting; an answer, and they go."""
    limiter = RateLimiter(limit=100, headroom=1.0)
    limiter.on_rate_limited(0.1, banned=True, probe=True)
    sent: list[int] = []

    async def request(n: int) -> None:
        await limiter.acquire(1)
        sent.append(n)

    waiting = [asyncio.create_task(request(n)) for n in range(3)]
    await wait_until(lambda: sent == [0], what="the probe alone")
    await asyncio.sleep(0.2)  # a burst would have left by now  # noqa: ASYNC110 - proving nothing moves
    assert sent == [0]
    limiter.on_rate_limited(0.1, banned=True, probe=True)  # the probe was banned again
    await wait_until(lambda: sent == [0, 1], what="the next probe, after the wait")
    limiter.answered()  # the IP answers: the ban is over
    await wait_until(lambda: sent == [0, 1, 2], what="the rest")
    await asyncio.gather(*waiting)
