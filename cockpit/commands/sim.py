"""`cockpit sim`: run the simulator in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from cockpit.sim.scenario import load_scenario
from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET, SimServer


def run_sim_command(args: argparse.Namespace) -> int:
    scenario = load_scenario(Path(args.scenario)) if args.scenario else None
    sim = SimServer(
        api_key=args.api_key or DEMO_API_KEY,
        api_secret=args.api_secret or DEMO_API_SECRET,
        seed=args.seed,
        activity=not args.no_activity,
        scenario=scenario,
    )
    return asyncio.run(_serve(sim, args.host, args.port))


async def _serve(sim: SimServer, host: str, port: int) -> int:
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
    print(
        f"  streams: {url.replace('http', 'ws', 1)}/ws/btcusdt@bookTicker  faults: POST {url}/_sim/faults",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
    return 0
