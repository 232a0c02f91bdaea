"""`market.info`: each symbol's price tick and amount step, for the symbols the account needs.

Emitted once at start, after the markets are loaded, for the followed symbols and every held one (only what
State does not already have: a restored session repeats nothing), then again for any symbol a position later
appears on (a ghost on a symbol nobody follows). Not all of the exchange's markets: only the account's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from cockpit.core import events
from cockpit.core.domain import Event, dstr
from cockpit.exchange.reports import MarketReport

if TYPE_CHECKING:
    from cockpit.engine.context import PrecisionContext, Reads

POSITION_KINDS = ("position.changed", "position.ghost")


def steps_of(market: MarketReport) -> tuple[Decimal, Decimal] | None:
    """A market's price tick and amount step, or None unless the exchange gives both."""
    if market.price_step is None or market.amount_step is None:
        return None
    return market.price_step, market.amount_step


def market_info(
    engine: Reads,
    markets: Mapping[str, MarketReport],
    symbols: Iterable[str],
    stale_after_s: float | None = None,
) -> events.MarketInfo:
    """The `market.info` payload for those of `symbols` whose steps State lacks or has differently (and the
    feeds' `stale_after_s`, when given)."""
    known = engine.state.markets
    out: dict[str, events.MarketSteps] = {}
    for symbol in sorted(set(symbols)):
        market = markets.get(symbol)
        steps = steps_of(market) if market is not None else None
        if steps is None:
            continue
        have = known.get(symbol)
        if have is not None and (have.price_step, have.amount_step) == steps:
            continue
        out[symbol] = {"price_step": dstr(steps[0]), "amount_step": dstr(steps[1])}
    return events.market_info(markets=out, stale_after_s=stale_after_s)


def follow(engine: PrecisionContext, markets: Mapping[str, MarketReport]) -> None:
    """Emit what the account needs now, and keep it complete as positions appear on other symbols."""
    stale_after_s = engine.config.feeds.stale_after_s
    held = [p.symbol for p in engine.state.positions.values()]
    payload = market_info(engine, markets, [*engine.config.feeds.symbols, *held], stale_after_s)
    if payload["markets"] or engine.state.stale_after_s != stale_after_s:
        engine.emit("market.info", payload, "info", "engine")

    def on_event(event: Event) -> None:
        if event.kind not in POSITION_KINDS:
            return
        position = cast(events.PositionRead, event.payload)
        symbol = position.get("symbol", "")
        if symbol in engine.state.markets or engine.stopping:
            return
        more = market_info(engine, markets, [symbol])
        if more["markets"]:
            engine.emit("market.info", more, "info", "engine")

    engine.subscribe(on_event)
