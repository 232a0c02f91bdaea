"""State ↔ JSON, for snapshots in the session store (restore = last snapshot + fold of the tail).

Generic over the frozen dataclasses in cockpit.core.state, driven by their type hints: Decimals travel as
strings, mappings as objects, tuples as arrays. A snapshot written by this version reads back equal to the
original.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import Any

import orjson

from cockpit.core.state import State

SNAPSHOT_FORMAT = 1


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner[0], value)
    if tp is Decimal:
        return Decimal(value)
    if tp in (int, float, str, bool) or tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        return tp(
            **{
                f.name: _decode(hints[f.name], value[f.name])
                for f in dataclasses.fields(tp)
                if f.name in value
            }
        )
    if origin in (Mapping, dict, typing.Mapping):
        _, vt = typing.get_args(tp)
        return {k: _decode(vt, v) for k, v in value.items()}
    if origin is tuple:
        (et, *_rest) = typing.get_args(tp)
        return tuple(_decode(et, v) for v in value)
    return value


def state_to_json(state: State) -> str:
    return orjson.dumps({"format": SNAPSHOT_FORMAT, "state": _encode(state)}).decode()


def state_from_json(text: str) -> State:
    data = orjson.loads(text)
    if data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"snapshot format {data.get('format')!r} is not {SNAPSHOT_FORMAT}")
    state = _decode(State, data["state"])
    assert isinstance(state, State)
    return state
