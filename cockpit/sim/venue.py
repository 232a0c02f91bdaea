"""What the simulator's REST API and its demo trader need of the simulated exchange (`SimServer` is the one
that has it), so that neither imports the server that composes them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from cockpit.sim.account import Account
from cockpit.sim.algo import AlgoBook
from cockpit.sim.clock import SimClock
from cockpit.sim.faults import FaultBoard
from cockpit.sim.funding import FundingSchedule
from cockpit.sim.market import PriceWalk, SymbolSpec
from cockpit.sim.streams import StreamHub


class Venue(Protocol):
    api_key: str
    api_secret: str
    base_url: str
    specs: dict[str, SymbolSpec]
    clock: SimClock
    prices: PriceWalk
    account: Account
    algos: AlgoBook
    funding: FundingSchedule
    faults: FaultBoard
    listen_keys: dict[str, int]
    hub: StreamHub
    update_id: int

    def mark_price_row(self, symbol: str) -> dict[str, Any]: ...

    def liquidation_price(self, symbol: str, side: str | None = None) -> Decimal: ...
