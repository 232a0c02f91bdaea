"""Error classes for exchange failures, mapped from ccxt's exception tree by walking the MRO.

- TRANSIENT: a blip (timeout, dropped connection, the exchange's own internal error) — short fixed retries.
- RECOVERABLE: the exchange says wait (rate limit, ban, maintenance, outage, clock) — exponential backoff.
- PERMANENT: this request will never succeed as sent (rejected order, bad symbol) — no retry, dead-letter.
- CRITICAL: nothing will succeed until an operator acts (bad or revoked keys) — no retry, halt.

The most specific class in the exception's MRO that the table names wins, so `OnMaintenance` is recoverable
even though its parent `ExchangeNotAvailable` is too, and `InsufficientFunds` is permanent although it is an
`ExchangeError`. ccxt 4.5.90 moved `RateLimitExceeded` out from under `DDoSProtection`; both are named.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

import ccxt


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    RECOVERABLE = "recoverable"
    PERMANENT = "permanent"
    CRITICAL = "critical"


# ccxt exception class -> our class. Order does not matter: the MRO decides which entry is most specific.
CCXT_CLASSES: dict[type[BaseException], ErrorClass] = {
    ccxt.BaseError: ErrorClass.PERMANENT,
    ccxt.ExchangeError: ErrorClass.PERMANENT,
    ccxt.AuthenticationError: ErrorClass.CRITICAL,
    ccxt.PermissionDenied: ErrorClass.CRITICAL,
    ccxt.AccountSuspended: ErrorClass.CRITICAL,
    ccxt.InsufficientFunds: ErrorClass.PERMANENT,
    ccxt.InvalidOrder: ErrorClass.PERMANENT,
    ccxt.BadRequest: ErrorClass.PERMANENT,
    ccxt.BadSymbol: ErrorClass.PERMANENT,
    ccxt.NotSupported: ErrorClass.PERMANENT,
    ccxt.OperationFailed: ErrorClass.TRANSIENT,
    ccxt.NetworkError: ErrorClass.TRANSIENT,
    ccxt.RequestTimeout: ErrorClass.TRANSIENT,
    ccxt.BadResponse: ErrorClass.TRANSIENT,
    ccxt.DDoSProtection: ErrorClass.RECOVERABLE,
    ccxt.RateLimitExceeded: ErrorClass.RECOVERABLE,
    ccxt.ExchangeNotAvailable: ErrorClass.RECOVERABLE,
    ccxt.OnMaintenance: ErrorClass.RECOVERABLE,
    ccxt.InvalidNonce: ErrorClass.RECOVERABLE,
    ccxt.ExchangeClosedByUser: ErrorClass.PERMANENT,
}

# Plain Python errors that reach us from below ccxt (aiohttp, the socket layer).
PYTHON_CLASSES: dict[type[BaseException], ErrorClass] = {
    asyncio.TimeoutError: ErrorClass.TRANSIENT,
    ConnectionError: ErrorClass.TRANSIENT,
    OSError: ErrorClass.TRANSIENT,
}


def classify(exc: BaseException) -> ErrorClass:
    """The error class of an exception; unknown errors are PERMANENT (never retried blindly)."""
    if is_auth_failure(exc):
        return ErrorClass.CRITICAL
    for klass in type(exc).__mro__:
        found = CCXT_CLASSES.get(klass) or PYTHON_CLASSES.get(klass)
        if found is not None:
            return found
    return ErrorClass.PERMANENT


def is_auth_failure(exc: BaseException) -> bool:
    """ccxt raises -2015 as DDoSProtection once a key has authenticated before; it is still a key problem."""
    return isinstance(exc, ccxt.AuthenticationError) or (
        isinstance(exc, ccxt.DDoSProtection) and '"code":-2015' in str(exc)
    )


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded) and not is_auth_failure(exc)


def is_ban(exc: BaseException) -> bool:
    return is_rate_limit(exc) and " 418 " in str(exc)


def is_maintenance(exc: BaseException) -> bool:
    return isinstance(exc, ccxt.OnMaintenance)


def outcome_unknown(exc: BaseException) -> bool:
    """After create_order failed this way the order may or may not exist at the exchange (Binance: 5xx and
    timeouts are "execution status unknown"). A rate-limit or any 4xx rejection means it was not applied."""
    if is_rate_limit(exc) or isinstance(exc, ccxt.ExchangeError):
        return False
    return classify(exc) in (ErrorClass.TRANSIENT, ErrorClass.RECOVERABLE) and not isinstance(
        exc, ccxt.OnMaintenance | ccxt.InvalidNonce
    )
