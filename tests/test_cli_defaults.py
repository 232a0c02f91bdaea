"""Commands without `--config` read the default config file the README names,
`$XDG_CONFIG_HOME/cockpit/config.toml`, and say how to create it when it is missing; `cockpit sessions` lists
the config's session folder."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest

from cockpit.sim.server import SimServer
from cockpit.store import SessionStore
from tests.test_cli_engine import HeadlessEngine, cli_env, cockpit, write_config
from tests.test_engine import trade


def default_config(tmp_path: Path) -> Path:
    """Where the default config is for the subprocesses `cockpit()` starts (XDG_CONFIG_HOME=tmp/config)."""
    return tmp_path / "config" / "cockpit" / "config.toml"


@pytest.mark.parametrize(
    "command",
    [
        ("run", "--headless"),
        ("doctor",),
        ("ctl", "status"),
        ("backup",),
        ("restore", "--list"),
        ("dlq", "list"),
    ],
    ids=" ".join,
)
async def test_without_config_and_no_default_file_the_command_names_it_and_how_to_create_it(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    code, out, err = await cockpit(tmp_path, *command)
    assert code == 2 and out == ""
    missing = default_config(tmp_path)
    assert f"the default {missing} does not exist" in err
    assert f"cockpit config validate {missing}" in err and "README.md, section Configuration" in err
    assert "or pass --config FILE" in err and "Traceback" not in err


async def test_run_ctl_and_doctor_use_the_default_config(sim: SimServer, tmp_path: Path) -> None:
    session = tmp_path / "desk.duckdb"
    written = write_config(tmp_path, sim.base_url, session)
    config = default_config(tmp_path)
    config.parent.mkdir(parents=True)
    written.rename(config)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cockpit", "run", "--headless", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(tmp_path),
    )  # fmt: skip
    engine = HeadlessEngine(proc)
    try:
        await engine.wait_for("reconcile.done")
        assert session.exists()  # the session file the default config names
        await trade(sim, symbol="BTCUSDT", side="BUY", quantity="0.01")
        await engine.wait_for("position.changed")

        code, out, err = await cockpit(tmp_path, "ctl", "status", "--json")
        assert code == 0, err
        status = orjson.loads(out)
        assert [(p["symbol"], p["side"], p["qty"]) for p in status["positions"]] == [
            ("BTC/USDT:USDT", "long", "0.01")
        ]

        code, out, err = await cockpit(tmp_path, "doctor", "--json")
        checks = {c["name"]: c for c in orjson.loads(out)["checks"]}
        assert checks["config"]["ok"] and str(config) in checks["config"]["detail"], err
        assert checks["exchange"]["ok"]
    finally:
        assert await engine.finish() == 0


async def test_sessions_lists_the_session_folder_of_the_config(tmp_path: Path) -> None:
    desk, other, data = tmp_path / "desk", tmp_path / "other", tmp_path / "data" / "cockpit" / "sessions"
    for folder, name in ((desk, "a.duckdb"), (other, "b.duckdb"), (data, "c.duckdb")):
        folder.mkdir(parents=True)
        SessionStore.open(folder / name, meta={"exchange": "binanceusdm", "mode": "live"}).close()
    config = default_config(tmp_path)
    config.parent.mkdir(parents=True)
    config.write_text(f'[session]\ndir = "{desk}"\n')
    other_config = tmp_path / "other.toml"
    other_config.write_text(f'[session]\ndir = "{other}"\n')

    async def listed(*args: str) -> list[str]:
        code, out, err = await cockpit(tmp_path, "sessions", "--json", *args)
        assert code == 0, err
        return [Path(row["path"]).name for row in orjson.loads(out)]

    assert await listed() == ["a.duckdb"]  # the default config's session.dir
    assert await listed("--config", str(other_config)) == ["b.duckdb"]
    assert await listed("--config", str(other_config), "--dir", str(desk)) == ["a.duckdb"]  # --dir wins
    code, out, _ = await cockpit(tmp_path, "sessions")
    assert code == 0 and f"session files in {desk} (session.dir in {config}):" in out and "a.duckdb" in out

    config.unlink()
    assert await listed() == ["c.duckdb"]  # no config at all: the data directory's sessions/

    config.write_text("[session]\ndir = 42\n")
    code, _, err = await cockpit(tmp_path, "sessions")
    assert code == 2 and f"invalid config {config}" in err and "session.dir" in err


async def test_sessions_in_a_folder_not_created_yet_says_so(tmp_path: Path) -> None:
    code, out, err = await cockpit(tmp_path, "sessions")
    folder = tmp_path / "data" / "cockpit" / "sessions"
    assert code == 0 and out.strip() == f"no session files in {folder} (the default; no config file): " + (
        "no such folder yet"
    ), err
    code, out, _ = await cockpit(tmp_path, "sessions", "--json")
    assert code == 0 and orjson.loads(out) == []
    code, _, err = await cockpit(tmp_path, "sessions", "--dir", str(tmp_path / "typo"))
    assert code == 2 and f"{tmp_path / 'typo'} is not a folder" in err
