"""`cockpit …` subcommands: each command module registers its own parser (`register(commands)`).

A command module keeps its top-level imports light (the standard library, `cockpit.core`,
`cockpit.commands.parsing`) and imports its implementation when it runs, so `cockpit --help` stays fast
(`tests/test_cli_parsers.py` holds every module to that). `ctl`'s parser is built here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cockpit.commands import (
    analytics,
    attach,
    backup,
    config,
    demo,
    dlq,
    doctor,
    keys,
    notify,
    replay,
    run,
    service,
    sim,
    verify,
    watchdog,
)
from cockpit.commands.parsing import DEFAULT_CONFIG, Commands, Handler, config_option
from cockpit.core.errors import CockpitError

__all__ = ["DEFAULT_CONFIG", "Handler", "build_parser", "main"]


def _run_ctl(args: argparse.Namespace) -> int:
    if getattr(args, "fleet", None) is not None:
        from cockpit.commands.ctl_fleet import fleet_ctl

        return fleet_ctl(args)
    from cockpit.commands.ctl import ctl_command

    return ctl_command(args)


def _register_ctl(commands: Commands) -> None:
    ctl = commands.add_parser("ctl", help="control the running engine (works while the UI is frozen)")
    config_option(ctl, "the config the engine runs with")
    ctl.add_argument("--fleet", default=None, metavar="FILE", help="a fleet file: its accounts' engines")
    ctl.add_argument("--account", default=None, metavar="NAME", help="with --fleet: the account to act on")
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    status = ctl_sub.add_parser("status", help="positions, health, kill switch, equity, drawdown, rate limit")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--all", "--all-accounts", dest="all_accounts", action="store_true", help="with --fleet: each account"
    )
    ctl_sub.add_parser("reconcile", help="reconcile with the exchange now and print the differences")
    flatten = ctl_sub.add_parser("flatten", help="close one position or all with reduce-only market orders")
    flatten.add_argument("symbol", nargs="?", metavar="SYMBOL", help="e.g. BTCUSDT or BTC/USDT:USDT")
    flatten.add_argument("--all", action="store_true", help="every open position")
    flatten.add_argument(
        "--leg",
        choices=["long", "short"],
        default=None,
        help="hedge mode: only this leg of SYMBOL (without it, every leg of SYMBOL)",
    )
    flatten.add_argument("--yes", action="store_true", help="confirm without the typed prompt")
    flatten.add_argument(
        "--all-accounts", action="store_true", help="with --fleet and --all: every account (type FLATTEN ALL)"
    )
    kill = ctl_sub.add_parser("kill-switch", help="engage (on) or release (off) the kill switch")
    kill.add_argument("state", choices=["on", "off"])
    kill.add_argument("--all-accounts", action="store_true", help="with --fleet, on: each account (KILL ALL)")
    kill.add_argument("--yes", action="store_true", help="confirm a release (or KILL ALL) without the prompt")
    reset_peak = ctl_sub.add_parser(
        "reset-peak", help="start the drawdown's peak again from the equity now (after a bad sample)"
    )
    reset_peak.add_argument("--yes", action="store_true", help="confirm without the typed prompt")
    ack = ctl_sub.add_parser("ack", help="acknowledge incident N (or every open one): its notifications stop")
    ack.add_argument("number", nargs="?", type=int, metavar="N", help="the incident number its message gives")
    orders = ctl_sub.add_parser("orders", help="the open orders (and conditional orders), oldest first")
    orders.add_argument("--json", action="store_true", help="machine-readable output")
    cancel = ctl_sub.add_parser("cancel", help="cancel one open order, every order of a symbol, or all")
    cancel.add_argument("order", nargs="?", metavar="ORDER", help="its client order id or exchange order id")
    cancel.add_argument("--symbol", action="append", metavar="SYMBOL", help="every open order of SYMBOL")
    cancel.add_argument("--all", action="store_true", help="every open order on the account")
    cancel.add_argument("--yes", action="store_true", help="confirm without the prompt")
    ctl.set_defaults(handler=_run_ctl)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="A terminal trading cockpit for automated crypto derivatives strategies.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # the order of `cockpit --help`
    sim.register(commands)
    demo.register(commands)
    run.register(commands)
    attach.register(commands)
    service.register(commands)
    _register_ctl(commands)
    config.register(commands)
    doctor.register(commands)
    dlq.register(commands)
    backup.register(commands)  # backup, restore
    replay.register(commands)
    analytics.register(commands)  # sessions, report, export
    verify.register(commands)
    keys.register(commands)
    notify.register(commands)
    watchdog.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "needs_config", False) and getattr(args, "fleet", None) is None:
            from cockpit.config.location import config_file

            args.config = str(config_file(args.config))
        return handler(args)
    except CockpitError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
