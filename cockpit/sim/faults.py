"""Fault injection: the failures of the runbooks, on demand.

A fault is `{"kind": …, params…}`. Timed faults expire; counted faults are consumed one request at a time.
`FaultBoard` validates and holds them; the server consults it on every request and socket.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any


class FaultError(ValueError):
    """A fault spec the simulator cannot accept; the message names the field and the fix."""


# kind -> {param: (type, default)}; a default of None means the parameter is required. `Decimal`: a JSON
# number or a decimal string, kept as its exact decimal string (`0.5` and `"0.5"` are the same quantity).
FAULT_KINDS: dict[str, dict[str, tuple[type, Any]]] = {
    "rate_limit": {"count": (int, 1), "retry_after_s": (float, 5.0)},
    "ban": {"seconds": (float, 30.0)},
    "maintenance": {"seconds": (float, 30.0)},
    "ws_drop": {"refuse_s": (float, 0.0)},
    "ws_stall": {"seconds": (float, 10.0)},
    "clock_skew": {"ms": (int, None)},
    "auth_fail": {"seconds": (float, 30.0)},
    "reject_orders": {"count": (int, 1), "code": (int, -2019)},
    "partial_fill": {"count": (int, 1), "ratio": (float, 0.5)},
    "latency": {"ms": (int, None), "seconds": (float, 10.0)},
    "http_error": {"status": (int, 500), "count": (int, 1)},
    "ghost_position": {
        "symbol": (str, None),
        "side": (str, None),
        "qty": (Decimal, None),
        "pushed": (
            bool,
            False,
        ),  # the user stream pushes the new size, as if its fill's order update was lost
    },
    "price_move": {"symbol": (str, None), "pct": (float, None)},
    "apply_then_fail": {"count": (int, 1)},
    # bad data on a path the engine reads (cockpit/sim/hostile.py): `value` is any JSON value, served as is
    "hostile": {
        "target": (str, None),
        "field": (str, ""),
        "value": (object, "NaN"),
        "missing": (bool, False),
        "symbol": (str, "BTCUSDT"),
        "count": (int, 1),
    },
}

# Faults that last for a time (the param that says how long), and faults consumed per request.
TIMED = {
    "ban": "seconds",
    "maintenance": "seconds",
    "ws_drop": "refuse_s",
    "ws_stall": "seconds",
    "auth_fail": "seconds",
    "latency": "seconds",
}
COUNTED = {"rate_limit", "reject_orders", "partial_fill", "http_error", "apply_then_fail", "hostile"}
HOSTILE_TARGETS = ("mark", "account", "order", "positions", "balance", "premium")


@dataclass
class Fault:
    kind: str
    params: dict[str, Any]
    until: float | None = None  # time.monotonic() deadline for timed faults
    remaining: int | None = None  # uses left for counted faults
    created: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, **self.params}
        if self.until is not None:
            out["expires_in_s"] = round(max(0.0, self.until - time.monotonic()), 3)
        if self.remaining is not None:
            out["remaining"] = self.remaining
        return out


def normalize_symbol(symbol: str) -> str:
    """`BTC/USDT:USDT`, `btcusdt` or `BTCUSDT` → `BTCUSDT`."""
    return symbol.split(":")[0].replace("/", "").upper()


def parse_fault(spec: Any) -> Fault:
    if not isinstance(spec, dict):
        raise FaultError(f"a fault is a JSON object with a 'kind', got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise FaultError(f"kind {kind!r} is not a fault kind; use one of: {', '.join(FAULT_KINDS)}")
    schema = FAULT_KINDS[kind]
    unknown = sorted(set(spec) - set(schema) - {"kind", "at"})
    if unknown:
        raise FaultError(f"{kind}: unknown parameter(s) {unknown}; it takes {sorted(schema)}")
    params: dict[str, Any] = {}
    for name, (typ, default) in schema.items():
        if name not in spec:
            if default is None:
                raise FaultError(f"{kind}: parameter {name!r} is required")
            params[name] = default
            continue
        params[name] = _typed(kind, name, typ, spec[name])
    _check_values(kind, params)
    fault = Fault(kind, params)
    if kind in TIMED:
        fault.until = time.monotonic() + float(params[TIMED[kind]])
    if kind in COUNTED:
        fault.remaining = int(params["count"]) if "count" in params else 1
    return fault


_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false"}


def _typed(kind: str, name: str, typ: type, value: Any) -> Any:
    """`value` as the parameter's type, or FaultError naming the parameter. A float parameter also takes a
    decimal string; a `Decimal` one (a quantity) takes a number or a decimal string, read exactly."""
    if typ is object:  # any JSON value (the hostile fault's, served as it is)
        return value
    if typ is Decimal:
        return str(_decimal(kind, name, value, 'a number or a decimal string, e.g. 0.5 or "0.5"'))
    if typ is float:
        number = float(_decimal(kind, name, value, "a number"))
        if not math.isfinite(number):
            raise FaultError(f"{kind}: {name}={value!r} is too large")
        return number
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
        raise FaultError(f"{kind}: {name}={value!r} must be {_TYPE_NAMES.get(typ, typ.__name__)}")
    return value


def _decimal(kind: str, name: str, value: Any, expected: str) -> Decimal:
    """A JSON number (via its shortest text, `Decimal(str(x))`, so 0.1 stays 0.1) or a decimal string;
    finite, or FaultError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FaultError(f"{kind}: {name}={value!r} must be {expected}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise FaultError(f"{kind}: {name}={value!r} must be {expected}") from None
    if not number.is_finite():
        raise FaultError(f"{kind}: {name}={value!r} must be a finite number")
    return number


def _check_values(kind: str, params: dict[str, Any]) -> None:
    for name in ("count", "seconds", "refuse_s", "retry_after_s", "ms"):
        if name in params and params[name] < 0 and not (kind == "clock_skew" and name == "ms"):
            raise FaultError(f"{kind}: {name}={params[name]!r} must not be negative")
    if kind == "partial_fill" and not 0 < params["ratio"] < 1:
        raise FaultError(f"partial_fill: ratio={params['ratio']!r} must be between 0 and 1 (exclusive)")
    if kind == "http_error" and not 400 <= params["status"] <= 599:
        raise FaultError(f"http_error: status={params['status']!r} must be an HTTP error status (400-599)")
    if kind == "ghost_position":
        if params["side"].lower() not in ("long", "short", "buy", "sell"):
            raise FaultError(f"ghost_position: side={params['side']!r} must be 'long' or 'short'")
        if Decimal(params["qty"]) <= 0:
            raise FaultError(f"ghost_position: qty={params['qty']!r} must be positive")
    if kind == "hostile" and params["target"] not in HOSTILE_TARGETS:
        raise FaultError(f"hostile: target={params['target']!r} must be one of {', '.join(HOSTILE_TARGETS)}")
    if "symbol" in params:
        params["symbol"] = normalize_symbol(params["symbol"])


class FaultBoard:
    """The faults in force."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.kind in TIMED or fault.kind in COUNTED:
            self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def active(self, kind: str) -> Fault | None:
        """The newest unexpired fault of this kind, without consuming it."""
        self._expire()
        for fault in reversed(self._faults):
            if fault.kind == kind:
                return fault
        return None

    def peek(self, kind: str) -> Fault | None:
        """The counted fault of this kind that `consume` would take next, without taking it."""
        self._expire()
        return next((f for f in self._faults if f.kind == kind and f.remaining), None)

    def consume(self, kind: str) -> Fault | None:
        """Take one use of the oldest counted fault of this kind."""
        self._expire()
        for fault in self._faults:
            if fault.kind == kind and fault.remaining:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def take(self, kind: str, **match: Any) -> Fault | None:
        """Like `consume`, for the oldest counted fault of this kind whose params match `match`."""
        self._expire()
        for fault in self._faults:
            if (
                fault.kind == kind
                and fault.remaining
                and all(fault.params.get(k) == v for k, v in match.items())
            ):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def to_json(self) -> list[dict[str, Any]]:
        self._expire()
        return [f.to_json() for f in self._faults]

    def _expire(self) -> None:
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until is None or f.until > now]
