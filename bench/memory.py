"""Memory: the engine (feeds, store, workers) under a steady 10 k ticks/s for a while; peak RSS, and the
growth rate over the second half so a longer run can be extrapolated honestly (not assumed flat)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.ingest import start_sim
from cockpit.config import ExchangeConfig, SessionConfig, default_config
from cockpit.engine.engine import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.secrets import Credentials
from cockpit.sim.server import DEMO_API_KEY, DEMO_API_SECRET

SIZES = {"tiny": 3.0, "quick": 30.0, "full": 300.0}
RATE = 10_000  # ticks/s
CHUNK = 1_000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _run(seconds: float, session: Path) -> dict[str, Any]:
    from dataclasses import replace

    proc, base = start_sim()
    config = default_config()
    config = replace(config, exchange=ExchangeConfig(base_url=base), session=SessionConfig(path=session))
    runtime = Runtime(
        RunSpec(config, Credentials(DEMO_API_KEY, DEMO_API_SECRET), session, EngineOptions(mode="demo"))
    )
    samples: list[tuple[float, float]] = []
    try:
        await runtime.start()
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while (elapsed := time.monotonic() - started) < seconds:
                async with http.post(
                    base + "/_sim/firehose", json={"symbol": "BTCUSDT", "count": CHUNK}
                ) as r:
                    await r.read()
                samples.append((elapsed, rss_mb()))
                await asyncio.sleep(max(0.0, CHUNK / RATE - (time.monotonic() - started - elapsed)))
    finally:
        await runtime.stop()
        proc.terminate()
        proc.wait(timeout=10)
    peak = max(m for _, m in samples)
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = (half[-1][1] - half[0][1]) / max(1e-9, half[-1][0] - half[0][0]) if len(half) > 1 else 0.0
    return {
        "rss_mb_peak": round(peak, 1),
        "seconds": seconds,
        "ticks_per_s": RATE,
        "growth_mb_per_hour": round(slope * 3600, 1),
        "extrapolated_1h_mb": round(half[-1][1] + slope * (3600 - seconds), 1) if half else None,
    }


def run(work: Path, size: str) -> dict[str, Any]:
    """In a fresh process, so the other benchmarks' memory is not counted."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", size, str(work / f"memory-{size}.duckdb")],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(_run(SIZES[sys.argv[1]], Path(sys.argv[2])))).decode())
