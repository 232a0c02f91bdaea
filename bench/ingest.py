"""Ingest: the book through the engine's path (feed → parse → tick buffer → session store) beside a bare
websockets + orjson client, both fed by the simulator's firehose running in its own process: Binance's
bookTicker, and Bybit's orderbook.1 (its own raw ceiling: the same bare client on Bybit's socket)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from websockets.asyncio.client import connect

from cockpit.feeds import BookTicker, MarketFeed
from cockpit.feeds.bybit.market import BybitStreams
from cockpit.store import SessionStore, TickRow

SIZES = {"tiny": 5_000, "quick": 200_000, "full": 1_000_000}
BATCH = 10_000


def start_sim(exchange: str = "binance") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "sim", "--no-activity", "--port", "0", "--exchange", exchange],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    return proc, first.rsplit(" ", 1)[1]


async def _firehose(base: str, count: int) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(base + "/_sim/firehose", json={"symbol": "BTCUSDT", "count": count}) as resp,
    ):
        await resp.read()


async def raw_client(base: str, count: int) -> float:
    ws_url = base.replace("http", "ws", 1) + "/stream?streams=btcusdt@bookTicker"
    async with connect(ws_url, compression=None, max_queue=None) as ws:
        blast = asyncio.create_task(_firehose(base, count))
        started = time.perf_counter()
        for _ in range(count):
            orjson.loads(await ws.recv())
        seconds = time.perf_counter() - started
        await blast
    return count / seconds


async def raw_bybit_client(base: str, count: int) -> float:
    ws_url = base.replace("http", "ws", 1) + "/v5/public/linear"
    async with connect(ws_url, compression=None, max_queue=None) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["orderbook.1.BTCUSDT"]}).decode())
        await ws.recv()  # the subscribe ack
        await ws.recv()  # the snapshot
        blast = asyncio.create_task(_firehose(base, count))
        started = time.perf_counter()
        for _ in range(count):
            orjson.loads(await ws.recv())
        seconds = time.perf_counter() - started
        await blast
    return count / seconds


async def engine_path(base: str, count: int, session: Path, exchange: str = "binance") -> float:
    """MarketFeed parsing into BookTicker, buffered and flushed to the session store as the engine does."""
    done, first = asyncio.Event(), asyncio.Event()
    seen = 0
    buffer: list[TickRow] = []
    store = SessionStore.open(session)
    store.start()

    def on_book(tick: BookTicker) -> None:
        nonlocal seen, buffer
        buffer.append((tick.event_time / 1000.0, tick.symbol, tick.bid, tick.ask, tick.bid_qty, tick.ask_qty))
        seen += 1
        first.set()
        if len(buffer) >= BATCH:
            store.append_ticks(buffer)
            buffer = []
        if seen >= count:
            done.set()

    ws_base = base.replace("http", "ws", 1)
    if exchange == "bybit":
        feed = MarketFeed(
            ws_base, ["orderbook.1.BTCUSDT"], on_book_ticker=on_book, streams_dialect=BybitStreams()
        )
    else:
        feed = MarketFeed(ws_base, ["btcusdt@bookTicker"], on_book_ticker=on_book, routing="single")
    async with feed:
        await feed.wait_connected()
        if exchange == "bybit":  # Bybit sends the book's snapshot first: the count starts after it
            await first.wait()
            seen = 0
        blast = asyncio.create_task(_firehose(base, count))
        started = time.perf_counter()
        await done.wait()
        seconds = time.perf_counter() - started
        await blast
    if buffer:
        store.append_ticks(buffer)
    store.close()
    return count / seconds


def run(work: Path, size: str) -> dict[str, Any]:
    count = SIZES[size]
    proc, base = start_sim()
    try:
        raw = asyncio.run(raw_client(base, count))
        engine = asyncio.run(engine_path(base, count, work / f"ingest-{size}.duckdb"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, base = start_sim("bybit")
    try:
        bybit_raw = asyncio.run(raw_bybit_client(base, count))
        bybit = asyncio.run(engine_path(base, count, work / f"ingest-bybit-{size}.duckdb", "bybit"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "ticks_per_s": round(engine),
        "raw_ws_msgs_per_s": round(raw),
        "bybit_ticks_per_s": round(bybit),
        "bybit_raw_ws_msgs_per_s": round(bybit_raw),
        "messages": count,
    }
