"""Build the ccxt async client of the exchange a config names, pointed at a simulator when `base_url` is set.

Each exchange's client is built by its dialect (`binance/client.py`); `rewrite_api_urls` (urls.py) points any
ccxt client at another host.
"""

from __future__ import annotations

from typing import Any

from cockpit.exchange.urls import rewrite_api_urls
from cockpit.exchange.venues import dialect_for

__all__ = ["make_ccxt_client", "rewrite_api_urls"]


def make_ccxt_client(
    exchange_id: str,
    api_key: str | None,
    api_secret: str | None,
    base_url: str | None = None,
    timeout_ms: int = 10_000,
    testnet: bool = False,
) -> Any:
    """A ccxt async exchange; the caller owns it and must `await client.close()`."""
    return dialect_for(exchange_id).make_client(api_key, api_secret, base_url, timeout_ms, testnet)
