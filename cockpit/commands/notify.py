"""`cockpit notify test --config F`: a test message to each notification target, said target by target."""

from __future__ import annotations

import argparse

from cockpit.commands.parsing import Commands, config_option


def register(commands: Commands) -> None:
    notify = commands.add_parser("notify", help="notification targets ([notify.targets.NAME])")
    actions = notify.add_subparsers(dest="notify_action", metavar="ACTION", required=True)
    test = actions.add_parser("test", help="send a test message to each target and say which arrived")
    config_option(test, "the config whose targets are tried")
    test.add_argument("--target", default=None, metavar="NAME", help="only this target")
    notify.set_defaults(handler=notify_command)


def notify_command(args: argparse.Namespace) -> int:
    import socket
    import time
    from pathlib import Path

    from cockpit.config.secrets import load_notify_urls
    from cockpit.config.settings import load_config
    from cockpit.core.errors import UsageError
    from cockpit.notify.delivery import DeliveryFailed, apprise_send
    from cockpit.notify.messages import Message, utc

    config = load_config(Path(args.config))
    names = list(config.notify.targets)
    if args.target is not None:
        if args.target not in names:
            raise UsageError(
                f"no target {args.target!r} in {args.config}",
                f"its targets: {', '.join(names) or 'none'}",
                f"add [notify.targets.{args.target}] to the config, or name one of its targets",
            )
        names = [args.target]
    if not names:
        raise UsageError(
            f"no notification targets in {args.config}",
            "nothing to test",
            "add a [notify.targets.NAME] table (see the README's Notifications section)",
        )
    urls = load_notify_urls(names)
    where = f"{config.exchange.id} on {socket.gethostname()}"
    failed = 0
    for name in names:
        message = Message(
            f"[cockpit test] {name}",
            f"A test from cockpit ({where}) at {utc(time.time())}: this target receives "
            f"{config.notify.targets[name].min_severity} incidents and above.",
            "info",
            change="test",
        )
        try:
            apprise_send(urls[name], message)
        except DeliveryFailed as exc:
            failed += 1
            print(f"{name}: FAILED — {exc}")
        else:
            print(f"{name}: sent")
    return 1 if failed else 0
