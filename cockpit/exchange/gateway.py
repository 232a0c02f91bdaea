"""ExchangeGateway: the one path from cockpit to an exchange.

Every call goes: rate limiter → ccxt → latency recorded → on failure, classified and retried by class
(tenacity) → if it fails for good, a dead letter (and, for a critical error, a halt notice). Orders are never
retried blindly: when create_order ends in a timeout or a 5xx, the order is looked up by its client order id
until it is found or the exchange's receive window has passed (after which it can no longer be applied), and
only then sent again.

Answers come back as typed reports (`reports.py`) in cockpit's words; the exchange's dialect (dialect.py; e.g.
`binance/`) reads them out of ccxt's and the exchange's fields, and holds the calls only that exchange has.
The engine sees nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar

import ccxt
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from cockpit.core.errors import CockpitError
from cockpit.core.retry import Backoff
from cockpit.exchange.classify import (
    ErrorClass,
    classify,
    is_auth_failure,
    is_rate_limit,
    outcome_unknown,
)
from cockpit.exchange.dialect import Dialect
from cockpit.exchange.dlq import DeadLetter, DeadLetterBuffer, DeadLetterSink
from cockpit.exchange.intents import OrderAck, OrderIntent, new_client_order_id
from cockpit.exchange.latency import LatencyRecorder
from cockpit.exchange.ratelimit import LimitReading, RateLimiter, retry_after_seconds
from cockpit.exchange.reports import (
    BalanceReport,
    FillReport,
    FundingReport,
    MalformedReport,
    MarketReport,
    OrderReport,
    PositionReport,
)
from cockpit.exchange.venues import dialect_for

__all__ = ["ExchangeGateway", "GatewayError", "OrderAck", "OrderIntent", "new_client_order_id"]

LEVERAGES_TTL_S = 60.0  # how long a read of the symbols' leverage settings stands
BAN_UNTIL = re.compile(r"banned until (\d{13})")
Row = TypeVar("Row")
Report = TypeVar("Report")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how long apart, each error class is retried."""

    transient_retries: int = 3
    transient_wait_s: float = 0.5
    recoverable_retries: int = 5
    recoverable_initial_s: float = 1.0
    recoverable_cap_s: float = 60.0
    order_confirm_window_s: float = 10.0  # Binance's recvWindow as ccxt sends it: 10 000 ms
    endpoint_limit_retries: int = 30  # one endpoint's refusals (each held up to its 1 s window): ~30 s

    def backoff(self, klass: ErrorClass) -> Backoff:
        """The delays (before jitter) and the number of retries for an error class: a transient error is
        retried soon, a recoverable one after 1, 2, 4 … up to the cap, anything else never."""
        if klass is ErrorClass.TRANSIENT:
            return Backoff((self.transient_wait_s,), self.transient_retries)
        if klass is ErrorClass.RECOVERABLE:
            return Backoff.doubling(
                self.recoverable_initial_s, self.recoverable_cap_s, self.recoverable_retries
            )
        return Backoff((0.0,), retries=0)

    def retries(self, klass: ErrorClass) -> int:
        return self.backoff(klass).retries or 0

    def wait(self, klass: ErrorClass, attempt: int, jitter: float) -> float:
        """Seconds before retry number `attempt` (1-based); `jitter` in [0, 1) spreads recoverable retries."""
        delay = self.backoff(klass).delay(attempt)
        if klass is not ErrorClass.RECOVERABLE:
            return delay
        return min(self.recoverable_cap_s, delay + jitter * self.recoverable_initial_s)


@dataclass(frozen=True)
class GatewayNotice:
    """Something the operator should know about the exchange connection."""

    kind: str  # rate_limited | banned | maintenance | auth_failed | halt | recovered | failed | bad_data
    op: str
    message: str
    error_class: ErrorClass | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True)
class ServerTime:
    """The exchange's clock read once, with our clock read around that one HTTP exchange only."""

    server_ms: int  # the exchange's time in its answer
    sent_at: float  # our wall clock (epoch seconds) just before the request left
    rtt_s: float  # from just before the request left to just after the answer arrived (monotonic)


class GatewayError(CockpitError):
    """An exchange operation that did not succeed, with its class and the exchange's reason."""

    def __init__(self, op: str, error_class: ErrorClass, cause: BaseException, attempts: int) -> None:
        reason = _reason(cause)
        super().__init__(
            f"{op} failed ({error_class.value}, {type(cause).__name__})",
            f"{reason} after {attempts} attempt(s)",
            _fix_for(error_class, cause),
        )
        self.op = op
        self.error_class = error_class
        self.cause = cause
        self.attempts = attempts


class OrderOutcomeUnknown(GatewayError):
    """create_order failed ambiguously and the lookup could not settle whether the order exists."""


Listener = Callable[[GatewayNotice], None]


class ExchangeGateway:
    def __init__(
        self,
        client: Any,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        dead_letters: DeadLetterSink | None = None,
        listener: Listener | None = None,
        dialect: Dialect | None = None,
    ) -> None:
        self.client = client
        self.dialect = dialect or dialect_for(str(client.id))  # what is this exchange's own
        self.limiter = limiter or RateLimiter(model=self.dialect.limits)
        self.policy = policy or RetryPolicy()
        self.dead_letters: DeadLetterSink = dead_letters or DeadLetterBuffer()
        self.latency = LatencyRecorder()
        self.last_error: str | None = None
        self._listeners: list[Listener] = [listener] if listener else []
        self._trouble: str | None = None  # the notice kind in force, cleared by a success
        self._trouble_endpoint: str | None = None  # the trouble is this endpoint's budget alone (Bybit's)
        self._resync_clock = False
        self._markets_loaded = False
        self._leverages: dict[str, int] = {}  # by unified symbol (the dialect's leverage settings)
        self._leverages_read_at = -LEVERAGES_TTL_S
        self._margin: str | None = None  # the account's margin mode, where it is the account's (Bybit)
        self._account_margin_read_at = -LEVERAGES_TTL_S

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def close(self) -> None:
        await self.client.close()

    # ----- the generic path -----------------------------------------------------------------------
    async def call(
        self,
        op: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        weight: int | None = None,
        answers: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Run one idempotent exchange call with limiter, latency, retry by class and dead-lettering.

        Exceptions in `answers` are replies, not failures (e.g. OrderNotFound for a lookup): they are raised
        as they are, without retry or dead letter.
        """
        weight = self.dialect.weights.get(op, 1) if weight is None else weight
        attempts = 0
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: self.policy.retries(classify(exc)) > 0),
            stop=self._stop,
            wait=self._wait,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    return await self._once(op, fn, args, kwargs, weight)
        except answers:
            raise
        except Exception as exc:
            params = (
                {} if op == "listen_key" else {"args": [str(a) for a in args]}
            )  # a listen key is a secret
            raise self._give_up(op, exc, attempts, params) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _once(
        self,
        op: str,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        weight: int,
    ) -> Any:
        await self.limiter.acquire(weight, op)
        try:
            if self._resync_clock:
                self._resync_clock = False
                await self.client.load_time_difference()
            self.client.last_response_headers = None  # a failure without an answer has no budget figures
        except BaseException:
            self.limiter.not_sent()  # a ban's probe that never went: the next request probes
            raise
        started = time.perf_counter()
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            self.latency.record(op, (time.perf_counter() - started) * 1000, ok=False)
            self._observe_failure(op, exc)
            raise
        except BaseException:  # cancelled while it was out: its answer will never be read
            self.limiter.not_sent()
            raise
        self.latency.record(op, (time.perf_counter() - started) * 1000, ok=True)
        self._observe_budget(op, self.client.last_response_headers)
        self._observe_success(op)
        return result

    def _retries(self, exc: BaseException) -> int:
        """How many times a call failing so is tried again: by its error class, but an endpoint's refusal
        (Bybit's 10006, held about a second) as long as `endpoint_limit_retries` allow — the order was not
        applied, and a flatten must outlast another client's burst on the same account."""
        if self.dialect.is_endpoint_limit(exc):
            return self.policy.endpoint_limit_retries
        return self.policy.retries(classify(exc))

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return True
        return state.attempt_number > self._retries(exc)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None or is_rate_limit(exc):
            return 0.0  # the limiter holds the next attempt until Retry-After or the ban ends
        return self.policy.wait(classify(exc), state.attempt_number, secrets.randbelow(1000) / 1000)

    def _give_up(self, op: str, exc: Exception, attempts: int, params: dict[str, Any]) -> GatewayError:
        if isinstance(exc, GatewayError):
            return exc
        if op.startswith("fetch_") and unreadable(exc):
            return self._bad_data(op, exc)
        klass = classify(exc)
        if klass is ErrorClass.CRITICAL:
            self._notify(GatewayNotice("halt", op, _reason(exc), klass))
        self.dead_letters.add(
            DeadLetter(
                op=op,
                params=params,
                error_class=klass.value,
                error_type=type(exc).__name__,
                reason=_reason(exc),
                attempts=attempts,
            )
        )
        self._notify(GatewayNotice("failed", op, _reason(exc), klass))
        return GatewayError(op, klass, exc, attempts)

    # ----- bookkeeping of what the exchange said ---------------------------------------------------
    def _observe_failure(self, op: str, exc: BaseException) -> None:
        self.last_error = f"{op}: {type(exc).__name__}: {_reason(exc)}"
        headers = getattr(self.client, "last_response_headers", None)
        # budget figures from a refusal only: another failure may have no answer of its own, and the client's
        # last headers would then be another call's (calls run side by side)
        reading = self._observe_budget(op, headers) if is_rate_limit(exc) else LimitReading()
        if not (is_rate_limit(exc) and self.dialect.is_ban(exc)):
            self.limiter.answered()  # whatever else it is, the IP is not banned
        if is_auth_failure(exc):
            self._trouble, self._trouble_endpoint = "auth_failed", None
            self._notify(GatewayNotice("auth_failed", op, _reason(exc), ErrorClass.CRITICAL))
        elif is_rate_limit(exc) and (wait := self._endpoint_limited(op, exc, reading)) is not None:
            # one endpoint's budget (Bybit's 10006): that endpoint waits for its reset, the rest go on; the
            # trouble lasts until that endpoint answers again (another's answer says nothing of it)
            if self._trouble in (None, "rate_limited"):  # a ban or maintenance in force stays the trouble
                self._trouble = "rate_limited"
                self._trouble_endpoint = self.limiter.model.endpoint_of.get(op)
            self._notify(GatewayNotice("rate_limited", op, _reason(exc), ErrorClass.RECOVERABLE, wait))
        elif is_rate_limit(exc):
            banned = self.dialect.is_ban(exc)
            retry_after = retry_after_seconds(headers) or _ban_seconds(exc)
            # a ban whose end the exchange does not name: one request every ban_probe_s sees it lifted (the
            # notice says no end it does not know)
            unnamed = banned and retry_after is None
            probe = self.dialect.ban_probe_s if unnamed else retry_after
            self.limiter.on_rate_limited(probe, banned=banned, probe=unnamed)
            self._trouble = "banned" if banned else "rate_limited"
            self._trouble_endpoint = None
            self._notify(GatewayNotice(self._trouble, op, _reason(exc), ErrorClass.RECOVERABLE, retry_after))
        elif self.dialect.is_maintenance(exc):
            self._trouble = "maintenance"
            self._trouble_endpoint = None
            self._notify(GatewayNotice("maintenance", op, _reason(exc), ErrorClass.RECOVERABLE))
        elif isinstance(exc, ccxt.InvalidNonce):
            self._resync_clock = True

    def _observe_budget(self, op: str, headers: Mapping[str, str] | None) -> LimitReading:
        reading = self.dialect.limit_reading(headers)
        self.limiter.observe(reading, op, self._server_now_ms())
        return reading

    def _endpoint_limited(self, op: str, exc: BaseException, reading: LimitReading) -> float | None:
        """A refusal of `op`'s endpoint budget alone (the dialect knows it by its code — Bybit's 10006 — with
        or without the budget headers): the seconds that endpoint waits, else None."""
        if not self.dialect.is_endpoint_limit(exc):
            return None
        return self.limiter.on_endpoint_limited(op, reading, self._server_now_ms())

    def _server_now_ms(self) -> float:
        """The exchange's clock now, as ccxt's last time sync measured it (local time when it did not)."""
        options = getattr(self.client, "options", None)
        difference = options.get("timeDifference", 0) if isinstance(options, dict) else 0
        return time.time() * 1000 - float(difference or 0)

    def _observe_success(self, op: str) -> None:
        self.limiter.answered()
        held = self._trouble_endpoint
        if held is not None and self.limiter.model.endpoint_of.get(op) != held and self.limiter.held(held):
            return  # one endpoint's refusal: over once that endpoint answers, or a window after its last
        if self._trouble is not None:
            was, self._trouble, self._trouble_endpoint = self._trouble, None, None
            self._notify(GatewayNotice("recovered", op, f"exchange answers again after {was}"))

    def _notify(self, notice: GatewayNotice) -> None:
        for listener in self._listeners:
            listener(notice)

    # ----- reads ----------------------------------------------------------------------------------
    def read(self, op: str, mapping: Callable[[Row], Report], answer: Row) -> Report:
        """`_read` for a dialect's own calls."""
        return self._read(op, mapping, answer)

    def _read(self, op: str, mapping: Callable[[Row], Report], answer: Row) -> Report:
        """The answer as a report. One cockpit cannot read (a figure missing, not finite, out of range, or
        an answer of the wrong shape) is bad data: the listeners hear a `bad_data` notice naming it, and the
        read fails (its caller reads again at its next poll). Nothing is dead-lettered: a read repeats."""
        try:
            return mapping(answer)
        except MalformedReport as exc:
            raise self._bad_data(op, exc) from exc

    def _bad_data(self, op: str, exc: Exception) -> GatewayError:
        reason = str(exc) if isinstance(exc, MalformedReport) else f"unreadable answer: {_reason(exc)}"
        self.last_error = f"{op}: bad data: {reason}"
        self._notify(GatewayNotice("bad_data", op, reason, ErrorClass.RECOVERABLE))
        cause = exc if isinstance(exc, MalformedReport) else MalformedReport(reason)
        return GatewayError(op, ErrorClass.RECOVERABLE, cause, 1)

    async def load_markets(self) -> dict[str, MarketReport]:
        """Every market the exchange lists, by unified symbol."""
        markets: dict[str, Any] = await self.call("load_markets", self.client.load_markets)
        self._markets_loaded = True
        return self._read("load_markets", self.dialect.market_reports, markets)

    async def ensure_markets(self) -> None:
        if not self._markets_loaded:
            await self.load_markets()

    async def fetch_time(self) -> int:
        return int(await self.call("fetch_time", self.client.fetch_time))

    async def time_server_clock(self) -> ServerTime:
        """One clock sample, timed NTP-style around the HTTP exchange alone.

        The limiter slot is taken before our clock is read, so a Retry-After cooldown, a ban or a full budget
        is waited out untimed; there is no retry, so a failure (429, 418, maintenance, timeout) raises at once
        and yields no sample. Rate limits, bans and maintenance are still heard by the listeners as for any
        call. Nothing is dead-lettered: a clock sample has nothing to replay.
        """
        op = "fetch_time"
        await self.limiter.acquire(self.dialect.weights[op])
        self.client.last_response_headers = None
        sent_at = time.time()
        started = time.perf_counter()
        try:
            raw = await self.client.fetch_time()
        except asyncio.CancelledError:
            self.limiter.not_sent()
            raise
        except Exception as exc:
            self.latency.record(op, (time.perf_counter() - started) * 1000, ok=False)
            self._observe_failure(op, exc)
            raise GatewayError(op, classify(exc), exc, 1) from exc
        rtt_s = time.perf_counter() - started
        self.latency.record(op, rtt_s * 1000, ok=True)
        self._observe_budget(op, self.client.last_response_headers)
        self._observe_success(op)
        return ServerTime(int(raw), sent_at, rtt_s)

    async def fetch_balance(self) -> BalanceReport:
        balance: dict[str, Any] = await self.call("fetch_balance", self.client.fetch_balance)
        return self._read("fetch_balance", self.dialect.balance_report, balance)

    async def fetch_positions(self, with_leverage: bool = True) -> list[PositionReport]:
        """Every position the exchange reports (flat ones included, if it sends them). A position without its
        leverage (Binance's positionRisk v3 no longer carries it) takes it from the symbols' settings, read
        at most once a minute (a leverage changed since shows within the minute)."""
        await self.ensure_markets()
        # the account's margin mode (Bybit's): read by the account poll (with_leverage), else as last read
        margin = await self._account_margin() if with_leverage else self._margin
        rows: list[dict[str, Any]] = await self.call("fetch_positions", self.client.fetch_positions)
        reports = self._read("fetch_positions", lambda r: self.dialect.position_reports(r, margin), rows)
        if with_leverage and any(r.leverage is None and r.quantity for r in reports):
            leverages = await self._symbol_leverages()
            reports = [
                replace(r, leverage=leverages.get(r.symbol)) if r.leverage is None else r for r in reports
            ]
        return reports

    async def _account_margin(self) -> str | None:
        """The account's margin mode where it is the whole account's (the dialect's read), cached
        LEVERAGES_TTL_S (it changes only with no position open); what it was when a read fails."""
        if time.monotonic() - self._account_margin_read_at < LEVERAGES_TTL_S:
            return self._margin
        self._account_margin_read_at = time.monotonic()  # one read at a time, and a failed one not at once
        with contextlib.suppress(GatewayError):  # said by the gateway; the last read stands
            self._margin = await self.dialect.fetch_account_margin(self)
        return self._margin

    async def _symbol_leverages(self) -> dict[str, int]:
        """Each symbol's leverage setting (the dialect's read), cached LEVERAGES_TTL_S; what it had when a
        read fails (a position without its leverage is shown so, never dropped)."""
        if time.monotonic() - self._leverages_read_at < LEVERAGES_TTL_S:
            return self._leverages
        self._leverages_read_at = time.monotonic()
        with contextlib.suppress(GatewayError):  # said by the gateway; the last read stands
            self._leverages = await self.dialect.fetch_leverages(self)
        return self._leverages

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """The open (plain) orders of `symbol`, or of the account: every one, however many pages."""
        await self.ensure_markets()
        return await self.dialect.fetch_open_orders(self, symbol)

    async def fetch_mark_prices(self, symbols: list[str]) -> dict[str, Decimal]:
        """Mark prices by unified symbol (the REST fallback while the market feed is down)."""
        return await self.dialect.fetch_mark_prices(self, symbols)

    async def fetch_my_trades(self, symbol: str, since_ms: int | None = None) -> list[FillReport]:
        """Every trade on `symbol` from `since_ms` up to now, oldest first, however many pages."""
        await self.ensure_markets()
        return await self.dialect.fetch_trades(self, symbol, since_ms)

    async def fetch_order_by_client_id(self, symbol: str, client_order_id: str) -> OrderReport | None:
        """The order with this client order id, or None when the exchange does not know it."""
        await self.ensure_markets()
        return await self.dialect.lookup_order(self, symbol, client_order_id)

    # ----- writes ---------------------------------------------------------------------------------
    async def cancel_order(self, order_id: str, symbol: str, *, gone_ok: bool = False) -> OrderReport | None:
        """Cancel one order. With `gone_ok`, an order that already filled or was canceled (`OrderNotFound`)
        is an answer — None — rather than a failure for the dead-letter queue."""
        await self.ensure_markets()
        try:
            order: dict[str, Any] = await self.call(
                "cancel_order",
                self.client.cancel_order,
                order_id,
                symbol,
                answers=(ccxt.OrderNotFound,) if gone_ok else (),
            )
        except ccxt.OrderNotFound:
            if gone_ok:
                return None
            raise
        return self._read("cancel_order", self.dialect.order_report, order)

    async def cancel_all_orders(self, symbol: str) -> None:
        await self.ensure_markets()
        await self.call("cancel_all_orders", self.client.cancel_all_orders, symbol)

    async def fetch_funding(self, since_ms: int) -> list[FundingReport]:
        """Every funding payment from `since_ms`, oldest first, each once (the exchange's history, exact)."""
        return await self.dialect.fetch_funding(self, since_ms)

    async def fetch_hedge_mode(self) -> bool:
        """Whether the account is in hedge mode (a LONG and a SHORT leg per symbol)."""
        return await self.dialect.fetch_hedge_mode(self)

    # ----- conditional orders (stop, take-profit, trailing): where the exchange holds them ----------------
    async def fetch_open_conditional_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """The open conditional orders of `symbol`, or of the account."""
        return await self.dialect.fetch_open_conditional_orders(self, symbol)

    async def cancel_conditional_order(self, order_id: str, symbol: str, *, gone_ok: bool = False) -> bool:
        """Cancel one conditional order: True when it was open and is canceled. With `gone_ok`, one already
        triggered or canceled (`OrderNotFound`) answers False, not a failure."""
        await self.ensure_markets()
        try:
            await self.call(
                "cancel_conditional_order",
                self.client.cancel_order,
                order_id,
                symbol,
                dict(self.dialect.conditional_params),
                answers=(ccxt.OrderNotFound,) if gone_ok else (),
            )
        except ccxt.OrderNotFound:
            if not gone_ok:
                raise
            return False
        return True

    async def cancel_all_conditional_orders(self, symbol: str) -> None:
        """Every conditional order of `symbol`; none to cancel (`OrderNotFound`, as some venues answer then)
        is an answer, not a failure."""
        await self.ensure_markets()
        with contextlib.suppress(ccxt.OrderNotFound):
            await self.call(
                "cancel_all_conditional_orders",
                self.client.cancel_all_orders,
                symbol,
                dict(self.dialect.conditional_params),
                answers=(ccxt.OrderNotFound,),
            )

    async def fetch_all_open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """Plain and conditional: every order that could still trade, on `symbol` or on the account."""
        plain = await self.fetch_open_orders(symbol)
        return [*plain, *(await self.fetch_open_conditional_orders(symbol))]

    async def create_listen_key(self) -> str:
        result = await self.call("listen_key", self.client.fapiPrivatePostListenKey)
        return str(result["listenKey"])

    async def keepalive_listen_key(self, key: str) -> None:
        await self.call("listen_key", self.client.fapiPrivatePutListenKey, {"listenKey": key})

    def amount_to_precision(self, symbol: str, amount: Decimal) -> Decimal:
        """The amount on the exchange's step grid (truncated, as the exchange would refuse more digits)."""
        return Decimal(self.client.amount_to_precision(symbol, format(amount, "f")))

    def price_to_precision(self, symbol: str, price: Decimal) -> Decimal:
        return Decimal(self.client.price_to_precision(symbol, format(price, "f")))

    async def create_order(self, intent: OrderIntent) -> OrderAck:
        """Place an order exactly once.

        Rejections are final (dead-lettered). A rate limit means the order was not applied: it is sent again
        when the limiter allows. A timeout or 5xx means the outcome is unknown: the order is looked up by its
        client order id; if the exchange still does not know it once the receive window has passed, it was
        never applied and is sent again with the same id. Retries are bounded by the policy.
        """
        await self.ensure_markets()
        cid = intent.client_order_id or new_client_order_id()
        amount = self.amount_to_precision(intent.symbol, intent.amount)
        if amount <= 0:
            raise GatewayError(
                "create_order",
                ErrorClass.PERMANENT,
                ccxt.InvalidOrder(f"amount {intent.amount} rounds to 0 at {intent.symbol}'s precision"),
                0,
            )
        price = self.price_to_precision(intent.symbol, intent.price) if intent.price is not None else None
        params = self.dialect.order_params(intent, cid)
        record = {
            "symbol": intent.symbol,
            "side": intent.side,
            "type": intent.type,
            "amount": format(amount, "f"),
            "price": format(price, "f") if price is not None else None,
            "reduce_only": intent.reduce_only,
            "client_order_id": cid,
            "leg": intent.leg,
        }
        attempts = 0
        tries: dict[str, int] = {}  # by kind of failure: a burst of one does not use up another's retries
        while True:
            attempts += 1
            sent_at = time.monotonic()
            try:
                raw = await self._once(
                    "create_order",
                    self.client.create_order,
                    (
                        intent.symbol,
                        intent.type,
                        intent.side,
                        format(amount, "f"),
                        format(price, "f") if price is not None else None,
                        params,
                    ),
                    {},
                    self.dialect.weights["create_order"],
                )
            except Exception as exc:
                klass = classify(exc)
                if outcome_unknown(exc):
                    found = await self._resolve_order(intent.symbol, cid, sent_at, exc, attempts, record)
                    if found is not None:
                        return _ack(found, cid, intent, resolved=True)
                elif klass in (ErrorClass.PERMANENT, ErrorClass.CRITICAL):
                    raise self._give_up("create_order", exc, attempts, record) from exc
                kind = "endpoint" if self.dialect.is_endpoint_limit(exc) else klass.value
                tries[kind] = tries.get(kind, 0) + 1
                if tries[kind] > self._retries(exc):
                    raise self._give_up("create_order", exc, attempts, record) from exc
                if not is_rate_limit(exc):
                    await asyncio.sleep(self.policy.wait(klass, tries[kind], secrets.randbelow(1000) / 1000))
            else:
                return self._placed(raw, cid, amount, intent, attempts, record)

    def _placed(
        self,
        answer: dict[str, Any],
        cid: str,
        amount: Decimal,
        intent: OrderIntent,
        attempts: int,
        record: dict[str, Any],
    ) -> OrderAck:
        """The exchange took the order: its answer, read. An answer cockpit cannot read leaves the outcome
        unknown — the order may well exist, so it is never dead-lettered as a rejection."""
        try:
            report = self.dialect.order_report(answer, sent_quantity=amount)
        except MalformedReport as exc:
            raise self._outcome_unknown(exc, exc, attempts, record) from exc
        return _ack(report, cid, intent, resolved=False)

    def _outcome_unknown(
        self, cause: Exception, reason: BaseException, attempts: int, record: dict[str, Any]
    ) -> OrderOutcomeUnknown:
        """Dead-letter the order as of unknown outcome (a retry from the DLQ looks it up first)."""
        self.dead_letters.add(
            DeadLetter(
                op="create_order",
                params=record,
                error_class=ErrorClass.RECOVERABLE.value,
                error_type="OrderOutcomeUnknown",
                reason=_reason(reason),
                attempts=attempts,
            )
        )
        return OrderOutcomeUnknown("create_order", ErrorClass.RECOVERABLE, cause, attempts)

    async def _resolve_order(
        self, symbol: str, cid: str, sent_at: float, cause: Exception, attempts: int, record: dict[str, Any]
    ) -> OrderReport | None:
        """Look the order up until found, or until the receive window proves it was never applied."""
        deadline = sent_at + self.policy.order_confirm_window_s
        while True:
            try:
                found = await self.fetch_order_by_client_id(symbol, cid)
            except GatewayError as exc:
                raise self._outcome_unknown(cause, exc.cause, attempts, record) from exc
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(0.5, left))


def unreadable(exc: BaseException) -> bool:
    """An answer the client could not read (ccxt failing on a NaN, a shape it did not expect), not an
    exchange error: a MalformedReport, or a Python error that is not one of ccxt's."""
    if isinstance(exc, MalformedReport):
        return True
    return isinstance(
        exc, ValueError | TypeError | KeyError | IndexError | ArithmeticError
    ) and not isinstance(exc, ccxt.BaseError)


def _ack(order: OrderReport, cid: str, intent: OrderIntent, resolved: bool) -> OrderAck:
    return OrderAck(
        client_order_id=order.client_order_id or cid,
        order_id=order.order_id,
        symbol=intent.symbol,
        side=intent.side,
        type=intent.type,
        status=str(order.status) if order.status is not None else "open",  # an answer of ids only: accepted
        amount=order.quantity,
        filled=order.filled,
        average=order.average_price,
        price=order.price if order.price else intent.price,  # a market order has no price of its own
        reduce_only=intent.reduce_only,
        resolved_by_lookup=resolved,
    )


def _reason(exc: BaseException) -> str:
    text = re.sub(r"\?\S*", "?…", str(exc))  # ccxt puts signed URLs in some messages: keep no query string
    match = re.search(r'"(?:msg|retMsg)":"([^"]*)"', text)  # Binance's message, or Bybit's
    return match.group(1) if match else (text[:300] or type(exc).__name__)


def _ban_seconds(exc: BaseException) -> float | None:
    match = BAN_UNTIL.search(str(exc))
    if match is None:
        return None
    return max(0.0, int(match.group(1)) / 1000 - time.time())


def _fix_for(klass: ErrorClass, exc: BaseException) -> str:
    if is_auth_failure(exc):
        return "check the API key and its permissions: `cockpit keys check EXCHANGE`, then `cockpit keys set`"
    if isinstance(exc, ccxt.InsufficientFunds):
        return "free margin or reduce the order size"
    if isinstance(exc, MalformedReport):
        return "the exchange's answer lacks a figure cockpit needs: check ccxt's version against its API"
    if klass is ErrorClass.PERMANENT:
        return (
            "the exchange refused this request as sent; see the reason, correct it, then retry from the DLQ"
        )
    return (
        "the exchange is unavailable; cockpit keeps retrying with backoff — check health and the status page"
    )
