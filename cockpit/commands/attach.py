"""`cockpit attach [--config FILE | SOCKET]`: the full cockpit over an engine that runs elsewhere (a service,
another pane, another machine through SSH socket forwarding); quitting leaves the engine running."""

from __future__ import annotations

import argparse

from cockpit.commands.parsing import DEFAULT_CONFIG, Commands


def register(commands: Commands) -> None:
    attach = commands.add_parser(
        "attach", help="open the cockpit on a running engine (quitting leaves the engine running)"
    )
    attach.add_argument(
        "socket",
        nargs="?",
        default=None,
        metavar="SOCKET",
        help="the engine's control socket (e.g. one forwarded with `ssh -L`); default: the config's engine",
    )
    attach.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"the config the engine runs with (default: {DEFAULT_CONFIG})",
    )
    attach.set_defaults(handler=attach_command)


def attach_command(args: argparse.Namespace) -> int:
    from collections.abc import Callable
    from pathlib import Path

    from cockpit.core.errors import UsageError
    from cockpit.ui.launch import run_attached

    if args.socket is not None and args.config is not None:
        raise UsageError(
            "give a SOCKET or --config, not both",
            f"got {args.socket} and --config {args.config}",
            "`cockpit attach --config F` finds the engine of that config; `cockpit attach SOCKET` uses the "
            "socket as it is",
        )
    find: Callable[[], Path]
    if args.socket is not None:
        socket = Path(args.socket).expanduser()
        if not socket.exists():
            raise UsageError(
                f"{socket} does not exist",
                "no engine's control socket is there",
                "an engine's socket is `.cockpit-control/<session file>.sock` beside its session file (the "
                "session folder's `.cockpit-live.json` names it); from another machine, forward it first: "
                "`ssh -N -L ~/cockpit.sock:REMOTE_SOCKET host`",
            )

        def find() -> Path:
            return socket

    else:
        from cockpit.commands.ctl import resolve_socket
        from cockpit.config.location import config_file

        config = config_file(args.config)

        def find() -> Path:
            return resolve_socket(config)

    return run_attached(find)
