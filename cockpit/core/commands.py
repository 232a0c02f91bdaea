"""The operator's commands and what each answers: one frozen dataclass per command, one per result.

Every operator action — the app's keys, `cockpit ctl`, `cockpit backup`, `cockpit dlq`, `cockpit doctor`, a
reader's read copy — is one of these commands, handed to `Engine.control`, which answers with the command's
result type (`Flatten` → `FlattenResult`: the `Asks[...]` it derives from says which). Each command says who
asks (`by`: ui, ctl, cli, a test, …). JSON exists only at the control socket (`cockpit/core/wire.py`). Pure:
no I/O.

    result = await engine.control(Flatten(symbols=("BTC/USDT:USDT",), by="ui"))
    if not result.verified: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Generic, Self, TypeAlias, TypeVar

from cockpit.core.errors import CockpitError

# ----- results -------------------------------------------------------------------------------------------
# Field names and order are the keys of the control socket's JSON (`cockpit ctl --json`): see wire.py.
# Decimal amounts are exact strings, as in events.


@dataclass(frozen=True)
class PositionStatus:
    symbol: str
    side: str  # long | short
    qty: str  # unsigned
    entry: str
    mark: str | None
    upnl: str | None  # at cents
    leverage: int | None
    liquidation: str | None  # "0": none
    mark_ts: float | None  # when its mark last arrived
    price_step: str | None  # the market's tick and step, when known
    amount_step: str | None
    ghost: bool
    margin: str | None = None  # cross | isolated, as the exchange says
    isolated_margin: str | None = None  # an isolated position's own margin (USDT)
    leg: str = "both"  # a hedge-mode leg: long | short


@dataclass(frozen=True)
class KillSwitchStatus:
    engaged: bool
    cause: str
    by: str
    since: float | None


@dataclass(frozen=True)
class RateLimitStatus:
    used: int
    limit: int
    queued: int
    rejected_recent: int
    banned_until: float | None
    window_s: float = 60.0  # the shared budget's window (Binance's minute, Bybit's 5 s)
    endpoint: str = ""  # the busiest endpoint with a budget of its own, "" when none is in use
    endpoint_used: int = 0
    endpoint_limit: int = 0


@dataclass(frozen=True)
class CounterStatus:
    fills: int
    orders_submitted: int
    orders_rejected: int
    ghosts: int
    dead_letters: int
    fill_rate: float | None  # None before any order's outcome


@dataclass(frozen=True)
class StatusReport:
    seq: int
    mode: str
    exchange: str
    session_file: str
    positions: tuple[PositionStatus, ...]  # by symbol
    open_orders: int
    health: Mapping[str, str]  # item → "ok" or the named problem
    health_detail: Mapping[str, str]  # only the items with a detail
    kill_switch: KillSwitchStatus
    equity: str | None  # at cents
    wallet: str | None
    drawdown_pct: float
    drawdown_band: str
    rate_limit: RateLimitStatus
    clock_offset_ms: float | None
    counters: CounterStatus
    kill_switch_file: str  # the account's kill switch state file
    market_data_ts: float | None  # when the newest mark arrived (what `cockpit watchdog` checks)


@dataclass(frozen=True)
class ReconcileResult:
    trigger: str
    matched: int
    recovered_fills: int
    recovered_by_symbol: Mapping[str, int]
    ghosts: tuple[str, ...]  # found by this pass
    adopted: tuple[str, ...]  # open before a brand-new session
    corrected: tuple[str, ...]  # explained by recovered fills
    orders_added: int  # only at the exchange
    orders_removed: int  # only here: closed
    ghosts_open: tuple[str, ...]  # every position still flagged: each needs a decision
    seconds: float
    through_ms: int  # the exchange's time the trade history was read through
    denied: tuple[str, ...] = ()  # ghosts where cockpit held quantity the exchange denies (its peak dropped)


@dataclass(frozen=True)
class FlattenResult:
    symbols: tuple[str, ...]
    by: str
    verified: bool  # flat at the exchange
    rounds: int
    remaining: Mapping[str, str]  # symbol → signed quantity still open
    errors: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class BackupResult:
    """A verified copy of the session file: a backup (a restore point) or a reader's read copy."""

    path: str
    size_bytes: int
    verified: bool
    last_seq: int | None
    seconds: float
    by: str
    message: str


@dataclass(frozen=True)
class AdoptResult:
    symbol: str
    qty: str
    entry: str
    ghost: bool  # False: no longer flagged
    reason: str
    message: str


@dataclass(frozen=True)
class PeakResetResult:
    """The drawdown's peak set to the equity now (`drawdown.peak_reset`)."""

    old_peak: str | None
    new_peak: str
    drawdown_pct: float  # after the reset
    by: str
    message: str


@dataclass(frozen=True)
class AckResult:
    """Incidents whose reminders stop (`acknowledged`: the engine's incident numbers, as its notifications
    name them)."""

    acknowledged: tuple[int, ...]
    by: str
    message: str


@dataclass(frozen=True)
class OrderStatus:
    """One open order, as the cockpit's Orders pane and `cockpit ctl orders` show it (decimals as strings, at
    the exchange's precision)."""

    client_order_id: str
    order_id: str | None  # None until the exchange has accepted it
    symbol: str
    side: str  # buy | sell
    type: str  # limit | market | stop_market | take_profit_market | stop | take_profit | trailing_stop_market
    amount: str
    filled: str
    price: str | None  # the limit price; None for a market order
    trigger: str | None  # a conditional order's trigger price; None for a plain order
    reduce_only: bool
    origin: str  # cockpit | external (another client on the account)
    status: str  # submitted | open | partially_filled
    age_s: float
    price_step: str | None  # the market's tick and amount step, to show them at its precision
    amount_step: str | None
    leg: str = "both"  # the hedge-mode leg it is on: long | short


@dataclass(frozen=True)
class OrdersReport:
    """Every open order the engine knows of, oldest first."""

    orders: tuple[OrderStatus, ...]


@dataclass(frozen=True)
class CancelResult:
    """What a cancel did: the orders canceled, and what the exchange still holds open in its scope when asked
    afterwards (`verified`: nothing)."""

    scope: str  # "order <id>", the symbols, or "all"
    by: str
    canceled: tuple[str, ...]  # client order ids (or exchange ids) of the orders that were open
    remaining: tuple[str, ...]  # still open at the exchange in the scope, read after the cancel
    errors: tuple[str, ...]
    verified: bool
    message: str


@dataclass(frozen=True)
class DeadLetter:
    id: int
    ts: float
    op: str
    params: Mapping[str, Any]  # the request as it was sent
    error_class: str
    error_type: str
    reason: str
    attempts: int
    status: str  # open | retried | removed


@dataclass(frozen=True)
class DeadLetters:
    """Dead letters, oldest first (on the wire: the list itself)."""

    letters: tuple[DeadLetter, ...]


@dataclass(frozen=True)
class DeadLetterStats:
    total: int
    by_status: Mapping[str, int]
    open_by_op: Mapping[str, int]
    open_by_class: Mapping[str, int]
    open_top_reasons: tuple[tuple[str, int], ...]  # (reason, count), most common first, at most 5


@dataclass(frozen=True)
class RetryResult:
    id: int
    sent: bool
    status: str  # the new order's status, or "rejected again"
    client_order_id: str | None


@dataclass(frozen=True)
class RemoveResult:
    id: int
    status: str  # removed


@dataclass(frozen=True)
class CleanupResult:
    deleted: int


Result: TypeAlias = (
    StatusReport
    | ReconcileResult
    | FlattenResult
    | KillSwitchStatus
    | BackupResult
    | AdoptResult
    | PeakResetResult
    | AckResult
    | OrdersReport
    | CancelResult
    | DeadLetters
    | DeadLetterStats
    | RetryResult
    | RemoveResult
    | CleanupResult
)

# ----- commands ------------------------------------------------------------------------------------------

R = TypeVar("R", bound=Result, covariant=True)
Answer = TypeVar("Answer", bound=Result)  # what a command answers: `control(command: Asks[Answer]) -> Answer`


@dataclass(frozen=True, kw_only=True)
class Asks(Generic[R]):
    """A command whose answer is an R. `by` says who asks: recorded with the action. A dangerous command
    declares the word the operator types to confirm it (`confirm_word`); the engine runs it only when
    `confirm` carries that word (`cockpit ctl --yes` and the cockpit's dialogs supply it)."""

    cmd: ClassVar[str]  # its name on the control socket (and in messages)
    confirm_word: ClassVar[str | None] = None  # None: runs without a confirmation
    by: str
    confirm: str | None = None  # the confirmation word, as the operator gave it

    def confirmation(self) -> str | None:
        """The word this command needs (None: none); a command whose danger depends on its fields says so
        here."""
        return self.confirm_word

    def confirmed(self) -> Self:
        """This command with its confirmation word: for a caller that has just asked the operator."""
        return replace(self, confirm=self.confirmation())


class NotConfirmed(CockpitError):
    """A dangerous command without its confirmation word: refused before anything is recorded or sent."""


def check_confirmed(command: Asks[Any]) -> None:
    """Refuse a command that needs a confirmation word (`Asks.confirmation`) and does not carry it."""
    word = command.confirmation()
    if word is None or command.confirm == word:
        return
    given = "no confirmation" if command.confirm is None else f"confirm {command.confirm!r}"
    raise NotConfirmed(
        f"{command.cmd} needs the confirmation word {word}",
        f"the request carried {given}; nothing was done",
        f'send "confirm": "{word}" with it (cockpit ctl asks you to type {word}, or takes --yes)',
    )


@dataclass(frozen=True, kw_only=True)
class Status(Asks[StatusReport]):
    """Positions, health, kill switch, equity, drawdown, rate limit, counters. A read: not recorded."""

    cmd: ClassVar[str] = "status"


@dataclass(frozen=True, kw_only=True)
class Reconcile(Asks[ReconcileResult]):
    """Reconcile with the exchange now."""

    cmd: ClassVar[str] = "reconcile"


@dataclass(frozen=True, kw_only=True)
class Flatten(Asks[FlattenResult]):
    """Close positions with reduce-only market orders and verify flat; `None`: all (then the kill switch)."""

    cmd: ClassVar[str] = "flatten"
    confirm_word: ClassVar[str | None] = "FLATTEN"
    symbols: tuple[str, ...] | None  # as the operator names them (BTCUSDT or BTC/USDT:USDT)


@dataclass(frozen=True, kw_only=True)
class KillSwitch(Asks[KillSwitchStatus]):
    """Engage (with a cause; default "engaged by <by>") or release (refused while its cause remains)."""

    cmd: ClassVar[str] = "kill_switch"
    confirm_word: ClassVar[str | None] = "RELEASE"  # a release only: engaging is never held up
    on: bool
    cause: str | None = None

    def confirmation(self) -> str | None:
        return None if self.on else self.confirm_word


@dataclass(frozen=True, kw_only=True)
class Backup(Asks[BackupResult]):
    """A verified backup in backups/: a restore point, recorded as db.backup."""

    cmd: ClassVar[str] = "backup"


@dataclass(frozen=True, kw_only=True)
class ReadCopy(Asks[BackupResult]):
    """A verified copy for a reader in .reads/, which the reader deletes: no restore point, not recorded."""

    cmd: ClassVar[str] = "read_copy"


@dataclass(frozen=True, kw_only=True)
class Adopt(Asks[AdoptResult]):
    """Accept a ghost position as the account's own: it stays open, no longer flagged."""

    cmd: ClassVar[str] = "adopt"
    confirm_word: ClassVar[str | None] = "ADOPT"
    symbol: str


@dataclass(frozen=True, kw_only=True)
class ResetPeak(Asks[PeakResetResult]):
    """Start the drawdown's peak again from the equity now (a bad sample made the peak): recorded, with the
    old and the new peak, before it takes effect. Refused while the equity is unknown."""

    cmd: ClassVar[str] = "reset_peak"
    confirm_word: ClassVar[str | None] = "RESET"


@dataclass(frozen=True, kw_only=True)
class Acknowledge(Asks[AckResult]):
    """The operator has seen incident `number` (None: every open incident): its notifications stop repeating.
    Recorded as an `operator.action` before it takes effect."""

    cmd: ClassVar[str] = "ack"
    number: int | None = None


@dataclass(frozen=True, kw_only=True)
class Orders(Asks[OrdersReport]):
    """The open orders. A read: not recorded."""

    cmd: ClassVar[str] = "orders"


@dataclass(frozen=True, kw_only=True)
class CancelOrders(Asks[CancelResult]):
    """Cancel one open order (`order`: its client order id or the exchange's order id), every open order of
    `symbols`, or (neither) every open order on the account. Cancelling more than one order needs the word
    CANCEL; one order is confirmed by the operator's dialog or prompt."""

    cmd: ClassVar[str] = "cancel"
    order: str | None = None
    symbols: tuple[str, ...] | None = None
    order_id: str | None = None  # the exchange id the operator was shown: refused if the order changed since

    def confirmation(self) -> str | None:
        return None if self.order is not None else "CANCEL"


@dataclass(frozen=True, kw_only=True)
class DlqList(Asks[DeadLetters]):
    """The dead letters, filtered. `status`: open, retried, removed, or all (or None: all)."""

    cmd: ClassVar[str] = "dlq"
    action: ClassVar[str] = "list"
    op: str | None = None
    reason: str | None = None  # a part of the reason
    status: str | None = "open"


@dataclass(frozen=True, kw_only=True)
class DlqStats(Asks[DeadLetterStats]):
    cmd: ClassVar[str] = "dlq"
    action: ClassVar[str] = "stats"


@dataclass(frozen=True, kw_only=True)
class DlqRetry(Asks[RetryResult]):
    """Send a dead-lettered order again (a new client id); needs the running engine."""

    cmd: ClassVar[str] = "dlq"
    action: ClassVar[str] = "retry"
    confirm_word: ClassVar[str | None] = "RETRY"
    id: int


@dataclass(frozen=True, kw_only=True)
class DlqRemove(Asks[RemoveResult]):
    cmd: ClassVar[str] = "dlq"
    action: ClassVar[str] = "remove"
    id: int


@dataclass(frozen=True, kw_only=True)
class DlqCleanup(Asks[CleanupResult]):
    """Delete dead letters older than this many days (any status)."""

    cmd: ClassVar[str] = "dlq"
    action: ClassVar[str] = "cleanup"
    older_than_days: float


DeadLetterCommand: TypeAlias = DlqList | DlqStats | DlqRetry | DlqRemove | DlqCleanup
Command: TypeAlias = (
    Status
    | Reconcile
    | Flatten
    | KillSwitch
    | Backup
    | ReadCopy
    | Adopt
    | ResetPeak
    | Acknowledge
    | Orders
    | CancelOrders
    | DeadLetterCommand
)
