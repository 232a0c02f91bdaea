"""The fleet in the trader's words: each account's row, the fleet's totals, and each account's verified
outcome of a fleet-wide action. Pure: the fleet pane and `cockpit ctl --all-accounts` say the same."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from cockpit.core.commands import FlattenResult, KillSwitchStatus
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.state import State
from cockpit.core.wire import BadAnswer

Link = Literal["ok", "silent", "unreachable", "attaching"]
LINK_WORDS: dict[Link, str] = {
    "ok": "OK",
    "silent": "SILENT",
    "unreachable": "UNREACHABLE",
    "attaching": "ATTACHING",
}
ZERO = Decimal(0)


def link_of(problem: str | None, attached: bool = True) -> Link:
    """The link to an account's engine from its backend's `link_problem()` (and whether it holds a State)."""
    if problem is not None and problem.startswith("ENGINE UNREACHABLE"):
        return "unreachable"
    if not attached:
        return "attaching"  # nothing heard yet: its State is empty, never a reading
    if problem is not None and problem.startswith("ENGINE SILENT"):
        return "silent"
    return "unreachable" if problem is not None else "ok"


@dataclass(frozen=True)
class AccountView:
    """What the fleet pane shows of one account: its engine's State as this cockpit holds it, and the link."""

    name: str
    state: State
    link: Link = "ok"
    open_incidents: int | None = None  # None: not followed
    received: bool = True  # a State came from its engine at least once (else every figure is unknown)

    @property
    def counted(self) -> bool:
        """In the totals: only a State the engine is sending now (a lost or silent engine's may be old)."""
        return self.link == "ok"

    @property
    def ghosts(self) -> int:
        return sum(1 for p in self.state.positions.values() if p.ghost)


@dataclass(frozen=True)
class FleetTotals:
    equity: Decimal
    exposure: Decimal
    positions: int
    engaged: int  # kill switches engaged, of the accounts counted
    counted: int
    accounts: int
    left_out: tuple[AccountView, ...]  # not summed: unreachable, silent or attaching
    no_equity: tuple[str, ...]  # counted but no equity known yet: not in the equity, named

    @property
    def summed(self) -> int:
        """The accounts whose equity is in the TOTAL equity."""
        return self.counted - len(self.no_equity)


def fleet_totals(views: list[AccountView]) -> FleetTotals:
    counted = [v for v in views if v.counted]
    return FleetTotals(
        equity=sum((v.state.equity for v in counted if v.state.equity is not None), ZERO),
        exposure=sum((v.state.exposure for v in counted), ZERO),
        positions=sum(len(v.state.positions) for v in counted),
        engaged=sum(1 for v in counted if v.state.kill_switch.engaged),
        counted=len(counted),
        accounts=len(views),
        left_out=tuple(v for v in views if not v.counted),
        no_equity=tuple(v.name for v in counted if v.state.equity is None),
    )


# ----- fleet-wide actions: one verified outcome per account ------------------------------------------------
@dataclass(frozen=True)
class AccountOutcome:
    """One account's outcome of a fleet-wide action: `verified` only when its engine confirmed it."""

    account: str
    verified: bool
    reached: bool
    text: str

    def line(self) -> str:
        return f"{self.account}: {self.text}"


def kill_outcome(account: str, status: KillSwitchStatus) -> AccountOutcome:
    if status.engaged:
        return AccountOutcome(account, True, True, f"kill switch ENGAGED ({status.cause})")
    return AccountOutcome(account, False, True, "kill switch NOT engaged: act there")


def flatten_outcome(account: str, result: FlattenResult) -> AccountOutcome:
    if result.verified:
        return AccountOutcome(account, True, True, "flat, verified at the exchange")
    remains = ", ".join(f"{symbol} {qty}" for symbol, qty in result.remaining.items()) or "unknown"
    errors = f" ({'; '.join(result.errors)})" if result.errors else ""
    return AccountOutcome(account, False, True, f"NOT flat: {remains} still open{errors}")


def not_reached(account: str, why: str, act_there: str) -> AccountOutcome:
    return AccountOutcome(account, False, False, f"not reached — act there: {act_there} ({why})")


def unknown(account: str, why: str, check_there: str) -> AccountOutcome:
    """Sent, but no answer came back (the link dropped, a timeout): it may have acted, or not."""
    return AccountOutcome(account, False, True, f"no answer — check there: {check_there} ({why})")


def refused(account: str, why: str) -> AccountOutcome:
    return AccountOutcome(account, False, True, f"refused: {why}")


# the control socket's words for a command sent whose answer never came or cannot be read
# (engine/control.py `_request`), and the engine's for a command that failed while it ran (`_dispatch`)
UNKNOWN_OUTCOME = (
    "no answer within",
    "the engine closed the control socket",
    "the engine's answer could not",
    "the engine's answer is not",
    "the engine failed",
)
NOT_SENT = ("no engine", "ENGINE UNREACHABLE", "cannot connect")


def outcome_of_error(account: str, error: CockpitError, act_there: str, check_there: str) -> AccountOutcome:
    """An account whose engine did not answer the action: not reached (nothing was sent: act there; a config
    or usage error here is raised before anything is sent), sent but no readable answer or failed while it
    ran (it may have acted: check there), or refused by the engine (its words)."""
    why = f"{error.title}: {error.detail}" if error.detail else error.title
    if isinstance(error, UsageError) or error.title.startswith(NOT_SENT):
        return not_reached(account, error.detail or error.title, act_there)
    if isinstance(error, BadAnswer) or error.title.startswith(UNKNOWN_OUTCOME):
        return unknown(account, why, check_there)
    return refused(account, f"{error.title} {error.detail}".strip())


def outcomes_summary(action: str, outcomes: list[AccountOutcome]) -> str:
    verified = sum(1 for o in outcomes if o.verified)
    return f"{action}: verified on {verified} of {len(outcomes)} accounts"
