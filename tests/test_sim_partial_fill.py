"""The simulator's partial_fill fault is used by the next order it can split, so a schedule that injects it
(the chaos test) sees a partial fill whatever the other client on the account sends first."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt
import pytest

from cockpit.sim.server import SimServer

BTC = "BTC/USDT:USDT"
SOL = "SOL/USDT:USDT"


async def _raised(call: Any) -> BaseException:
    with pytest.raises(ccxt.BaseError) as info:
        await call
    return info.value


async def test_partial_fill_waits_for_an_order_it_can_split(sim: SimServer, ccxt_client: Any) -> None:
    await ccxt_client.load_markets()
    await sim.inject({"kind": "partial_fill", "count": 1, "ratio": 0.5})
    below = ccxt_client.price_to_precision(BTC, float(sim.prices.prices["BTCUSDT"]) * 0.95)
    resting = await ccxt_client.create_order(BTC, "limit", "buy", 0.01, below)  # rests: nothing to split
    assert resting["status"] == "open" and resting["filled"] == 0
    refused = await _raised(ccxt_client.create_order(BTC, "market", "buy", 0.001))  # under min notional
    assert isinstance(refused, ccxt.InvalidOrder)
    one_step = await ccxt_client.create_order(SOL, "market", "buy", 1)  # one step cannot fill in part
    assert one_step["status"] == "closed" and one_step["filled"] == 1
    assert [f["kind"] for f in sim.state()["faults"]] == ["partial_fill"]  # still in force
    tiny_ratio = await ccxt_client.create_order(BTC, "market", "buy", 0.003)
    assert tiny_ratio["status"] == "expired" and tiny_ratio["filled"] == 0.001
    assert sim.state()["faults"] == []  # used up by the order it split
    whole = await ccxt_client.create_order(BTC, "market", "buy", 0.01)
    assert whole["status"] == "closed" and whole["filled"] == 0.01
