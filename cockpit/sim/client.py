"""A minimal signed Binance USD-M REST client: what an external strategy on the same account looks like.

The demo trader uses it; so do tests that need "someone else" trading on the account. Cockpit itself talks
to exchanges only through ccxt (cockpit.exchange).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson


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
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        query = {
            k: ("true" if v is True else "false" if v is False else v) for k, v in (params or {}).items()
        }
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
            return orjson.loads(await resp.read())
