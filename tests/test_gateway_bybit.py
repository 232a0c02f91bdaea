"""The gateway on Bybit: cockpit's own exchange path (limiter, retries, typed reports) through ccxt's bybit
and Bybit's dialect (cockpit/exchange/bybit/), against the simulator speaking Bybit v5 over real sockets. The
same reports the engine reads on Binance: markets, balance, positions (one-way and hedge legs), orders and
conditional orders, fills, funding, the position mode, marks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.dlq import DeadLetterBuffer
from cockpit.exchange.gateway import ExchangeGateway, OrderIntent, RetryPolicy
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
FAST = RetryPolicy(
    transient_retries=1, transient_wait_s=0.05, recoverable_retries=1, recoverable_initial_s=0.05
)


async def _started(**options: Any) -> SimServer:
    settings: dict[str, Any] = {"seed": 7, "activity": False, "tick_interval": 0.05, **options}
    sim = SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, exchange="bybit", **settings)
    await sim.start()
    return sim


@pytest.fixture
async def bybit_sim() -> AsyncIterator[SimServer]:
    sim = await _started()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def gateway(bybit_sim: SimServer) -> AsyncIterator[ExchangeGateway]:
    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=bybit_sim.base_url, timeout_ms=3000)
    gw = ExchangeGateway(client, policy=FAST)
    try:
        yield gw
    finally:
        await gw.close()


async def test_markets_balance_and_marks_read_as_cockpits_reports(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    assert gateway.dialect.id == "bybit"
    markets = await gateway.load_markets()
    btc = markets[BTC]
    spec = bybit_sim.specs["BTCUSDT"]
    assert btc.exchange_id == "BTCUSDT" and btc.contract
    assert btc.price_step == spec.tick_size and btc.amount_step == spec.step_size
    balance = await gateway.fetch_balance()
    assert balance.wallet == Decimal("10000") and balance.available == Decimal("10000")
    marks = await gateway.fetch_mark_prices([BTC, ETH])
    assert set(marks) == {BTC, ETH}
    assert abs(marks[BTC] - bybit_sim.account.mark("BTCUSDT")) / marks[BTC] < Decimal("0.01")
    assert await gateway.fetch_time() > 0
    assert await gateway.fetch_hedge_mode() is False


async def test_an_order_its_fill_and_the_position_are_exact(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    since = bybit_sim.clock.now_ms() - 1000
    ack = await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.0157")))
    assert ack.amount == Decimal("0.015")  # truncated to the step
    assert ack.client_order_id.startswith("ck-")
    found = await gateway.fetch_order_by_client_id(BTC, ack.client_order_id)
    assert found is not None and found.order_id == ack.order_id and found.filled == Decimal("0.015")
    positions = {p.symbol: p for p in await gateway.fetch_positions() if p.quantity}
    held = positions[BTC]
    sim_leg = bybit_sim.account.leg("BTCUSDT")
    assert held.quantity == Decimal("0.015") == sim_leg.qty and held.entry_price == sim_leg.entry
    assert held.leg == "both" and held.leverage is not None and held.margin_mode == "cross"
    fills = await gateway.fetch_my_trades(BTC, since)
    assert len(fills) == 1
    (fill,) = fills
    assert (fill.side, fill.quantity, fill.order_id) == ("buy", Decimal("0.015"), ack.order_id)
    assert fill.price == sim_leg.entry and fill.fee > 0

    closed = await gateway.create_order(
        OrderIntent(BTC, "sell", "market", Decimal("0.015"), reduce_only=True)
    )
    assert closed.reduce_only
    assert not [p for p in await gateway.fetch_positions() if p.quantity]
    again = await gateway.fetch_my_trades(BTC, since)
    assert [f.side for f in again] == ["buy", "sell"] or [f.side for f in again] == ["sell", "buy"]
    assert sum(f.realized_pnl for f in again) == sum(f.realized_pnl for f in again if f.side == "sell")


async def test_resting_and_conditional_orders_listed_apart_and_canceled(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    await gateway.load_markets()
    mark = bybit_sim.account.mark("BTCUSDT")
    below = gateway.price_to_precision(BTC, mark * Decimal("0.9"))
    resting = await gateway.create_order(OrderIntent(BTC, "buy", "limit", Decimal("0.01"), price=below))
    stop = await gateway.client.create_order(
        BTC, "market", "sell", 0.01, None, {"triggerPrice": float(below), "triggerDirection": "below"}
    )
    plain = await gateway.fetch_open_orders(BTC)
    conditional = await gateway.fetch_open_conditional_orders(BTC)
    assert [o.order_id for o in plain] == [resting.order_id]  # each kind once, never both lists
    assert [o.order_id for o in conditional] == [stop["id"]]
    (held_stop,) = conditional
    assert held_stop.conditional and held_stop.trigger_price == below and held_stop.type == "stop_market"
    assert plain[0].price == below and plain[0].client_order_id == resting.client_order_id
    everything = await gateway.fetch_all_open_orders()
    assert {o.order_id for o in everything} == {resting.order_id, stop["id"]}

    assert await gateway.cancel_conditional_order(stop["id"], BTC, gone_ok=True) is True
    assert await gateway.cancel_conditional_order(stop["id"], BTC, gone_ok=True) is False  # already gone
    assert await gateway.cancel_order(resting.order_id, BTC, gone_ok=True) is not None
    assert await gateway.cancel_order(resting.order_id, BTC, gone_ok=True) is None
    await gateway.client.create_order(
        BTC, "market", "sell", 0.01, None, {"triggerPrice": float(below), "triggerDirection": "below"}
    )
    await gateway.cancel_all_conditional_orders(BTC)
    await gateway.cancel_all_conditional_orders(BTC)  # none left: an answer, not a failure
    assert await gateway.fetch_all_open_orders() == []


async def test_hedge_legs_are_positions_of_their_own_and_close_on_their_side() -> None:
    sim = await _started(dual_side=True)
    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=3000)
    gateway = ExchangeGateway(client, policy=FAST)
    try:
        assert await gateway.fetch_hedge_mode() is True
        await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.03"), leg="long"))
        await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01"), leg="short"))
        legs = {p.leg: p.quantity for p in await gateway.fetch_positions() if p.quantity}
        assert legs == {"long": Decimal("0.03"), "short": Decimal("-0.01")}
        # the long leg closes with a sell on its own positionIdx, no reduce-only (as flatten sends it)
        await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.03"), leg="long"))
        legs = {p.leg: p.quantity for p in await gateway.fetch_positions() if p.quantity}
        assert legs == {"short": Decimal("-0.01")}
    finally:
        await gateway.close()
        await sim.stop()


async def test_funding_payments_read_exactly_paid_negative(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    since = bybit_sim.clock.now_ms() - 1000
    await gateway.create_order(OrderIntent(ETH, "buy", "market", Decimal("0.5")))
    bybit_sim.settle_funding()
    await wait_until(lambda: bool(bybit_sim.account.income.of("FUNDING_FEE")), 5, "a funding payment")
    payments = await gateway.fetch_funding(since)
    assert len(payments) == 1
    (paid,) = payments
    entries = bybit_sim.account.income.of("FUNDING_FEE")
    assert paid.symbol == "ETHUSDT" and paid.asset == "USDT"
    assert paid.amount == entries[0].income  # the account's own figure, signed as cockpit reads it
    assert await gateway.fetch_funding(since) == payments  # read again: the same, once each


async def test_an_order_whose_answer_was_lost_is_found_by_its_link_id_not_sent_twice(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    await bybit_sim.inject({"kind": "apply_then_fail", "count": 1})
    ack = await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01")))
    assert ack.resolved_by_lookup and ack.filled == Decimal("0.01")
    assert bybit_sim.account.leg("BTCUSDT").qty == Decimal("0.01")  # once
    dead = gateway.dead_letters
    assert isinstance(dead, DeadLetterBuffer) and not dead.letters  # nothing dead-lettered as refused


async def test_every_trade_since_a_week_ago_and_every_open_order_are_read_past_one_page(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    week_and_a_day = 8 * 24 * 3600 * 1000
    since = bybit_sim.clock.now_ms() - week_and_a_day  # older than the execution list's 7-day window
    for _ in range(101):  # more than a page of executions (100)
        await gateway.create_order(OrderIntent(ETH, "buy", "market", Decimal("0.01")))
    fills = await gateway.fetch_my_trades(ETH, since)
    assert len(fills) == 101 and sum(f.quantity for f in fills) == Decimal("1.01")
    mark = bybit_sim.account.mark("BTCUSDT")
    await gateway.load_markets()
    for i in range(51):  # more than a page of open orders (50)
        price = gateway.price_to_precision(BTC, mark * Decimal("0.8") - i)
        await gateway.create_order(OrderIntent(BTC, "buy", "limit", Decimal("0.003"), price=price))
    assert len(await gateway.fetch_open_orders(BTC)) == 51
    assert len(await gateway.fetch_open_orders()) == 51
    payments_since = await gateway.fetch_funding(since)
    assert payments_since == []


async def test_recovered_fills_on_a_hedge_account_say_their_leg() -> None:
    sim = await _started(dual_side=True)
    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=3000)
    gateway = ExchangeGateway(client, policy=FAST)
    try:
        since = sim.clock.now_ms() - 1000
        await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.03"), leg="long"))
        await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01"), leg="short"))
        await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01"), leg="long"))  # closes
        await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01"), leg="short"))  # closes
        fills = await gateway.fetch_my_trades(BTC, since)
        assert [(f.side, f.leg) for f in fills] == [
            ("buy", "long"),
            ("sell", "short"),
            ("sell", "long"),
            ("buy", "short"),
        ]
    finally:
        await gateway.close()
        await sim.stop()


# ----- request budgets ------------------------------------------------------------------------------------
async def test_each_endpoint_is_paced_to_the_budget_the_account_really_has(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    """The account's `order/create` budget is 3 a second, not the documented 10 (Bybit states it in every
    answer's X-Bapi-Limit): after one order the limiter paces to it, and a burst of orders is never refused.
    Meanwhile a positions read, an endpoint of its own, does not queue behind the orders."""
    bybit_sim.dialect.rest.budgets.per_second["/v5/order/create"] = 3  # type: ignore[union-attr]
    await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.002")))
    snapshot = gateway.limiter.snapshot()
    (create,) = [e for e in snapshot.endpoints if e.name == "order/create"]
    assert create.limit == 3 and snapshot.window_s == 5.0 and snapshot.limit == 600

    burst = [
        asyncio.create_task(gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.002"))))
        for _ in range(5)
    ]
    await wait_until(lambda: gateway.limiter.snapshot().queued >= 2, what="orders waiting for their budget")
    await gateway.fetch_positions()
    assert not all(task.done() for task in burst)  # the read went past the orders still waiting
    await asyncio.gather(*burst)
    assert gateway.limiter.snapshot().rejected_total == 0  # no 10006: paced, never refused
    assert bybit_sim.account.leg("BTCUSDT").qty == Decimal("0.012")


async def test_a_refused_endpoint_waits_for_its_reset_alone(
    gateway: ExchangeGateway, bybit_sim: SimServer
) -> None:
    """Bybit refuses an order for its endpoint's budget (retCode 10006, reset 3 s ahead): that endpoint waits
    for the reset and the order then goes once; every other request goes on meanwhile (a 429 would pause
    them all), and the rate-limit figures name the endpoint."""
    await gateway.load_markets()
    notices: list[str] = []
    gateway.add_listener(lambda notice: notices.append(notice.kind))
    await bybit_sim.inject({"kind": "rate_limit", "count": 1, "retry_after_s": 3})
    order = asyncio.create_task(gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.002"))))

    def refused() -> bool:
        busiest = gateway.limiter.snapshot().busiest
        return busiest is not None and busiest.cooldown_until is not None

    await wait_until(refused, what="the endpoint refused")
    snapshot = gateway.limiter.snapshot()
    assert snapshot.cooldown_until is None and snapshot.banned_until is None  # nothing else waits
    assert snapshot.busiest is not None and snapshot.busiest.name == "order/create"
    assert snapshot.rejected_recent == 1
    await gateway.fetch_positions()
    await gateway.fetch_balance()
    assert not order.done()  # still waiting for its endpoint's reset
    assert notices == ["rate_limited"]  # another endpoint's answer does not end that endpoint's trouble
    ack = await order
    assert ack.amount == Decimal("0.002") and bybit_sim.account.leg("BTCUSDT").qty == Decimal("0.002")
    assert notices == ["rate_limited", "recovered"]  # one episode, over when the orders go again


def test_only_bybits_10006_holds_one_endpoint_whatever_its_headers() -> None:
    """What holds one endpoint is the refusal's code, not whether the budget headers came with it: Bybit's
    10006 does; its IP limit (10018) and Binance's 429 hold every request."""
    from cockpit.exchange.venues import dialect_for

    bybit, binance = dialect_for("bybit"), dialect_for("binanceusdm")
    too_many = ccxt.RateLimitExceeded('bybit {"retCode":10006,"retMsg":"Too many visits!","result":{}}')
    ip_limit = ccxt.RateLimitExceeded('bybit {"retCode":10018,"retMsg":"exceeded the IP Rate Limit"}')
    assert bybit.is_endpoint_limit(too_many) and not bybit.is_endpoint_limit(ip_limit)
    assert not binance.is_endpoint_limit(ccxt.RateLimitExceeded('binanceusdm 429 {"code":-1003}'))


def test_a_regional_or_demo_host_has_its_streams_beside_its_api() -> None:
    """Bybit's regional hosts name their streams as their API (`api.` → `stream.`); a simulator on loopback
    serves both on its own host."""
    from cockpit.exchange.venues import dialect_for

    bybit = dialect_for("bybit")
    assert bybit.ws_base(None, False) == "wss://stream.bybit.com"
    assert bybit.ws_base(None, True) == "wss://stream-testnet.bybit.com"
    assert bybit.ws_base("https://api.bybit.kz", False) == "wss://stream.bybit.kz"
    assert bybit.ws_base("http://127.0.0.1:8123", False) == "ws://127.0.0.1:8123"
