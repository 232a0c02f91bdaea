"""What the Positions pane reads, end to end: the engine against the simulator sends each market's tick and
step (`market.info`), and leverage and liquidation from REST reach State and stay through a re-open."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cockpit.engine.status import render_status, status_of
from cockpit.sim.server import SimServer
from tests.conftest import EngineRun
from tests.test_engine import trade
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
XRP = "XRP/USDT:USDT"
BNB = "BNB/USDT:USDT"


async def test_market_info_arrives_and_liquidation_and_leverage_reach_state(
    sim: SimServer, start_engine: Any
) -> None:
    await trade(sim, symbol="BNBUSDT", side="SELL", quantity="1")  # open before the session: adopted
    run: EngineRun = await start_engine()
    info = await run.wait_for("market.info")
    assert info.payload["markets"][BTC] == {"price_step": "0.1", "amount_step": "0.001"}
    assert info.payload["markets"][XRP] == {"price_step": "0.0001", "amount_step": "0.1"}
    assert info.payload["stale_after_s"] == 1.0
    await run.wait_for("reconcile.done")
    state = run.engine.state
    assert state.markets[BNB].price_step == Decimal("0.01") and state.stale_after_s == 1.0
    # the leverage: the simulator's default, from the symbols' configuration at the account poll
    await wait_until(lambda: run.engine.state.positions[BNB].leverage == 20, what="the leverage")
    state = run.engine.state
    short = state.positions[BNB]
    assert short.liquidation is not None and short.liquidation > short.entry  # a short liquidates above
    await wait_until(lambda: BNB in run.engine.state.mark_ts, what="a BNB mark with its time")

    # closed and re-opened through the user stream (no leverage in ACCOUNT_UPDATE): leverage still shown
    await trade(sim, symbol="BNBUSDT", side="BUY", quantity="1")
    await wait_until(lambda: BNB not in run.engine.state.positions, what="BNB closed")
    await trade(sim, symbol="BNBUSDT", side="BUY", quantity="2")
    await wait_until(lambda: BNB in run.engine.state.positions, what="BNB re-opened")
    assert run.engine.state.positions[BNB].leverage == 20
    await wait_until(  # the stream carries no liquidation price: the next account poll brings it back
        lambda: run.engine.state.positions[BNB].liquidation is not None, what="BNB's liquidation price"
    )

    status = status_of(run.engine.state, "")
    row = next(p for p in status.positions if p.symbol == BNB)
    assert row.leverage == 20 and row.qty == "2"
    assert f"{BNB}" in render_status(status) and "20x" in render_status(status)


def test_ctl_status_text_reads_prices_at_the_tick_and_money_at_cents() -> None:
    from cockpit.core.state import MarketInfo, Position, State

    state = State(
        positions={
            BTC: Position(
                BTC, Decimal("0.01"), Decimal("63949.123456"), Decimal("64006.0"), 10, Decimal("0")
            ),
            XRP: Position(XRP, Decimal("-1234"), Decimal("0.612345"), Decimal("0.6"), 5, Decimal("0.72")),
        },
        markets={
            BTC: MarketInfo(Decimal("0.1"), Decimal("0.001")),
            XRP: MarketInfo(Decimal("0.0001"), Decimal("0.1")),
        },
        wallet=Decimal("10002.26717"),
        equity=Decimal("10002.26717"),
    )
    status = status_of(state, "")
    text = render_status(status)
    assert "BTC/USDT:USDT" in text and "0.01 entry 63949.1 mark 64006.0 upnl +0.57 10x liq none" in text
    assert "1234 entry 0.6123 mark 0.6000 upnl +15.23 5x liq 0.7200 (20.00% away)" in text
    assert "equity 10,002.27 USDT" in text
    xrp = next(p for p in status.positions if p.symbol == XRP)
    assert xrp.entry == "0.612345" and xrp.liquidation == "0.72"  # exact strings, as in the JSON
