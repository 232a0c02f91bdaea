"""Dead letters in the session file: operations that failed for good, for an operator to retry or drop.

Reads run on any thread's cursor; writes are queued to the store's writer (see `SessionStore`), which calls
the `insert` / `update_status` / `delete_before` functions here inside its batch transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import duckdb
import orjson

DeadLetterStatus = Literal["open", "retried", "removed"]
STATUSES: tuple[DeadLetterStatus, ...] = get_args(DeadLetterStatus)

_COLUMNS = "id, ts, op, params, error_class, error_type, reason, attempts, status"


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    ts: float
    op: str
    params: dict[str, Any]
    error_class: str
    error_type: str
    reason: str
    attempts: int
    status: DeadLetterStatus


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    ts: float
    op: str
    params: str  # JSON text
    error_class: str
    error_type: str
    reason: str
    attempts: int


def check_status(status: str) -> DeadLetterStatus:
    for known in STATUSES:
        if status == known:
            return known
    raise ValueError(f"dead-letter status must be one of {', '.join(STATUSES)}, not {status!r}")


def params_text(params: dict[str, Any]) -> str:
    return orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()


def insert(cur: duckdb.DuckDBPyConnection, letter_id: int, letter: NewDeadLetter) -> None:
    cur.execute(
        f"INSERT INTO dead_letters ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
        [
            letter_id,
            letter.ts,
            letter.op,
            letter.params,
            letter.error_class,
            letter.error_type,
            letter.reason,
            letter.attempts,
        ],
    )


def update_status(cur: duckdb.DuckDBPyConnection, letter_id: int, status: DeadLetterStatus) -> bool:
    rows = cur.execute(
        "UPDATE dead_letters SET status = ? WHERE id = ? RETURNING id", [status, letter_id]
    ).fetchall()
    return bool(rows)


def delete_before(cur: duckdb.DuckDBPyConnection, cutoff_ts: float, status: DeadLetterStatus | None) -> int:
    sql = "DELETE FROM dead_letters WHERE ts < ?"
    params: list[object] = [cutoff_ts]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return len(cur.execute(sql + " RETURNING id", params).fetchall())


def next_id(cur: duckdb.DuckDBPyConnection) -> int:
    return int(cur.execute("SELECT coalesce(max(id), 0) + 1 FROM dead_letters").fetchall()[0][0])


def _where(op: str | None, reason_contains: str | None, status: str | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if op is not None:
        clauses.append("op = ?")
        params.append(op)
    if reason_contains is not None:
        clauses.append("contains(lower(reason), lower(?))")
        params.append(reason_contains)
    if status is not None:
        clauses.append("status = ?")
        params.append(check_status(status))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def select(
    cur: duckdb.DuckDBPyConnection,
    *,
    op: str | None,
    reason_contains: str | None,
    status: str | None,
    limit: int | None,
) -> list[DeadLetterRow]:
    where, params = _where(op, reason_contains, status)
    sql = f"SELECT {_COLUMNS} FROM dead_letters{where} ORDER BY id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [
        DeadLetterRow(
            id=int(r[0]),
            ts=float(r[1]),
            op=str(r[2]),
            params=orjson.loads(r[3]),
            error_class=str(r[4]),
            error_type=str(r[5]),
            reason=str(r[6]),
            attempts=int(r[7]),
            status=check_status(str(r[8])),
        )
        for r in cur.execute(sql, params).fetchall()
    ]


def count(
    cur: duckdb.DuckDBPyConnection, *, op: str | None, reason_contains: str | None, status: str | None
) -> int:
    where, params = _where(op, reason_contains, status)
    return int(cur.execute(f"SELECT count(*) FROM dead_letters{where}", params).fetchall()[0][0])
