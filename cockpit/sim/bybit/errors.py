"""Bybit v5 error answers: retCodes, their texts, and the account model's refusals translated into them.

The account model (account.py, algo.py) refuses in Binance's codes; `translate` gives the Bybit retCode for
the same refusal. Bybit answers almost every error with HTTP 200 and the code in the body.
"""

from __future__ import annotations

from cockpit.sim.errors import ApiError

# retCode -> Bybit's own text
RET_MESSAGES: dict[int, str] = {
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param.",
    10003: "API key is invalid.",
    10004: "Error sign, please check your signature generation algorithm.",
    10006: "Too many visits!",
    10016: "Server error.",
    10017: "Route not found.",
    110001: "order not exists or too late to cancel",
    110007: "ab not enough for new order",
    110017: "Reduce-only rule not satisfied",
    110024: "You have an existing position, so position mode cannot be switched",
    110025: "Position mode is not modified",
    110028: "You have open orders, so position mode cannot be switched",
    110043: "Set leverage not modified",
    110072: "OrderLinkedID is duplicate",
    110092: "expect Rising, but trigger_price[{trigger}] <= current[{current}]",
    110093: "expect Falling, but trigger_price[{trigger}] >= current[{current}]",
    110094: "Order does not meet minimum order value",
}

TIMEOUT_MESSAGE = "Request timeout, please try again later"  # 10016 with this text: the outcome is unknown

# Binance code (the account model's) -> (retCode, text or None for the default)
_FROM_BINANCE: dict[int, tuple[int, str | None]] = {
    -1121: (10001, "Not supported symbols"),
    -1102: (10001, None),
    -1111: (10001, "Qty invalid"),
    -1013: (10001, "Qty invalid"),
    -4003: (10001, "Qty invalid"),
    -4005: (10001, "The number of contracts exceeds maximum limit allowed"),
    -4014: (10001, "price invalid"),
    -4061: (10001, "position idx not match position mode"),
    -1106: (10001, "position idx not match position mode"),
    -5022: (10001, "PostOnly order will take liquidity"),
    -2011: (110001, None),
    -2013: (110001, None),
    -2019: (110007, None),
    -2022: (110017, None),
    -4015: (110072, None),
    -4164: (110094, None),
    -4059: (110025, None),
    -4067: (110028, None),
    -4068: (110024, None),
}


class BybitError(Exception):
    """An error answer: `{"retCode": code, "retMsg": msg, "result": {}}` with an HTTP status (200 nearly
    always), extra headers, or a plain-text page instead of JSON (`text`)."""

    def __init__(
        self,
        code: int,
        msg: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        text: str | None = None,
    ) -> None:
        self.code = code
        self.msg = msg if msg is not None else RET_MESSAGES.get(code, "params error")
        self.status = status
        self.headers = headers or {}
        self.text = text
        super().__init__(f"{status} {code} {self.msg}")


def translate(exc: ApiError) -> BybitError:
    """The account model's refusal as Bybit words it; an unmapped one is a 10001 with the model's text."""
    code, msg = _FROM_BINANCE.get(exc.code, (10001, exc.msg))
    return BybitError(code, msg)


def fault_code(code: int) -> BybitError:
    """The error a `reject_orders` fault names: a Bybit retCode as is, a Binance one (negative) translated."""
    if code < 0:
        return translate(ApiError(code))
    return BybitError(code)
