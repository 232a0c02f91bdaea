"""`cockpit demo`: the simulator in-process, and the engine against it — no config, no account."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.commands.parsing import Commands
from cockpit.config.paths import data_dir

if TYPE_CHECKING:
    from cockpit.core.domain import Event
    from cockpit.engine.engine import Engine
    from cockpit.engine.runtime import RunSpec, Runtime


def register(commands: Commands) -> None:
    demo = commands.add_parser("demo", help="run cockpit against an in-process simulator (no account needed)")
    demo.add_argument("--session", default=None, metavar="PATH", help="session DuckDB file")
    demo.add_argument("--headless", action="store_true", help="print events instead of the UI")
    demo.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    demo.add_argument("--seed", type=int, default=1, help="seed of the simulator (default 1)")
    demo.add_argument("--json", action="store_true", help="with --headless: one JSON object per event")
    demo.set_defaults(handler=run_demo_command)


def demo_session_file(now: datetime) -> Path:
    return data_dir() / "demo" / f"demo-{now:%Y%m%d-%H%M%S}.duckdb"


def demo_spec(session: Path, base_url: str | None) -> RunSpec:
    """The demo's run: the simulator at `base_url` (None until it has started: the app needs only the risk
    figures before then)."""
    from cockpit.config.secrets import Credentials
    from cockpit.config.settings import ExchangeConfig, SessionConfig, default_config
    from cockpit.engine.options import EngineOptions
    from cockpit.engine.runtime import RunSpec
    from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET

    config = default_config()
    config = replace(
        config,
        exchange=ExchangeConfig(id="binanceusdm", base_url=base_url),
        session=SessionConfig(path=session, dir=session.parent),
    )
    return RunSpec(
        config=config,
        credentials=Credentials(DEMO_API_KEY, DEMO_API_SECRET),
        session_file=session,
        options=EngineOptions(mode="demo"),
    )


class DemoRuntime:
    """The simulator and an engine runtime against it, started and stopped together."""

    def __init__(self, session: Path, seed: int) -> None:
        from cockpit.sim.server import SimServer

        self.session = session
        self.sim = SimServer(seed=seed, activity=True)
        self.runtime: Runtime | None = None
        self.subscribers: list[Callable[[Event], None]] = []

    def add_subscriber(self, subscriber: Callable[[Event], None]) -> None:
        self.subscribers.append(subscriber)

    async def start(self) -> Engine:
        from cockpit.engine.runtime import Runtime

        base_url = self.sim.base_url or await self.sim.start()
        self.runtime = Runtime(demo_spec(self.session, base_url))
        for subscriber in self.subscribers:
            self.runtime.add_subscriber(subscriber)
        return await self.runtime.start()

    async def stop(self) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
        await self.sim.stop()

    async def restore(self, backup: Path) -> Engine:
        assert self.runtime is not None
        return await self.runtime.restore(backup)

    @property
    def restored_backup(self) -> Path | None:
        return None if self.runtime is None else self.runtime.restored_backup


def run_demo_command(args: argparse.Namespace) -> int:
    session = Path(args.session) if args.session else demo_session_file(datetime.now(UTC))
    session.parent.mkdir(parents=True, exist_ok=True)
    if args.headless:
        import asyncio

        return asyncio.run(_headless(session, args.seed, args.duration, args.json))
    from cockpit.ui.launch import run_app

    return run_app(DemoRuntime(session, args.seed), demo_spec(session, None), session.name)


async def _headless(session: Path, seed: int, duration: float | None, as_json: bool) -> int:
    from cockpit.engine.runtime import json_printer, run, text_printer
    from cockpit.sim.server import SimServer

    sim = SimServer(seed=seed, activity=True)
    base_url = await sim.start()
    print(f"cockpit demo: simulator on {base_url}, session {session}", file=sys.stderr, flush=True)
    try:
        return await run(
            demo_spec(session, base_url), printer=json_printer if as_json else text_printer, duration=duration
        )
    finally:
        await sim.stop()
