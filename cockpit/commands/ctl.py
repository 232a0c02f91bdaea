"""`cockpit ctl --config FILE status|reconcile|flatten|kill-switch`: talk to the running engine."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from cockpit.config.secrets import load_credentials
from cockpit.config.settings import Config, load_config
from cockpit.core.errors import CockpitError, UsageError
from cockpit.engine.account_files import AccountFiles, account_key
from cockpit.engine.control import live_pointer, request, socket_path_for
from cockpit.engine.status import render_status


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
        return socket_path_for(config.session.path)
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


def ctl_command(args: argparse.Namespace) -> int:
    path = resolve_socket(Path(args.config))
    payload: dict[str, Any]
    if args.ctl_command == "status":
        payload = {"cmd": "status"}
    elif args.ctl_command == "reconcile":
        payload = {"cmd": "reconcile"}
    elif args.ctl_command == "flatten":
        if not args.symbol and not args.all:
            raise UsageError(
                "flatten needs a SYMBOL or --all", fix="e.g. `cockpit ctl --config F flatten BTCUSDT`"
            )
        if args.symbol and args.all:
            raise UsageError("give either a SYMBOL or --all, not both")
        target = "ALL positions" if args.all else args.symbol
        _confirm("FLATTEN", f"Flatten {target} with reduce-only market orders", args.yes)
        payload = {"cmd": "flatten", "symbols": None if args.all else [args.symbol]}
    else:
        on = args.state == "on"
        if not on:
            _confirm("RELEASE", "Release the kill switch (new risk becomes possible)", args.yes)
        payload = {"cmd": "kill_switch", "on": on}
    payload["by"] = "ctl"
    wait_s = 900.0 if payload["cmd"] == "flatten" else 120.0  # flatten under rate limits can take minutes
    reply = asyncio.run(request(path, payload, wait_s=wait_s))
    if not reply.get("ok"):
        raise CockpitError(
            str(reply.get("error")), str(reply.get("detail") or ""), str(reply.get("fix") or "")
        )
    result = reply["result"]
    if getattr(args, "json", False) or args.ctl_command != "status":
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_status(result))
    if args.ctl_command == "flatten" and not result.get("verified", False):
        return 1
    return 0
