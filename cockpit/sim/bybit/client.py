"""A minimal signed Bybit v5 client for the demo trader: the trader's orders (Binance-shaped, as it builds
them for `POST /fapi/v1/order`) sent as `POST /v5/order/create`, so `cockpit sim --exchange bybit` is as
alive as the Binance demo. Cockpit itself talks to exchanges only through ccxt."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import orjson

from cockpit.sim.bybit.auth import DEFAULT_RECV_WINDOW, sign

POSITION_IDX = {"LONG": 1, "SHORT": 2}


class BybitOrderClient:
    def __init__(self, base_url: str, api_key: str, api_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BybitOrderClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """Place the order `params` describes in Binance's terms (the only request the trader makes);
        returns Bybit's parsed answer."""
        if (method, path) != ("POST", "/fapi/v1/order"):
            raise ValueError(f"the Bybit demo client only places orders, not {method} {path}")
        order = params or {}
        body: dict[str, Any] = {
            "category": "linear",
            "symbol": order["symbol"],
            "side": "Buy" if order["side"] == "BUY" else "Sell",
            "orderType": "Limit" if order["type"] == "LIMIT" else "Market",
            "qty": order["quantity"],
        }
        if "price" in order:
            body["price"] = order["price"]
        if order.get("reduceOnly"):
            body["reduceOnly"] = True
        if order.get("newClientOrderId"):
            body["orderLinkId"] = order["newClientOrderId"]
        if order.get("positionSide") in POSITION_IDX:
            body["positionIdx"] = POSITION_IDX[order["positionSide"]]
        return await self._post("/v5/order/create", orjson.dumps(body).decode())

    async def _post(self, path: str, payload: str) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        ts = str(int(time.time() * 1000))
        headers = {
            "X-BAPI-API-KEY": self._key,
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": str(DEFAULT_RECV_WINDOW),
            "X-BAPI-SIGN": sign(self._secret, f"{ts}{self._key}{DEFAULT_RECV_WINDOW}{payload}"),
            "Content-Type": "application/json",
        }
        async with self._session.post(self.base_url + path, data=payload, headers=headers) as resp:
            return orjson.loads(await resp.read())
