"""`cockpit ctl --fleet FILE …`: one account's engine (`--account NAME`), or every account's at once.

`status --all` prints every account and the fleet's totals (an engine that cannot be reached is named and
left out of them); `kill-switch on --all-accounts` and `flatten --all --all-accounts` ask for KILL ALL /
FLATTEN ALL (or --yes), send the same typed command to every engine at once (each records it before it
acts), print each account's verified outcome and exit 1 unless every account was reached and verified.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from cockpit.commands.ctl import _confirm, ctl_on, resolve_socket
from cockpit.config.fleet import FleetAccount, load_fleet
from cockpit.core.commands import Flatten, KillSwitch, Status, StatusReport
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.fleet import (
    AccountOutcome,
    flatten_outcome,
    kill_outcome,
    not_reached,
    outcome_of_error,
    outcomes_summary,
    unknown,
)
from cockpit.core.text import fmt_money
from cockpit.core.wire import result_to_json
from cockpit.engine.control import ask
from cockpit.engine.status import render_status

BY = "ctl"
KILL_ALL_WORD = "KILL ALL"
FLATTEN_ALL_WORD = "FLATTEN ALL"
FLATTEN_WAIT_S = 900.0


def socket_of(account: FleetAccount) -> Path:
    if account.config is not None:
        return resolve_socket(account.config)
    assert account.socket is not None
    return account.socket


def act_there(account: FleetAccount) -> str:
    if account.config is not None:
        return f"--config {account.config}"
    return f"--config F (on the machine of {account.socket})"


def pick(accounts: list[FleetAccount], name: str | None, fleet: str) -> FleetAccount:
    names = ", ".join(a.name for a in accounts)
    if name is None:
        if len(accounts) == 1:
            return accounts[0]
        raise UsageError(
            "which account? the fleet has several",
            f"{fleet} lists {names}",
            "name one with --account NAME (or --all-accounts where the action allows it)",
        )
    for account in accounts:
        if account.name == name:
            return account
    raise UsageError(f"no account named {name!r} in {fleet}", f"its accounts: {names}", "pick one of them")


def fleet_ctl(args: argparse.Namespace) -> int:
    if args.config is not None:
        raise UsageError(
            "give --config or --fleet, not both",
            f"got --config {args.config} and --fleet {args.fleet}",
            "`--fleet FILE --account NAME` picks one account of the fleet",
        )
    accounts = load_fleet(Path(args.fleet))
    if not getattr(args, "all_accounts", False):
        account = pick(accounts, args.account, args.fleet)
        return ctl_on(socket_of(account), args)
    if args.account is not None:
        raise UsageError("--account names one account; --all-accounts every one", fix="drop one of them")
    if args.ctl_command == "status":
        return status_all(accounts, getattr(args, "json", False))
    if args.ctl_command == "kill-switch":
        if args.state != "on":
            raise UsageError(
                "the kill switch is released one account at a time",
                "kill-switch off --all-accounts is not an emergency action",
                "`cockpit ctl --fleet F --account NAME kill-switch off`",
            )
        names = ", ".join(a.name for a in accounts)
        _confirm(KILL_ALL_WORD, f"Engage the kill switch on EVERY account ({names})", args.yes)
        return print_outcomes("kill switch on ALL accounts", asyncio.run(kill_all(accounts)))
    if args.ctl_command == "flatten":
        if not args.all or args.symbol or args.leg:
            raise UsageError(
                "on every account, flatten takes --all (every position), not a SYMBOL",
                fix="`cockpit ctl --fleet F flatten --all --all-accounts`, or --account NAME for one symbol",
            )
        names = ", ".join(a.name for a in accounts)
        what = f"Flatten EVERY position on EVERY account ({names}) with market orders that can only reduce"
        _confirm(FLATTEN_ALL_WORD, what, args.yes)
        return print_outcomes("flatten ALL accounts", asyncio.run(flatten_all(accounts)))
    raise UsageError(
        f"{args.ctl_command} acts on one account",
        "--all-accounts is for status, kill-switch on and flatten --all",
        "name the account with --account NAME",
    )


# ----- every account at once ----------------------------------------------------------------------------
async def every_account(
    accounts: list[FleetAccount], action: Callable[[Path], Awaitable[AccountOutcome]], verb: str
) -> list[AccountOutcome]:
    async def one(account: FleetAccount) -> AccountOutcome:
        there = f"`cockpit ctl {act_there(account)} {verb}`"
        check = f"`cockpit ctl {act_there(account)} status`"
        try:
            path = socket_of(account)
        except Exception as exc:  # its engine cannot be found (no session, a corrupt pointer): nothing sent
            why = (
                f"{exc.title}: {exc.detail}"
                if isinstance(exc, CockpitError)
                else f"{type(exc).__name__}: {exc}"
            )
            return not_reached(account.name, why, there)
        try:
            outcome = await action(path)
        except CockpitError as exc:
            return outcome_of_error(account.name, exc, there, check)
        except Exception as exc:  # lost mid-action, an answer unread: its outcome is unknown here
            return unknown(account.name, f"{type(exc).__name__}: {exc}".rstrip(": "), check)
        return AccountOutcome(account.name, outcome.verified, outcome.reached, outcome.text)

    return list(await asyncio.gather(*(one(a) for a in accounts)))


async def kill_all(accounts: list[FleetAccount]) -> list[AccountOutcome]:
    cause = "engaged on every account of the fleet (ctl)"

    async def engage(path: Path) -> AccountOutcome:
        return kill_outcome("", await ask(path, KillSwitch(on=True, cause=cause, by=BY)))

    return await every_account(accounts, engage, "kill-switch on")


async def flatten_all(accounts: list[FleetAccount]) -> list[AccountOutcome]:
    async def flatten(path: Path) -> AccountOutcome:
        command = Flatten(symbols=None, by=BY).confirmed()
        return flatten_outcome("", await ask(path, command, wait_s=FLATTEN_WAIT_S))

    return await every_account(accounts, flatten, "flatten --all --yes")


def print_outcomes(action: str, outcomes: list[AccountOutcome]) -> int:
    for outcome in outcomes:
        print(f"{'VERIFIED' if outcome.verified else 'NOT VERIFIED'}  {outcome.line()}")
    print(outcomes_summary(action, outcomes))
    return 0 if all(o.verified for o in outcomes) else 1


# ----- status of every account, and the fleet's totals ----------------------------------------------------
async def statuses(accounts: list[FleetAccount]) -> list[StatusReport | CockpitError]:
    async def one(account: FleetAccount) -> StatusReport | CockpitError:
        try:
            return await ask(socket_of(account), Status(by=BY))
        except CockpitError as exc:
            return exc
        except Exception as exc:  # e.g. its pointer file unreadable: that account only, named
            return CockpitError(f"its engine cannot be found: {type(exc).__name__}", str(exc))

    return list(await asyncio.gather(*(one(a) for a in accounts)))


def exposure(report: StatusReport) -> Decimal:
    return sum((abs(Decimal(p.qty) * Decimal(p.mark)) for p in report.positions if p.mark), Decimal(0))


def status_all(accounts: list[FleetAccount], as_json: bool) -> int:
    reports = asyncio.run(statuses(accounts))
    reached = [(a, r) for a, r in zip(accounts, reports, strict=True) if isinstance(r, StatusReport)]
    missing = [(a, r) for a, r in zip(accounts, reports, strict=True) if isinstance(r, CockpitError)]
    equity = sum((Decimal(r.equity) for _, r in reached if r.equity is not None), Decimal(0))
    no_equity = [a.name for a, r in reached if r.equity is None]  # reached, but its equity not known yet
    summed = len(reached) - len(no_equity)
    totals: dict[str, Any] = {
        "equity": str(equity),
        "exposure": str(sum((exposure(r) for _, r in reached), Decimal(0))),
        "positions": sum(len(r.positions) for _, r in reached),
        "kill_switch_engaged": sum(1 for _, r in reached if r.kill_switch.engaged),
        "accounts_summed": len(reached),
        "equity_summed": summed,
        "accounts": len(accounts),
        "left_out": [a.name for a, _ in missing],
        "equity_unknown": no_equity,
    }
    if as_json:
        out: dict[str, Any] = {
            "accounts": {
                a.name: result_to_json(r)
                if isinstance(r, StatusReport)
                else {"unreachable": f"{r.title}: {r.detail}"}
                for a, r in zip(accounts, reports, strict=True)
            },
            "totals": totals,
        }
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    else:
        for account, report in zip(accounts, reports, strict=True):
            print(f"== {account.name} ==")
            if isinstance(report, StatusReport):
                print(render_status(report))
            else:
                print(f"UNREACHABLE: {report.title} ({report.detail})")
        left_out = f" · left out (unreachable): {', '.join(totals['left_out'])}" if missing else ""
        left_out += f" · equity unknown: {', '.join(no_equity)}" if no_equity else ""
        print(
            f"TOTAL equity {fmt_money(equity)} USDT over {summed} of {len(accounts)} accounts · "
            f"exposure {fmt_money(Decimal(totals['exposure']))} · {totals['positions']} positions · "
            f"{totals['kill_switch_engaged']} of {len(reached)} engaged{left_out}"
        )
    return 1 if missing else 0
