"""Export a session file's tables as Parquet (readable by any DuckDB version, Polars, pandas, Spark)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

from cockpit.analytics.reading import TABLES, damaged, open_for_reading
from cockpit.core.errors import CockpitError, UsageError


def _reading_failed(exc: duckdb.Error, partial: Path) -> bool:
    """The session file failed to read (a damaged block), not the Parquet file to write."""
    text = str(exc)
    if str(partial) in text or isinstance(exc, duckdb.PermissionException):
        return False
    return any(word in text for word in ("Corrupt", "corrupt", "checksum", "INTERNAL", "Serialization"))


def export_parquet(path: Path, out_dir: Path) -> dict[str, int]:
    """Write each table (events, ticks, snapshots, dead_letters, meta) to `out_dir/<table>.parquet`.

    Refuses to overwrite: if any target file exists nothing is written. Returns the rows written per table.
    Each file is written as `<table>.parquet.partial` and renamed when complete.
    """
    path, out_dir = Path(path), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"{out_dir} is not a folder", "the export writes one Parquet file per table", "pass a folder"
        )
    with open_for_reading(path) as session:
        targets = {t: out_dir / f"{t}.parquet" for t in TABLES if t in session.tables}
        existing = [p for p in targets.values() if p.exists() or Path(f"{p}.partial").exists()]
        if existing:
            raise UsageError(
                f"export would overwrite {len(existing)} file(s) in {out_dir}",
                ", ".join(p.name for p in existing),
                "choose an empty folder, or move those files away first",
            )
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CockpitError(
                f"cannot create folder {out_dir}", str(exc.strerror or exc), "choose a writable folder"
            ) from exc
        counts: dict[str, int] = {}
        for table, target in targets.items():
            partial = Path(f"{target}.partial")
            order = " ORDER BY seq" if table in ("events", "snapshots") else ""
            literal = str(partial).replace("'", "''")
            cur = session.con.cursor()
            try:
                cur.execute(f"COPY (SELECT * FROM \"{table}\"{order}) TO '{literal}' (FORMAT parquet)")
                counts[table] = int(cur.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])
            except duckdb.Error as exc:
                with contextlib.suppress(OSError):
                    partial.unlink()
                if _reading_failed(exc, partial):
                    raise damaged(path, exc) from exc
                raise CockpitError(
                    f"export of table {table} failed",
                    str(exc).strip(),
                    f"check free space and permissions in {out_dir}",
                ) from exc
            finally:
                cur.close()
            partial.rename(target)
        return counts
