"""The account's executions as `/v5/execution/list` pages them: fills (`execType: Trade`) and funding
payments (`execType: Funding`), newest first.

Time window (Bybit's): neither startTime nor endTime → the last 7 days; only startTime → 7 days from it;
only endTime → 7 days up to it; a window longer than 7 days is refused (10001). `limit` 1..100 (default
50); `cursor` is the opaque `nextPageCursor` of the previous page. ccxt's funding-history call also sends
`size`, which Bybit does not know: ignored, as Bybit does.

A funding row's `execFee` is what the account paid: positive when it paid, negative when it received (Bybit's
sign for fees; its documentation does not settle it for funding rows, so this follows the fee convention),
`feeRate` the funding rate, `execQty`/`execPrice`/`execValue` the leg's size, the mark and their product,
`side` the leg's side (Buy for a long).
"""

from __future__ import annotations

from typing import Any

from cockpit.sim.account import Account
from cockpit.sim.bybit import views
from cockpit.sim.bybit.book import OrderBook
from cockpit.sim.bybit.errors import BybitError
from cockpit.sim.funding import FundingSchedule
from cockpit.sim.income import IncomeEntry

WEEK_MS = 7 * 24 * 3600 * 1000


class Executions:
    def __init__(self, account: Account, book: OrderBook) -> None:
        self.account = account
        self.book = book
        self.funding: list[views.FundingExec] = []

    def record_funding(self, entry: IncomeEntry, schedule: FundingSchedule) -> views.FundingExec:
        """A funding payment the account just made (its income entry) as an execution."""
        pos = self.account.leg(entry.symbol, entry.position_side)
        paid = views.FundingExec(
            exec_id=f"funding-{entry.tran_id}",
            symbol=entry.symbol,
            position_side=entry.position_side,
            size=pos.qty,
            mark=self.account.mark(entry.symbol),
            rate=schedule.rates[entry.symbol],
            paid=-entry.income,
            time=entry.time,
        )
        self.funding.append(paid)
        return paid

    def rows(self, params: dict[str, str], now_ms: int) -> tuple[list[dict[str, Any]], str]:
        """One page of rows and the cursor of the next ("" when this is the last)."""
        start, end = _window(params, now_ms)
        exec_type = params.get("execType")
        symbol = params.get("symbol")
        order_id = params.get("orderId")
        dated: list[tuple[int, int, dict[str, Any]]] = []
        if exec_type in (None, "", "Trade"):
            for trade in self.account.trades:
                if symbol and trade.symbol != symbol or not start <= trade.time <= end:
                    continue
                entry = self.book.of_order(self.account.orders[trade.order_id])
                if order_id and entry.order_id != order_id:
                    continue
                dated.append((trade.time, trade.trade_id, views.trade_execution(self.account, trade, entry)))
        if exec_type in (None, "", "Funding") and not order_id:
            for n, paid in enumerate(self.funding):
                if symbol and paid.symbol != symbol or not start <= paid.time <= end:
                    continue
                dated.append((paid.time, n, views.funding_execution(self.account.specs[paid.symbol], paid)))
        dated.sort(key=lambda item: (item[0], item[1]), reverse=True)
        try:
            limit = min(max(int(params.get("limit") or 50), 1), 100)
            offset = int(params.get("cursor") or 0)
        except ValueError:
            raise BybitError(10001, "limit or cursor invalid") from None
        page = [row for _, _, row in dated[offset : offset + limit]]
        more = offset + limit < len(dated)
        return page, str(offset + limit) if more else ""


def _window(params: dict[str, str], now_ms: int) -> tuple[int, int]:
    try:
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
    except ValueError:
        raise BybitError(10001, "startTime or endTime invalid") from None
    if start is None and end is None:
        return now_ms - WEEK_MS, now_ms
    if start is None:
        assert end is not None
        return end - WEEK_MS, end
    if end is None:
        return start, start + WEEK_MS
    if end - start > WEEK_MS:
        raise BybitError(10001, "The time range between startTime and endTime cannot exceed 7 days")
    return start, end
