"""Bybit v5 request signing, checked against the bytes received.

REST: `X-BAPI-API-KEY`, `X-BAPI-TIMESTAMP` (ms), `X-BAPI-RECV-WINDOW` (default 5000) and `X-BAPI-SIGN` =
hex HMAC-SHA256 of timestamp + key + recvWindow + payload, where the payload is the raw query string of a GET
or the raw body of a POST, never a re-encoding. Checked in Bybit's order: the key (10003), the timestamp
against the window `server - recvWindow <= timestamp < server + 1000` (10002), then the signature (10004).

Private websocket: `{"op": "auth", "args": [key, expires, sign]}` with sign = hex HMAC-SHA256 of
"GET/realtime" + expires; refused when `expires` is not in the future or the key or signature is wrong.
"""

from __future__ import annotations

import hashlib
import hmac

from cockpit.sim.bybit.errors import BybitError

DEFAULT_RECV_WINDOW = 5000


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_request(headers: dict[str, str], payload: str, api_key: str, api_secret: str, now_ms: int) -> None:
    """Raise the BybitError a real server would for these headers over this payload; None when good."""
    key = headers.get("X-BAPI-API-KEY", "")
    if not key or key != api_key:
        raise BybitError(10003)
    try:
        timestamp = int(headers.get("X-BAPI-TIMESTAMP", ""))
        window = int(headers.get("X-BAPI-RECV-WINDOW", "") or DEFAULT_RECV_WINDOW)
    except ValueError:
        raise BybitError(10001, "invalid request, timestamp or recv_window is malformed") from None
    if not now_ms - window <= timestamp < now_ms + 1000:
        raise BybitError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{timestamp}],server_timestamp[{now_ms}],recv_window[{window}]",
        )
    signature = headers.get("X-BAPI-SIGN", "")
    expected = sign(api_secret, f"{timestamp}{key}{window}{payload}")
    if not hmac.compare_digest(expected, signature.lower()):
        raise BybitError(10004)


def check_ws_auth(args: object, api_key: str, api_secret: str, now_ms: int) -> bool:
    """Is `[key, expires, sign]` a good private-socket login now?"""
    if not isinstance(args, list) or len(args) != 3:
        return False
    key, expires, signature = args
    try:
        expires_ms = int(expires)
    except (TypeError, ValueError):
        return False
    if key != api_key or expires_ms <= now_ms or not isinstance(signature, str):
        return False
    return hmac.compare_digest(sign(api_secret, f"GET/realtime{expires}"), signature.lower())
