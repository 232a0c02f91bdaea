"""The simulator answers as Binance USD-M documents it, where it used to differ: the open-order query, the
new-order answer (ACK / RESULT), the order-count headers, v2 vs v3 positions and accounts, trade and stream
fields, the listenKey sent by SUBSCRIBE, the position mode, and conditional orders refused on /order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from cockpit.sim.client import Reply, SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as signed:
        yield signed


async def order(client: SignedClient, **params: Any) -> Reply:
    return await client.send("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", **params})


def below_mark(sim: SimServer, symbol: str = "BTCUSDT", ratio: str = "0.9") -> str:
    return str(sim.specs[symbol].round_price(sim.prices.prices[symbol] * Decimal(ratio)))


async def receive(ws: aiohttp.ClientWebSocketResponse, want: int, within: float = 5.0) -> list[Any]:
    messages: list[Any] = []
    async with asyncio.timeout(within):
        while len(messages) < want:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            messages.append(orjson.loads(msg.data))
    return messages


# ----- orders ----------------------------------------------------------------------------------------------
async def test_a_new_order_answers_ack_by_default_and_the_final_state_with_result(
    sim: SimServer, client: SignedClient
) -> None:
    ack = (await order(client, side="BUY", type="MARKET", quantity="0.01", newOrderRespType=None)).body
    assert (ack["status"], ack["executedQty"], ack["cumQty"], ack["cumQuote"]) == ("NEW", "0", "0", "0")
    assert "time" not in ack and isinstance(ack["updateTime"], int) and isinstance(ack["orderId"], int)
    assert sim.account.positions["BTCUSDT"].qty == Decimal("0.01")  # it filled all the same

    result = (await order(client, side="BUY", type="MARKET", quantity="0.01", newOrderRespType="RESULT")).body
    assert (result["status"], result["executedQty"], result["origType"]) == ("FILLED", "0.01", "MARKET")
    assert (
        Decimal(result["avgPrice"]) > 0 and Decimal(result["cumQuote"]) == Decimal(result["avgPrice"]) / 100
    )
    assert "time" not in result and result["positionSide"] == "BOTH"

    bad = await order(client, side="BUY", type="MARKET", quantity="0.01", newOrderRespType="FULL")
    assert bad.body["code"] == -1136


async def test_order_answers_carry_the_account_order_counts(client: SignedClient) -> None:
    first = await order(client, side="BUY", type="MARKET", quantity="0.01")
    second = await order(client, side="BUY", type="MARKET", quantity="0.001")  # refused (-4164): counted too
    assert second.body["code"] == -4164
    assert (
        int(first.headers["X-MBX-ORDER-COUNT-10S"]) == 1 and int(first.headers["X-MBX-ORDER-COUNT-1M"]) == 1
    )
    assert (
        int(second.headers["X-MBX-ORDER-COUNT-10S"]) == 2 and int(second.headers["X-MBX-ORDER-COUNT-1M"]) == 2
    )
    query = await client.send("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
    assert "X-MBX-ORDER-COUNT-10S" not in query.headers


async def test_open_order_is_found_while_open_and_minus_2013_after(
    sim: SimServer, client: SignedClient
) -> None:
    placed = (
        await order(
            client, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=below_mark(sim)
        )
    ).body
    found = await client.request(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    )
    assert found["status"] == "NEW" and found["clientOrderId"] == placed["clientOrderId"]
    assert isinstance(found["time"], int) and "cumQty" not in found
    by_client_id = await client.request(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "origClientOrderId": placed["clientOrderId"]}
    )
    assert by_client_id["orderId"] == placed["orderId"]
    canceled = await client.request(
        "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    )
    assert canceled["status"] == "CANCELED" and "cumQty" in canceled and "time" not in canceled
    gone = await client.request(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    )
    assert gone == {"code": -2013, "msg": "Order does not exist."}
    filled = (await order(client, side="BUY", type="MARKET", quantity="0.01")).body
    done = await client.request(
        "GET", "/fapi/v1/openOrder", {"symbol": "BTCUSDT", "orderId": filled["orderId"]}
    )
    assert done["code"] == -2013
    still_queryable = await client.request(
        "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": filled["orderId"]}
    )
    assert still_queryable["status"] == "FILLED"


@pytest.mark.parametrize(
    "kind", ["STOP_MARKET", "STOP", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
)
async def test_conditional_orders_are_refused_on_the_order_endpoint(client: SignedClient, kind: str) -> None:
    body = (await order(client, side="SELL", type=kind, quantity="0.01", stopPrice="50000")).body
    assert body == {
        "code": -4120,
        "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    }


async def test_user_trades_carry_the_margin_asset(client: SignedClient) -> None:
    placed = (await order(client, side="BUY", type="MARKET", quantity="0.01")).body
    [trade] = await client.request("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert trade["marginAsset"] == "USDT" and trade["commissionAsset"] == "USDT"
    assert trade["orderId"] == placed["orderId"] and trade["positionSide"] == "BOTH"
    mine = await client.request(
        "GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    )
    assert [t["id"] for t in mine] == [trade["id"]]


# ----- positions and account: v2 and v3 in their own shapes ----------------------------------------------
POSITION_V2 = {
    "symbol", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice", "unRealizedProfit",
    "liquidationPrice", "leverage", "maxNotionalValue", "marginType", "isolatedMargin", "isAutoAddMargin",
    "positionSide", "notional", "isolatedWallet", "updateTime",
}  # fmt: skip
POSITION_V3 = {
    "symbol", "positionSide", "positionAmt", "entryPrice", "breakEvenPrice", "markPrice", "unRealizedProfit",
    "liquidationPrice", "isolatedMargin", "notional", "marginAsset", "isolatedWallet", "initialMargin",
    "maintMargin", "positionInitialMargin", "openOrderInitialMargin", "adl", "bidNotional", "askNotional",
    "updateTime",
}  # fmt: skip


async def test_position_risk_v2_and_v3_have_their_documented_fields(
    sim: SimServer, client: SignedClient
) -> None:
    await order(client, side="SELL", type="MARKET", quantity="0.01")
    v2 = await client.request("GET", "/fapi/v2/positionRisk")
    v3 = await client.request("GET", "/fapi/v3/positionRisk")
    assert len(v2) == len(sim.specs)  # v2: every symbol
    assert [row["symbol"] for row in v3] == ["BTCUSDT"]  # v3: only what is held
    assert all(set(row) == POSITION_V2 for row in v2)
    assert set(v3[0]) == POSITION_V3  # no leverage, marginType, maxNotionalValue, isAutoAddMargin: v2 only
    btc = next(row for row in v2 if row["symbol"] == "BTCUSDT")
    assert (btc["marginType"], btc["leverage"], btc["isAutoAddMargin"]) == ("cross", "20", "false")
    assert btc["positionAmt"] == v3[0]["positionAmt"] == "-0.01"
    assert isinstance(v3[0]["adl"], int) and isinstance(v3[0]["updateTime"], int)


async def test_account_v2_and_v3_have_their_documented_fields(sim: SimServer, client: SignedClient) -> None:
    await order(client, side="BUY", type="MARKET", quantity="0.1", symbol="ETHUSDT")
    v2 = await client.request("GET", "/fapi/v2/account")
    v3 = await client.request("GET", "/fapi/v3/account")
    for key, kind in (
        ("feeTier", int), ("canTrade", bool), ("canDeposit", bool), ("canWithdraw", bool),
        ("updateTime", int), ("multiAssetsMargin", bool), ("tradeGroupId", int),
    ):  # fmt: skip
        assert isinstance(v2[key], kind), key
        assert key not in v3, key
    assert len(v2["positions"]) == len(sim.specs)
    eth = next(p for p in v2["positions"] if p["symbol"] == "ETHUSDT")
    assert {"leverage", "isolated", "entryPrice", "maxNotional", "positionSide", "positionAmt"} <= set(eth)
    assert eth["positionAmt"] == "0.1" and eth["isolated"] is False and eth["leverage"] == "20"
    [held] = v3["positions"]
    assert set(held) == {
        "symbol", "positionSide", "positionAmt", "unrealizedProfit", "isolatedMargin", "notional",
        "isolatedWallet", "initialMargin", "maintMargin", "updateTime",
    }  # fmt: skip
    assert v2["totalWalletBalance"] == v3["totalWalletBalance"] == v3["assets"][0]["walletBalance"]


# ----- the user data stream -----------------------------------------------------------------------------
async def test_a_stream_opened_without_a_listen_key_subscribes_to_it(
    sim: SimServer, client: SignedClient
) -> None:
    key = (await client.request("POST", "/fapi/v1/listenKey", signed=False))["listenKey"]
    ws_base = sim.base_url.replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_base + "/private/ws") as ws:
        await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": [key], "id": 1}).decode())
        [ack] = await receive(ws, 1)
        assert ack == {"result": None, "id": 1}
        await order(
            client, side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.01", price=below_mark(sim)
        )
        new, expired = await receive(ws, 2)
    assert (new["o"]["x"], new["o"]["er"]) == ("NEW", "0")
    assert (expired["o"]["X"], expired["o"]["er"]) == ("EXPIRED", "2")  # an IOC that could not fill


async def test_order_updates_carry_the_expiry_reason_as_a_string(
    sim: SimServer, client: SignedClient
) -> None:
    seen: list[dict[str, Any]] = []
    sim.account.listeners.append(seen.append)
    await order(client, side="BUY", type="MARKET", quantity="0.01")
    updates = [e["o"] for e in seen if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [u["x"] for u in updates] == ["NEW", "TRADE"]
    assert all(u["er"] == "0" and u["ps"] == "BOTH" for u in updates)


# ----- position mode ------------------------------------------------------------------------------------
async def test_one_way_mode_refuses_a_long_or_short_position_side(client: SignedClient) -> None:
    for side in ("LONG", "SHORT"):
        body = (await order(client, side="BUY", type="MARKET", quantity="0.01", positionSide=side)).body
        assert body == {"code": -4061, "msg": "Order's position side does not match user's setting."}
    body = (await order(client, side="BUY", type="MARKET", quantity="0.01", positionSide="BOTH")).body
    assert body["status"] == "FILLED" and body["positionSide"] == "BOTH"
    assert (await order(client, side="BUY", type="MARKET", quantity="0.01", positionSide="UP")).body[
        "code"
    ] == -4060


async def test_position_mode_changes_only_when_flat_and_without_open_orders(
    sim: SimServer, client: SignedClient
) -> None:
    path = "/fapi/v1/positionSide/dual"
    assert await client.request("GET", path) == {"dualSidePosition": False}
    assert (await client.request("POST", path, {"dualSidePosition": "false"}))["code"] == -4059
    resting = (
        await order(
            client, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price=below_mark(sim)
        )
    ).body
    assert (await client.request("POST", path, {"dualSidePosition": "true"}))["code"] == -4067
    await client.request("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": resting["orderId"]})
    await order(client, side="BUY", type="MARKET", quantity="0.01")
    assert (await client.request("POST", path, {"dualSidePosition": "true"}))["code"] == -4068
    await order(client, side="SELL", type="MARKET", quantity="0.01", reduceOnly="true")
    assert await client.request("POST", path, {"dualSidePosition": "true"}) == {"code": 200, "msg": "success"}
    assert await client.request("GET", path) == {"dualSidePosition": True}
    assert sim.account.dual_side


async def test_symbol_config_gives_leverage_and_margin_type(sim: SimServer, client: SignedClient) -> None:
    await client.request("POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": 7})
    [eth] = await client.request("GET", "/fapi/v1/symbolConfig", {"symbol": "ETHUSDT"})
    assert eth == {
        "symbol": "ETHUSDT",
        "marginType": "CROSSED",
        "isAutoAddMargin": "false",
        "leverage": 7,
        "maxNotionalValue": "50000",
    }
    assert len(await client.request("GET", "/fapi/v1/symbolConfig")) == len(sim.specs)
