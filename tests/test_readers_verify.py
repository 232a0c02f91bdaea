"""Readers verify: `report`, `export`, `replay` refuse a damaged session file (non-zero, "damaged", the way
out) and `sessions` marks it DAMAGED and carries on; `cockpit verify` says what is wrong. Real DuckDB files,
really damaged: rows deleted or rewritten (with and without a re-hashed chain), bytes flipped, truncated."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import orjson
import pytest

from cockpit.commands.cli import main
from cockpit.store.hashing import GENESIS, event_hash
from cockpit.store.verify import record_mark, verify
from tests.test_store import make_session

ROOT = Path(__file__).resolve().parents[1]


def sql(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def delete_a_middle_row(path: Path) -> None:
    sql(path, "DELETE FROM events WHERE seq = 7")


def rewrite_a_row(path: Path) -> None:
    sql(path, """UPDATE events SET payload = '{"n":12,"price":"1"}' WHERE seq = 12""")


def delete_the_last_rows(path: Path) -> None:
    sql(path, "DELETE FROM events WHERE seq > 37")  # the chain of what is left still recomputes


def rewrite_and_rehash(path: Path) -> None:
    """A row rewritten and every hash after it recomputed: the chain checks, the verified mark does not."""
    con = duckdb.connect(str(path))
    try:
        con.execute("""UPDATE events SET payload = '{"n":5,"price":"1"}' WHERE seq = 5""")
        prev = GENESIS
        rows = con.execute(
            "SELECT seq, ts, kind, severity, source, payload FROM events ORDER BY seq"
        ).fetchall()
        for seq, ts, kind, severity, source, payload in rows:
            prev = event_hash(prev, seq, ts, kind, severity, source, payload)
            con.execute("UPDATE events SET hash = ? WHERE seq = ?", [prev, seq])
    finally:
        con.close()


def flip_bytes(path: Path) -> None:
    con = duckdb.connect(str(path), read_only=True)
    block_size = int(con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0])
    blocks = sorted(
        int(row[0])
        for row in con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info('ticks') "
            "WHERE column_name = 'bid' AND block_id >= 0"
        ).fetchall()
    )
    con.close()
    offset = 3 * 4096 + blocks[len(blocks) // 2] * block_size + 8 + 1000
    with path.open("r+b") as f:
        f.seek(offset)
        chunk = f.read(64)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in chunk))


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "deleted row": delete_a_middle_row,
    "rewritten row": rewrite_a_row,
    "last rows deleted": delete_the_last_rows,
    "rewritten and re-hashed": rewrite_and_rehash,
    "flipped bytes": flip_bytes,
    "truncated": truncate,
}


def session(folder: Path, name: str = "session.duckdb") -> Path:
    path = folder / name
    make_session(path, events=40, ticks=120_000)
    record_mark(path, verify(path))  # as the engine does after its startup check
    return path


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = session(tmp_path_factory.mktemp("pristine"))
    assert verify(path).ok
    return path.read_bytes()


def damaged_copy(folder: Path, pristine: bytes, damage: str) -> Path:
    path = folder / "session.duckdb"
    path.write_bytes(pristine)
    DAMAGE[damage](path)
    return path


def test_a_sound_file_reads_and_verifies(
    tmp_path: Path, pristine: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "session.duckdb"
    path.write_bytes(pristine)
    assert main(["verify", str(path)]) == 0
    assert f"{path}: ok" in capsys.readouterr().out
    assert main(["report", str(path), "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["events"] == 40
    assert main(["export", str(path), "--parquet", str(tmp_path / "out")]) == 0
    assert "events: 40 rows" in capsys.readouterr().out


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_readers_refuse_a_damaged_file(
    tmp_path: Path, pristine: bytes, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = damaged_copy(tmp_path, pristine, damage)

    assert main(["verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "DAMAGED" in out and "problem [" in out and "restore" in err

    for argv in (["report", str(path)], ["export", str(path), "--parquet", str(tmp_path / "out")]):
        assert main(argv) != 0, argv
        out, err = capsys.readouterr()
        assert out == "", f"{argv[0]} showed figures of a damaged file"
        assert "damaged" in err and f"cockpit verify {path}" in err and "restore" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())

    good = session(tmp_path, "another.duckdb")
    assert main(["sessions", "--dir", str(tmp_path), "--json"]) == 0
    rows = {Path(r["path"]).name: r for r in orjson.loads(capsys.readouterr().out)}
    assert rows["session.duckdb"]["damaged"] and not rows["session.duckdb"]["readable"]
    assert rows[good.name]["readable"] and rows[good.name]["events"] == 40
    assert main(["sessions", "--dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "DAMAGED" in listing and "cockpit verify" in listing


@pytest.mark.parametrize("damage", ["rewritten row", "flipped bytes"])
def test_replay_and_report_processes_say_damaged_without_a_traceback(
    tmp_path: Path, pristine: bytes, damage: str
) -> None:
    path = damaged_copy(tmp_path, pristine, damage)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in ("replay", "report"):
        result = subprocess.run(
            [sys.executable, "-m", "cockpit", command, str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "damaged" in result.stderr and "restore" in result.stderr
        assert result.stdout == ""
