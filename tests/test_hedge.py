"""Hedge mode (dual-side positions): a LONG and a SHORT leg of one symbol are two positions. The engine
follows each leg on its own — from the user stream and REST, through reconcile (missed fills, ghosts),
flatten (one leg, every leg of a symbol, everything), the kill switch's guard and the panes — against the
simulator in hedge mode over real sockets. One-way accounts are covered by every other test, unchanged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.analytics.metrics import equity_curve
from cockpit.analytics.reading import open_for_reading
from cockpit.core.commands import Adopt, Flatten, KillSwitch, Orders, Reconcile, Status
from cockpit.core.snapshot import state_from_json, state_to_json
from cockpit.core.state import fold
from cockpit.engine.killswitch import ActionRefused
from cockpit.engine.status import render_orders, render_status
from cockpit.sim.server import SimServer
from tests.conftest import EXCHANGES, EngineRun, stop
from tests.test_engine import trade as other_client
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
BTC_LONG, BTC_SHORT = f"{BTC} long", f"{BTC} short"


async def hedge_mode(sim: SimServer) -> None:
    """The account to hedge mode, by the simulator's control API (the exchanges' own switches are the
    simulator's tests: tests/test_sim_hedge.py, tests/test_sim_bybit.py)."""
    sim.apply_settings({"dual_side": True})
    assert sim.account.dual_side


async def trade(sim: SimServer, symbol: str, side: str, leg: str, qty: str, **more: Any) -> Any:
    """Another client on the account (a strategy) trades one leg, on the simulator's wire (Binance's or
    Bybit's)."""
    return await other_client(sim, symbol=symbol, side=side, positionSide=leg, quantity=qty, **more)


async def rest(sim: SimServer, side: str, leg: str, qty: str, price: str, cid: str) -> None:
    limit = {"type": "LIMIT", "timeInForce": "GTC", "price": price, "newClientOrderId": cid}
    await trade(sim, "BTCUSDT", side, leg, qty, **limit)


async def exchange_legs(sim: SimServer) -> dict[tuple[str, str], Decimal]:
    return {(leg.symbol, leg.side): leg.qty for leg in sim.account.open_legs()}


async def open_orders(sim: SimServer) -> set[str]:
    return {o.client_order_id for o in sim.account.orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")}


async def started(sim: SimServer, start_engine: Any, **options: Any) -> EngineRun:
    run: EngineRun = await start_engine(**options)
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    return run


def qty(run: EngineRun, key: str) -> Decimal | None:
    position = run.engine.state.positions.get(key)
    return position.qty if position is not None else None


async def both_legs(sim: SimServer, run: EngineRun) -> None:
    await trade(sim, "BTCUSDT", "BUY", "LONG", "0.03")
    await trade(sim, "BTCUSDT", "SELL", "SHORT", "0.01")
    await wait_until(
        lambda: qty(run, BTC_LONG) == Decimal("0.03") and qty(run, BTC_SHORT) == Decimal("-0.01"),
        10,
        "both legs in State",
    )


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_both_legs_of_a_symbol_are_two_positions_shown_reconciled_and_valued(
    sim: SimServer, start_engine: Any, tmp_path: Any
) -> None:
    await hedge_mode(sim)
    run = await started(sim, start_engine)
    await both_legs(sim, run)
    state = run.engine.state
    assert BTC not in state.positions  # never the legs netted into one position
    long, short = state.positions[BTC_LONG], state.positions[BTC_SHORT]
    assert (long.leg, long.side, short.leg, short.side) == ("long", "long", "short", "short")

    result = await run.engine.control(Reconcile(by="test"))
    assert result.ghosts == () and result.matched == 2

    # each leg valued at the mark: equity is the exchange's own (wallet + both legs' unrealized PnL)
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": 2})
    sim.prices.step = lambda: None  # type: ignore[method-assign]  # the market stops: the marks settle

    def exchange_equity() -> Decimal:  # the exchange's own figure, as it stands
        return sim.account.wallet + sim.account.total_unrealized()

    await wait_until(
        lambda: (
            run.engine.state.equity is not None
            and abs(run.engine.state.equity - exchange_equity()) < Decimal("0.01")
        ),
        10,
        "equity equal to the exchange's to the cent",
    )

    status = await run.engine.control(Status(by="test"))
    assert [(p.symbol, p.leg, p.side, p.qty) for p in status.positions] == [
        (BTC, "long", "long", "0.03"),
        (BTC, "short", "short", "0.01"),
    ]
    text = render_status(status)
    assert f"{BTC} long" in text and f"{BTC} short" in text

    # the session file folds to the same legs, and a snapshot keeps them apart
    assert fold(run.engine.store.read_events()).positions.keys() == state.positions.keys()
    assert state_from_json(state_to_json(state)).positions == state.positions

    # the report values both legs too, by the fold and column-wise (large sessions) alike
    final = run.engine.state.equity
    await stop(run)
    with open_for_reading(tmp_path / "session.duckdb") as session:
        by_fold = equity_curve(session, method="fold").points
        by_columns = equity_curve(session, method="columns").points
    assert by_fold["equity"][-1] == pytest.approx(float(final), abs=0.01)
    assert by_columns["equity"][-1] == pytest.approx(by_fold["equity"][-1], abs=1e-6)


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_flatten_one_leg_leaves_the_other_leg_and_its_orders(sim: SimServer, start_engine: Any) -> None:
    await hedge_mode(sim)
    run = await started(sim, start_engine)
    await both_legs(sim, run)
    await rest(sim, "BUY", "LONG", "0.01", "30000", "adds-long")  # could re-open the long leg
    await rest(sim, "SELL", "SHORT", "0.01", "200000", "adds-short")  # the short leg's: not this flatten's
    await rest(sim, "SELL", "LONG", "0.01", "200000", "closes-long")  # take-profit of the long leg
    await wait_until(lambda: len(run.engine.state.orders) == 3, 10, "three open orders in State")
    assert "BTC/USDT:USDT long" in render_orders(await run.engine.control(Orders(by="test")))

    result = await run.engine.control(Flatten(symbols=("BTCUSDT long",), by="test").confirmed())
    assert result.verified, result.message
    assert result.symbols == (BTC_LONG,)
    assert await exchange_legs(sim) == {("BTCUSDT", "SHORT"): Decimal("-0.01")}
    assert await open_orders(sim) == {"adds-short"}  # the long leg's orders went, the short leg's stayed
    closing = [e for e in run.of("order.submitted") if e.source == "flatten"]
    assert [(e.payload["side"], e.payload.get("leg"), e.payload["reduce_only"]) for e in closing] == [
        ("sell", "long", False)  # on its own position side; the exchange refuses reduce-only in hedge mode
    ]
    await wait_until(lambda: BTC_LONG not in run.engine.state.positions, 10, "the long leg gone from State")
    assert qty(run, BTC_SHORT) == Decimal("-0.01")


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_flatten_a_symbol_closes_every_leg_and_flatten_all_everything(
    sim: SimServer, start_engine: Any
) -> None:
    await hedge_mode(sim)
    run = await started(sim, start_engine)
    await both_legs(sim, run)
    await trade(sim, "ETHUSDT", "SELL", "SHORT", "0.5")
    await wait_until(lambda: qty(run, f"{ETH} short") == Decimal("-0.5"), 10, "ETH's short leg")

    result = await run.engine.control(Flatten(symbols=("BTCUSDT",), by="test").confirmed())
    assert result.verified, result.message
    assert await exchange_legs(sim) == {("ETHUSDT", "SHORT"): Decimal("-0.5")}

    await trade(sim, "BTCUSDT", "BUY", "LONG", "0.02")
    everything = await run.engine.control(Flatten(symbols=None, by="test").confirmed())
    assert everything.verified, everything.message
    assert await exchange_legs(sim) == {}
    await wait_until(lambda: not run.engine.state.positions, 10, "no position in State")
    assert run.engine.state.kill_switch.engaged  # flatten ALL engages it, as on a one-way account


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_a_ghost_leg_is_named_alone_and_adopted(sim: SimServer, start_engine: Any) -> None:
    await hedge_mode(sim)
    run = await started(sim, start_engine)
    await both_legs(sim, run)
    await sim.inject({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "short", "qty": "0.04"})
    result = await run.engine.control(Reconcile(by="test"))
    assert result.ghosts == (BTC_SHORT,), result
    ghost = (await run.wait_for("position.ghost")).payload
    assert (ghost["symbol"], ghost["leg"], ghost["unexplained_qty"]) == (BTC, "short", "-0.04")
    assert BTC_SHORT in ghost["message"]
    state = run.engine.state
    assert state.positions[BTC_SHORT].ghost and state.positions[BTC_SHORT].qty == Decimal("-0.05")
    assert not state.positions[BTC_LONG].ghost and state.positions[BTC_LONG].qty == Decimal("0.03")

    adopted = await run.engine.control(Adopt(symbol="BTCUSDT", by="test").confirmed())  # its one ghost leg
    assert adopted.symbol == BTC_SHORT
    assert not run.engine.state.positions[BTC_SHORT].ghost
    again = await run.engine.control(Reconcile(by="test"))
    assert again.ghosts == () and again.matched == 2


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_fills_on_both_legs_while_the_engine_was_down_are_recovered_per_leg(
    sim: SimServer, start_engine: Any
) -> None:
    await hedge_mode(sim)
    first = await started(sim, start_engine)
    await both_legs(sim, first)
    await stop(first)

    await trade(sim, "BTCUSDT", "SELL", "LONG", "0.01")  # while cockpit is down: the long leg shrinks
    await trade(sim, "BTCUSDT", "SELL", "SHORT", "0.02")  # and the short leg grows

    second = await started(sim, start_engine)
    done = second.of("reconcile.done")[0].payload
    assert done["recovered_fills"] == 2 and done["ghosts"] == [], done
    recovered = second.of("order.filled")
    assert sorted((e.payload["side"], e.payload["leg"]) for e in recovered) == [
        ("sell", "long"),
        ("sell", "short"),
    ]
    assert qty(second, BTC_LONG) == Decimal("0.02") and qty(second, BTC_SHORT) == Decimal("-0.03")
    assert not any(p.ghost for p in second.engine.state.positions.values())


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_the_kill_switch_guard_cancels_what_opens_a_leg_and_leaves_what_closes_one(
    sim: SimServer, start_engine: Any
) -> None:
    await hedge_mode(sim)
    run = await started(sim, start_engine)
    await both_legs(sim, run)
    await run.engine.control(KillSwitch(on=True, cause="test", by="test"))
    await rest(sim, "SELL", "LONG", "0.01", "200000", "tp-long")  # closes the long leg: allowed
    await rest(sim, "BUY", "SHORT", "0.01", "30000", "tp-short")  # closes the short leg: allowed
    await rest(sim, "BUY", "LONG", "0.01", "30000", "adds-long")  # opens more long: canceled
    await wait_until(
        lambda: "adds-long" not in run.engine.state.orders and len(run.engine.state.orders) == 2, 10
    )
    guard = await run.wait_for("killswitch.guard")
    assert guard.payload["client_order_id"] == "adds-long" and guard.payload["leg"] == "long"
    assert await open_orders(sim) == {"tp-long", "tp-short"}


@pytest.mark.parametrize("wire", EXCHANGES)
async def test_the_hedge_demo_trades_both_legs_and_cries_no_ghost(tmp_path: Any, wire: str) -> None:
    """`cockpit demo --hedge [--exchange bybit]`: the demo's strategy trades LONG and SHORT legs while the
    engine follows; every leg it opens is explained by its fills — no ghost, no incident for a routine
    trade."""
    import asyncio
    import sys

    import orjson

    session = tmp_path / "demo.duckdb"
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cockpit", "demo", "--headless", "--json", "--hedge"),
        *("--duration", "25", "--session", str(session), "--seed", "3", "--exchange", wire),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    printed = [orjson.loads(line) for line in out.splitlines() if line.startswith(b"{")]
    kinds = [e["kind"] for e in printed]
    legs = {
        e["payload"].get("leg") for e in printed if e["kind"] in ("order.filled", "order.partially_filled")
    }
    assert legs & {"long", "short"}, kinds  # the strategy traded legs, and the fills say which
    assert "position.ghost" not in kinds
    done = [e["payload"] for e in printed if e["kind"] == "reconcile.done"]
    assert done and all(not d["ghosts"] for d in done)


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_a_leg_named_on_a_one_way_position_is_refused_not_called_flat(
    sim: SimServer, start_engine: Any
) -> None:
    """On a one-way account a "long leg" names nothing the exchange holds: refused, naming the fix — never a
    "verified flat" while the position stays open."""
    run = await started(sim, start_engine)
    await other_client(sim, symbol="BTCUSDT", side="BUY", quantity="0.03")
    await wait_until(lambda: qty(run, BTC) == Decimal("0.03"), 10, "the one-way position in State")
    with pytest.raises(ActionRefused) as refused:
        await run.engine.control(Flatten(symbols=("BTCUSDT long",), by="test").confirmed())
    assert "one-way position" in str(refused.value) and "without a leg" in refused.value.fix
    assert await exchange_legs(sim) == {("BTCUSDT", "BOTH"): Decimal("0.03")}
    assert run.of("flatten.started") == []
    result = await run.engine.control(Flatten(symbols=("BTCUSDT",), by="test").confirmed())
    assert result.verified and await exchange_legs(sim) == {}
