"""What differs from one exchange to the next behind the gateway: its dialect.

The gateway (gateway.py) owns the generic path every call takes — the limiter, retries by error class, dead
letters, the exactly-once order — and asks the exchange's dialect for the rest: the ccxt client it needs, the
weight of each call, how its answers read as cockpit's reports (reports.py), the parameters an order or a
lookup carries, and the calls only that exchange has (its leverage settings, funding history, position mode,
conditional orders), and where its websockets are. Each exchange's dialect lives in a folder of its own
(`binance/`, `bybit/`); `dialect_for` finds it by the ccxt exchange id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from cockpit.exchange.intents import OrderIntent
from cockpit.exchange.ratelimit import LimitModel, LimitReading
from cockpit.exchange.reports import (
    BalanceReport,
    FillReport,
    FundingReport,
    MarketReport,
    OrderReport,
    PositionReport,
)

Row = TypeVar("Row")
Report = TypeVar("Report")


class Caller(Protocol):
    """What a dialect's own calls use of the gateway: the generic path, and reading an answer as a report."""

    client: Any

    async def call(
        self,
        op: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        weight: int | None = None,
        answers: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> Any: ...

    def read(self, op: str, mapping: Callable[[Row], Report], answer: Row) -> Report: ...

    async def ensure_markets(self) -> None: ...


class Dialect(Protocol):
    id: str  # the ccxt exchange id
    weights: Mapping[str, int]  # the request budget each gateway operation costs
    limits: LimitModel  # its request limits: the shared budget, and each endpoint's if it has them
    conditional_params: Mapping[str, Any]  # what a cancel of conditional orders (one or all) adds
    ban_probe_s: float  # a ban whose end the exchange does not name: one request this often, to see it end

    def make_client(
        self,
        api_key: str | None,
        api_secret: str | None,
        base_url: str | None,
        timeout_ms: int,
        testnet: bool,
    ) -> Any: ...

    def ws_base(self, base_url: str | None, testnet: bool) -> str:
        """Where its websockets are: the exchange's own host, or `base_url`'s (a simulator) with ws://."""
        ...

    def limit_reading(self, headers: Mapping[str, str] | None) -> LimitReading:
        """What an answer's headers say of its request budget."""
        ...

    # ----- answers as reports ---------------------------------------------------------------------------
    def market_reports(self, answer: Any) -> dict[str, MarketReport]: ...

    def position_reports(self, answer: Any, account_margin: str | None = None) -> list[PositionReport]:
        """`account_margin`: the account's margin mode where it is the account's (fetch_account_margin)."""
        ...

    def balance_report(self, answer: Any) -> BalanceReport: ...

    def order_report(self, answer: Any, sent_quantity: Decimal | None = None) -> OrderReport: ...

    # ----- what the exchange's refusals mean -------------------------------------------------------------
    def is_ban(self, exc: BaseException) -> bool: ...  # every request refused for a while (not one limit)

    def is_endpoint_limit(self, exc: BaseException) -> bool: ...  # one endpoint's budget, not every request

    def is_maintenance(self, exc: BaseException) -> bool: ...

    # ----- what the gateway sends -------------------------------------------------------------------------
    def order_params(self, intent: OrderIntent, client_order_id: str) -> dict[str, Any]: ...

    # ----- calls only this exchange has (through the gateway's generic path) ------------------------------
    async def fetch_mark_prices(self, gateway: Caller, symbols: list[str]) -> dict[str, Decimal]: ...

    async def fetch_open_orders(self, gateway: Caller, symbol: str | None) -> list[OrderReport]: ...

    async def fetch_trades(self, gateway: Caller, symbol: str, since_ms: int | None) -> list[FillReport]: ...

    async def lookup_order(
        self, gateway: Caller, symbol: str, client_order_id: str
    ) -> OrderReport | None: ...

    async def fetch_leverages(self, gateway: Caller) -> dict[str, int]: ...

    async def fetch_account_margin(self, gateway: Caller) -> str | None:
        """ "isolated" | "cross" when the margin mode is the whole account's (Bybit's unified account), None
        when each position says its own (Binance's per-symbol margin type)."""
        ...

    async def fetch_funding(self, gateway: Caller, since_ms: int) -> list[FundingReport]: ...

    async def fetch_hedge_mode(self, gateway: Caller) -> bool: ...

    async def fetch_open_conditional_orders(
        self, gateway: Caller, symbol: str | None
    ) -> list[OrderReport]: ...
