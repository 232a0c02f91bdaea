"""Reading one field of an exchange's answer, the same way for every exchange: exact decimals, checked for
plausibility (cockpit/core/plausible.py); a figure cockpit needs and cannot read is a `MalformedReport`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from cockpit.core import plausible
from cockpit.core.domain import dec
from cockpit.exchange.reports import MalformedReport


def step(value: Any) -> Decimal | None:
    """A step or tick as the client gives it (float or string), exactly; None when missing or unreadable."""
    if value is None:
        return None
    try:
        return dec(value)
    except (InvalidOperation, ValueError, TypeError):
        return None


def lenient(value: Any) -> Decimal | None:
    """A figure that may be missing or unreadable (None): shown when known, never relied on."""
    number = step(value)
    return number if number is not None and number.is_finite() else None


def number(value: Any, what: str) -> Decimal:
    """An exact Decimal from a decimal string, an int or a float (through its repr): finite and in range."""
    if value is None or isinstance(value, bool):
        raise MalformedReport(f"{what} is missing" if value is None else f"{what} is not a number: {value!r}")
    return checked(plausible.money, value, what)


def checked(check: Callable[[Any, str], Decimal], value: Any, what: str) -> Decimal:
    """`value` through one of plausible's checks; a refused figure is a MalformedReport naming it."""
    try:
        return check(value, what)
    except plausible.BadFigure as exc:
        raise MalformedReport(str(exc)) from exc


def required(row: Mapping[str, Any], key: str, what: str) -> str:
    value = row.get(key)
    if value is None or value == "":
        raise MalformedReport(f"{what} has no {key}")
    return str(value)


def rows(answer: Any, what: str) -> list[Mapping[str, Any]]:
    """An answer that must be a list of objects (`what`: "income", "funding"); anything else fails whole."""
    if not isinstance(answer, list):
        raise MalformedReport(f"the {what} answer is not a list: {type(answer).__name__}")
    for row in answer:
        if not isinstance(row, Mapping):
            raise MalformedReport(f"one {what} row is not an object: {type(row).__name__}")
    return answer


def whole_ms(row: Mapping[str, Any], key: str, where: str) -> int:
    """A time in whole milliseconds, as an exchange writes it (a number or its text)."""
    raw = row.get(key)
    try:
        return int(str(raw))
    except ValueError:
        raise MalformedReport(f"{where} {key} is not a whole number of ms: {raw!r}") from None
