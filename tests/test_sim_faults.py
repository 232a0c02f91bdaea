"""Every fault the simulator injects yields the ccxt exception production Binance would cause."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from cockpit.exchange.ccxt_client import make_ccxt_client
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET

BTC = "BTC/USDT:USDT"


async def _raised(call: Any) -> BaseException:
    with pytest.raises(ccxt.BaseError) as info:
        await call
    return info.value


async def test_rate_limit_is_429_with_retry_after_and_ddos_protection(
    sim: SimServer, ccxt_client: Any
) -> None:
    await sim.inject({"kind": "rate_limit", "count": 2, "retry_after_s": 7})
    async with aiohttp.ClientSession() as http, http.get(sim.base_url + "/fapi/v1/time") as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == "7"
    exc = await _raised(ccxt_client.fetch_time())
    assert isinstance(exc, ccxt.DDoSProtection) and " 429 " in str(exc)
    assert await ccxt_client.fetch_time() > 0  # both uses consumed, the API answers again


async def test_ban_is_418_until_it_ends(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "ban", "seconds": 30})
    exc = await _raised(ccxt_client.fetch_balance())
    assert isinstance(exc, ccxt.DDoSProtection) and " 418 " in str(exc)
    async with aiohttp.ClientSession() as http, http.get(sim.base_url + "/fapi/v1/ping") as resp:
        assert resp.status == 418 and 28 <= int(resp.headers["Retry-After"]) <= 30
    sim.clear_faults()
    assert (await ccxt_client.fetch_balance())["USDT"]["total"] == 10_000.0


async def test_maintenance_is_on_maintenance_and_refuses_websockets(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "maintenance", "seconds": 30})
    exc = await _raised(ccxt_client.fetch_balance())
    assert isinstance(exc, ccxt.OnMaintenance)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(sim.base_url.replace("http", "ws") + "/ws/btcusdt@bookTicker")
        assert refused.value.status == 503


async def test_auth_fail_is_authentication_error(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "auth_fail", "seconds": 30})
    exc = await _raised(ccxt_client.fetch_positions())
    assert isinstance(exc, ccxt.AuthenticationError) and "-2015" in str(exc)


async def test_clock_skew_beyond_recv_window_is_invalid_nonce(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "clock_skew", "ms": 30_000})
    assert abs(await ccxt_client.fetch_time() - (time.time() * 1000 + 30_000)) < 5_000
    exc = await _raised(ccxt_client.fetch_balance())
    assert isinstance(exc, ccxt.InvalidNonce) and "-1021" in str(exc)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(-2019, ccxt.InsufficientFunds), (-2022, ccxt.InvalidOrder), (-4164, ccxt.InvalidOrder)],
)
async def test_rejected_orders_map_to_production_exceptions(
    sim: SimServer, ccxt_client: Any, code: int, expected: type[Exception]
) -> None:
    await sim.inject({"kind": "reject_orders", "count": 1, "code": code})
    exc = await _raised(ccxt_client.create_order(BTC, "market", "buy", 0.01))
    assert type(exc) is expected and str(code) in str(exc)
    assert sim.state()["positions"] == []  # a rejection changes nothing
    order = await ccxt_client.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "closed"


async def test_partial_fill_fills_the_ratio_and_expires_the_rest(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "partial_fill", "count": 1, "ratio": 0.4})
    order = await ccxt_client.create_order(BTC, "market", "buy", 0.01)
    assert order["status"] == "expired"
    assert order["filled"] == 0.004 and order["remaining"] == pytest.approx(0.006)
    assert sim.state()["positions"][0]["qty"] == "0.004"


async def test_partial_fill_on_a_limit_order_leaves_the_remainder_open(
    sim: SimServer, ccxt_client: Any
) -> None:
    await ccxt_client.load_markets()
    await sim.inject({"kind": "partial_fill", "count": 1, "ratio": 0.5})
    price = ccxt_client.price_to_precision(BTC, float(sim.prices.prices["BTCUSDT"]) * 1.01)
    order = await ccxt_client.create_order(BTC, "limit", "buy", 0.01, price)
    assert order["status"] == "open" and order["filled"] == 0.005
    assert sim.state()["orders"][0]["status"] == "PARTIALLY_FILLED"


async def test_latency_beyond_the_timeout_is_request_timeout(sim: SimServer) -> None:
    client = make_ccxt_client("binanceusdm", TEST_KEY, TEST_SECRET, base_url=sim.base_url, timeout_ms=300)
    try:
        await sim.inject({"kind": "latency", "ms": 1000, "seconds": 5})
        exc = await _raised(client.fetch_time())
        assert isinstance(exc, ccxt.RequestTimeout)
    finally:
        await client.close()


async def test_http_errors_map_like_production(sim: SimServer, ccxt_client: Any) -> None:
    # 500 carries Binance's -1001 JSON body; a 502 from the CDN is an HTML page.
    # aiohttp retries an idempotent GET once on some failures, so each fault is given two uses.
    await sim.inject({"kind": "http_error", "status": 500, "count": 2})
    exc = await _raised(ccxt_client.fetch_balance())
    assert isinstance(exc, ccxt.OperationFailed) and "-1001" in str(exc)
    sim.clear_faults()
    await sim.inject({"kind": "http_error", "status": 502, "count": 2})
    exc = await _raised(ccxt_client.fetch_balance())
    assert isinstance(exc, ccxt.ExchangeNotAvailable)


async def test_ghost_position_appears_with_no_trade(sim: SimServer, ccxt_client: Any) -> None:
    await sim.inject({"kind": "ghost_position", "symbol": "ETH/USDT:USDT", "side": "short", "qty": "0.5"})
    positions = await ccxt_client.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [("ETH/USDT:USDT", "short", 0.5)]
    assert await ccxt_client.fetch_my_trades("ETH/USDT:USDT") == []
    assert sim.state()["positions"][0]["qty"] == "-0.5"


async def test_price_move_moves_the_mark(sim: SimServer, ccxt_client: Any) -> None:
    before = sim.prices.prices["BTCUSDT"]
    await sim.inject({"kind": "price_move", "symbol": "BTCUSDT", "pct": -10})
    ticker = await ccxt_client.fetch_ticker(BTC)
    assert ticker["last"] == pytest.approx(float(before) * 0.9, rel=0.01)


async def test_apply_then_fail_applies_the_order_but_answers_5xx(sim: SimServer, ccxt_client: Any) -> None:
    await ccxt_client.load_markets()
    await sim.inject({"kind": "apply_then_fail", "count": 1})
    exc = await _raised(
        ccxt_client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "cockpit-ambiguous-1"})
    )
    assert isinstance(exc, ccxt.NetworkError) and "execution status unknown" in str(exc)
    found = await ccxt_client.fetch_order(None, BTC, params={"origClientOrderId": "cockpit-ambiguous-1"})
    assert found["status"] == "closed" and found["filled"] == 0.01


async def test_fault_api_validates_and_reports_state(sim: SimServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.base_url + "/_sim/faults", json={"kind": "meteor"}) as resp:
            assert resp.status == 400
            assert "use one of" in (await resp.json())["error"]
        async with http.post(
            sim.base_url + "/_sim/faults", json={"kind": "partial_fill", "ratio": 2}
        ) as resp:
            assert resp.status == 400
            assert "ratio" in (await resp.json())["error"]
        async with http.post(sim.base_url + "/_sim/faults", json={"kind": "ws_stall", "seconds": 60}) as resp:
            assert resp.status == 200
        async with http.get(sim.base_url + "/_sim/state") as resp:
            state = await resp.json()
        assert [f["kind"] for f in state["faults"]] == ["ws_stall"]
        assert set(state) >= {"positions", "orders", "balance"}
        assert state["balance"]["wallet"] == "10000"
        async with http.delete(sim.base_url + "/_sim/faults") as resp:
            assert resp.status == 200
        async with http.get(sim.base_url + "/_sim/state") as resp:
            assert (await resp.json())["faults"] == []


async def _post_fault(sim: SimServer, spec: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(sim.base_url + "/_sim/faults", json=spec) as resp,
    ):
        body: dict[str, Any] = await resp.json()
        return resp.status, body


async def test_fault_api_takes_json_numbers_for_quantities_exactly(sim: SimServer, ccxt_client: Any) -> None:
    """`"qty": 0.1` twice is a position of exactly 0.2 (never 0.20000000000000001), as `"0.1"` would be."""
    ghost = {"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long"}
    for qty in (0.1, "0.1", 0.1):
        status, body = await _post_fault(sim, {**ghost, "qty": qty})
        assert status == 200, body
        assert body["fault"]["qty"] == "0.1"
    assert sim.state()["positions"][0]["qty"] == "0.3"
    positions = await ccxt_client.fetch_positions()
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [(BTC, "long", 0.3)]


async def test_fault_api_takes_decimal_strings_for_pct_and_ratio(sim: SimServer) -> None:
    before = sim.prices.prices["BTCUSDT"]
    status, body = await _post_fault(sim, {"kind": "price_move", "symbol": "BTCUSDT", "pct": "-10"})
    assert status == 200, body
    assert sim.prices.prices["BTCUSDT"] == (before * Decimal("0.9")).quantize(Decimal("0.1"))
    status, body = await _post_fault(sim, {"kind": "partial_fill", "ratio": "0.25"})
    assert status == 200 and body["fault"]["ratio"] == 0.25, body


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": "half"}, "qty='half'"),
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": True}, "qty=True"),
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": [0.5]}, "qty=[0.5]"),
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": "NaN"}, "qty='NaN'"),
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": -0.5}, "qty='-0.5'"),
        ({"kind": "ghost_position", "symbol": "BTCUSDT", "side": "long", "qty": 0}, "qty='0'"),
        ({"kind": "price_move", "symbol": "BTCUSDT", "pct": "ten"}, "pct='ten'"),
        ({"kind": "price_move", "symbol": "BTCUSDT", "pct": "Infinity"}, "pct='Infinity'"),
        ({"kind": "price_move", "symbol": "BTCUSDT", "pct": "1e400"}, "pct='1e400'"),
        ({"kind": "partial_fill", "ratio": "1.5"}, "ratio=1.5"),
        ({"kind": "rate_limit", "count": 1.5}, "count=1.5"),
    ],
)
async def test_fault_api_refuses_a_bad_number_naming_the_parameter(
    sim: SimServer, spec: dict[str, Any], named: str
) -> None:
    status, body = await _post_fault(sim, spec)
    assert status == 400 and named in body["error"], body
    assert sim.state()["positions"] == [] and sim.injected == []
