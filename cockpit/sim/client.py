"""A minimal signed Binance USD-M REST client: what an external strategy on the same account looks like.

The demo trader uses it; so do tests that need "someone else" trading on the account. Cockpit itself talks
to exchanges only through ccxt (cockpit.exchange).

Like ccxt, it asks for the final state of a new order (`newOrderRespType=RESULT`) unless told otherwise;
`newOrderRespType=None` leaves the parameter out, and Binance (and the simulator) then answer ACK.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class SignedClient:
    def __init__(self, base_url: str, api_key: str, api_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._secret = api_secret.encode()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SignedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, params: dict[str, Any] | None = None, signed: bool = True
    ) -> Any:
        """Send a request; returns the parsed JSON body. Error bodies are returned, not raised."""
        return (await self.send(method, path, params, signed)).body

    async def send(
        self, method: str, path: str, params: dict[str, Any] | None = None, signed: bool = True
    ) -> Reply:
        """Send a request; the HTTP status, the headers and the parsed JSON body."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        params = dict(params or {})
        if method == "POST" and path == "/fapi/v1/order":
            params.setdefault("newOrderRespType", "RESULT")
        query = {k: _wire(v) for k, v in params.items() if v is not None}
        if signed:
            query["timestamp"] = int(time.time() * 1000)
            query["recvWindow"] = 10_000
            encoded = urlencode(query)
            signature = hmac.new(self._secret, encoded.encode(), hashlib.sha256).hexdigest()
            encoded += "&signature=" + signature
        else:
            encoded = urlencode(query)
        url = f"{self.base_url}{path}?{encoded}" if encoded else f"{self.base_url}{path}"
        async with self._session.request(method, url, headers={"X-MBX-APIKEY": self._key}) as resp:
            return Reply(resp.status, dict(resp.headers), orjson.loads(await resp.read()))


def _wire(value: Any) -> Any:
    """Booleans as Binance spells them."""
    return "true" if value is True else "false" if value is False else value
