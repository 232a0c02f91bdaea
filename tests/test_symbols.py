"""One identity per symbol, and the whole account: the engine against the simulator.

The engine follows only BTC and ETH here (`feeds.symbols`); the account trades other symbols too. Whatever
the account holds is tracked under its unified symbol, marked, valued and never a false ghost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from cockpit.core import events as ev
from cockpit.engine.account import poll_account
from cockpit.engine.reconcile import reconcile
from cockpit.sim.server import SimServer
from tests.conftest import EngineRun
from tests.test_engine import trade
from tests.waiting import wait_until

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"
XRP = "XRP/USDT:USDT"
FOLLOWED = (BTC, ETH)

StartEngine = Callable[[], Awaitable[EngineRun]]


@pytest.fixture
def start_followed(start_engine: Any) -> StartEngine:
    """An engine whose config follows only BTC and ETH, on the simulator's account."""
    return lambda: start_engine(symbols=FOLLOWED)


def symbols_named(run: EngineRun) -> set[str]:
    """Every symbol any event named: positions, fills, orders, marks, ghosts."""
    named: set[str] = set()
    for event in run.events:
        if "symbol" in event.payload:
            named.add(str(event.payload["symbol"]))
        named.update(event.payload.get("marks", {}))
    return named


async def polls_and_reconciles(run: EngineRun, polls: int = 3) -> None:
    """Several account polls (each mismatch it finds reconciled), then two more reconciles."""
    engine = run.engine
    for _ in range(polls):
        before = engine.state.seq
        await poll_account(engine)
        if not engine.reconcile_requests.empty():  # the poll saw a difference: let its reconcile finish
            await run.wait_for("reconcile.done", where=lambda e, after=before: e.seq > after)
    await reconcile(engine, "test")
    await reconcile(engine, "test-again")


async def test_a_position_on_an_unfollowed_symbol_is_tracked_marked_and_totalled(
    sim: SimServer, start_followed: StartEngine
) -> None:
    run = await start_followed()
    await run.wait_for("reconcile.done")
    assert XRP not in run.engine.config.feeds.symbols
    await trade(sim, symbol="XRPUSDT", side="SELL", quantity="1053.8", newClientOrderId="strategy-xrp")

    fill = await run.wait_for("order.filled")
    assert fill.payload["symbol"] == XRP
    engine = run.engine
    await wait_until(lambda: XRP in engine.state.positions, what="the XRP position")
    await wait_until(
        lambda: engine.state.positions[XRP].mark is not None, within=10, what="a mark for the XRP position"
    )
    await polls_and_reconciles(run)

    state = engine.state
    assert set(state.positions) == {XRP}
    position = state.positions[XRP]
    assert position.qty == Decimal("-1053.8") and not position.ghost
    assert position.mark is not None and position.mark == state.marks[XRP]
    assert position.upnl == position.qty * (position.mark - position.entry)
    assert state.wallet is not None and state.equity == state.wallet + position.upnl
    assert run.of("position.ghost") == []
    assert state.last_reconcile is not None and state.last_reconcile.ghosts == ()
    assert "XRPUSDT" not in symbols_named(run)  # one identity: never the exchange id
    assert all("/" in s for s in symbols_named(run))


async def test_the_mark_of_an_unfollowed_position_keeps_moving(
    sim: SimServer, start_followed: StartEngine
) -> None:
    run = await start_followed()
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="SOLUSDT", side="BUY", quantity="20")
    await wait_until(lambda: SOL in run.engine.state.marks, within=10, what="a SOL mark")
    first = run.engine.state.marks[SOL]
    sim.prices.move("SOLUSDT", 5.0)
    await wait_until(
        lambda: run.engine.state.marks[SOL] > first * Decimal("1.03"),
        within=10,
        what="the SOL mark to follow",
    )
    position = run.engine.state.positions[SOL]
    assert position.mark == run.engine.state.marks[SOL] and position.upnl > 0

    await sim.inject({"kind": "ws_drop", "refuse_s": 2.0})  # the socket is down: marks come by REST
    by_rest = await run.wait_for(
        "market.marks", where=lambda e: e.payload["source"] == "rest" and SOL in e.payload["marks"], within=10
    )
    assert Decimal(by_rest.payload["marks"][SOL]) > first * Decimal("1.03")


async def test_no_ghost_stays_flagged_after_a_stream_drop_while_another_client_trades(
    sim: SimServer, start_followed: StartEngine
) -> None:
    run = await start_followed()
    await run.wait_for("reconcile.done")
    await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.02")
    await wait_until(lambda: BTC in run.engine.state.positions)
    await sim.inject({"kind": "ws_drop", "refuse_s": 1.5})
    await run.wait_for("feed.disconnected", where=lambda e: e.payload["feed"] == "user")
    await trade(sim, symbol="BTCUSDT", side="SELL", quantity="0.01", newClientOrderId="during-outage-1")
    await trade(sim, symbol="XRPUSDT", side="SELL", quantity="300", newClientOrderId="during-outage-2")
    await trade(sim, symbol="ETHUSDT", side="BUY", quantity="0.5", newClientOrderId="during-outage-3")
    await run.wait_for("feed.reconnected", where=lambda e: e.payload["feed"] == "user", within=15)
    await trade(sim, symbol="XRPUSDT", side="SELL", quantity="100", newClientOrderId="after-outage")

    engine = run.engine
    await wait_until(
        lambda: (
            engine.state.positions.get(XRP) is not None and engine.state.positions[XRP].qty == Decimal("-400")
        ),
        within=10,
        what="the XRP position after the outage",
    )
    await polls_and_reconciles(run)
    result = await reconcile(engine, "after-outage")

    assert result["ghosts"] == [] and result["ghosts_open"] == []
    positions = engine.state.positions
    assert {s: p.qty for s, p in positions.items()} == {
        BTC: Decimal("0.01"),
        ETH: Decimal("0.5"),
        XRP: Decimal("-400"),
    }
    assert not any(p.ghost for p in positions.values())
    assert all(p.mark is not None for p in positions.values())


async def test_an_injected_ghost_on_an_unfollowed_symbol_is_named_once(
    sim: SimServer, start_followed: StartEngine
) -> None:
    run = await start_followed()
    await run.wait_for("reconcile.done")
    await sim.inject({"kind": "ghost_position", "symbol": "SOLUSDT", "side": "long", "qty": "7"})
    ghost = await run.wait_for("position.ghost", within=10)
    assert ghost.severity == "critical" and ghost.payload["symbol"] == SOL
    assert ghost.payload["unexplained_qty"] == "7"
    await polls_and_reconciles(run)

    assert [e.payload["symbol"] for e in run.of("position.ghost")] == [SOL]
    position = run.engine.state.positions[SOL]
    assert position.ghost and position.qty == Decimal("7")
    await wait_until(lambda: run.engine.state.positions[SOL].mark is not None, within=10, what="a SOL mark")
    result = await reconcile(run.engine, "test")
    assert result["ghosts"] == [] and result["ghosts_open"] == [SOL]


def test_a_ghost_remembers_what_its_recorded_trades_explain_until_they_explain_it() -> None:
    """The fold behind a ghost clearing: flagged with what the recorded trades explained then (0), a fill
    recovered afterwards moves that figure; once it is the exchange's quantity a reconcile clears the flag
    (it compares `booked` with the exchange), and an unrelated stream update never does."""
    from cockpit.core.domain import Event
    from cockpit.core.state import fold

    ghost = {"symbol": XRP, "qty": "-100", "entry": "0.6", "booked_qty": "0", "unexplained_qty": "-100"}
    fill = {"client_order_id": "ex-1", "symbol": XRP, "side": "sell", "trade_id": "9", "last_qty": "100"}
    events = [
        Event(1, 1.0, "balance.updated", "info", "exchange", {"wallet": "10000"}),
        Event(2, 2.0, "position.ghost", "critical", "reconcile", ghost),
        Event(
            3, 3.0, "position.changed", "info", "user_stream", {"symbol": XRP, "qty": "-100", "entry": "0.6"}
        ),
    ]
    flagged = fold(events).positions[XRP]
    assert flagged.ghost and flagged.booked == Decimal("0")
    recovered = fold([*events, Event(4, 4.0, "order.filled", "warning", "reconcile", fill)])
    assert recovered.positions[XRP].ghost and recovered.positions[XRP].booked == Decimal("-100")
    cleared = fold(
        [
            *events,
            Event(4, 4.0, "order.filled", "warning", "reconcile", fill),
            Event(5, 5.0, "position.changed", "warning", "reconcile", {**ghost, "ghost": False}),
        ]
    )
    assert not cleared.positions[XRP].ghost and cleared.positions[XRP].booked is None


async def test_a_ghost_flagged_before_its_fill_was_known_clears_once_reconcile_explains_it(
    sim: SimServer, start_followed: StartEngine
) -> None:
    run = await start_followed()
    await run.wait_for("reconcile.done")
    engine = run.engine
    async with engine.reconcile_lock:  # no reconcile runs while the race is set up
        # an earlier pass saw the position before the trade history had its fill: flagged, nothing booked
        engine.emit(
            "position.ghost",
            ev.position_ghost(
                symbol=XRP,
                qty="-100",
                entry="0.6",
                local_qty="0",
                exchange_qty="-100",
                unexplained_qty="-100",
                booked_qty="0",
                message=f"{XRP}: exchange holds -100, cockpit expected 0",
            ),
            "critical",
            "reconcile",
        )
        await trade(sim, symbol="XRPUSDT", side="SELL", quantity="100", newClientOrderId="late-history")
    result = await reconcile(engine, "test")

    assert result["ghosts"] == [] and result["ghosts_open"] == []
    position = engine.state.positions[XRP]
    assert position.qty == Decimal("-100") and not position.ghost
    cleared = await run.wait_for("position.changed", where=lambda e: e.payload.get("ghost") is False)
    assert cleared.source == "reconcile" and cleared.payload["reason"] == "explained by recorded fills"


async def test_a_position_pushed_before_its_fill_books_with_the_fill_and_no_reconcile(
    sim: SimServer, start_followed: StartEngine
) -> None:
    """Binance often pushes the new position (ACCOUNT_UPDATE) before the fill (ORDER_TRADE_UPDATE), and the
    simulator does the same: the size waits for its fill and is booked with it. No reconcile, no ghost."""
    run = await start_followed()
    await run.wait_for("reconcile.done")
    engine = run.engine
    for n, qty in enumerate(("0.01", "0.02", "0.03")):
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity=qty, newClientOrderId=f"strategy-{n}")
    await wait_until(
        lambda: BTC in engine.state.positions and engine.state.positions[BTC].qty == Decimal("0.06"),
        within=10,
        what="the BTC position of three fills",
    )
    await run.wait_for("order.filled", where=lambda e: e.payload["client_order_id"] == "strategy-2")

    assert engine.pending_sizes == {}  # every size was explained by its fill: nothing left for the deadline
    changes = [e for e in run.of("position.changed") if e.payload["symbol"] == BTC]
    fills = [e for e in run.of("order.filled") if e.payload["symbol"] == BTC]
    assert [c.payload["qty"] for c in changes] == ["0.01", "0.03", "0.06"]
    assert all(
        fill.seq < change.seq for fill, change in zip(fills, changes, strict=True)
    )  # each after its fill
    assert [e.payload["trigger"] for e in run.of("reconcile.started")] == ["startup"]
    assert run.of("position.ghost") == []
    assert engine.state.unbooked.get(BTC, Decimal(0)) == 0


async def test_a_position_no_fill_explains_is_never_booked_and_is_reconciled_after_the_grace(
    sim: SimServer, start_followed: StartEngine
) -> None:
    """A size pushed with no fill behind it (a ghost) is never taken as the position: it waits
    PENDING_GRACE_S (2 s) for its fill, then reconcile names it (once, whichever of it and the poll sees
    it first)."""
    run = await start_followed()
    await run.wait_for("reconcile.done")
    pushed = {"kind": "ghost_position", "symbol": "ETHUSDT", "side": "short", "qty": "2", "pushed": True}
    await sim.inject(pushed)
    await run.wait_for(
        "reconcile.started", where=lambda e: e.payload["trigger"] == "stream-mismatch", within=10
    )
    await run.wait_for("reconcile.done", where=lambda e: e.payload["trigger"] == "stream-mismatch")

    (ghost,) = run.of("position.ghost")
    assert ghost.payload["symbol"] == ETH and ghost.payload["unexplained_qty"] == "-2"
    assert run.engine.state.positions[ETH].ghost and run.engine.pending_sizes == {}
    from_stream = [
        c for c in run.of("position.changed") if c.payload["symbol"] == ETH and c.source == "user_stream"
    ]
    assert from_stream == []  # the ghost never hid inside a stream update
