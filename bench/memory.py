"""Memory: the engine (feeds, store, workers) under a steady 10 k ticks/s for a while; peak RSS, and the
growth rate over the second half so a longer run can be extrapolated honestly (not assumed flat).

RSS is not smooth: DuckDB's checkpoints lift it by ~15 MB for a fraction of a second every ~25 s. The growth
rate is therefore the least-squares slope over every sample of the second half (two single samples, as it was
taken before, read a sawtooth as 400-2 000 MB/h of growth or shrinkage depending on where they fell), and the
1 h extrapolation adds that slope to the second half's peak.
"""

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
from cockpit.config.secrets import Credentials
from cockpit.config.settings import ExchangeConfig, SessionConfig, default_config
from cockpit.engine.options import EngineOptions
from cockpit.engine.runtime import RunSpec, Runtime
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
    first = [s for s in samples if s[0] < seconds / 2]
    half = [s for s in samples if s[0] >= seconds / 2]
    slope = _slope(half)
    half_peak = max((m for _, m in half), default=None)
    return {
        "rss_mb_peak": round(peak, 1),
        "rss_mb_peak_first_half": round(max((m for _, m in first), default=0.0), 1),
        "rss_mb_peak_second_half": None if half_peak is None else round(half_peak, 1),
        "seconds": seconds,
        "ticks_per_s": RATE,
        "growth_mb_per_hour": round(slope * 3600, 1),
        "extrapolated_1h_mb": None if half_peak is None else round(half_peak + slope * (3600 - seconds), 1),
    }


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MB/s) of (seconds, MB) points; 0 for fewer than two distinct times."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_m = sum(m for _, m in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in points) / spread


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
