"""`cockpit demo`: the simulator in-process, and the engine against it — no config, no account."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cockpit.config import ExchangeConfig, SessionConfig, default_config
from cockpit.engine.engine import EngineOptions
from cockpit.engine.runtime import RunSpec, json_printer, run, text_printer
from cockpit.paths import data_dir
from cockpit.secrets import Credentials
from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET, SimServer


def demo_session_file(now: datetime) -> Path:
    return data_dir() / "demo" / f"demo-{now:%Y%m%d-%H%M%S}.duckdb"


def run_demo_command(args: argparse.Namespace) -> int:
    if not args.headless:
        print("note: the cockpit UI is not built yet; running headless (events below).", file=sys.stderr)
    session = Path(args.session) if args.session else demo_session_file(datetime.now(UTC))
    session.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_demo(session, args.seed, args.duration, getattr(args, "json", False)))


async def _demo(session: Path, seed: int, duration: float | None, as_json: bool) -> int:
    sim = SimServer(seed=seed, activity=True)
    base_url = await sim.start()
    print(f"cockpit demo: simulator on {base_url}, session {session}", file=sys.stderr, flush=True)
    config = default_config()
    config = replace(
        config,
        exchange=ExchangeConfig(id="binanceusdm", base_url=base_url),
        session=SessionConfig(path=session, dir=session.parent),
    )
    spec = RunSpec(
        config=config,
        credentials=Credentials(DEMO_API_KEY, DEMO_API_SECRET),
        session_file=session,
        options=EngineOptions(mode="demo"),
    )
    try:
        return await run(spec, printer=json_printer if as_json else text_printer, duration=duration)
    finally:
        await sim.stop()
