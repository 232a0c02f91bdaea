"""`list_sessions`: a summary row per session file in a folder; unreadable files listed with the reason."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from cockpit.analytics.episodes import read_incidents
from cockpit.analytics.reading import damaged, open_for_reading
from cockpit.analytics.timefmt import iso
from cockpit.core.domain import dstr
from cockpit.core.errors import CockpitError, UsageError
from cockpit.store.errors import SessionDamaged

FILL_KINDS = ("order.filled", "order.partially_filled")

_SUMMARY_SQL = """
SELECT min(ts), max(ts), count(*),
       count(*) FILTER (WHERE kind IN ('order.filled', 'order.partially_filled')),
       sum(TRY_CAST(payload->>'$.realized_pnl' AS DECIMAL(38, 12)))
           FILTER (WHERE kind IN ('order.filled', 'order.partially_filled'))
FROM events
"""


@dataclass(frozen=True, slots=True)
class SessionSummary:
    path: Path
    start: float | None = None  # first event's ts
    end: float | None = None  # last event's ts
    exchange: str = ""
    mode: str = ""
    events: int = 0
    fills: int = 0
    realized_pnl: Decimal = Decimal(0)
    incidents: int = 0  # episodes (cockpit.core.incidents), not warning/critical events
    error: str | None = None  # set when the file could not be read as a session: the reason
    damaged: bool = False  # the file does not verify (blocks, events' seq or hash chain): no figures shown

    @property
    def readable(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "readable": self.readable,
            "damaged": self.damaged,
            "error": self.error,
            "start": iso(self.start),
            "end": iso(self.end),
            "start_ts": self.start,
            "end_ts": self.end,
            "exchange": self.exchange,
            "mode": self.mode,
            "events": self.events,
            "fills": self.fills,
            "realized_pnl": dstr(self.realized_pnl),
            "incidents": self.incidents,
        }


def summarize(path: Path) -> SessionSummary:
    """One session's summary; a file that cannot be read gives a row with `error` set (never raises)."""
    try:
        session = open_for_reading(path, allow_empty=True)
        with session:
            start, end, count, fills, realized = session.rows(_SUMMARY_SQL)[0]
            try:
                incidents, _ = read_incidents(session.con)
            except duckdb.Error as exc:
                raise damaged(path, exc) from exc
    except SessionDamaged as exc:
        return SessionSummary(path=path, error=f"{exc.title} ({exc.detail}); fix: {exc.fix}", damaged=True)
    except CockpitError as exc:
        reason = exc.title if not exc.detail else f"{exc.title}: {exc.detail}"
        return SessionSummary(path=path, error=reason)
    return SessionSummary(
        path=path,
        start=float(start) if isinstance(start, int | float) else None,
        end=float(end) if isinstance(end, int | float) else None,
        exchange=session.meta.get("exchange", ""),
        mode=session.meta.get("mode", ""),
        events=int(count),
        fills=int(fills),
        realized_pnl=Decimal(str(realized)) if realized is not None else Decimal(0),
        incidents=len(incidents),
    )


def list_sessions(folder: Path) -> list[SessionSummary]:
    """Every `*.duckdb` directly in `folder` (backups live in `backups/` and are skipped), by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(
            f"{folder} is not a folder",
            "list_sessions reads the *.duckdb files of a folder",
            "check the path",
        )
    paths = sorted(p for p in folder.glob("*.duckdb") if p.is_file())
    return [summarize(p) for p in paths]


def sessions_json(rows: list[SessionSummary]) -> list[dict[str, Any]]:
    return [row.to_json() for row in rows]


def render_sessions(rows: list[SessionSummary]) -> str:
    """A plain-text table; unreadable files are listed with the reason."""
    if not rows:
        return "no session files"
    head = (
        "file",
        "start (UTC)",
        "end (UTC)",
        "exchange",
        "mode",
        "events",
        "fills",
        "realized",
        "incidents",
    )
    table: list[tuple[str, ...]] = [head]
    problems: list[str] = []
    for row in rows:
        if not row.readable:
            table.append(
                (row.path.name, "DAMAGED" if row.damaged else "unreadable", "", "", "", "", "", "", "")
            )
            problems.append(f"  {row.path.name}: {row.error}")
            continue
        table.append(
            (
                row.path.name,
                iso(row.start, seconds=True) or "—",
                iso(row.end, seconds=True) or "—",
                row.exchange or "—",
                row.mode or "—",
                str(row.events),
                str(row.fills),
                dstr(row.realized_pnl),
                str(row.incidents),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    numeric = {5, 6, 7, 8}
    lines = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if problems:
        lines += ["", "unreadable:", *problems]
    return "\n".join(lines)
