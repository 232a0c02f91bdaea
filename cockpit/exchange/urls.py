"""Pointing a ccxt client at another host (a simulator on loopback): its API URLs rewritten, paths kept."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def ws_of(base_url: str) -> str:
    """`http://127.0.0.1:8080` → `ws://127.0.0.1:8080` (https → wss); a ws(s):// base as it is."""
    return "ws" + base_url[len("http") :] if base_url.startswith("http") else base_url


def rewrite_api_urls(urls: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Every URL in ccxt's `urls['api']` with its scheme and host replaced by `base_url` (path kept)."""
    base = base_url.rstrip("/")
    out: dict[str, Any] = {}
    for key, value in urls.items():
        if isinstance(value, dict):
            out[key] = rewrite_api_urls(value, base)
        elif isinstance(value, str):
            parts = urlsplit(value)
            out[key] = base + parts.path
        else:
            out[key] = value
    return out
