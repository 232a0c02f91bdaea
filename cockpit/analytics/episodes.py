"""The incidents of a session file: its warning, critical and closing events, as `cockpit.core.incidents`
groups them."""

from __future__ import annotations

from typing import cast

import duckdb
import orjson

from cockpit.core.domain import Event, Severity
from cockpit.core.incidents import RELEVANT_SQL, Incident, IncidentBuilder


def read_incidents(con: duckdb.DuckDBPyConnection) -> tuple[list[Incident], dict[int, Event]]:
    """The session's incidents in the order they opened, and the first event of each by its seq."""
    rows = (
        con.cursor()
        .execute(
            f"SELECT seq, ts, kind, severity, source, payload FROM events WHERE {RELEVANT_SQL} ORDER BY seq"
        )
        .fetchall()
    )
    builder = IncidentBuilder()
    firsts: dict[int, Event] = {}
    for seq, ts, kind, severity, source, payload in rows:
        event = Event(
            int(seq), float(ts), str(kind), cast(Severity, severity), str(source), orjson.loads(payload)
        )
        for change in builder.add(event):
            if change.change == "opened":
                firsts[event.seq] = event
    return builder.incidents, firsts
