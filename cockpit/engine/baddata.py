"""Bad exchange data, counted and shown: every frame or answer the boundary refused becomes a `data.rejected`.

The feeds (`on_rejected`) and the gateway (a `bad_data` notice) report each refusal with its reason. The first
of a source is an event at once (the operator learns that the exchange sends garbage, and what); after that a
source's refusals are folded into one summary at most every `REPORT_EVERY_S`, so a stream of NaNs is a few
events, not thousands. Health shows "bad data" with the counts per source and the last reason until nothing
bad has come for `QUIET_S`, then a `health.changed` says the data item is ok again.

The refused input itself never reaches the fold: the feed dropped the frame, the gateway failed the read (its
worker reads again at its next poll, quietly: the refusal is the report).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from cockpit.core import events
from cockpit.exchange.gateway import GatewayError, GatewayNotice
from cockpit.exchange.reports import MalformedReport
from cockpit.feeds import Rejected

if TYPE_CHECKING:
    from cockpit.engine.context import BadDataContext

REPORT_EVERY_S = 30.0
QUIET_S = 60.0
SOURCE_OF_OP = {
    "fetch_positions": "rest_positions",
    "fetch_balance": "rest_balance",
    "fetch_mark_prices": "rest_marks",
    "fetch_my_trades": "rest_trades",
}
WORDS = {
    "market_feed": "the market feed",
    "user_stream": "the user stream",
    "rest_positions": "the REST positions answer",
    "rest_balance": "the REST balance answer",
    "rest_marks": "the REST mark prices",
    "rest_trades": "the REST trade history",
}


def is_bad_data(exc: GatewayError) -> bool:
    """A read that failed because its answer was refused (already reported as `data.rejected`)."""
    return isinstance(exc.cause, MalformedReport)


def on_gateway_notice(engine: BadDataContext, notice: GatewayNotice) -> None:
    if notice.kind == "bad_data":
        rejected(engine, SOURCE_OF_OP.get(notice.op, "rest"), f"{notice.op}: {notice.message}")


def on_rejected(engine: BadDataContext, rejection: Rejected) -> None:
    rejected(engine, rejection.source, rejection.reason)


def rejected(engine: BadDataContext, source: str, reason: str) -> None:
    if engine.stopping:
        return
    tally = engine.bad_data
    tally.totals[source] = tally.totals.get(source, 0) + 1
    tally.unsaid[source] = tally.unsaid.get(source, 0) + 1
    tally.last_reason[source] = reason
    loop = asyncio.get_running_loop()
    if tally.quiet is not None:
        tally.quiet.cancel()
    tally.quiet = loop.call_later(QUIET_S, _all_quiet, engine)
    last = tally.reported_at.get(source)
    wait = 0.0 if last is None else last + REPORT_EVERY_S - time.monotonic()
    if wait <= 0:
        _report(engine, source)
    elif source not in tally.flush:
        tally.flush[source] = loop.call_later(wait, _report, engine, source)


def _report(engine: BadDataContext, source: str) -> None:
    tally = engine.bad_data
    tally.flush.pop(source, None)
    count = tally.unsaid.pop(source, 0)
    if not count or engine.stopping:
        return
    tally.reported_at[source] = time.monotonic()
    reason = tally.last_reason.get(source, "")
    total = tally.totals.get(source, 0)
    what = WORDS.get(source, source)
    first = count == total
    message = (
        f"bad data from {what}, dropped: {reason}"
        if first
        else f"{count} more bad input(s) from {what} dropped ({total} so far); last: {reason}"
    )
    engine.emit(
        "data.rejected",
        events.data_rejected(
            source=source, reason=reason, count=count, totals=dict(tally.totals), message=message
        ),
        "warning",
        "exchange" if source.startswith("rest") else "feed" if source == "market_feed" else "user_stream",
    )


def _all_quiet(engine: BadDataContext) -> None:
    tally = engine.bad_data
    tally.quiet = None
    if engine.stopping or engine.state.health_of("data").status == "ok":
        return
    engine.emit(
        "health.changed",
        events.health_changed(item="data", status="ok", message=f"no bad exchange data for {QUIET_S:.0f} s"),
        "info",
        "engine",
    )
