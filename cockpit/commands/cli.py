"""`cockpit …` subcommands.

Parsers live here so `cockpit --help` is fast; each command imports its implementation lazily.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cockpit.core.errors import CockpitError

Handler = Callable[[argparse.Namespace], int]


def _run_sim(args: argparse.Namespace) -> int:
    from cockpit.commands.sim import run_sim_command

    return run_sim_command(args)


def _run_demo(args: argparse.Namespace) -> int:
    from cockpit.commands.demo import run_demo_command

    return run_demo_command(args)


def _run_run(args: argparse.Namespace) -> int:
    from cockpit.commands.run import run_command

    return run_command(args)


def _run_ctl(args: argparse.Namespace) -> int:
    from cockpit.commands.ctl import ctl_command

    return ctl_command(args)


def _run_doctor(args: argparse.Namespace) -> int:
    from cockpit.commands.doctor import doctor_command

    return doctor_command(args)


def _run_dlq(args: argparse.Namespace) -> int:
    from cockpit.commands.dlq import dlq_command

    return dlq_command(args)


def _run_backup(args: argparse.Namespace) -> int:
    from cockpit.commands.backup import backup_command

    return backup_command(args)


def _run_restore(args: argparse.Namespace) -> int:
    from cockpit.commands.backup import restore_command

    return restore_command(args)


def _run_replay(args: argparse.Namespace) -> int:
    from cockpit.commands.replay import replay_command

    return replay_command(args)


def _run_sessions(args: argparse.Namespace) -> int:
    from cockpit.commands.analytics import sessions_command

    return sessions_command(args)


def _run_report(args: argparse.Namespace) -> int:
    from cockpit.commands.analytics import report_cli

    return report_cli(args)


def _run_export(args: argparse.Namespace) -> int:
    from cockpit.commands.analytics import export_command

    return export_command(args)


def _run_config_validate(args: argparse.Namespace) -> int:
    from cockpit.commands.config import validate_command

    return validate_command(args.file)


def _run_keys(args: argparse.Namespace) -> int:
    from cockpit.commands.keys import keys_command

    return keys_command(args.action, args.exchange)


DEFAULT_CONFIG = "$XDG_CONFIG_HOME/cockpit/config.toml"


def _config_option(parser: argparse.ArgumentParser, what: str = "cockpit TOML config") -> None:
    """`--config FILE`, defaulting to the config file at the default location (resolved in `main`)."""
    parser.add_argument("--config", default=None, metavar="FILE", help=f"{what} (default: {DEFAULT_CONFIG})")
    parser.set_defaults(needs_config=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cockpit",
        description="A terminal trading cockpit for automated crypto derivatives strategies.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sim = sub.add_parser("sim", help="run the Binance USD-M exchange simulator on loopback")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    sim.add_argument("--api-key", default=None, help="API key the simulator accepts (default: demo key)")
    sim.add_argument("--api-secret", default=None, help="API secret the simulator accepts (default: demo)")
    sim.add_argument("--seed", type=int, default=1, help="seed of the price random walk (default 1)")
    sim.add_argument("--no-activity", action="store_true", help="do not run the built-in demo trader")
    sim.add_argument("--scenario", default=None, metavar="FILE", help="TOML file of scheduled faults")
    sim.set_defaults(handler=_run_sim)

    demo = sub.add_parser("demo", help="run cockpit against an in-process simulator (no account needed)")
    demo.add_argument("--session", default=None, metavar="PATH", help="session DuckDB file")
    demo.add_argument("--headless", action="store_true", help="print events instead of the UI")
    demo.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulator (default 1)")
    demo.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    demo.set_defaults(handler=_run_demo)

    run = sub.add_parser("run", help="run cockpit against the exchange in the config")
    _config_option(run)
    run.add_argument("--headless", action="store_true", help="print events instead of the UI")
    run.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    run.add_argument("--dry-run", action="store_true", help="everything but sending orders")
    run.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    run.set_defaults(handler=_run_run)

    ctl = sub.add_parser("ctl", help="control the running engine (works while the UI is frozen)")
    _config_option(ctl, "the config the engine runs with")
    ctl_sub = ctl.add_subparsers(dest="ctl_command", metavar="ACTION", required=True)
    status = ctl_sub.add_parser("status", help="positions, health, kill switch, equity, drawdown, rate limit")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    ctl_sub.add_parser("reconcile", help="reconcile with the exchange now and print the differences")
    flatten = ctl_sub.add_parser("flatten", help="close one position or all with reduce-only market orders")
    flatten.add_argument("symbol", nargs="?", metavar="SYMBOL", help="e.g. BTCUSDT or BTC/USDT:USDT")
    flatten.add_argument("--all", action="store_true", help="every open position")
    flatten.add_argument("--yes", action="store_true", help="confirm without the typed prompt")
    kill = ctl_sub.add_parser("kill-switch", help="engage (on) or release (off) the kill switch")
    kill.add_argument("state", choices=["on", "off"])
    kill.add_argument("--yes", action="store_true", help="confirm a release without the typed prompt")
    ctl.set_defaults(handler=_run_ctl)

    config = sub.add_parser("config", help="configuration files")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    validate = config_sub.add_parser("validate", help="check a config file and name every error")
    validate.add_argument("file", metavar="FILE")
    validate.set_defaults(handler=_run_config_validate)

    doctor = sub.add_parser("doctor", help="check config, keys, exchange, clock, session file, backups, disk")
    _config_option(doctor)
    doctor.add_argument("--json", action="store_true", help="machine-readable report")
    doctor.set_defaults(handler=_run_doctor)

    dlq = sub.add_parser("dlq", help="the dead-letter queue: operations that failed for good")
    _config_option(dlq)
    dlq_sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    dlq_list = dlq_sub.add_parser("list", help="list dead letters")
    dlq_list.add_argument("--op", default=None, help="only this operation, e.g. create_order")
    dlq_list.add_argument("--reason", default=None, help="only reasons containing this text")
    dlq_list.add_argument("--status", default="open", help="open (default), retried, removed or all")
    dlq_list.add_argument("--json", action="store_true", help="machine-readable output")
    dlq_sub.add_parser("stats", help="counts by operation, class and reason")
    dlq_retry = dlq_sub.add_parser("retry", help="retry one dead letter through the running engine")
    dlq_retry.add_argument("id", type=int)
    dlq_retry.add_argument("--yes", action="store_true", help="confirm without the prompt")
    dlq_remove = dlq_sub.add_parser("remove", help="mark one dead letter removed")
    dlq_remove.add_argument("id", type=int)
    dlq_cleanup = dlq_sub.add_parser("cleanup", help="delete dead letters older than N days")
    dlq_cleanup.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    dlq.set_defaults(handler=_run_dlq)

    backup = sub.add_parser(
        "backup", help="a verified backup of the session file (the engine may be running)"
    )
    _config_option(backup)
    backup.set_defaults(handler=_run_backup)

    restore = sub.add_parser("restore", help="restore the session file from a verified backup")
    _config_option(restore)
    which = restore.add_mutually_exclusive_group(required=True)
    which.add_argument("--list", action="store_true", help="list the backups with age, size and verification")
    which.add_argument("--latest", action="store_true", help="the newest verified backup")
    which.add_argument("path", nargs="?", default=None, metavar="BACKUP", help="a backup file")
    restore.add_argument("--yes", action="store_true", help="confirm without the typed prompt")
    restore.set_defaults(handler=_run_restore)

    replay = sub.add_parser("replay", help="replay a session file in the cockpit's panes (read-only)")
    replay.add_argument("session", metavar="SESSION.duckdb")
    replay.add_argument(
        "--end", action="store_true", help="open at the end of the session instead of the start"
    )
    replay.set_defaults(handler=_run_replay)

    sessions = sub.add_parser("sessions", help="the session files in the data directory, summarised")
    sessions.add_argument(
        "--dir", default=None, help="folder of session files (default: the config's session folder)"
    )
    sessions.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"list the session folder of this config (default: {DEFAULT_CONFIG} if it exists, "
        "else the data directory's sessions/)",
    )
    sessions.add_argument("--json", action="store_true", help="machine-readable output")
    sessions.set_defaults(handler=_run_sessions)

    report = sub.add_parser("report", help="incident report and analytics of a session file")
    report.add_argument("session", metavar="SESSION.duckdb")
    report.add_argument("--format", choices=["md", "json"], default="md", help="markdown (default) or json")
    report.set_defaults(handler=_run_report)

    export = sub.add_parser("export", help="a session as Parquet files (readable by DuckDB, Polars, Spark)")
    export.add_argument("session", metavar="SESSION.duckdb")
    export.add_argument("--parquet", required=True, metavar="DIR", help="folder for the .parquet files")
    export.set_defaults(handler=_run_export)

    from cockpit.commands import verify

    verify.register(sub)

    keys = sub.add_parser("keys", help="API keys in the OS keyring")
    keys.add_argument("action", choices=["set", "check", "delete"])
    keys.add_argument("exchange", metavar="EXCHANGE", help="ccxt exchange id, e.g. binanceusdm")
    keys.set_defaults(handler=_run_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        if getattr(args, "needs_config", False):
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
