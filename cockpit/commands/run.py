"""`cockpit run --config FILE [--headless] [--json] [--dry-run]`."""

from __future__ import annotations

import argparse

from cockpit.commands.parsing import Commands, config_option


def register(commands: Commands) -> None:
    run = commands.add_parser("run", help="run cockpit against the exchange in the config")
    config_option(run)
    run.add_argument("--headless", action="store_true", help="print events instead of the UI")
    run.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    run.add_argument("--dry-run", action="store_true", help="everything but sending orders")
    run.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    run.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from cockpit.config.secrets import load_credentials
    from cockpit.config.settings import load_config
    from cockpit.engine.options import EngineOptions
    from cockpit.engine.runtime import RunSpec, json_printer, run, session_file_for, text_printer

    config = load_config(Path(args.config))
    credentials = load_credentials(config.exchange.id)
    spec = RunSpec(
        config=config,
        credentials=credentials,
        session_file=session_file_for(config),
        options=EngineOptions(mode="dry-run" if args.dry_run else "live"),
    )
    if not args.headless:
        from cockpit.ui.launch import run_live

        return run_live(spec)
    printer = json_printer if args.json else text_printer
    return asyncio.run(run(spec, printer=printer, duration=args.duration))
