"""`cockpit ctl --config FILE status|reconcile|flatten|kill-switch|reset-peak|ack|orders|cancel`: talk to the
running engine."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

from cockpit.config.secrets import load_credentials
from cockpit.config.settings import Config, load_config
from cockpit.core.commands import (
    Acknowledge,
    AckResult,
    CancelOrders,
    CancelResult,
    Flatten,
    FlattenResult,
    KillSwitch,
    Orders,
    OrdersReport,
    Reconcile,
    ResetPeak,
    Result,
    Status,
    StatusReport,
)
from cockpit.core.errors import CockpitError, UsageError
from cockpit.core.wire import result_to_json
from cockpit.engine.account_files import AccountFiles, account_key
from cockpit.engine.control import ask, live_pointer, socket_path_for
from cockpit.engine.status import render_orders, render_status

BY = "ctl"


def account_engine_socket(config: Config) -> Path | None:
    """The socket the engine trading this config's account announced, whatever session file it writes."""
    try:
        credentials = load_credentials(config.exchange.id)
    except CockpitError:  # no key here: fall back to the session file's socket
        return None
    exchange = config.exchange
    files = AccountFiles(account_key(exchange.id, exchange.base_url, exchange.testnet, credentials.api_key))
    running = files.running_engine()
    return Path(running["socket"]) if running and running.get("socket") else None


def resolve_socket(config_file: Path) -> Path:
    config = load_config(config_file)
    announced = account_engine_socket(config)
    if announced is not None:
        return announced
    if config.session.path is not None:
        from cockpit.engine.rotation import follow_rotations

        return socket_path_for(follow_rotations(config.session.path))  # a rotated session: its newest file
    pointer = live_pointer(config.session.dir)
    if not pointer.exists():
        raise CockpitError(
            "no engine is running for this config",
            f"no live session recorded in {pointer}",
            "start one with `cockpit run --config FILE`, or set [session] path in the config",
        )
    return Path(orjson.loads(pointer.read_bytes())["socket"])


def _confirm(word: str, what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{what} needs confirmation", "stdin is not a terminal", "add --yes to confirm")
    answer = input(f"{what}. Type {word} to confirm: ").strip()
    if answer != word:
        raise UsageError("not confirmed", f"expected {word!r}, got {answer!r}", "nothing was done")


def _yes_no(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{what} needs confirmation", "stdin is not a terminal", "add --yes to confirm")
    if input(f"{what}? [y/N] ").strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed", "nothing was done")


def _cancel_request(args: argparse.Namespace) -> CancelOrders:
    given = [bool(args.order), bool(args.symbol), bool(args.all)]
    if sum(given) != 1:
        raise UsageError(
            "cancel needs exactly one of ORDER, --symbol SYMBOL or --all",
            f"got {'none' if not any(given) else 'more than one'}",
            "e.g. `cockpit ctl --config F cancel ck-1a2b` (`cockpit ctl orders` lists the ids), "
            "`cancel --symbol BTCUSDT` or `cancel --all`",
        )
    if args.order:
        _yes_no(f"Cancel order {args.order}", args.yes)
        return CancelOrders(order=args.order, by=BY)
    target = (
        "EVERY open order on the account" if args.all else f"every open order of {', '.join(args.symbol)}"
    )
    _confirm("CANCEL", f"Cancel {target} (conditional orders too)", args.yes)
    return CancelOrders(symbols=None if args.all else tuple(args.symbol), by=BY)


def ctl_request(
    args: argparse.Namespace,
) -> Status | Reconcile | Flatten | KillSwitch | ResetPeak | Acknowledge | Orders | CancelOrders:
    """The command the arguments name (asking to confirm a destructive one)."""
    if args.ctl_command == "status":
        return Status(by=BY)
    if args.ctl_command == "orders":
        return Orders(by=BY)
    if args.ctl_command == "cancel":
        return _cancel_request(args)
    if args.ctl_command == "ack":
        return Acknowledge(number=args.number, by=BY)
    if args.ctl_command == "reconcile":
        return Reconcile(by=BY)
    if args.ctl_command == "flatten":
        if not args.symbol and not args.all:
            raise UsageError(
                "flatten needs a SYMBOL or --all", fix="e.g. `cockpit ctl --config F flatten BTCUSDT`"
            )
        if args.symbol and args.all:
            raise UsageError("give either a SYMBOL or --all, not both")
        leg = getattr(args, "leg", None)
        if leg and args.all:
            raise UsageError("--leg names one leg of a SYMBOL; --all flattens every leg", fix="drop one")
        named = f"{args.symbol} {leg}" if leg else args.symbol
        target = "ALL positions" if args.all else named
        _confirm("FLATTEN", f"Flatten {target} with market orders that can only reduce", args.yes)
        return Flatten(symbols=None if args.all else (named,), by=BY)
    if args.ctl_command == "reset-peak":
        _confirm(
            "RESET",
            "Reset the drawdown's peak to the equity now (the drawdown starts again from 0)",
            args.yes,
        )
        return ResetPeak(by=BY)
    on = args.state == "on"
    if not on:
        _confirm("RELEASE", "Release the kill switch (new risk becomes possible)", args.yes)
    return KillSwitch(on=on, by=BY)


def ctl_command(args: argparse.Namespace) -> int:
    """One engine's ctl (a fleet's: ctl_fleet.py, chosen by the CLI)."""
    for option in ("account", "all_accounts"):
        if getattr(args, option, None):
            flag = "--" + option.replace("_", "-")
            raise UsageError(f"{flag} needs --fleet FILE", fix=f"`cockpit ctl --fleet FILE {flag} …`")
    return ctl_on(resolve_socket(Path(args.config)), args)


def ctl_on(path: Path, args: argparse.Namespace) -> int:
    """The command the arguments name, sent to the engine at `path`, its answer printed; the exit code."""
    command = ctl_request(args).confirmed()  # the operator confirmed what needs it (or gave --yes)
    wait_s = 900.0 if isinstance(command, Flatten) else 120.0  # flatten under rate limits can take minutes
    result: Result = asyncio.run(ask(path, command, wait_s=wait_s))
    if isinstance(result, StatusReport) and not getattr(args, "json", False):
        print(render_status(result))
    elif isinstance(result, OrdersReport) and not getattr(args, "json", False):
        print(render_orders(result))
    elif isinstance(result, AckResult):
        print(result.message)
    else:
        print(orjson.dumps(result_to_json(result), option=orjson.OPT_INDENT_2).decode())
    if isinstance(result, FlattenResult) and not result.verified:
        return 1
    if isinstance(result, CancelResult) and (not result.verified or result.errors):
        return 1
    return 0
