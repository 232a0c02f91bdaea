"""`cockpit attach [--config FILE | SOCKET]`: the full cockpit over an engine that runs elsewhere (a service,
another pane, another machine through SSH socket forwarding); quitting leaves the engine running.

Several engines (one per account: `--config` repeated, several SOCKETs, or `--fleet FILE`) open the fleet:
the same cockpit on the selected account, a row per account, and fleet-wide emergencies
(cockpit/ui/fleet_app.py). One engine is exactly the single-engine cockpit."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from cockpit.commands.parsing import DEFAULT_CONFIG, Commands
from cockpit.core.errors import UsageError

Finder = Callable[[], Path]


def register(commands: Commands) -> None:
    attach = commands.add_parser(
        "attach", help="open the cockpit on a running engine, or on several (quitting leaves them running)"
    )
    attach.add_argument(
        "socket",
        nargs="*",
        default=[],
        metavar="SOCKET",
        help="an engine's control socket (e.g. one forwarded with `ssh -L`); several: a fleet; "
        "default: the config's engine",
    )
    attach.add_argument(
        "--config",
        action="append",
        default=None,
        metavar="FILE",
        help=f"the config an engine runs with (default: {DEFAULT_CONFIG}); repeat it for a fleet",
    )
    attach.add_argument(
        "--fleet",
        default=None,
        metavar="FILE",
        help="a fleet file: one [[account]] per engine, each with a name and its config or socket",
    )
    attach.set_defaults(handler=attach_command)


def socket_finder(socket: Path) -> Finder:
    def find() -> Path:
        return socket

    return find


def config_finder(config: Path) -> Finder:
    from cockpit.commands.ctl import resolve_socket

    def find() -> Path:
        return resolve_socket(config)

    return find


def missing_socket(socket: Path) -> UsageError:
    return UsageError(
        f"{socket} does not exist",
        "no engine's control socket is there",
        "an engine's socket is `.cockpit-control/<session file>.sock` beside its session file (the "
        "session folder's `.cockpit-live.json` names it); from another machine, forward it first: "
        "`ssh -N -L ~/cockpit.sock:REMOTE_SOCKET host`",
    )


def fleet_accounts(args: argparse.Namespace) -> list[tuple[str, Finder, str]]:
    """The accounts the arguments name: (name, its socket's finder, the `ctl` option that reaches it)."""
    from cockpit.config.fleet import FleetAccount, account_name, check_unique, load_fleet

    sockets = [Path(s).expanduser() for s in args.socket]
    configs = [Path(c).expanduser() for c in args.config or []]
    if args.fleet is not None:
        if sockets or configs:
            raise UsageError(
                "give a --fleet file, or SOCKETs / --config files, not both",
                f"got --fleet {args.fleet} and {' '.join(map(str, sockets + configs))}",
                "list every account in the fleet file ([[account]] with name and config or socket)",
            )
        listed = load_fleet(Path(args.fleet))
    else:
        for socket in sockets:
            if not socket.exists():
                raise missing_socket(socket)
        for config in configs:
            if not config.is_file():
                raise UsageError(
                    f"--config {config}: no such file", "its engine cannot be found", "fix the path"
                )
        listed = [FleetAccount(account_name(None, s), socket=s) for s in sockets]
        listed += [FleetAccount(account_name(c, None), config=c) for c in configs]
        try:
            check_unique(listed, None)
        except UsageError as exc:
            raise UsageError(
                "two engines would have the same account name",
                exc.detail,
                "name them in a fleet file (`cockpit attach --fleet FILE`, [[account]] with name = …)",
            ) from None
    accounts = []
    for account in listed:
        if account.config is not None:
            accounts.append((account.name, config_finder(account.config), f"--config {account.config}"))
        else:
            assert account.socket is not None
            there = f"--config F (on the machine of {account.socket})"
            accounts.append((account.name, socket_finder(account.socket), there))
    return accounts


def attach_command(args: argparse.Namespace) -> int:
    from cockpit.ui.launch import run_attached, run_fleet

    if args.socket and args.config:
        raise UsageError(
            "give a SOCKET or --config, not both",
            f"got {' '.join(args.socket)} and --config {' --config '.join(args.config)}",
            "`cockpit attach --config F` finds the engine of that config; `cockpit attach SOCKET` uses the "
            "socket as it is; `cockpit attach --fleet FILE` names several engines, each by config or socket",
        )
    if args.fleet is None and len(args.socket) + len(args.config or []) <= 1:
        return run_attached(single_engine(args))  # one engine: the cockpit as it has always been
    accounts = fleet_accounts(args)
    if len(accounts) == 1:
        return run_attached(accounts[0][1])
    return run_fleet(accounts)


def single_engine(args: argparse.Namespace) -> Finder:
    if args.socket:
        socket = Path(args.socket[0]).expanduser()
        if not socket.exists():
            raise missing_socket(socket)
        return socket_finder(socket)
    from cockpit.config.location import config_file

    config = config_file(args.config[0] if args.config else None)
    return config_finder(config)
