"""The listenKey user stream against the simulator: typed order/account events, keep-alive, key renewal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from cockpit.feeds import (
    AccountUpdate,
    AlgoUpdate,
    FeedState,
    FeedStatus,
    ListenKeyInvalid,
    OrderUpdate,
    OtherUserEvent,
    ParseError,
    Severity,
    UserFeed,
)
from cockpit.feeds.parse import user_event
from cockpit.sim.client import SignedClient
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.test_feeds_market import SCALED, Recorder, ws_base


@pytest.fixture
async def client(sim: SimServer) -> AsyncIterator[SignedClient]:
    async with SignedClient(sim.base_url, TEST_KEY, TEST_SECRET) as c:
        yield c


class ListenKeys:
    """The listenKey calls the engine will make through the gateway, here real HTTP calls to the simulator."""

    def __init__(self, client: SignedClient) -> None:
        self.client = client
        self.created: list[str] = []
        self.kept_alive: list[tuple[float, str]] = []

    async def create(self) -> str:
        body = await self.client.request("POST", "/fapi/v1/listenKey", signed=False)
        key = str(body["listenKey"])
        self.created.append(key)
        return key

    async def keepalive(self, key: str) -> None:
        body = await self.client.request("PUT", "/fapi/v1/listenKey", {"listenKey": key}, signed=False)
        if body.get("code") == -1125:
            raise ListenKeyInvalid(body.get("msg", ""))
        self.kept_alive.append((time.monotonic(), key))


def make_feed(sim: SimServer, keys: ListenKeys, rec: Recorder, **kw: Any) -> UserFeed:
    return UserFeed(ws_base(sim), keys.create, keys.keepalive, on_user_event=rec, on_status=rec, **kw)


async def market_buy(client: SignedClient, qty: str = "0.01") -> dict[str, Any]:
    reply: dict[str, Any] = await client.request(
        "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": qty}
    )
    assert "orderId" in reply, reply
    return reply


# ----- unit -----------------------------------------------------------------------------------------------
def test_recorded_binance_user_payloads_parse_with_exact_decimals() -> None:
    # ORDER_TRADE_UPDATE as Binance documents it (a partial fill of a limit sell).
    order = user_event(
        {
            "e": "ORDER_TRADE_UPDATE",
            "E": 1568879465651,
            "T": 1568879465650,
            "o": {
                "s": "BTCUSDT",
                "c": "TEST",
                "S": "SELL",
                "o": "TRAILING_STOP_MARKET",
                "f": "GTC",
                "q": "0.001",
                "p": "0",
                "ap": "9.91",
                "sp": "7103.04",
                "x": "TRADE",
                "X": "PARTIALLY_FILLED",
                "i": 8886774,
                "l": "0.0007",
                "z": "0.0007",
                "L": "9.91",
                "N": "USDT",
                "n": "0.00069370",
                "T": 1568879465650,
                "t": 12345,
                "b": "0",
                "a": "9.91",
                "m": False,
                "R": True,
                "wt": "CONTRACT_PRICE",
                "ot": "TRAILING_STOP_MARKET",
                "ps": "LONG",
                "cp": False,
                "AP": "7476.89",
                "cr": "5.0",
                "pP": False,
                "si": 0,
                "ss": 0,
                "rp": "0.10000001",
                "V": "EXPIRE_TAKER",
                "pm": "OPPONENT",
                "gtd": 0,
            },
        }
    )
    assert isinstance(order, OrderUpdate)
    assert (order.symbol, order.client_order_id, order.order_id, order.side) == (
        "BTCUSDT",
        "TEST",
        8886774,
        "SELL",
    )
    assert (order.status, order.execution_type, order.trade_id) == ("PARTIALLY_FILLED", "TRADE", 12345)
    assert order.orig_qty == Decimal("0.001") and order.executed_qty == Decimal("0.0007")
    assert order.last_fill_qty * order.last_fill_price == Decimal("0.006937")  # exact, no float noise
    assert order.commission == Decimal("0.00069370") and order.realized_pnl == Decimal("0.10000001")
    assert order.reduce_only is True and order.position_side == "LONG"
    assert order.event_time == 1568879465651 and order.transaction_time == 1568879465650

    account = user_event(
        {
            "e": "ACCOUNT_UPDATE",
            "E": 1564745798939,
            "T": 1564745798938,
            "a": {
                "m": "ORDER",
                "B": [
                    {"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"},
                    {"a": "BUSD", "wb": "1.00000000", "cw": "0.00000000", "bc": "-49.12345678"},
                ],
                "P": [
                    {
                        "s": "BTCUSDT",
                        "pa": "0",
                        "ep": "0.00000",
                        "bep": "0",
                        "cr": "200",
                        "up": "0",
                        "mt": "isolated",
                        "iw": "0.00000000",
                        "ps": "BOTH",
                    },
                    {
                        "s": "BTCUSDT",
                        "pa": "20",
                        "ep": "6563.66500",
                        "bep": "6563.6",
                        "cr": "0",
                        "up": "2850.21200",
                        "mt": "isolated",
                        "iw": "13200.70726908",
                        "ps": "LONG",
                    },
                ],
            },
        }
    )
    assert isinstance(account, AccountUpdate) and account.reason == "ORDER"
    assert [b.asset for b in account.balances] == ["USDT", "BUSD"]
    assert account.balances[0].wallet_balance == Decimal("122624.12345678")
    assert account.balances[1].balance_change == Decimal("-49.12345678")
    assert account.positions[1].amount == Decimal("20") and account.positions[1].entry_price == Decimal(
        "6563.665"
    )
    assert account.positions[1].isolated_wallet == Decimal("13200.70726908")

    other = user_event({"e": "MARGIN_CALL", "E": 1587727187525, "cw": "3.16812045", "p": []})
    assert (
        isinstance(other, OtherUserEvent) and other.event == "MARGIN_CALL" and other.raw["cw"] == "3.16812045"
    )


def test_a_conditional_orders_algo_update_parses_as_binance_documents_it() -> None:
    # ALGO_UPDATE (Binance USD-M's Algo Service, since December 2025): a take-profit canceled
    update = user_event(
        {
            "e": "ALGO_UPDATE",
            "T": 1750515742297,
            "E": 1750515742303,
            "o": {
                "caid": "Q5xaq5EGKgXXa0fD7fs0Ip",
                "aid": 2148719,
                "at": "CONDITIONAL",
                "o": "TAKE_PROFIT",
                "s": "BNBUSDT",
                "S": "SELL",
                "ps": "BOTH",
                "f": "GTC",
                "q": "0.01",
                "X": "CANCELED",
                "ai": "",
                "ap": "0.00000",
                "aq": "0.00000",
                "act": "0",
                "tp": "750",
                "p": "750.5",
                "V": "EXPIRE_MAKER",
                "wt": "CONTRACT_PRICE",
                "pm": "NONE",
                "cp": False,
                "pP": False,
                "R": False,
                "tt": 0,
                "gtd": 0,
                "rm": "Reduce Only reject",
            },
        }
    )
    assert isinstance(update, AlgoUpdate)
    assert (update.client_algo_id, update.algo_id, update.order_type) == (
        "Q5xaq5EGKgXXa0fD7fs0Ip",
        2148719,
        "TAKE_PROFIT",
    )
    assert update.trigger_price == Decimal("750") and update.price == Decimal("750.5")
    assert update.quantity == Decimal("0.01") and update.status == "CANCELED" and update.placed_order_id == ""
    assert (
        update.reason == "Reduce Only reject"
        and not update.close_position
        and update.event_time == 1750515742303
    )
    bad = {"caid": "x", "aid": 1, "o": "STOP_MARKET", "s": "BTCUSDT", "S": "BUY", "X": "NEW", "tp": "-5"}
    with pytest.raises(ParseError, match="ALGO_UPDATE: .*o.tp"):
        user_event({"e": "ALGO_UPDATE", "E": 1, "o": bad})


# ----- against the simulator -------------------------------------------------------------------------------
async def test_user_stream_delivers_order_and_account_updates_with_exact_decimals(
    sim: SimServer, client: SignedClient
) -> None:
    rec, keys = Recorder(), ListenKeys(client)
    feed = make_feed(sim, keys, rec)
    await feed.start()
    try:
        await asyncio.wait_for(feed.wait_connected(), 5)
        reply = await market_buy(client, "0.01")
        await rec.wait_for(
            "NEW and TRADE order updates and an account update",
            lambda: (
                {o.execution_type for o in rec.of(OrderUpdate)} >= {"NEW", "TRADE"} and rec.of(AccountUpdate)
            ),
        )
    finally:
        await feed.stop()
    assert keys.created == [feed.listen_key]
    new = rec.of(OrderUpdate, execution_type="NEW")[0]
    fill = rec.of(OrderUpdate, execution_type="TRADE")[0]
    assert new.order_id == fill.order_id == reply["orderId"]
    assert new.client_order_id == fill.client_order_id == reply["clientOrderId"]
    assert (fill.symbol, fill.side, fill.type, fill.status) == ("BTCUSDT", "BUY", "MARKET", "FILLED")
    for value in (
        fill.orig_qty,
        fill.executed_qty,
        fill.last_fill_qty,
        fill.last_fill_price,
        fill.avg_price,
        fill.commission,
        fill.realized_pnl,
    ):
        assert type(value) is Decimal
    assert fill.orig_qty == fill.executed_qty == fill.last_fill_qty == Decimal("0.01")
    assert fill.avg_price == fill.last_fill_price == Decimal(reply["avgPrice"])
    assert fill.trade_id > 0 and fill.reduce_only is False and fill.event_time > 0
    trades = await client.request("GET", "/fapi/v1/userTrades", {"symbol": "BTCUSDT"})
    assert Decimal(trades[-1]["commission"]) == fill.commission
    position = rec.of(AccountUpdate)[-1].positions[0]
    assert position.symbol == "BTCUSDT" and position.amount == Decimal("0.01")  # exactly, not 0.01000000001
    assert position.entry_price == fill.last_fill_price
    assert rec.of(AccountUpdate)[-1].balances[0].asset == "USDT"


async def test_user_stream_renews_listen_key_on_expiry(sim: SimServer, client: SignedClient) -> None:
    # The simulator never sends `listenKeyExpired`; deleting the key is the same situation on the wire:
    # the socket is closed (1000) and the old key is refused (-1125) on reconnect.
    rec, keys = Recorder(), ListenKeys(client)
    feed = make_feed(sim, keys, rec, backoff=SCALED)
    await feed.start()
    try:
        await asyncio.wait_for(feed.wait_connected(), 5)
        old = feed.listen_key
        await client.request("DELETE", "/fapi/v1/listenKey", {"listenKey": old}, signed=False)
        await rec.wait_for("a new key and a new socket", lambda: feed.conn.connects == 2, within_s=8)
        assert feed.listen_key is not None and feed.listen_key != old
        assert keys.created == [old, feed.listen_key]
        await market_buy(client)
        await rec.wait_for(
            "order updates on the new key", lambda: rec.of(OrderUpdate, execution_type="TRADE")
        )
    finally:
        await feed.stop()
    statuses = [(s.state, s.close_code) for s in rec.statuses()]
    assert (FeedState.DISCONNECTED, 1000) in statuses  # the clean close counted as a disconnect
    refused = [s for s in rec.statuses(FeedState.RECONNECTING) if "-1125" in s.reason]
    assert refused and refused[0].retry_in_s == 0.0  # a dead key is renewed at once, not after a backoff


async def test_listen_key_is_kept_alive_on_schedule(sim: SimServer, client: SignedClient) -> None:
    rec, keys = Recorder(), ListenKeys(client)
    feed = make_feed(sim, keys, rec, keepalive_every_s=0.3)
    await feed.start()
    try:
        await rec.wait_for("three keep-alives", lambda: len(keys.kept_alive) >= 3, within_s=5)
    finally:
        await feed.stop()
    times = [t for t, _ in keys.kept_alive]
    assert all(later - earlier >= 0.29 for earlier, later in zip(times, times[1:], strict=False))
    assert {key for _, key in keys.kept_alive} == {feed.listen_key} and feed.keepalives >= 3
    assert not [s for s in rec.statuses() if s.severity != Severity.INFO]


async def test_user_stream_reconnects_after_ws_drop_with_the_same_key(
    sim: SimServer, client: SignedClient
) -> None:
    rec, keys = Recorder(), ListenKeys(client)
    feed = make_feed(sim, keys, rec, backoff=SCALED)
    await feed.start()
    try:
        await asyncio.wait_for(feed.wait_connected(), 5)
        await sim.inject({"kind": "ws_drop", "refuse_s": 0.5})
        await rec.wait_for("a reconnect", lambda: feed.conn.connects == 2, within_s=8)
        await market_buy(client)
        await rec.wait_for("order updates after the reconnect", lambda: rec.of(OrderUpdate))
    finally:
        await feed.stop()
    assert len(keys.created) == 1  # a 503 is not a key problem: the key is reused
    tries = rec.statuses(FeedState.RECONNECTING)
    assert [s.attempt for s in tries] == list(range(1, len(tries) + 1)) and len(tries) >= 2
    assert isinstance(rec.statuses()[-1], FeedStatus) and rec.statuses()[-1].reason == "stopped"


async def test_listen_key_expired_event_renews_the_key_and_reconnects() -> None:
    # The simulator cannot send `listenKeyExpired`, so a tiny real WebSocket server plays Binance here.
    from websockets.asyncio.server import ServerConnection, serve

    expired = b'{"e":"listenKeyExpired","E":1576653824250,"listenKey":"key-1"}'
    update = (
        b'{"e":"ACCOUNT_UPDATE","E":1,"T":1,"a":{"m":"FUNDING_FEE","B":[{"a":"USDT","wb":"0.1",'
        b'"cw":"0.1","bc":"0"}],"P":[]}}'
    )
    paths: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        paths.append(ws.request.path)
        await ws.send(expired if "key-1" in ws.request.path else update)
        await ws.wait_closed()

    created = iter(["key-1", "key-2"])

    async def create() -> str:
        return next(created)

    async def keepalive(key: str) -> None:
        return None

    rec = Recorder()
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        feed = UserFeed(
            f"ws://127.0.0.1:{port}", create, keepalive, on_user_event=rec, on_status=rec, backoff=SCALED
        )
        await feed.start()
        try:
            await rec.wait_for("an account update on the renewed key", lambda: rec.of(AccountUpdate))
        finally:
            await feed.stop()
    assert paths == ["/private/ws?listenKey=key-1", "/private/ws?listenKey=key-2"]
    assert feed.listen_key == "key-2" and feed.keys_created == 2
    renewal = [s for s in rec.statuses(FeedState.RECONNECTING) if "listenKeyExpired" in s.reason]
    assert renewal and renewal[0].retry_in_s == 0.0 and renewal[0].severity == Severity.WARNING
