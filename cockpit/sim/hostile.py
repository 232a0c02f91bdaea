"""The `hostile` fault: the exchange serves a value no real exchange should — NaN, Infinity, 1e999999, a huge,
negative or zero figure, a bool, garbage text, an object, a missing field, an oversized frame — on any path
the engine reads.

    {"kind": "hostile", "target": "mark", "field": "p", "value": "NaN"}
    {"kind": "hostile", "target": "positions", "field": "positionAmt", "missing": true}
    {"kind": "hostile", "target": "positions", "field": "", "value": {"code": 0}}    # an object, not a list
    {"kind": "hostile", "target": "account", "field": "a.B.0.wb", "value": "1e400"}

`target`: `mark` (the next `count` markPriceUpdate frames of `symbol`), `account` / `order` (a user-stream
ACCOUNT_UPDATE / ORDER_TRADE_UPDATE pushed at once, `count` times), `positions` (positionRisk, and the
account's position rows), `balance` (the account's and the balance endpoint's figures), `premium`
(premiumIndex marks): the REST ones for their next `count` answers. `field` is a dotted path into the
frame or into each row (`a.P.0.pa`; a number indexes a list); "" replaces the whole frame or answer.
`missing` drops the field instead of setting it.
"""

from __future__ import annotations

import copy
from typing import Any

TARGETS = ("mark", "account", "order", "positions", "balance", "premium")
STREAM_TARGETS = ("account", "order")


def served(payload: Any, params: dict[str, Any]) -> Any:
    """`payload` as the hostile fault serves it: a copy with `field` set to `value` (or dropped)."""
    path = str(params.get("field") or "")
    if not path:
        return params.get("value")
    out = copy.deepcopy(payload)
    keys = path.split(".")
    node = out
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = params.get("value")
    elif params.get("missing"):
        node.pop(last, None)
    else:
        node[last] = params.get("value")
    return out


def served_rows(rows: list[dict[str, Any]], params: dict[str, Any]) -> Any:
    """A REST answer that is a list of rows: the field set in every row, or the whole answer replaced."""
    if not params.get("field"):
        return params.get("value")
    return [served(row, params) for row in rows]


def account_update(symbol: str, now_ms: int, mark: str) -> dict[str, Any]:
    """A plausible ACCOUNT_UPDATE for `symbol` (a small long), to be made hostile."""
    return {
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": "10000", "cw": "10000", "bc": "0"}],
            "P": [
                {
                    "s": symbol,
                    "pa": "0.001",
                    "ep": mark,
                    "bep": mark,
                    "cr": "0",
                    "up": "0",
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                    "ma": "USDT",
                }
            ],
        },
    }


def order_update(symbol: str, now_ms: int, mark: str, trade_id: int) -> dict[str, Any]:
    """A plausible ORDER_TRADE_UPDATE (another client's market order, filled), to be made hostile."""
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": now_ms,
        "T": now_ms,
        "o": {
            "s": symbol,
            "c": f"hostile_{trade_id}",
            "S": "BUY",
            "o": "MARKET",
            "f": "GTC",
            "q": "0.001",
            "p": "0",
            "ap": mark,
            "sp": "0",
            "x": "TRADE",
            "X": "FILLED",
            "i": 9_000_000 + trade_id,
            "l": "0.001",
            "z": "0.001",
            "L": mark,
            "N": "USDT",
            "n": "0.01",
            "T": now_ms,
            "t": trade_id,
            "b": "0",
            "a": "0",
            "m": False,
            "R": False,
            "wt": "CONTRACT_PRICE",
            "ot": "MARKET",
            "ps": "BOTH",
            "cp": False,
            "rp": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        },
    }
