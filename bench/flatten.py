"""Flatten: 20 positions on the simulator, from the command to verified flat."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from cockpit.config.secrets import Credentials
from cockpit.config.settings import ExchangeConfig, SessionConfig, default_config
from cockpit.core.commands import Flatten
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.sim.account import OrderRequest
from cockpit.sim.market import SymbolSpec
from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET, SimServer

SIZES = {"tiny": 5, "quick": 20, "full": 20}


def specs(n: int) -> tuple[SymbolSpec, ...]:
    return tuple(
        SymbolSpec(
            f"C{i:02d}USDT",
            f"C{i:02d}",
            Decimal("100.00"),
            Decimal("0.01"),
            Decimal("0.1"),
            Decimal("0.1"),
            Decimal("100000"),
            Decimal("10000"),
            Decimal("5"),
        )
        for i in range(n)
    )


async def run(work: Path, size: str) -> dict[str, Any]:
    n = SIZES[size]
    sim = SimServer(seed=1, activity=False, specs=specs(n), wallet=Decimal("1000000"))
    base = await sim.start()
    for i, spec in enumerate(sim.specs.values()):
        sim.account.place(OrderRequest(spec.symbol, "BUY" if i % 2 else "SELL", "MARKET", Decimal("10")))
    session = work / f"flatten-{size}.duckdb"
    config = default_config()
    symbols = tuple(f"{s.base}/USDT:USDT" for s in sim.specs.values())
    config = replace(
        config,
        exchange=ExchangeConfig(base_url=base),
        session=SessionConfig(path=session),
        feeds=replace(config.feeds, symbols=symbols),
    )
    runtime = Runtime(
        RunSpec(
            config,
            Credentials(DEMO_API_KEY, DEMO_API_SECRET),
            session,
            EngineOptions(mode="demo", flatten_engages_kill_switch=False),
        )
    )
    engine = await runtime.start()
    try:
        started = time.perf_counter()
        result = await engine.control(Flatten(symbols=None, by="bench").confirmed())
        seconds = time.perf_counter() - started
    finally:
        await runtime.stop()
        await sim.stop()
    return {"positions": n, "seconds_to_verified_flat": round(seconds, 3), "verified": result.verified}
