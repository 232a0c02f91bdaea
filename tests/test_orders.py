"""Open orders: the engine sees every open order on the account (cockpit's and another client's), lists them,
and cancels one, every order of a symbol, or all of them, recorded before it is sent and verified at the
exchange afterwards. Against the simulator over real sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.core.commands import CancelOrders, Flatten, KillSwitch, NotConfirmed, Orders, Status
from cockpit.engine.cancel import cancel_one
from cockpit.engine.killswitch import ActionRefused
from cockpit.engine.status import render_orders
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET, EngineRun, stop
from tests.test_engine import trade
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


async def rest_order(sim: SimServer, symbol: str, side: str, qty: str, price: Decimal, cid: str) -> Any:
    """Another client on the account (a strategy) leaves a limit order resting far from the market."""
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        body = await client.request(
            "POST",
            "/fapi/v1/order",
            {
                "symbol": symbol,
                "side": side,
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": qty,
                "price": str(price),
                "newClientOrderId": cid,
            },
        )
    assert "code" not in body, body
    return body


async def open_at_exchange(sim: SimServer) -> set[str]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        rows = await client.request("GET", "/fapi/v1/openOrders", {})
    return {row["clientOrderId"] for row in rows}


async def three_resting_orders(sim: SimServer, run: EngineRun) -> None:
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await rest_order(sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-btc-1")
    await rest_order(sim, "BTCUSDT", "BUY", "0.02", Decimal("31000"), "strat-btc-2")
    await rest_order(sim, "ETHUSDT", "BUY", "0.5", Decimal("1000"), "strat-eth-1")
    await wait_until(lambda: len(run.engine.state.orders) == 3, 10, "three open orders in State")


async def test_open_orders_are_listed_and_one_is_canceled_recorded_first_and_verified(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    report = await run.engine.control(Orders(by="test"))
    assert [o.client_order_id for o in report.orders] == ["strat-btc-1", "strat-btc-2", "strat-eth-1"]
    first = report.orders[0]
    assert (first.symbol, first.side, first.type, first.origin) == (BTC, "buy", "limit", "external")
    assert first.amount == "0.01" and first.price is not None and Decimal(first.price) == 30000
    assert first.order_id is not None and first.status == "open"
    text = render_orders(report)
    assert "3 open orders" in text and "strat-eth-1" in text and "@ 30000.0" in text

    result = await run.engine.control(CancelOrders(order="strat-btc-2", by="test"))
    assert result.verified and result.canceled == ("strat-btc-2",) and result.remaining == ()
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-eth-1"}
    action = await run.wait_for("operator.action", where=lambda e: e.payload["action"] == "cancel")
    assert action.payload["order"] == "strat-btc-2" and action.payload["symbols"] == [BTC]
    canceled = await run.wait_for("order.canceled")
    assert canceled.payload["client_order_id"] == "strat-btc-2"
    assert action.seq < canceled.seq  # recorded before it was sent
    await wait_until(lambda: set(run.engine.state.orders) == {"strat-btc-1", "strat-eth-1"}, 10, "State")

    # by the exchange's order id too
    by_id = run.engine.state.orders["strat-eth-1"].order_id
    assert by_id is not None
    assert (await run.engine.control(CancelOrders(order=by_id, by="test"))).canceled == ("strat-eth-1",)


async def test_every_order_of_a_symbol_then_of_the_account_needs_the_word_and_leaves_none(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    with pytest.raises(NotConfirmed):
        await run.engine.control(CancelOrders(symbols=("BTCUSDT",), by="test"))
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-btc-2", "strat-eth-1"}  # nothing sent

    result = await run.engine.control(CancelOrders(symbols=("BTCUSDT",), by="test").confirmed())
    assert result.verified and set(result.canceled) == {"strat-btc-1", "strat-btc-2"}
    assert result.scope == BTC
    assert await open_at_exchange(sim) == {"strat-eth-1"}
    await wait_until(lambda: set(run.engine.state.orders) == {"strat-eth-1"}, 10, "BTC's orders gone")

    result = await run.engine.control(CancelOrders(by="test").confirmed())
    assert result.verified and result.canceled == ("strat-eth-1",) and result.scope == "all"
    assert await open_at_exchange(sim) == set()
    await wait_until(lambda: not run.engine.state.orders, 10, "no open order in State")
    again = await run.engine.control(CancelOrders(by="test").confirmed())
    assert again.verified and again.canceled == () and "no open order" in again.message


async def test_an_unknown_order_is_refused_naming_the_fix_and_nothing_is_recorded(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    with pytest.raises(ActionRefused) as refused:
        await run.engine.control(CancelOrders(order="nope-1", by="test"))
    assert "no open order 'nope-1'" in refused.value.title and "cockpit ctl orders" in refused.value.fix
    with pytest.raises(ActionRefused):
        await run.engine.control(CancelOrders(symbols=("DOGEUSDT",), by="test").confirmed())
    assert not run.of("operator.action")
    assert await open_at_exchange(sim) == {"strat-btc-1", "strat-btc-2", "strat-eth-1"}


# ----- conditional orders (Binance's Algo Service) ------------------------------------------------------
def at(sim: SimServer, ratio: str, symbol: str = "BTCUSDT") -> str:
    """A price `ratio` times the symbol's price now, on its tick."""
    return str(sim.specs[symbol].round_price(sim.prices.prices[symbol] * Decimal(ratio)))


async def conditional(sim: SimServer, **params: Any) -> Any:
    """Another client on the account places a conditional order (stop, take-profit): the Algo Service."""
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        body = await client.request(
            "POST", "/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", **params}
        )
    assert "code" not in body, body
    return body


async def open_conditional_at_exchange(sim: SimServer) -> set[str]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        rows = await client.request("GET", "/fapi/v1/openAlgoOrders", {})
    return {row["clientAlgoId"] for row in rows}


async def test_a_stop_is_shown_with_its_trigger_then_recorded_as_triggered_and_its_fill_follows(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in run.engine.state.positions, 10, "the long")
    trigger = at(sim, "0.99")
    await conditional(
        sim, side="SELL", type="STOP_MARKET", quantity="0.02", triggerPrice=trigger, reduceOnly="true",
        clientAlgoId="strat-stop-1", workingType="MARK_PRICE",
    )  # fmt: skip
    await wait_until(lambda: "strat-stop-1" in run.engine.state.orders, 10, "the stop in State")
    stop = run.engine.state.orders["strat-stop-1"]
    assert stop.conditional and stop.trigger == Decimal(trigger) and stop.type == "stop_market"
    assert stop.reduce_only and stop.origin == "external" and stop.price is None
    listed = (await run.engine.control(Orders(by="test"))).orders
    assert [(o.client_order_id, Decimal(o.trigger or 0)) for o in listed] == [
        ("strat-stop-1", Decimal(trigger))
    ]

    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -2})
    triggered = await run.wait_for("order.triggered", within=10)
    assert triggered.payload["client_order_id"] == "strat-stop-1"
    assert Decimal(triggered.payload["trigger"]) == Decimal(trigger)
    await wait_until(lambda: BTC not in run.engine.state.positions, 10, "the long closed by the stop")
    assert "strat-stop-1" not in run.engine.state.orders
    fills = [e for e in run.of("order.filled") if e.payload["side"] == "sell"]
    assert fills and fills[-1].payload["last_qty"] == "0.02"


async def test_conditional_orders_are_canceled_one_and_all_and_reconcile_finds_them(
    sim: SimServer, start_engine: Any
) -> None:
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await conditional(sim, side="SELL", type="STOP_MARKET", quantity="0.02", triggerPrice=at(sim, "0.95"),
                      reduceOnly="true", clientAlgoId="strat-sl")  # fmt: skip
    await conditional(sim, side="BUY", type="TAKE_PROFIT_MARKET", quantity="0.01",
                      triggerPrice=at(sim, "0.9"), clientAlgoId="strat-dip")  # fmt: skip
    await rest_order(sim, "BTCUSDT", "BUY", "0.01", Decimal("30000"), "strat-limit")
    run: EngineRun = await start_engine()  # placed before it started: the startup reconcile finds them
    await run.wait_for("reconcile.done")
    await wait_until(lambda: len(run.engine.state.orders) == 3, 10, "three orders from the reconcile")
    assert {cid for cid, o in run.engine.state.orders.items() if o.conditional} == {"strat-sl", "strat-dip"}

    one = await run.engine.control(CancelOrders(order="strat-dip", by="test"))
    assert one.verified and one.canceled == ("strat-dip",)
    assert await open_conditional_at_exchange(sim) == {"strat-sl"}
    await wait_until(lambda: "strat-dip" not in run.engine.state.orders, 10, "the dip buy gone from State")

    every = await run.engine.control(CancelOrders(symbols=("BTCUSDT",), by="test").confirmed())
    assert every.verified and set(every.canceled) == {"strat-sl", "strat-limit"}
    assert await open_conditional_at_exchange(sim) == set() and await open_at_exchange(sim) == set()
    await wait_until(lambda: not run.engine.state.orders, 10, "no order left in State")


async def test_flatten_leaves_no_order_or_conditional_order_that_could_open_a_position_again(
    sim: SimServer, start_engine: Any
) -> None:
    """Property over random books: whatever mix of plain and conditional orders, reduce-only or not, either
    side, on the positions' symbols, flatten all ends flat with no order left at the exchange."""
    import random

    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    rng = random.Random(20261206)
    symbols = {"BTCUSDT": "0.01", "ETHUSDT": "0.1", "SOLUSDT": "1"}
    for round_ in range(3):
        for symbol, qty in symbols.items():
            side = rng.choice(["BUY", "SELL"])
            await trade(sim, symbol=symbol, side=side, quantity=qty)
            for n in range(rng.randrange(1, 4)):
                cid = f"r{round_}-{symbol}-{n}"
                kind = rng.choice(["limit", "stop", "take_profit"])
                buy = rng.random() < 0.5
                if kind == "limit":
                    far = at(sim, "0.7" if buy else "1.3", symbol)
                    await rest_order(sim, symbol, "BUY" if buy else "SELL", qty, Decimal(far), cid)
                    continue
                below = (
                    kind == "stop"
                ) != buy  # a sell stop waits below, a buy stop above; take-profits flip
                await conditional(
                    sim, symbol=symbol, side="BUY" if buy else "SELL",
                    type="STOP_MARKET" if kind == "stop" else "TAKE_PROFIT_MARKET", quantity=qty,
                    triggerPrice=at(sim, "0.8" if below else "1.2", symbol), clientAlgoId=cid,
                    reduceOnly="true" if rng.random() < 0.3 and (side == "BUY") != buy else "false",
                )  # fmt: skip
        await wait_until(lambda: len(run.engine.state.positions) == 3, 10, "three positions")
        result = await run.engine.control(Flatten(symbols=None, by="test").confirmed())
        assert result.verified, result.message
        assert sim.state()["positions"] == []
        assert await open_at_exchange(sim) == set() and await open_conditional_at_exchange(sim) == set()
        await run.engine.control(KillSwitch(on=False, by="test").confirmed())  # flatten all engaged it


async def test_the_kill_switch_guard_cancels_another_clients_stop_that_would_add_exposure(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await run.engine.control(KillSwitch(on=True, by="test"))
    await conditional(sim, side="BUY", type="STOP_MARKET", quantity="0.01", triggerPrice=at(sim, "1.05"),
                      clientAlgoId="strat-breakout")  # fmt: skip
    guard = await run.wait_for("killswitch.guard", within=10)
    assert "conditional order" in guard.payload["message"] and guard.severity == "critical"
    await wait_until(lambda: "strat-breakout" not in run.engine.state.orders, 10, "the breakout canceled")
    assert await open_conditional_at_exchange(sim) == set()


async def test_an_isolated_position_shows_its_margin_type_and_own_margin(
    sim: SimServer, start_engine: Any
) -> None:
    from cockpit.core.commands import Status
    from cockpit.engine.status import render_status
    from widgets.positions import _leverage_cell

    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        answer = await client.request(
            "POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}
        )
    assert answer.get("code") == 200, answer
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="0.5")  # cross, as every symbol by default
    await wait_until(
        lambda: (p := run.engine.state.positions.get(BTC)) is not None and p.isolated_margin is not None,
        10,
        "the isolated margin from the account poll",
    )
    btc, eth = run.engine.state.positions[BTC], run.engine.state.positions[ETH]
    assert btc.margin == "isolated" and btc.isolated_margin is not None and btc.isolated_margin > 0
    assert btc.liquidation is not None and btc.liquidation > 0
    await wait_until(lambda: run.engine.state.positions[ETH].margin == "cross", 10, "ETH cross")
    assert run.engine.state.positions[ETH].isolated_margin is None
    assert _leverage_cell(btc).endswith(" iso") and not _leverage_cell(eth).endswith("iso")
    status = await run.engine.control(Status(by="test"))
    row = next(p for p in status.positions if p.symbol == BTC)
    assert row.margin == "isolated" and row.isolated_margin is not None
    assert "isolated (margin " in render_status(status)


@pytest.mark.parametrize("sim", ["bybit"], indirect=True)
async def test_a_bybit_unified_account_in_isolated_margin_shows_every_position_isolated(
    sim: SimServer, start_engine: Any
) -> None:
    """Bybit's unified account sets the margin mode for the whole account (`/v5/account/set-margin-mode`,
    read back from `/v5/account/info`); its position rows do not say it. Set by an unmodified ccxt, every
    position the engine holds is isolated, with the margin the exchange holds for it, to the cent."""
    from cockpit.engine.status import render_status
    from cockpit.exchange.ccxt_client import make_ccxt_client

    client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=3000)
    try:
        answer = await client.privatePostV5AccountSetMarginMode({"setMarginMode": "ISOLATED_MARGIN"})
    finally:
        await client.close()
    assert answer["retCode"] == 0, answer
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="Buy", quantity="0.02")
    await trade(sim, symbol="ETHUSDT", side="Sell", quantity="0.5")

    def held_margin(symbol: str) -> Decimal:
        return sim.account.legs[(symbol, "BOTH")].isolated_wallet.quantize(Decimal("0.01"))

    def both_isolated() -> bool:
        positions = run.engine.state.positions
        return all(
            (p := positions.get(unified)) is not None
            and p.margin == "isolated"
            and p.isolated_margin is not None
            and p.isolated_margin.quantize(Decimal("0.01")) == held_margin(symbol)
            for unified, symbol in ((BTC, "BTCUSDT"), (ETH, "ETHUSDT"))
        )

    await wait_until(both_isolated, 10, "both positions isolated, with the exchange's margin")
    assert held_margin("BTCUSDT") > 0 and held_margin("ETHUSDT") > 0
    assert "isolated (margin " in render_status(await run.engine.control(Status(by="test")))


async def test_a_stop_that_triggered_while_the_engine_was_down_is_seen_as_the_order_it_placed(
    sim: SimServer, start_engine: Any, tmp_path: Any
) -> None:
    session = tmp_path / "down.duckdb"
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    run: EngineRun = await start_engine(session=session)
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    resting = at(sim, "1.10")  # once triggered, its limit rests far above the market
    await conditional(sim, side="SELL", type="TAKE_PROFIT", quantity="0.02", triggerPrice=at(sim, "1.01"),
                      price=resting, timeInForce="GTC", reduceOnly="true",
                      clientAlgoId="strat-tp")  # fmt: skip
    await wait_until(lambda: "strat-tp" in run.engine.state.orders, 10, "the take-profit in State")
    algo_id = run.engine.state.orders["strat-tp"].order_id
    await stop(run)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 2})  # triggers while nobody looks
    await wait_until(
        lambda: any(o["client_order_id"] == "strat-tp" for o in sim.state()["orders"]), 5, "placed"
    )
    again: EngineRun = await start_engine(session=session)
    await again.wait_for("reconcile.done")
    order = again.engine.state.orders.get("strat-tp")
    assert order is not None and not order.conditional and order.order_id != algo_id
    assert order.type == "limit" and order.price == Decimal(resting)
    assert again.of("order.triggered")[0].payload["placed"] == order.order_id
    # the operator was shown the take-profit (its algo id): the order changed, so that cancel is refused
    with pytest.raises(ActionRefused, match="changed since it was chosen"):
        await again.engine.control(CancelOrders(order="strat-tp", order_id=algo_id, by="test"))
    result = await again.engine.control(CancelOrders(order="strat-tp", by="test"))
    assert result.verified and result.canceled == ("strat-tp",)
    assert await open_at_exchange(sim) == set()


async def test_canceling_an_order_that_already_filled_says_nothing_was_canceled(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await three_resting_orders(sim, run)
    held = run.engine.state.orders["strat-btc-1"]
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:  # gone behind the engine's back
        await client.request("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": held.order_id})
    # what State showed when the operator chose it: the exchange no longer holds it
    result = await cancel_one(run.engine, held, "test")
    assert result.canceled == () and "nothing canceled" in result.message and result.verified


async def test_flatten_all_cancels_a_stop_on_a_symbol_without_a_position(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine(flatten_engages_kill_switch=False)
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
    await conditional(sim, symbol="ETHUSDT", side="BUY", type="STOP_MARKET", quantity="0.1",
                      triggerPrice=at(sim, "1.2", "ETHUSDT"), clientAlgoId="strat-eth-breakout")  # fmt: skip
    await wait_until(lambda: BTC in run.engine.state.positions, 10, "the long")
    result = await run.engine.control(Flatten(symbols=None, by="test").confirmed())
    assert result.verified, result.message
    assert await open_conditional_at_exchange(sim) == set() and sim.state()["positions"] == []


async def test_another_clients_leftover_stop_rejected_at_its_trigger_is_said_not_alarmed(
    sim: SimServer, start_engine: Any
) -> None:
    run: EngineRun = await start_engine()
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await conditional(sim, side="SELL", type="STOP_MARKET", quantity="0.02", triggerPrice=at(sim, "0.99"),
                      reduceOnly="true", clientAlgoId="strat-leftover")  # fmt: skip
    await wait_until(lambda: "strat-leftover" in run.engine.state.orders, 10, "the stop in State")
    await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.02")  # the strategy closed by hand
    await wait_until(lambda: BTC not in run.engine.state.positions, 10, "flat")
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -2})
    rejected = await run.wait_for("order.rejected", within=10)
    assert rejected.payload["client_order_id"] == "strat-leftover" and rejected.severity == "info"
    await wait_until(lambda: "strat-leftover" not in run.engine.state.orders, 10, "gone from State")
    assert not [e for e in run.events if e.severity != "info" and e.kind.startswith("order.")]


def test_the_guard_reads_a_close_in_several_fills_as_a_close_and_a_reversal_as_exposure() -> None:
    from types import SimpleNamespace

    from cockpit.core.state import Position, State
    from cockpit.engine.guard import adds_exposure

    long_one = {BTC: Position(BTC, Decimal("1"), Decimal("60000"))}
    # another client closes the long with a plain market sell that fills 0.4, then 0.6
    before_first = SimpleNamespace(state=State(positions=long_one))
    assert not adds_exposure(before_first, BTC, "sell", False, Decimal("0.4"))
    after_first = SimpleNamespace(state=State(positions=long_one, unbooked={BTC: Decimal("-0.4")}))
    assert not adds_exposure(after_first, BTC, "sell", False, Decimal("0.6"))  # what is left of the long
    assert adds_exposure(after_first, BTC, "sell", False, Decimal("0.7"))  # past it: a short opens
    assert adds_exposure(before_first, BTC, "buy", False, Decimal("0.01"))  # more of the long
    assert not adds_exposure(before_first, BTC, "buy", True, Decimal("5"))  # reduce-only never adds
    assert adds_exposure(before_first, BTC, "sell", False, Decimal("2"))  # a stop-and-reverse
