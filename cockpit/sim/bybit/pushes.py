"""The account's changes as Bybit's private pushes: the account model announces them in Binance's user-stream
events (events.py); each is read back against the books and pushed in Bybit's records.

ORDER_TRADE_UPDATE → `order` (only when the order's status or filled quantity changed, so a conditional
order's triggering is not repeated) and, for a fill, `execution`; a new or finished order also pushes its
leg on `position`, as Bybit does on every order change. ACCOUNT_UPDATE → `position` for each leg it names
and `wallet`. A funding payment (ACCOUNT_UPDATE for FUNDING_FEE) becomes an `execType: Funding` execution:
recorded for `/v5/execution/list` and pushed on `execution`, then `wallet`. ALGO_UPDATE → `order` for the
conditional order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cockpit.sim.bybit import views
from cockpit.sim.bybit.book import Entry, OrderBook
from cockpit.sim.bybit.executions import Executions
from cockpit.sim.bybit.ws import BybitStreams
from cockpit.sim.income import FUNDING_FEE

if TYPE_CHECKING:
    from cockpit.sim.venue import Venue


class PrivatePushes:
    def __init__(self, sim: Venue, book: OrderBook, executions: Executions, streams: BybitStreams) -> None:
        self.sim = sim
        self.book = book
        self.executions = executions
        self.streams = streams
        self._shown: dict[str, tuple[str, str]] = {}  # order id -> (status, filled) as last pushed

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("e")
        if kind == "ORDER_TRADE_UPDATE":
            self._order_event(event["o"])
        elif kind == "ACCOUNT_UPDATE":
            self._account_event(event["a"])
        elif kind == "ALGO_UPDATE":
            algo = self.sim.algos.orders.get(event["o"]["aid"])
            if algo is not None:
                self._push_order(self.book.of_algo(algo))

    def _order_event(self, update: dict[str, Any]) -> None:
        acct = self.sim.account
        order = acct.orders.get(update["i"])
        if order is None:
            return
        entry = self.book.of_order(order)
        self._push_order(entry)
        if update["x"] == "TRADE":
            trade = next((t for t in reversed(acct.trades) if t.trade_id == update["t"]), None)
            if trade is not None:
                self.streams.push_private("execution", [views.trade_execution(acct, trade, entry, ws=True)])
        elif update["x"] in ("NEW", "CANCELED", "EXPIRED"):
            leg = acct.leg(order.symbol, order.position_side)
            self.streams.push_private("position", [views.position(acct, leg, ws=True)])

    def _push_order(self, entry: Entry) -> None:
        row = views.order(self.sim.account, entry, ws=True)
        shown = (row["orderStatus"], row["cumExecQty"])
        if self._shown.get(entry.order_id) == shown:
            return
        self._shown[entry.order_id] = shown
        self.streams.push_private("order", [row])

    def _account_event(self, update: dict[str, Any]) -> None:
        acct = self.sim.account
        if update["m"] == FUNDING_FEE:
            entry = acct.income.entries[-1]
            paid = self.executions.record_funding(entry, self.sim.funding)
            row = views.funding_execution(acct.specs[paid.symbol], paid, ws=True)
            self.streams.push_private("execution", [row])
        legs = [acct.leg(row["s"], row["ps"]) for row in update["P"]]
        if legs:
            self.streams.push_private("position", [views.position(acct, leg, ws=True) for leg in legs])
        self.streams.push_private("wallet", [views.wallet(acct)])
