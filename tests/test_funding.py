"""Funding payments: recorded once each from the exchange's income history — when the stream says funding was
paid, and after the engine was down — in the session's funding total, the report's PnL, and an equity that
matches the exchange's to the cent. Against the simulator over real sockets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cockpit.analytics import build_report
from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import EXCHANGES, TEST_KEY, TEST_SECRET, EngineRun, stop
from tests.test_engine import BTC, trade
from tests.waiting import wait_until

CENT = Decimal("0.01")


async def income(sim: SimServer) -> dict[str, Decimal]:
    """The exchange's funding payments by id (paid < 0), read raw off its wire."""
    if sim.exchange == "bybit":  # the execution list's Funding rows: execFee > 0 is paid
        client = make_ccxt_client("bybit", TEST_KEY, TEST_SECRET, base_url=sim.base_url)
        try:
            params = {"category": "linear", "execType": "Funding", "limit": 100}
            answer = await client.privateGetV5ExecutionList(params)
        finally:
            await client.close()
        return {row["execId"]: -Decimal(row["execFee"]) for row in answer["result"]["list"]}
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        rows = await client.request("GET", "/fapi/v1/income", {"incomeType": "FUNDING_FEE", "limit": 1000})
    return {
        row["tranId"] if isinstance(row["tranId"], str) else str(row["tranId"]): Decimal(row["income"])
        for row in rows
    }


def equity_gap(run: EngineRun, sim: SimServer) -> Decimal:
    """|cockpit's equity − the exchange's| valued at the same marks (the exchange's wallet, its entries and
    quantities, at the marks cockpit holds): marks move every tick, so comparing at two instants would
    measure the market, not cockpit."""
    state = run.engine.state
    exchange = sim.state()
    wallet = Decimal(exchange["balance"]["wallet"])
    upnl = Decimal(0)
    for p in exchange["positions"]:
        symbol = f"{p['symbol'][:-4]}/USDT:USDT"
        mark = state.marks.get(symbol)
        if mark is None:
            return Decimal("Infinity")
        upnl += Decimal(p["qty"]) * (mark - Decimal(p["entry"]))
    if state.equity is None or state.wallet is None:
        return Decimal("Infinity")
    return max(abs(state.wallet - wallet), abs(state.equity - (wallet + upnl)))


def recorded(run: EngineRun) -> dict[str, Decimal]:
    return {e.payload["income_id"]: Decimal(e.payload["amount"]) for e in run.of("funding.paid")}


@pytest.mark.parametrize("sim", EXCHANGES, indirect=True)
async def test_funding_is_recorded_once_while_running_and_after_a_restart_and_equity_matches_to_the_cent(
    sim: SimServer, start_engine: Any, tmp_path: Any
) -> None:
    session = tmp_path / "funding.duckdb"
    run: EngineRun = await start_engine(session=session)
    await run.wait_for("reconcile.done")
    await wait_until(lambda: run.engine.state.health_of("user_stream").ok, 10, "the user stream up")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.05")
    await trade(sim, symbol="ETHUSDT", side="SELL", quantity="1")
    await wait_until(lambda: len(run.engine.state.positions) == 2, 10, "two positions")

    sim.settle_funding()  # a long pays and a short receives at a positive rate
    await wait_until(lambda: len(run.of("funding.paid")) == 2, 15, "both payments recorded")
    paid = await income(sim)
    assert recorded(run) == paid and len(paid) == 2
    assert all(e.payload["recovered"] is False for e in run.of("funding.paid"))  # the stream asked for them
    by_symbol = {e.payload["symbol"]: Decimal(e.payload["amount"]) for e in run.of("funding.paid")}
    assert by_symbol[BTC] < 0 < by_symbol["ETH/USDT:USDT"]
    assert run.engine.state.funding == sum(paid.values())

    def equity_matches() -> bool:
        return equity_gap(run, sim) < CENT

    await wait_until(equity_matches, 10, "equity as the exchange's, to the cent")
    await stop(run)

    sim.settle_funding()  # paid while the engine is down
    sim.settle_funding()
    again: EngineRun = await start_engine(session=session)
    await again.wait_for("reconcile.done")
    await wait_until(lambda: len(again.of("funding.paid")) == 4, 15, "the four missed payments recovered")
    assert all(e.payload["recovered"] is True for e in again.of("funding.paid"))
    everything = await income(sim)
    assert {**recorded(run), **recorded(again)} == everything and len(everything) == 6
    assert again.engine.state.funding == sum(everything.values())  # restored, then the missed ones: once each
    sim.settle_funding()
    await wait_until(lambda: len(again.of("funding.paid")) == 6, 15, "the next payments")
    assert again.engine.state.funding == sum((await income(sim)).values())
    await wait_until(lambda: equity_gap(again, sim) < CENT, 10, "equity as the exchange's, to the cent")
    await stop(again)
    report = build_report(session)
    assert Decimal(report["pnl"]["funding"]) == sum((await income(sim)).values())


def test_the_fold_counts_each_payment_once_and_only_the_settlement_assets() -> None:
    from cockpit.core import events as ev
    from cockpit.core.domain import Event
    from cockpit.core.state import fold

    def paid(seq: int, income_id: str, amount: str, asset: str = "USDT") -> Event:
        payload = ev.funding_paid(
            symbol=BTC, amount=amount, asset=asset, income_id=income_id, time_ms=1_000 * seq, recovered=False
        )
        return Event(seq, float(seq), "funding.paid", "info", "exchange", dict(payload))

    state = fold(
        [paid(1, "a", "-0.32"), paid(2, "b", "0.11"), paid(3, "a", "-0.32"), paid(4, "c", "5", "BNFCR")]
    )
    assert state.funding == Decimal("-0.21")  # "a" once; the BNFCR credit recorded, not added to USDT
    assert state.funding_ids == ("a", "b", "c") and state.funding_through_ms == 4_000
