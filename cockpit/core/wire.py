"""The control socket's JSON, and the only place commands and results meet it.

The engine's side: a request line becomes a typed command (`command_from_json`, with an error that names a bad
field and the fix) and a result becomes the reply's JSON (`result_to_json`: the same keys as ever, so
`cockpit ctl --json` and the scripts reading it see no change). The clients' side goes the other way:
`command_to_json` to send, `result_from_json` to read the answer as the command's result type.

Requests, one JSON object a line: {"cmd": "status"}, {"cmd": "reconcile"}, {"cmd": "flatten", "symbols":
[...] | null} (null: all positions), {"cmd": "kill_switch", "on": true|false, "cause": "…"} (cause optional),
{"cmd": "backup"}, {"cmd": "read_copy"}, {"cmd": "adopt", "symbol": "…"}, {"cmd": "reset_peak"},
{"cmd": "orders"}, {"cmd": "cancel", "order": "…"} | {"cmd": "cancel", "symbols": [...] | null},
{"cmd": "dlq", "action": "list",
"op": …, "reason": …, "status": "open"}, {"cmd": "dlq", "action": "stats"}, {"cmd": "dlq", "action":
"retry"|"remove", "id": N}, {"cmd": "dlq", "action": "cleanup", "older_than_days": D}; each may name who asks
("by", "ctl" when not given). Pure: no I/O.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields, is_dataclass, replace
from types import UnionType
from typing import TYPE_CHECKING, Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from cockpit.core.commands import (
    Acknowledge,
    AckResult,
    Adopt,
    AdoptResult,
    Answer,
    Asks,
    Backup,
    BackupResult,
    CancelOrders,
    CancelResult,
    CleanupResult,
    Command,
    CounterStatus,
    DeadLetter,
    DeadLetters,
    DeadLetterStats,
    DlqCleanup,
    DlqList,
    DlqRemove,
    DlqRetry,
    DlqStats,
    Flatten,
    FlattenResult,
    KillSwitch,
    KillSwitchStatus,
    Orders,
    OrdersReport,
    OrderStatus,
    PeakResetResult,
    PositionStatus,
    RateLimitStatus,
    ReadCopy,
    Reconcile,
    ReconcileResult,
    RemoveResult,
    ResetPeak,
    Result,
    RetryResult,
    Status,
    StatusReport,
)
from cockpit.core.errors import CockpitError, UsageError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

COMMANDS = (
    "status",
    "reconcile",
    "flatten",
    "kill_switch",
    "backup",
    "read_copy",
    "adopt",
    "reset_peak",
    "ack",
    "orders",
    "cancel",
    "dlq",
)
DLQ_ACTIONS = ("list", "stats", "retry", "remove", "cleanup")
DEFAULT_BY = "ctl"
HELP = "see `cockpit ctl --help`"
EXAMPLES = {  # the fix for a bad field: a request that works
    "flatten": '{"cmd": "flatten", "symbols": ["BTCUSDT"], "confirm": "FLATTEN"} (or "symbols": null for all '
    "positions)",
    "kill_switch": '{"cmd": "kill_switch", "on": true, "cause": "why"} (the cause may be left out)',
    "adopt": '{"cmd": "adopt", "symbol": "BTCUSDT", "confirm": "ADOPT"}',
    "reset_peak": '{"cmd": "reset_peak", "confirm": "RESET"}',
    "ack": '{"cmd": "ack", "number": 3} (or "number": null for every open incident)',
    "cancel": '{"cmd": "cancel", "order": "ck-1a2b"} (one order), or {"cmd": "cancel", "symbols": '
    '["BTCUSDT"], "confirm": "CANCEL"} ("symbols": null for every open order on the account)',
    "dlq list": '{"cmd": "dlq", "action": "list", "op": null, "reason": null, "status": "open"}',
    "dlq retry": '{"cmd": "dlq", "action": "retry", "id": 3, "confirm": "RETRY"}',
    "dlq remove": '{"cmd": "dlq", "action": "remove", "id": 3}',
    "dlq cleanup": '{"cmd": "dlq", "action": "cleanup", "older_than_days": 30}',
}
_MISSING = object()


class BadCommand(UsageError):
    """A request the control socket cannot turn into a command. The detail names the field."""

    def __init__(self, detail: str, fix: str = HELP) -> None:
        super().__init__("bad request", detail, fix)


class BadAnswer(CockpitError):
    """An engine's answer a client cannot read as the result it asked for."""


def _listed(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}"


# ----- JSON → command (the engine's side) ------------------------------------------------------------------


def _fix(name: str) -> str:
    example = EXAMPLES.get(name)
    return f"send e.g. {example}" if example else HELP


def _value(data: Mapping[str, Any], name: str, key: str, default: Any = _MISSING) -> Any:
    if key in data:
        return data[key]
    if default is _MISSING:
        raise BadCommand(f'{name}: "{key}" is missing', _fix(name))
    return default


def _wrong(name: str, key: str, what: str, value: Any) -> BadCommand:
    return BadCommand(f'{name}: "{key}" must be {what}, got {value!r}', _fix(name))


def _text(data: Mapping[str, Any], name: str, key: str) -> str:
    value = _value(data, name, key)
    if not isinstance(value, str):
        raise _wrong(name, key, "a string", value)
    return value


def _text_or_null(data: Mapping[str, Any], name: str, key: str, default: str | None = None) -> str | None:
    value = _value(data, name, key, default)
    if value is not None and not isinstance(value, str):
        raise _wrong(name, key, "a string or null", value)
    return value


def _flag(data: Mapping[str, Any], name: str, key: str) -> bool:
    """true/false, or 1/0 as scripts send them; never a string ("false" must not read as true)."""
    value = _value(data, name, key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _wrong(name, key, "true or false", value)


def _whole(data: Mapping[str, Any], name: str, key: str) -> int:
    """A whole number: 3, 3.0 or "3"."""
    value = _value(data, name, key)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(name, key, "a whole number", value)
    return value


def _int_or_null(data: Mapping[str, Any], name: str, key: str) -> int | None:
    """A whole number, or null (or left out)."""
    return None if _value(data, name, key, None) is None else _whole(data, name, key)


def _number(data: Mapping[str, Any], name: str, key: str) -> float:
    """A finite number: 30, 0.5 or "30"."""
    value = _value(data, name, key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _wrong(name, key, "a number", value) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong(name, key, "a number", value)
    return float(value)


def _symbols(data: Mapping[str, Any], name: str = "flatten") -> tuple[str, ...] | None:
    value = data.get("symbols")  # not given: null, all positions (as ever)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        everything = "all positions" if name == "flatten" else "every open order"
        raise _wrong(name, "symbols", f"a list of symbols or null ({everything})", value)
    return tuple(value)


def _cancel(data: Mapping[str, Any], by: str) -> CancelOrders:
    order = _text_or_null(data, "cancel", "order")
    symbols = _symbols(data, "cancel")
    if order is not None and symbols is not None:
        raise BadCommand('cancel: give "order" or "symbols", not both', _fix("cancel"))
    if order is not None and not order.strip():
        raise _wrong("cancel", "order", "an order's client order id or exchange order id", order)
    order_id = _text_or_null(data, "cancel", "order_id")
    return CancelOrders(order=order, symbols=symbols, order_id=order_id, by=by)


def _by(data: Mapping[str, Any]) -> str:
    value = data.get("by") or DEFAULT_BY  # not given, or null: as ever
    if not isinstance(value, str):
        raise BadCommand(f'"by" must be a string, got {value!r}', 'name who asks, e.g. "by": "ctl"')
    return value


def _dead_letter_command(data: Mapping[str, Any], by: str) -> Command:
    action = data.get("action")
    name = f"dlq {action}"
    if action == "list":
        op = _text_or_null(data, name, "op")
        reason = _text_or_null(data, name, "reason")
        return DlqList(op=op, reason=reason, status=_text_or_null(data, name, "status", "open"), by=by)
    if action == "stats":
        return DlqStats(by=by)
    if action == "retry":
        return DlqRetry(id=_whole(data, name, "id"), by=by)
    if action == "remove":
        return DlqRemove(id=_whole(data, name, "id"), by=by)
    if action == "cleanup":
        return DlqCleanup(older_than_days=_number(data, name, "older_than_days"), by=by)
    raise BadCommand(f"unknown dlq action {action!r}; use {_listed(DLQ_ACTIONS)}")


def command_from_json(data: Mapping[str, Any]) -> Command:
    """A request as the control socket reads it → its command. Raises BadCommand naming what is wrong.

    "by" names the tool that asks (the socket records the asking user from its peer's credentials); a
    dangerous command carries its confirmation word as "confirm" (e.g. "FLATTEN": `Asks.confirmation`)."""
    command = _command(data, _by(data))
    confirm = _text_or_null(data, "confirm", "confirm")
    return command if confirm is None else replace(command, confirm=confirm)


def _command(data: Mapping[str, Any], by: str) -> Command:
    cmd = data.get("cmd")
    if cmd == "status":
        return Status(by=by)
    if cmd == "reconcile":
        return Reconcile(by=by)
    if cmd == "flatten":
        return Flatten(symbols=_symbols(data), by=by)
    if cmd == "kill_switch":
        on = _flag(data, cmd, "on")
        return KillSwitch(on=on, cause=_text_or_null(data, cmd, "cause"), by=by)
    if cmd == "backup":
        return Backup(by=by)
    if cmd == "read_copy":
        return ReadCopy(by=by)
    if cmd == "adopt":
        return Adopt(symbol=_text(data, cmd, "symbol"), by=by)
    if cmd == "reset_peak":
        return ResetPeak(by=by)
    if cmd == "ack":
        return Acknowledge(number=_int_or_null(data, cmd, "number"), by=by)
    if cmd == "orders":
        return Orders(by=by)
    if cmd == "cancel":
        return _cancel(data, by)
    if cmd == "dlq":
        return _dead_letter_command(data, by)
    raise BadCommand(f"unknown command {cmd!r}; use {_listed(COMMANDS)}")


# ----- result → JSON (the engine's side) and command → JSON (the clients') ----------------------------------


def _plain(value: Any) -> Any:
    """Dataclasses as objects (their fields in order), tuples as lists: what orjson writes."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def result_to_json(result: Result) -> Any:
    """A result as the control socket's reply carries it (and `cockpit ctl --json` prints it)."""
    if isinstance(result, DeadLetters):
        return _plain(result.letters)
    return _plain(result)


def command_to_json(command: Asks[Any]) -> dict[str, Any]:
    """A command as a client sends it: {"cmd": …, ("action": … for dlq,) its fields, "by": …}."""
    request: dict[str, Any] = {"cmd": command.cmd}
    if isinstance(command, DlqList | DlqStats | DlqRetry | DlqRemove | DlqCleanup):
        request["action"] = command.action
    request.update(_plain(command))
    return request


# ----- JSON → result (the clients' side) -------------------------------------------------------------------

D = TypeVar("D", bound="DataclassInstance")


def _frozen(value: Any) -> Any:
    """Lists as tuples (a result's sequences are tuples), nested lists too; objects stay as they are."""
    return tuple(_frozen(item) for item in value) if isinstance(value, list) else value


def _build(cls: type[D], data: Any, **read: Callable[[Any], Any]) -> D:
    """A result dataclass from its JSON object, every field by name (`read`: how to read the nested ones)."""
    if not isinstance(data, dict):
        raise BadAnswer(
            f"the engine's answer is not a {cls.__name__}", f"got {data!r}", "check the engine's log"
        )
    # a field with a default may be absent: an engine older than the field
    missing = [f.name for f in fields(cls) if f.name not in data and f.default is MISSING]
    if missing:
        raise BadAnswer(
            f"the engine's answer has no {', '.join(missing)}",
            f"expected a {cls.__name__}",
            "is the engine running the same cockpit version? restart it",
        )
    values = {f.name: read.get(f.name, _frozen)(data[f.name]) for f in fields(cls) if f.name in data}
    for name, hint in _hints(cls).items():
        if name in values and not _conforms(values[name], hint):
            raise BadAnswer(
                f"the engine's answer has a bad {name}",
                f"{cls.__name__}.{name} must be {hint}, got {_shown(values[name])}",
                "is the engine running the same cockpit version? restart it",
            )
    return cls(**values)


@functools.cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return get_type_hints(cls)


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON is of a result field's type (str, int, float, bool, None, unions,
    tuples, mappings, nested results): an answer that is not is refused, never shown half-read."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return any(_conforms(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint in (bool, str):
        return isinstance(value, hint)
    if hint in (int, float):
        number = isinstance(value, int | float) if hint is float else isinstance(value, int)
        return number and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_conforms(item, args[0]) for item in value)
        return len(args) == len(value) and all(map(_conforms, value, args))
    if origin in (Mapping, dict):
        return isinstance(value, dict) and all(
            _conforms(k, args[0]) and _conforms(v, args[1]) for k, v in value.items()
        )
    if isinstance(hint, type) and is_dataclass(hint):
        return isinstance(value, hint)
    return True  # Any


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _status_report(data: Any) -> StatusReport:
    return _build(
        StatusReport,
        data,
        positions=lambda rows: tuple(_build(PositionStatus, row) for row in rows),
        kill_switch=lambda item: _build(KillSwitchStatus, item),
        rate_limit=lambda item: _build(RateLimitStatus, item),
        counters=lambda item: _build(CounterStatus, item),
    )


def _dead_letters(data: Any) -> DeadLetters:
    if not isinstance(data, list):
        raise BadAnswer("the engine's answer is not a list of dead letters", f"got {data!r}")
    return DeadLetters(tuple(_build(DeadLetter, letter) for letter in data))


_READERS: dict[type[Asks[Any]], Callable[[Any], Result]] = {
    Status: _status_report,
    Reconcile: lambda data: _build(ReconcileResult, data),
    Flatten: lambda data: _build(FlattenResult, data),
    KillSwitch: lambda data: _build(KillSwitchStatus, data),
    Backup: lambda data: _build(BackupResult, data),
    ReadCopy: lambda data: _build(BackupResult, data),
    Adopt: lambda data: _build(AdoptResult, data),
    ResetPeak: lambda data: _build(PeakResetResult, data),
    Acknowledge: lambda data: _build(AckResult, data),
    Orders: lambda data: _build(
        OrdersReport, data, orders=lambda rows: tuple(_build(OrderStatus, row) for row in rows)
    ),
    CancelOrders: lambda data: _build(CancelResult, data),
    DlqList: _dead_letters,
    DlqStats: lambda data: _build(DeadLetterStats, data),
    DlqRetry: lambda data: _build(RetryResult, data),
    DlqRemove: lambda data: _build(RemoveResult, data),
    DlqCleanup: lambda data: _build(CleanupResult, data),
}


def result_from_json(command: Asks[Answer], data: Any) -> Answer:
    """The reply's result read as what `command` answers (a client's side of `result_to_json`)."""
    return cast(Answer, _READERS[type(command)](data))
