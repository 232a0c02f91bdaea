"""The operator's commands, run: what `Engine.control` does for each (the commands and their results are in
`cockpit/core/commands.py`).

Each action that changes something is recorded as an `operator.action` event before it runs; reads (status, a
reader's copy, listing dead letters) are not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.core.commands import (
    Acknowledge,
    AckResult,
    Adopt,
    AdoptResult,
    Backup,
    BackupResult,
    CancelOrders,
    CancelResult,
    Flatten,
    FlattenResult,
    KillSwitch,
    KillSwitchStatus,
    Orders,
    OrdersReport,
    PeakResetResult,
    ReadCopy,
    Reconcile,
    ReconcileResult,
    ResetPeak,
    StatusReport,
)
from cockpit.core.domain import Severity, dstr, key_leg, key_symbol
from cockpit.engine import killswitch, peak
from cockpit.engine.backups import backup as take_backup
from cockpit.engine.backups import read_copy as take_read_copy
from cockpit.engine.cancel import cancel_many, cancel_one, cancel_symbols, find_order
from cockpit.engine.flatten import flatten as flatten_positions
from cockpit.engine.killswitch import ActionRefused
from cockpit.engine.reconcile import reconcile as reconcile_pass
from cockpit.engine.status import kill_switch_status, orders_of, status_of

if TYPE_CHECKING:
    from cockpit.engine.context import (
        ActionContext,
        BackupContext,
        Events,
        KillSwitchContext,
        ReconcileContext,
    )


async def _record(engine: Events, severity: Severity, payload: events.OperatorAction) -> None:
    await engine.record("operator.action", payload, severity, "operator")


def status(engine: KillSwitchContext) -> StatusReport:
    return status_of(engine.state, str(engine.account.kill_switch_file))


def reconcile_result(done: events.ReconcileDone) -> ReconcileResult:
    """A reconcile pass's result, from what its `reconcile.done` event says."""
    return ReconcileResult(
        trigger=done["trigger"],
        matched=done["matched"],
        recovered_fills=done["recovered_fills"],
        recovered_by_symbol=dict(done["recovered_by_symbol"]),
        ghosts=tuple(done["ghosts"]),
        adopted=tuple(done["adopted"]),
        corrected=tuple(done["corrected"]),
        orders_added=done["orders_added"],
        orders_removed=done["orders_removed"],
        ghosts_open=tuple(done["ghosts_open"]),
        seconds=done["seconds"],
        through_ms=done["through_ms"],
        denied=tuple(done.get("denied", ())),
    )


async def reconcile(engine: ReconcileContext, command: Reconcile) -> ReconcileResult:
    await _record(engine, "info", events.operator_action(action="reconcile", by=command.by))
    return reconcile_result(await reconcile_pass(engine, f"operator:{command.by}"))


async def flatten(engine: ActionContext, command: Flatten) -> FlattenResult:
    named = command.symbols
    symbols = None if named is None else [engine.resolve_position(s) for s in named]
    if symbols == []:
        raise ActionRefused("flatten of an empty selection", fix="name symbols, or null for all positions")
    await _record(
        engine, "warning", events.operator_action(action="flatten", symbols=symbols or "all", by=command.by)
    )
    return await flatten_positions(engine, symbols, command.by)


def orders(engine: KillSwitchContext, command: Orders) -> OrdersReport:
    return orders_of(engine.state, time.time())


async def cancel_orders(engine: ActionContext, command: CancelOrders) -> CancelResult:
    """Checked (the order exists and is accepted, the symbols are known), recorded, then sent."""
    if command.order is not None:
        order = find_order(engine.state, command.order, command.order_id)
        payload = events.operator_action(
            action="cancel", order=order.client_order_id, symbols=[order.symbol], by=command.by
        )
        await _record(engine, "warning", payload)
        return await cancel_one(engine, order, command.by)
    symbols = None if command.symbols is None else cancel_symbols(engine, command.symbols)
    await _record(
        engine, "warning", events.operator_action(action="cancel", symbols=symbols or "all", by=command.by)
    )
    return await cancel_many(engine, symbols, command.by)


async def kill_switch(engine: KillSwitchContext, command: KillSwitch) -> KillSwitchStatus:
    await _record(
        engine, "warning", events.operator_action(action="kill_switch", on=command.on, by=command.by)
    )
    if command.on:
        await killswitch.engage(engine, command.cause or f"engaged by {command.by}", command.by)
    else:
        await killswitch.release(engine, command.by)
    return kill_switch_status(engine.state)


async def backup(engine: BackupContext, command: Backup) -> BackupResult:
    await _record(engine, "info", events.operator_action(action="backup", by=command.by))
    return await take_backup(engine, command.by)


async def read_copy(engine: BackupContext, command: ReadCopy) -> BackupResult:
    """A reader's copy (cockpit sessions, report, export, replay): no operator action."""
    return await take_read_copy(engine, command.by)


def adopted_payload(result: AdoptResult) -> events.PositionChanged:
    """The `position.changed` event of an adoption."""
    return events.position_changed(
        symbol=key_symbol(result.symbol),
        leg=key_leg(result.symbol),
        qty=result.qty,
        entry=result.entry,
        ghost=result.ghost,
        reason=result.reason,
        message=result.message,
    )


async def adopt(engine: ActionContext, command: Adopt) -> AdoptResult:
    """Accept a ghost position as the account's own: it stays open, no longer flagged."""
    symbol = engine.resolve_position(command.symbol)  # a hedge leg: "<symbol> long|short"
    ghost_legs = [k for k, p in engine.state.positions.items() if p.symbol == symbol and p.ghost]
    if symbol not in engine.state.positions and len(ghost_legs) == 1:  # the symbol's one ghost leg
        symbol = ghost_legs[0]
    await _record(engine, "warning", events.operator_action(action="adopt", symbol=symbol, by=command.by))
    position = engine.state.positions.get(symbol)
    if position is None and len(ghost_legs) > 1:
        raise ActionRefused(
            f"both legs of {symbol} are ghosts", fix=f"name the leg: '{symbol} long' or '{symbol} short'"
        )
    if position is None or not position.ghost:
        raise ActionRefused(
            f"{symbol} is not a ghost position", fix="adopt applies to positions marked GHOST"
        )
    result = AdoptResult(
        symbol=symbol,
        qty=dstr(position.qty),
        entry=dstr(position.entry),
        ghost=False,
        reason=f"ghost adopted by {command.by}",
        message=f"{symbol} {dstr(position.qty)} adopted by {command.by}",
    )
    engine.emit("position.changed", adopted_payload(result), "warning", "operator")
    return result


async def acknowledge(engine: ActionContext, command: Acknowledge) -> AckResult:
    """The operator has seen the incident (or every open one): its notifications stop repeating."""
    await _record(engine, "info", events.operator_action(action="ack", id=command.number, by=command.by))
    if engine.acknowledger is None:
        return AckResult((), command.by, "no notification targets: nothing repeats, nothing to acknowledge")
    acked = tuple(engine.acknowledger(command.number))
    if acked:
        message = f"acknowledged incident{'s' if len(acked) > 1 else ''} {', '.join(f'#{n}' for n in acked)}"
    elif command.number is not None:
        message = f"incident #{command.number} is not open (or was acknowledged already)"
    else:
        message = "no open incident to acknowledge"
    return AckResult(acked, command.by, message)


async def reset_peak(engine: Events, command: ResetPeak) -> PeakResetResult:
    """Start the drawdown's peak again from the equity now (see cockpit/engine/peak.py)."""
    await _record(engine, "warning", events.operator_action(action="reset_peak", by=command.by))
    return await peak.reset(engine, command.by, "the operator confirmed the old peak came from bad data")
