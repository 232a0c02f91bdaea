"""The account's income history (`GET /fapi/v1/income`): realized PnL, commissions and funding fees.

Every entry moves the wallet: a closing fill's realized PnL, each fill's commission (negative) and each
funding payment (negative when the position pays). `tranId` is unique per income type (Binance).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

REALIZED_PNL = "REALIZED_PNL"
COMMISSION = "COMMISSION"
FUNDING_FEE = "FUNDING_FEE"
INCOME_TYPES = (REALIZED_PNL, COMMISSION, FUNDING_FEE)


@dataclass(frozen=True)
class IncomeEntry:
    tran_id: int
    symbol: str
    income_type: str
    income: Decimal
    time: int
    trade_id: int | None = None
    asset: str = "USDT"
    position_side: str = "BOTH"  # the leg a funding payment was on (BOTH, LONG or SHORT)


class IncomeLedger:
    """Entries in the order they happened."""

    def __init__(self) -> None:
        self.entries: list[IncomeEntry] = []
        self._tran_ids = {kind: itertools.count(9_689_000_000) for kind in INCOME_TYPES}

    def record(
        self,
        symbol: str,
        income_type: str,
        income: Decimal,
        time: int,
        trade_id: int | None = None,
        position_side: str = "BOTH",
    ) -> IncomeEntry:
        tran_id = next(self._tran_ids[income_type])
        entry = IncomeEntry(tran_id, symbol, income_type, income, time, trade_id, position_side=position_side)
        self.entries.append(entry)
        return entry

    def of(self, income_type: str, symbol: str | None = None) -> list[IncomeEntry]:
        return [
            e for e in self.entries if e.income_type == income_type and (symbol is None or e.symbol == symbol)
        ]
