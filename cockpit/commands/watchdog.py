"""`cockpit watchdog --config F`: outside the engine's process, ask it every `watchdog.every_s` and tell the
notification targets when it stops answering, committing events or hearing the market (its own service
unit: `cockpit service unit --watchdog`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cockpit.commands.parsing import Commands, config_option

if TYPE_CHECKING:
    from pathlib import Path

    from cockpit.config.settings import Config
    from cockpit.watchdog.watch import Asker


def register(commands: Commands) -> None:
    watchdog = commands.add_parser(
        "watchdog", help="tell the notification targets when the engine stops answering or falls silent"
    )
    config_option(watchdog, "the config the engine runs with (its [notify.targets] and [watchdog])")
    watchdog.set_defaults(handler=watchdog_command)


def socket_asker(config_file: Path, config: Config) -> Asker:
    """Ask the engine of `config_file` for its status, finding it as `cockpit ctl` does, afresh each time (it
    may have restarted or rotated). Not answering while its live record is there (killed, crashed, hung) is
    told apart from not running (stopped cleanly: the record is gone)."""
    import asyncio
    import time

    from cockpit.commands.ctl import resolve_socket
    from cockpit.core.commands import Status
    from cockpit.core.errors import CockpitError
    from cockpit.engine.control import ask, live_pointer
    from cockpit.watchdog.watch import Reading

    folder = config.session.path.parent if config.session.path is not None else config.session.dir
    timeout_s = min(10.0, max(2.0, config.watchdog.every_s))

    async def once() -> Reading:
        now = time.time()
        recorded = live_pointer(folder).exists()
        try:
            path = resolve_socket(config_file)
            status = await asyncio.wait_for(ask(path, Status(by="watchdog"), timeout_s), timeout_s + 1)
        except CockpitError as exc:
            return Reading(now, error=exc.title, recorded_running=recorded)
        except (TimeoutError, OSError) as exc:
            error = f"no answer within {timeout_s:g} s" if isinstance(exc, TimeoutError) else str(exc)
            return Reading(now, error=error, recorded_running=recorded)
        return Reading(time.time(), status=status)

    async def reading() -> Reading:
        """A failure is asked again RETRY_S later: the socket moving at a rotation, or a clean stop between
        closing the socket and removing its live record, is not an engine that stopped answering."""
        first = await once()
        if first.status is not None:
            return first
        await asyncio.sleep(RETRY_S)
        return await once()

    return reading


RETRY_S = 2.0


def watchdog_command(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging
    import signal
    import socket
    import sys
    from pathlib import Path

    from cockpit.config.secrets import load_notify_urls
    from cockpit.config.settings import load_config
    from cockpit.core.errors import UsageError
    from cockpit.watchdog.watch import Watchdog

    config_file = Path(args.config)
    config = load_config(config_file)
    if not config.notify.targets:
        raise UsageError(
            f"no notification targets in {config_file}",
            "a watchdog that tells no one is no use",
            "add a [notify.targets.NAME] table (see the README's Notifications section)",
        )
    urls = load_notify_urls(list(config.notify.targets))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    where = f"{config.exchange.id} on {socket.gethostname()}"
    watchdog = Watchdog(config, urls, socket_asker(config_file, config), where)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        print(
            f"watchdog: asking the engine of {config_file} every {config.watchdog.every_s:g} s; telling "
            f"{', '.join(urls)}",
            file=sys.stderr,
            flush=True,
        )
        await watchdog.run(stop)

    asyncio.run(main())
    return 0
