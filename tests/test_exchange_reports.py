"""The gateway's typed reports: the simulator's answers, read through the real gateway (ccxt binanceusdm),
in cockpit's words and exact Decimals, checked against what the simulator's account holds."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from cockpit.engine.account import positions_from_exchange
from cockpit.exchange.binance.reports import balance_report, position_report
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.exchange.classify import ErrorClass
from cockpit.exchange.dlq import DeadLetterBuffer
from cockpit.exchange.gateway import ExchangeGateway, GatewayError, GatewayNotice, OrderIntent, RetryPolicy
from cockpit.exchange.reports import MalformedReport, MarketReport, OrderReport, PositionReport
from cockpit.sim.account import fmt
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"


@pytest.fixture
async def gateway(sim: SimServer) -> AsyncIterator[ExchangeGateway]:
    client = make_ccxt_client("binanceusdm", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=2000)
    gateway = ExchangeGateway(
        client, policy=RetryPolicy(transient_wait_s=0.05), dead_letters=DeadLetterBuffer()
    )
    await gateway.load_markets()
    try:
        yield gateway
    finally:
        await gateway.close()


def sim_figure(value: Decimal) -> Decimal:
    """A simulator figure as its REST answers write it (8 places)."""
    return Decimal(fmt(value))


async def test_markets_carry_the_exchange_id_and_steps(sim: SimServer, gateway: ExchangeGateway) -> None:
    markets = await gateway.load_markets()
    spec = sim.specs["BTCUSDT"]
    assert markets[BTC] == MarketReport(BTC, "BTCUSDT", True, spec.tick_size, spec.step_size)
    assert len(markets) == len(sim.specs)


async def test_a_short_position_is_a_negative_quantity_with_the_exchanges_figures(
    sim: SimServer, gateway: ExchangeGateway
) -> None:
    await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    [short] = await gateway.fetch_positions()
    held = sim.account.positions["BTCUSDT"]
    assert short == PositionReport(
        symbol=BTC,
        quantity=Decimal("-0.01"),
        entry_price=held.entry,
        leverage=sim.account.leverage["BTCUSDT"],
        liquidation_price=sim_figure(sim.liquidation_price("BTCUSDT")),  # the only position: fixed by wallet
        margin_mode="cross",
    )
    assert isinstance(short.quantity, Decimal) and short.liquidation_price > short.entry_price


async def test_long_and_short_positions_by_symbol(sim: SimServer, gateway: ExchangeGateway) -> None:
    await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    await gateway.create_order(OrderIntent(ETH, "buy", "market", Decimal("0.1")))
    held = positions_from_exchange(await gateway.fetch_positions())
    assert {s: p.quantity for s, p in held.items()} == {BTC: Decimal("-0.01"), ETH: Decimal("0.1")}
    assert held[ETH].entry_price == sim.account.positions["ETHUSDT"].entry
    assert held[ETH].liquidation_price == 0  # Binance's "0": a long this small cannot be liquidated


async def test_a_flat_row_is_a_zero_quantity_and_not_a_position(gateway: ExchangeGateway) -> None:
    # ccxt's fetch_positions drops rows whose entry price is 0, so a flat row is read here as fetch_positions
    # reads each row: the simulator's positionRisk answer for a flat symbol, parsed by the same ccxt function.
    client = gateway.client
    [raw] = await client.fapiPrivateV3GetPositionRisk({"symbol": "SOLUSDT"})
    flat = position_report(client.parse_position_risk(raw))
    # positionRisk v3 carries no leverage (the gateway fills it in from the symbols' configuration)
    assert flat == PositionReport(SOL, Decimal(0), Decimal(0), None, Decimal(0), margin_mode="cross")
    assert positions_from_exchange([flat]) == {}


async def test_without_binances_figures_a_position_is_read_from_ccxts(gateway: ExchangeGateway) -> None:
    await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    [row] = await gateway.client.fetch_positions()
    bare = {k: v for k, v in row.items() if k != "info"}  # contracts (unsigned) and side instead
    position = position_report(bare)
    assert position.quantity == Decimal("-0.01") and position.entry_price == Decimal(
        row["info"]["entryPrice"]
    )
    assert position.leverage is None and position.liquidation_price is None  # v3 says neither here


async def test_the_leverage_v3_leaves_out_comes_from_the_symbols_configuration(
    sim: SimServer, gateway: ExchangeGateway
) -> None:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        await client.request("POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": 7})
    await gateway.create_order(OrderIntent(ETH, "buy", "market", Decimal("0.1")))
    [raw] = await gateway.client.fapiPrivateV3GetPositionRisk({"symbol": "ETHUSDT"})
    assert "leverage" not in raw  # as Binance's v3 answers
    held = positions_from_exchange(await gateway.fetch_positions())
    assert held[ETH].leverage == 7


async def test_balance_is_the_wallet_and_free_margin(sim: SimServer, gateway: ExchangeGateway) -> None:
    await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01")))
    balance = await gateway.fetch_balance()
    assert balance.wallet == sim_figure(sim.account.wallet) < 10_000  # the commission was paid
    assert balance.available is not None and 0 < balance.available < balance.wallet  # margin is held
    assert balance.assets_held == ("USDT",)
    raw = await gateway.client.fetch_balance()
    ccxt_only = balance_report({k: v for k, v in raw.items() if k != "info"})
    assert ccxt_only.wallet == Decimal(repr(raw["USDT"]["total"]))  # as before: ccxt's float, through repr
    assert ccxt_only.available == Decimal(repr(raw["USDT"]["free"]))


async def test_fills_carry_price_fee_and_the_realized_pnl(sim: SimServer, gateway: ExchangeGateway) -> None:
    since = sim.clock.now_ms()
    opened = await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    sim.prices.move("BTCUSDT", -1.0)  # the short gains
    closed = await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.004"), reduce_only=True))
    opening, closing = await gateway.fetch_my_trades(BTC, since)
    sim_open, sim_close = sim.account.trades
    assert (opening.trade_id, opening.order_id) == (str(sim_open.trade_id), opened.order_id)
    assert (opening.side, opening.quantity, opening.price) == ("sell", Decimal("0.01"), sim_open.price)
    assert opening.fee == sim_figure(sim_open.commission) > 0 and opening.realized_pnl == 0
    assert opening.timestamp_ms == sim_open.time and opening.order_type is None  # Binance does not say
    assert (closing.order_id, closing.side, closing.quantity) == (closed.order_id, "buy", Decimal("0.004"))
    assert closing.realized_pnl == sim_figure(sim_close.realized_pnl)
    assert closing.realized_pnl == (opening.price - closing.price) * closing.quantity > 0


async def test_an_open_order_is_listed_looked_up_and_canceled(
    sim: SimServer, gateway: ExchangeGateway
) -> None:
    price = gateway.price_to_precision(ETH, sim.prices.prices["ETHUSDT"] / 2)
    intent = OrderIntent(
        ETH, "buy", "limit", Decimal("0.1"), price, time_in_force="GTC", client_order_id="ck-r1"
    )
    ack = await gateway.create_order(intent)
    [resting] = await gateway.fetch_open_orders()
    assert resting == OrderReport(
        order_id=ack.order_id,
        client_order_id="ck-r1",
        symbol=ETH,
        side="buy",
        type="limit",
        status="open",
        quantity=Decimal("0.1"),
        price=price,
        filled=Decimal(0),
        average_price=None,
        reduce_only=False,
    )
    assert await gateway.fetch_order_by_client_id(ETH, "ck-r1") == resting
    canceled = await gateway.cancel_order(ack.order_id, ETH)
    assert canceled is not None and canceled.status == "canceled" and canceled.order_id == ack.order_id
    assert await gateway.fetch_open_orders() == []
    assert await gateway.fetch_order_by_client_id(ETH, "ck-nobody") is None
    assert await gateway.cancel_order(ack.order_id, ETH, gone_ok=True) is None


async def test_a_filled_market_order_has_an_average_and_no_price(
    sim: SimServer, gateway: ExchangeGateway
) -> None:
    ack = await gateway.create_order(
        OrderIntent(BTC, "sell", "market", Decimal("0.01"), client_order_id="ck-m")
    )
    [fill] = sim.account.trades
    assert (ack.status, ack.filled, ack.average, ack.price) == ("closed", Decimal("0.01"), fill.price, None)
    order = await gateway.fetch_order_by_client_id(BTC, "ck-m")
    assert order is not None and (order.status, order.price, order.average_price) == ("closed", 0, fill.price)
    closing = await gateway.create_order(OrderIntent(BTC, "buy", "market", Decimal("0.01"), reduce_only=True))
    report = await gateway.fetch_order_by_client_id(BTC, closing.client_order_id)
    assert report is not None and report.reduce_only and report.filled == Decimal("0.01")


async def test_an_answer_without_a_needed_field_is_a_failed_read_reported_as_bad_data(
    gateway: ExchangeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused whole, named, heard by the listeners as bad data; the read is retried by its poll, so there is
    nothing to dead-letter (an unreadable answer is never 'no positions')."""
    await gateway.create_order(OrderIntent(BTC, "sell", "market", Decimal("0.01")))
    [row] = await gateway.client.fetch_positions()
    broken = copy.deepcopy(row)
    broken["info"]["positionAmt"] = "n/a"
    notices: list[GatewayNotice] = []
    gateway.add_listener(notices.append)

    async def answer(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        return [broken]

    monkeypatch.setattr(gateway.client, "fetch_positions", answer)
    with pytest.raises(GatewayError) as info:
        await gateway.fetch_positions()
    assert info.value.error_class is ErrorClass.RECOVERABLE and isinstance(info.value.cause, MalformedReport)
    assert "BTC/USDT:USDT positionAmt is not a number: 'n/a'" in info.value.detail
    assert "ccxt" in info.value.fix
    assert [(n.kind, n.op) for n in notices] == [("bad_data", "fetch_positions")]
    assert "positionAmt is not a number" in notices[0].message
    assert isinstance(gateway.dead_letters, DeadLetterBuffer)
    assert gateway.dead_letters.letters == []


def test_an_odd_figure_never_fails_the_positions_flatten_and_reconcile_need() -> None:
    """Only the quantity must be readable: a flat row is not read further, and an unreadable leverage or
    liquidation price of an open position is unknown (None), not a failure of the whole answer."""
    flat = position_report(
        {"symbol": "ETH/USDT:USDT", "info": {"positionAmt": "0", "liquidationPrice": "", "leverage": ""}}
    )
    assert flat.quantity == 0 and flat.liquidation_price is None
    short = position_report(
        {
            "symbol": "BTC/USDT:USDT",
            "info": {
                "positionAmt": "-0.500",
                "entryPrice": "64000.1",
                "liquidationPrice": "",
                "leverage": "NaN",
            },
        }
    )
    assert short.quantity == Decimal("-0.500") and short.entry_price == Decimal("64000.1")
    assert short.leverage is None and short.liquidation_price is None
    with pytest.raises(MalformedReport):  # the quantity itself is what every decision rests on
        position_report({"symbol": "BTC/USDT:USDT", "info": {"positionAmt": "lots"}})
