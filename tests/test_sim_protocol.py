"""The simulator's wire protocol: auth, filters, streams, the demo trader, scenarios and its CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from cockpit.core.errors import UsageError
from cockpit.sim.client import SignedClient
from cockpit.sim.scenario import load_scenario
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until


async def _order(sim: SimServer, **params: Any) -> Any:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        return await client.request("POST", "/fapi/v1/order", params)


async def test_wrong_secret_is_rejected_as_bad_signature(sim: SimServer) -> None:
    async with SignedClient(sim.base_url, TEST_KEY, "not-the-secret") as client:
        body = await client.request("GET", "/fapi/v3/account")
    assert body == {"code": -1022, "msg": "Signature for this request is not valid."}


async def test_unknown_api_key_is_rejected(sim: SimServer) -> None:
    async with SignedClient(sim.base_url, "someone-else", TEST_SECRET) as client:
        body = await client.request("GET", "/fapi/v3/account")
    assert body["code"] == -2015


async def test_stale_timestamp_is_outside_recv_window(sim: SimServer) -> None:
    sim.clock.skew_ms = -20_000  # the server lives 20 s in the past: our timestamps look like the future
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        body = await client.request("GET", "/fapi/v3/account")
    assert body["code"] == -1021


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"quantity": "0.0015"}, -1111),  # more decimals than BTC's 0.001 step
        ({"quantity": "0.001"}, -4164),  # 0.001 BTC is under the 100 USDT minimum notional
        ({"quantity": "500"}, -4005),  # above MARKET_LOT_SIZE max
        ({"quantity": "0"}, -4003),
        ({"quantity": "100"}, -2019),  # 6.4 M USDT of BTC on 10 000 USDT at 20x
        ({"quantity": "0.01", "reduceOnly": "true"}, -2022),  # nothing to reduce
        ({"quantity": "0.01", "symbol": "DOGEUSDT"}, -1121),
    ],
)
async def test_order_filters_match_binance(sim: SimServer, params: dict[str, str], code: int) -> None:
    body = await _order(sim, **{"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", **params})
    assert body["code"] == code, body
    assert sim.state()["positions"] == []


async def test_limit_price_must_sit_on_the_tick(sim: SimServer) -> None:
    body = await _order(
        sim, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="60000.05"
    )
    assert body["code"] == -1111
    body = await _order(
        sim, symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="3000.005"
    )
    assert body["code"] == -1111


async def test_reduce_only_never_flips_a_position(sim: SimServer) -> None:
    await _order(sim, symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.5")
    body = await _order(sim, symbol="ETHUSDT", side="SELL", type="MARKET", quantity="2", reduceOnly="true")
    assert body["status"] == "FILLED" and body["executedQty"] == "0.5"
    assert sim.state()["positions"] == []


async def test_position_pnl_and_wallet_follow_the_mark(sim: SimServer) -> None:
    await _order(sim, symbol="SOLUSDT", side="BUY", type="MARKET", quantity="10")
    entry = sim.account.positions["SOLUSDT"].entry
    await sim.inject({"kind": "price_move", "symbol": "SOLUSDT", "pct": 10})
    mark = sim.prices.prices["SOLUSDT"]
    assert sim.account.unrealized("SOLUSDT") == (mark - entry) * 10
    wallet_before = sim.account.wallet
    await _order(sim, symbol="SOLUSDT", side="SELL", type="MARKET", quantity="10", reduceOnly="true")
    trade = sim.account.trades[-1]
    assert trade.realized_pnl == (trade.price - entry) * 10
    assert sim.account.wallet == wallet_before + trade.realized_pnl - trade.commission


async def test_used_weight_header_counts_endpoint_weights(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.base_url + "/fapi/v1/exchangeInfo") as resp:
            first = int(resp.headers["X-MBX-USED-WEIGHT-1M"])
        async with http.get(sim.base_url + "/fapi/v1/ticker/bookTicker") as resp:
            second = int(resp.headers["X-MBX-USED-WEIGHT-1M"])
    assert second - first == 2


async def _listen_key(sim: SimServer) -> str:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as client:
        body = await client.request("POST", "/fapi/v1/listenKey", signed=False)
    return str(body["listenKey"])


async def _receive(ws: aiohttp.ClientWebSocketResponse, want: int, within: float = 5.0) -> list[Any]:
    messages: list[Any] = []
    async with asyncio.timeout(within):
        while len(messages) < want:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            messages.append(orjson.loads(msg.data))
    return messages


async def test_combined_and_raw_market_streams_use_binance_payloads(sim: SimServer) -> None:
    ws_base = sim.base_url.replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_base + "/public/stream?streams=btcusdt@bookTicker") as ws:
            [msg] = await _receive(ws, 1)
        assert msg["stream"] == "btcusdt@bookTicker"
        assert set(msg["data"]) == {"e", "u", "E", "T", "s", "b", "B", "a", "A"}
        assert Decimal(msg["data"]["a"]) > Decimal(msg["data"]["b"])
        async with http.ws_connect(ws_base + "/market/ws/ethusdt@markPrice@1s") as ws:
            [mark] = await _receive(ws, 1, within=3)
        assert mark["e"] == "markPriceUpdate" and mark["s"] == "ETHUSDT"
        assert set(mark) == {"e", "E", "s", "p", "i", "P", "r", "T"}
        async with http.ws_connect(ws_base + "/ws") as ws:
            await ws.send_str('{"method":"SUBSCRIBE","params":["solusdt@bookTicker"],"id":7}')
            ack, tick = await _receive(ws, 2)
        assert ack == {"result": None, "id": 7}
        assert tick["s"] == "SOLUSDT"


async def test_demo_trader_orders_appear_on_the_user_stream() -> None:
    sim = SimServer(api_key=TEST_KEY, api_secret=TEST_SECRET, seed=3, activity=True, tick_interval=0.05)
    await sim.start()
    try:
        key = await _listen_key(sim)
        ws_base = sim.base_url.replace("http", "ws", 1)
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{ws_base}/private/ws?listenKey={key}") as ws,
        ):
            events = await _receive(ws, 3, within=20)
        orders = [e for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
        assert orders, events
        first = orders[0]["o"]
        assert first["x"] == "NEW" and first["c"].startswith("web_")
        assert first["s"] in sim.specs
    finally:
        await sim.stop()


async def test_fills_by_anyone_reach_the_user_stream_with_account_update(sim: SimServer) -> None:
    key = await _listen_key(sim)
    ws_base = sim.base_url.replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/ws/{key}") as ws:
        await _order(
            sim, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01", newClientOrderId="other-1"
        )
        new, account, trade = await _receive(ws, 3)
    # Binance pushes the position (ACCOUNT_UPDATE) before the fill's ORDER_TRADE_UPDATE; the engine holds the
    # size for up to PENDING_GRACE_S until the fill arrives.
    assert (new["o"]["x"], trade["o"]["x"], trade["o"]["X"]) == ("NEW", "TRADE", "FILLED")
    assert trade["o"]["c"] == "other-1" and trade["o"]["l"] == "0.01" and trade["o"]["z"] == "0.01"
    assert account["e"] == "ACCOUNT_UPDATE"
    [position] = account["a"]["P"]
    assert position["s"] == "BTCUSDT" and position["pa"] == "0.01"


async def test_unknown_listen_key_is_refused(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(sim.base_url.replace("http", "ws", 1) + "/private/ws?listenKey=nope")


async def test_scenario_schedules_faults_on_a_timeline(tmp_path: Path) -> None:
    path = tmp_path / "outage.toml"
    path.write_text(
        '[[fault]]\nat = 0.2\nkind = "maintenance"\nseconds = 30\n\n'
        '[[fault]]\nat = 0\nkind = "ghost_position"\nsymbol = "BTCUSDT"\nside = "long"\nqty = "0.5"\n'
    )
    sim = SimServer(activity=False, scenario=load_scenario(path))
    await sim.start()
    try:
        await wait_until(lambda: sim.faults.active("maintenance"), what="the scheduled maintenance")
        assert [f["kind"] for f in sim.injected] == ["ghost_position", "maintenance"]
        assert sim.state()["positions"][0]["qty"] == "0.5"
    finally:
        await sim.stop()


def test_bad_scenario_names_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[fault]]\nat = -1\nkind = "ban"\n\n[[fault]]\nat = 3\nkind = "earthquake"\n')
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    text = info.value.render()
    assert "fault #1" in text and "at=-1" in text
    assert "fault #2" in text and "earthquake" in text
    assert str(path) in text


def test_cockpit_sim_prints_its_url_first_and_serves() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cockpit", "sim", "--no-activity", "--port", "0", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("cockpit sim listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1]

        async def probe() -> Any:
            async with aiohttp.ClientSession() as http, http.get(url + "/_sim/state") as resp:
                return await resp.json()

        state = asyncio.run(probe())
        assert state["positions"] == [] and state["balance"]["wallet"] == "10000"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cockpit_sim_refuses_a_bad_scenario_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[fault]\n")
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "sim", "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr and "Traceback" not in result.stderr
