"""Bybit's ccxt client (v5, linear USDT perpetuals), as cockpit drives it.

ccxt's own throttle and retries are off (cockpit's limiter and retry policy own them). Only the calls cockpit
needs are sent: linear markets only (ccxt otherwise loads spot, inverse and option markets too), no currency
list (`has.fetchCurrencies` — bybit ignores the `fetchCurrencies` option — else it asks the asset endpoint),
and the account known to be a unified trading account, so ccxt does not ask which kind it is before its first
balance or order. Pointed at `base_url` (a simulator) or Bybit's testnet when asked.
"""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async

from cockpit.exchange.urls import rewrite_api_urls


def bybit_client(
    api_key: str | None, api_secret: str | None, base_url: str | None, timeout_ms: int, testnet: bool
) -> Any:
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": api_secret,
        "enableRateLimit": False,  # cockpit's own limiter owns the request budget
        "timeout": timeout_ms,
        "has": {"fetchCurrencies": False},
        "options": {
            "fetchMarkets": {"types": ["linear"]},
            "enableUnifiedAccount": True,
            "enableUnifiedMargin": False,
            "fetchOrder": {"acknowledged": True},  # a lookup reads the last 500 orders: cockpit knows
            "defaultType": "swap",
            "defaultSubType": "linear",
            "maxRetriesOnFailure": 0,
        },
    }
    client = ccxt_async.bybit(config)
    if base_url is not None:
        client.urls["api"] = rewrite_api_urls(client.urls["api"], base_url)
    elif testnet:
        client.set_sandbox_mode(True)  # api-testnet.bybit.com
    return client
