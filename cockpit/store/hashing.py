"""The running hash that chains a session's events, so a verifier can catch rows dropped or altered.

`hash(n) = blake2b(hash(n-1) + canonical(n), digest_size=16)`, from a fixed `GENESIS`. The canonical bytes
are the orjson array `[seq, ts, kind, severity, source, payload_text]` where `payload_text` is exactly the
JSON text stored in the `payload` column, so the hash can be recomputed from the file alone.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import orjson

GENESIS = "0" * 32


def payload_text(payload: dict[str, Any]) -> str:
    """The JSON text stored for a payload: orjson with sorted keys (stable across runs)."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()


def event_hash(
    prev_hash: str, seq: int, ts: float, kind: str, severity: str, source: str, payload: str
) -> str:
    canonical = orjson.dumps([seq, ts, kind, severity, source, payload])
    return blake2b(prev_hash.encode("ascii") + canonical, digest_size=16).hexdigest()
