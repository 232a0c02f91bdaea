"""The kill switch: no new risk. Engaging is immediate; it does not close positions; release needs the cause
cleared. Its state and cause are events, so they survive restarts."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from cockpit.domain import Event
from cockpit.errors import CockpitError
from cockpit.state import KillSwitch

if TYPE_CHECKING:
    from cockpit.engine.engine import Engine


class ActionRefused(CockpitError):
    """An operator action that cannot be done now; the message says why and what to do."""


async def engage(engine: Engine, cause: str, by: str) -> bool:
    """Engage (idempotent): True if this call engaged it."""
    if engine.state.kill_switch.engaged:
        return False
    await engine.record(
        "killswitch.engaged",
        {
            "cause": cause,
            "by": by,
            "message": f"KILL SWITCH engaged by {by}: {cause} — no new risk; positions stay open",
        },
        "critical",
        "risk" if by in ("risk", "clock", "flag-file", "store") else "operator",
    )
    return True


def cause_still_present(engine: Engine) -> str | None:
    """Why releasing now would be unsafe, or None."""
    state = engine.state
    risk = engine.config.risk
    if engine.kill_flag.exists():
        return f"the flag file {engine.kill_flag} still exists: remove it first"
    drawdown = float(state.drawdown_pct)
    if drawdown >= risk.kill_drawdown_pct:
        return f"drawdown {drawdown:.2f}% is still at or above the {risk.kill_drawdown_pct}% limit"
    offset = state.clock_offset_ms
    if offset is not None and abs(offset) >= risk.clock_kill_ms:
        return (
            f"clock offset {offset:+.0f} ms is still beyond {risk.clock_kill_ms} ms: fix the time sync first"
        )
    return None


async def release(engine: Engine, by: str) -> None:
    if not engine.state.kill_switch.engaged:
        raise ActionRefused("the kill switch is not engaged", fix="nothing to release")
    reason = cause_still_present(engine)
    if reason is not None:
        raise ActionRefused(
            "the kill switch cannot be released yet", reason, "clear the cause, then release again"
        )
    await engine.record(
        "killswitch.released",
        {
            "by": by,
            "previous_cause": engine.state.kill_switch.cause,
            "message": f"kill switch released by {by}",
        },
        "warning",
        "operator",
    )


def engage_unpersisted(engine: Engine, cause: str) -> None:
    """The store is gone: engage in memory and tell every subscriber, without a (now impossible) commit."""
    state = engine.core.state
    engine.core.state = replace(state, kill_switch=KillSwitch(True, cause, "store", time.time()))
    event = Event(
        0,
        time.time(),
        "killswitch.engaged",
        "critical",
        "store",
        {
            "cause": cause,
            "by": "store",
            "persisted": False,
            "message": f"KILL SWITCH engaged: {cause} — the session file can no longer be written; stopping",
        },
    )
    engine.core.deliver(event)
