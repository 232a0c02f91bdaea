"""`cockpit sim`: run the simulator in the foreground until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.commands.parsing import Commands

if TYPE_CHECKING:
    from cockpit.sim.server import SimServer


def register(commands: Commands) -> None:
    sim = commands.add_parser(
        "sim", help="run the exchange simulator on loopback (Binance USD-M, or Bybit v5 linear)"
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    sim.add_argument("--api-key", default=None, help="API key the simulator accepts (default: demo key)")
    sim.add_argument("--api-secret", default=None, help="API secret the simulator accepts (default: demo)")
    sim.add_argument("--seed", type=int, default=1, help="seed of the price random walk (default 1)")
    sim.add_argument("--no-activity", action="store_true", help="do not run the built-in demo trader")
    sim.add_argument("--scenario", default=None, metavar="FILE", help="TOML file of scheduled faults")
    sim.add_argument(
        "--hedge", action="store_true", help="the account in hedge mode (LONG and SHORT legs per symbol)"
    )
    sim.add_argument(
        "--exchange",
        choices=("binance", "bybit"),
        default="binance",
        help="the wire it speaks: binance (USD-M, default) or bybit (v5 linear USDT perpetuals)",
    )
    sim.set_defaults(handler=run_sim_command)


def run_sim_command(args: argparse.Namespace) -> int:
    import asyncio

    from cockpit.sim.scenario import load_scenario
    from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET, SimServer

    scenario = load_scenario(Path(args.scenario)) if args.scenario else None
    sim = SimServer(
        api_key=args.api_key or DEMO_API_KEY,
        api_secret=args.api_secret or DEMO_API_SECRET,
        seed=args.seed,
        activity=not args.no_activity,
        scenario=scenario,
        dual_side=args.hedge,
        exchange=args.exchange,
    )
    return asyncio.run(_serve(sim, args.host, args.port))


async def _serve(sim: SimServer, host: str, port: int) -> int:
    import asyncio

    try:
        url = await sim.start(host=host, port=port)
    except OSError as exc:
        print(
            f"error: cannot listen on {host}:{port}: {exc.strerror}\n  fix: choose another --port "
            "(0 picks a free one)",
            file=sys.stderr,
        )
        return 1
    print(f"cockpit sim listening on {url}", flush=True)
    print(f"  api key: {sim.api_key}  (secret given with --api-secret, or the demo secret)", flush=True)
    streams = (
        sim.dialect.stream_urls(url)
        if sim.dialect is not None
        else f"{url.replace('http', 'ws', 1)}/ws/btcusdt@bookTicker"
    )
    print(f"  exchange: {sim.exchange}  streams: {streams}  faults: POST {url}/_sim/faults", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
    return 0
