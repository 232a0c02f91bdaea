"""Checks on config values beyond their type and range: exchange ids, base URLs, symbols, secrets.

Plain functions returning (why, fix), so the schema, `cockpit keys` and the error renderer share one wording.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import urlsplit, urlunsplit

SUPPORTED_EXCHANGES = ("binanceusdm", "bybit")
DEFAULT_SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT")
REDACTED = "<redacted>"
SECRETS_FIX = (
    "remove it from the file; secrets live in the OS keyring (`cockpit keys set EXCHANGE`) "
    "or in the env vars COCKPIT_API_KEY and COCKPIT_API_SECRET"
)
SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+(-[A-Z0-9-]+)?)?$")
_SECRET_MARKERS = ("apikey", "secret", "password", "passphrase", "privatekey")


def is_secret_key(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    return any(marker in norm for marker in _SECRET_MARKERS)


def exchange_id_problem(exchange_id: str, *, gateway_only: bool = True) -> tuple[str, str] | None:
    """(why, fix) if `exchange_id` is not a ccxt exchange id (or, with gateway_only, not supported)."""
    if exchange_id in SUPPORTED_EXCHANGES:
        return None
    import ccxt  # slow (~0.5 s): only when the id is not the default

    known: list[str] = list(ccxt.exchanges)
    if exchange_id not in known:
        close = difflib.get_close_matches(exchange_id, known, n=1)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else "use 'binanceusdm' (Binance USD-M futures) or 'bybit' (Bybit linear USDT perpetuals)"
        )
        return "is not a ccxt exchange id", fix
    if gateway_only:
        supported = ", ".join(repr(x) for x in SUPPORTED_EXCHANGES)
        return (
            f"is a ccxt exchange, but the cockpit gateway only supports {supported} for now",
            "use 'binanceusdm' (Binance USD-M futures) or 'bybit' (Bybit linear USDT perpetuals)",
        )
    return None


def redact_url(url: str) -> str:
    """`url` with what may be a secret replaced: the userinfo (`user:password@`), every query value
    (`?signature=…`, `?apiKey=…`) and the fragment. Safe on any text: what does not parse is kept as is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{pair.partition('=')[0]}={REDACTED}" if "=" in pair else REDACTED
        for pair in parts.query.split("&")
        if pair
    )
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_urls(text: str) -> str:
    """Every URL in a message (an exchange library's error quotes the request it made) redacted."""
    return _URL_RE.sub(lambda match: redact_url(match[0]), text)


def base_url_problem(url: str) -> tuple[str, str, bool] | None:
    """(why, fix, redact_value) if `url` is not http(s)://host[:port]."""
    fix = "write only scheme://host[:port], e.g. 'http://127.0.0.1:8080'; cockpit adds /fapi/... itself"
    if any(ord(c) < 32 or c == "\x7f" for c in url):
        return "contains a control character (a NUL, a tab, a newline)", fix, False
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL", fix, True
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@)", SECRETS_FIX, True
    if any(c.isspace() for c in url):
        return "contains whitespace", fix, False
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://", fix, False
    if not parts.hostname:
        return "has no host", fix, False
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "has a port that is not a number in 0-65535", fix, False
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must not have a path, query or fragment", fix, False
    return None


def symbol_fix(symbol: str) -> str:
    """The fix for a symbol that is not a ccxt unified symbol."""
    upper = symbol.upper().strip()
    for quote in ("USDT", "USDC"):
        if "/" not in upper and upper.endswith(quote) and len(upper) > len(quote):
            return f"write ccxt unified symbols, e.g. '{upper[: -len(quote)]}/{quote}:{quote}'"
    if SYMBOL_RE.match(upper):
        return f"write it in upper case: {upper!r}"
    return "write ccxt unified symbols such as 'BTC/USDT:USDT' (BASE/QUOTE:SETTLE)"
