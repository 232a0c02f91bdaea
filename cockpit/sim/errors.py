"""Binance USD-M error responses the simulator returns: HTTP status, code and the exchange's own text."""

from __future__ import annotations

# code -> (HTTP status, message) as Binance USD-M sends them.
BINANCE_ERRORS: dict[int, tuple[int, str]] = {
    -1000: (400, "An unknown error occured while processing the request."),
    -1003: (429, "Too many requests; current limit of IP is 2400 requests per minute."),
    -1007: (
        503,
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    ),
    -1021: (400, "Timestamp for this request is outside of the recvWindow."),
    -1022: (400, "Signature for this request is not valid."),
    -1102: (400, "Mandatory parameter was not sent, was empty/null, or malformed."),
    -1106: (400, "Parameter sent when not required."),
    -1111: (400, "Precision is over the maximum defined for this asset."),
    -1116: (400, "Invalid orderType."),
    -1117: (400, "Invalid side."),
    -1015: (429, "Too many new orders; current limit is {limit} orders per {interval}."),
    -1121: (400, "Invalid symbol."),
    -1125: (400, "This listenKey does not exist."),
    -2011: (400, "Unknown order sent."),
    -2013: (400, "Order does not exist."),
    -2015: (401, "Invalid API-key, IP, or permissions for action."),
    -2019: (400, "Margin is insufficient."),
    -2021: (400, "Order would immediately trigger."),
    -2022: (400, "ReduceOnly Order is rejected."),
    -4003: (400, "Quantity less than or equal to zero."),
    -4005: (400, "Quantity greater than max quantity."),
    -4014: (400, "Price not increased by tick size."),
    -4015: (400, "Client order id is not valid."),
    -4046: (400, "No need to change margin type."),
    -4047: (400, "Margin type cannot be changed if there exists open orders."),
    -4048: (400, "Margin type cannot be changed if there exists position."),
    -4049: (400, "Add margin only support for isolated position."),
    -4050: (400, "Cross balance insufficient."),
    -4051: (400, "Isolated balance insufficient."),
    -4054: (400, "Cannot add position margin: position is 0."),
    -4031: (400, "Invalid workingType."),
    -4055: (400, "Amount must be positive."),
    -4059: (400, "No need to change position side."),
    -4060: (400, "Invalid position side."),
    -4061: (400, "Order's position side does not match user's setting."),
    -4067: (400, "Position side cannot be changed if there exists open orders."),
    -4068: (400, "Position side cannot be changed if there exists position."),
    -4120: (
        400,
        "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    ),
    -4137: (400, "Quantity must be zero with closePosition equals true"),
    -4164: (400, "Order's notional must be no smaller than {min_notional} (unless you choose reduce only)."),
    -5022: (400, "Due to the order could not be executed as maker, the Post Only order will be rejected."),
}

MAINTENANCE_MESSAGE = "System is under maintenance."


class ApiError(Exception):
    """An error response: HTTP status plus Binance's `{"code": …, "msg": …}` body."""

    def __init__(
        self,
        code: int,
        msg: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        html: str | None = None,
    ) -> None:
        default_status, default_msg = BINANCE_ERRORS.get(code, (400, "Unknown error."))
        self.code = code
        self.msg = msg if msg is not None else default_msg
        self.status = status if status is not None else default_status
        self.headers = headers or {}
        self.html = html  # a proxy's HTML page instead of Binance's JSON body (502/504 from the CDN)
        super().__init__(f"{self.status} {self.code} {self.msg}")

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}
