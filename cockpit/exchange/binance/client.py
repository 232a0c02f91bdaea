"""Binance USD-M's ccxt client, as cockpit drives it.

Pointing ccxt at a simulator means rewriting every host in `urls['api']` (every key kept: a missing one
raises NotSupported). ccxt picks Binance USD-M's error table by URL prefix, so with a loopback URL it would
map -2019 to ExchangeError instead of InsufficientFunds; `_SimulatedBinanceUsdm` restores production's table
for the simulator's URL and changes nothing else.

The raw positionRisk answers are checked before ccxt reads them: ccxt turns an answer that is an object
instead of a list into an empty list, and silently drops a row whose entry price is missing or not above
zero, and "no position" would make every open one a ghost. Such an answer raises `MalformedReport` instead
(the gateway reports it as bad data, and the read as failed).
"""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async

from cockpit.core import plausible
from cockpit.exchange.reports import MalformedReport
from cockpit.exchange.urls import rewrite_api_urls

LIST_ANSWERS = ("fapiPrivateV2GetPositionRisk", "fapiPrivateV3GetPositionRisk")  # positionRisk: a list


def _position_row(row: Any) -> None:
    """One raw positionRisk row: an object with a symbol, a readable size and, when open, an entry price."""
    if not isinstance(row, dict):
        raise MalformedReport(f"a positionRisk row is not an object: {type(row).__name__}")
    symbol = row.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise MalformedReport("a positionRisk row without a symbol")
    try:
        amount = plausible.quantity(row.get("positionAmt"), f"{symbol} positionAmt")
        if amount != 0:
            plausible.price(row.get("entryPrice"), f"{symbol} entryPrice")
    except plausible.BadFigure as exc:
        raise MalformedReport(str(exc)) from exc


def _lists_only(client: Any) -> Any:
    """`client` whose raw positionRisk calls refuse an answer that is not a list."""
    for name in LIST_ANSWERS:
        raw = getattr(client, name, None)
        if raw is None:
            continue

        async def checked(*args: Any, _raw: Any = raw, **kwargs: Any) -> Any:
            answer = await _raw(*args, **kwargs)
            if not isinstance(answer, list):
                raise MalformedReport(f"the positionRisk answer is not a list: {type(answer).__name__}")
            for row in answer:
                _position_row(row)
            return answer

        setattr(client, name, checked)
    return client


class _SimulatedBinanceUsdm(ccxt_async.binanceusdm):  # type: ignore[misc]
    """binanceusdm whose error table treats the simulator's URL as fapi.binance.com."""

    cockpit_base_url: str = ""

    def get_exceptions_by_url(self, url: str, exactOrBroad: str) -> dict[str, Any]:  # noqa: N803 - ccxt's name
        if url is not None and self.cockpit_base_url and url.startswith(self.cockpit_base_url + "/fapi"):
            linear: dict[str, Any] = self.safe_dict(self.exceptions, "linear", {})
            table: dict[str, Any] = self.safe_dict(linear, exactOrBroad, {})
            return table
        result: dict[str, Any] = super().get_exceptions_by_url(url, exactOrBroad)
        return result


def binance_usdm_client(
    api_key: str | None, api_secret: str | None, base_url: str | None, timeout_ms: int, testnet: bool
) -> Any:
    """ccxt's binanceusdm for cockpit: ccxt's own throttle and retries off (cockpit's limiter and retry
    policy own them); pointed at `base_url` (a simulator) or Binance's testnet when asked."""
    config: dict[str, Any] = {
        "apiKey": api_key,
        "secret": api_secret,
        "enableRateLimit": False,  # cockpit's own limiter owns the request budget
        "timeout": timeout_ms,
        "options": {
            "fetchCurrencies": False,
            "fetchMargins": False,
            "maxRetriesOnFailure": 0,
            "warnOnFetchOpenOrdersWithoutSymbol": False,  # the limiter charges its weight of 40
        },
    }
    if base_url is None:
        client = ccxt_async.binanceusdm(config)
        if testnet:
            client.set_sandbox_mode(True)  # Binance's futures testnet (testnet.binancefuture.com)
        return _lists_only(client)
    client = _SimulatedBinanceUsdm(config)
    client.cockpit_base_url = base_url.rstrip("/")
    client.urls["api"] = rewrite_api_urls(client.urls["api"], base_url)
    return _lists_only(client)
