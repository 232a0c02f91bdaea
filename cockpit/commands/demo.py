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
    import subprocess

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
    demo.add_argument(
        "--hedge", action="store_true", help="the simulated account in hedge mode (LONG and SHORT legs)"
    )
    demo.add_argument(
        "--exchange",
        choices=sorted(CONFIG_ID),
        default="binance",
        help="the wire the simulator speaks and the engine reads: Binance USD-M (default) or Bybit v5 linear",
    )
    demo.set_defaults(handler=run_demo_command)


CONFIG_ID = {"binance": "binanceusdm", "bybit": "bybit"}  # the simulator's wire -> the config's exchange.id


def demo_session_file(now: datetime) -> Path:
    return data_dir() / "demo" / f"demo-{now:%Y%m%d-%H%M%S}.duckdb"


def demo_spec(session: Path, base_url: str | None, exchange: str = "binance") -> RunSpec:
    """The demo's run: the simulator at `base_url` (None until it has started: the app needs only the risk
    figures before then), speaking `exchange`'s wire."""
    from cockpit.config.secrets import Credentials
    from cockpit.config.settings import ExchangeConfig, SessionConfig, default_config
    from cockpit.engine.options import EngineOptions
    from cockpit.engine.runtime import RunSpec
    from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET

    config = default_config()
    config = replace(
        config,
        exchange=ExchangeConfig(id=CONFIG_ID[exchange], base_url=base_url),
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

        return asyncio.run(_headless(session, args.seed, args.duration, args.json, args.hedge, args.exchange))
    return _engine_and_cockpit(session, args.seed, args.hedge, args.exchange)


def _engine_and_cockpit(session: Path, seed: int, hedge: bool = False, exchange: str = "binance") -> int:
    """The demo as cockpit is meant to run: the engine (with its simulator) in a process of its own, as a
    service would run it, and the cockpit attached to it. The demo's engine stops with the demo."""
    import subprocess

    from cockpit.engine.control import socket_path_for
    from cockpit.ui.launch import run_attached

    log = session.with_suffix(".engine.log")
    with log.open("ab") as out:
        engine = subprocess.Popen(
            [sys.executable, "-m", "cockpit", "demo", "--headless", "--session", str(session)]
            + ["--seed", str(seed)]
            + (["--hedge"] if hedge else [])
            + ["--exchange", exchange],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # Ctrl-C in the cockpit's terminal is the cockpit's, not the engine's
            preexec_fn=_stop_with_parent,
        )
    socket = socket_path_for(session)
    try:
        _wait_for_engine(engine, session, log)

        def find_socket() -> Path:  # asked before each re-attach: a demo engine that died says so
            if engine.poll() is not None:
                from cockpit.core.errors import CockpitError

                raise CockpitError(f"the demo's engine exited (code {engine.returncode}): see {log}")
            return socket

        return run_attached(find_socket, stop_engine=engine.terminate)
    finally:
        if engine.poll() is None:
            engine.terminate()
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()


def _stop_with_parent() -> None:
    """In the engine's process before it runs (Linux): SIGTERM when the demo's process dies, however it dies
    (a closed terminal, a killed tmux session), so no demo engine is left behind."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the cockpit's own stop is the only one


def _wait_for_engine(
    engine: subprocess.Popen[bytes], session: Path, log: Path, within_s: float = 60.0
) -> None:
    """Until the engine answers on its socket; its log's end as the error if it exits first or never does."""
    import time

    from cockpit.core.errors import CockpitError
    from cockpit.engine.control import engine_running

    print(f"cockpit demo: starting the engine (log: {log})", file=sys.stderr, flush=True)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            break
        if engine_running(session):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
    raise CockpitError(
        "the demo's engine did not start"
        + (f" (it exited {engine.returncode})" if engine.returncode is not None else f" in {within_s:.0f} s"),
        tail.strip(),
        f"see {log}",
    )


async def _headless(
    session: Path,
    seed: int,
    duration: float | None,
    as_json: bool,
    hedge: bool = False,
    exchange: str = "binance",
) -> int:
    from cockpit.engine.runtime import json_printer, run, text_printer
    from cockpit.sim.server import SimServer

    sim = SimServer(seed=seed, activity=True, dual_side=hedge, exchange=exchange)
    base_url = await sim.start()
    print(f"cockpit demo: simulator on {base_url}, session {session}", file=sys.stderr, flush=True)
    try:
        return await run(
            demo_spec(session, base_url, exchange),
            printer=json_printer if as_json else text_printer,
            duration=duration,
        )
    finally:
        await sim.stop()
