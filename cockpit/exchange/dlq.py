"""Dead letters: operations that failed for good, kept so an operator can inspect, retry or drop them.

The gateway hands each one to a `DeadLetterSink`; the engine's sink persists them in the session store.
`DeadLetterBuffer` is the in-memory sink used until a store is attached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class DeadLetter:
    op: str  # gateway operation, e.g. create_order
    params: dict[str, Any]  # what was asked (never credentials)
    error_class: str  # transient | recoverable | permanent | critical
    error_type: str  # the ccxt exception's class name
    reason: str  # the exchange's message
    attempts: int
    at: float = field(default_factory=time.time)


class DeadLetterSink(Protocol):
    def add(self, letter: DeadLetter) -> None: ...


class DeadLetterBuffer:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def add(self, letter: DeadLetter) -> None:
        self.letters.append(letter)
