"""`cockpit service unit`: the systemd unit for the headless engine, read as systemd reads it, checked by
`systemd-analyze verify` where it is installed, and its command line run against the simulator."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.commands.cli import main
from cockpit.commands.service import UnitSpec, render_unit, sanitise_name
from cockpit.core.errors import UsageError
from cockpit.sim.server import SimServer
from tests.conftest import TEST_KEY, TEST_SECRET
from tests.waiting import wait_until

KEY = "AbCdEfGhIjKlMnOp-known-key-0001"
SECRET = "sk-LIVE-known-secret-must-not-print-0001"


def write_config(folder: Path, name: str = "live.toml", base_url: str = "", session: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    exchange = f'[exchange]\nid = "binanceusdm"\nbase_url = "{base_url}"\n' if base_url else ""
    path.write_text(exchange + (f'\n[session]\npath = "{session}"\n' if session else ""), encoding="utf-8")
    return path


def unit_command(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["service", "unit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def settings(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of the unit (comments and sections left out), values in order."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def systemd_words(value: str) -> list[str]:
    """A command line or an Environment= value as systemd unquotes it: quotes and C escapes (shlex reads
    the ones the unit uses the same way), then `%%` → `%` and `$$` → `$`."""
    return [word.replace("%%", "%").replace("$$", "$") for word in shlex.split(value)]


def test_the_unit_runs_this_interpreter_headless_on_the_absolute_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "cfg")
    monkeypatch.chdir(tmp_path)
    code, unit, err = unit_command(capsys, "--config", "cfg/live.toml")
    assert code == 0
    assert all(
        re.fullmatch(r"#.*|\[(Unit|Service|Install)\]|[A-Za-z]+=.*|", line) for line in unit.splitlines()
    )
    found = settings(unit)
    assert systemd_words(found["ExecStart"][0]) == [
        *(sys.executable, "-m", "cockpit", "run", "--config", str(config), "--headless")
    ]
    assert found["WorkingDirectory"] == [str(config.parent)]
    assert found["Description"] == ["cockpit engine (live.toml)"]
    for key, value in {
        "Restart": "on-failure",
        "RestartSec": "15",
        "StartLimitIntervalSec": "0",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "30",
        "RestartPreventExitStatus": "2 3",
        "WantedBy": "default.target",
        "SyslogIdentifier": "cockpit-live",
    }.items():
        assert found[key] == [value], key
    assert "PYTHONUNBUFFERED=1" in found["Environment"]
    assert "User" not in found and "EnvironmentFile" not in found
    assert "keyring" in unit  # the comment saying where the keys come from by default
    # how to install it: on stderr, so `> file` saves the unit alone
    for step in (
        "~/.config/systemd/user/cockpit-live.service",
        "systemctl --user daemon-reload",
        "systemctl --user enable --now cockpit-live",
        "loginctl enable-linger $USER",
        "journalctl --user -u cockpit-live -f",
    ):
        assert step in err, step
    assert "enable --now" not in unit and "daemon-reload" not in unit


def test_a_system_unit_runs_as_the_current_user_at_boot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_config(tmp_path)
    code, unit, err = unit_command(capsys, "--config", str(config), "--system", "--name", "prod")
    assert code == 0
    found = settings(unit)
    assert found["User"] == [pwd.getpwuid(os.geteuid()).pw_name]
    assert found["WantedBy"] == ["multi-user.target"]
    assert found["After"] == ["network-online.target"]
    assert "/etc/systemd/system/cockpit-prod.service" in err
    assert "sudo systemctl enable --now cockpit-prod" in err and "journalctl -u cockpit-prod -f" in err


def test_keys_come_from_the_env_file_and_no_secret_is_ever_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COCKPIT_API_KEY", KEY)
    monkeypatch.setenv("COCKPIT_API_SECRET", SECRET)
    config = write_config(tmp_path)
    env_file = tmp_path / "keys.env"
    env_file.write_text(f"COCKPIT_API_KEY={KEY}\nCOCKPIT_API_SECRET={SECRET}\n")
    env_file.chmod(0o644)
    monkeypatch.chdir(tmp_path)

    code, unit, err = unit_command(capsys, "--config", str(config), "--env-file", "keys.env")
    assert code == 0
    assert settings(unit)["EnvironmentFile"] == [str(env_file)]
    assert "0600" in unit and "COCKPIT_API_KEY=…" in unit and "COCKPIT_API_SECRET=…" in unit
    assert "readable by group or others" in err and "chmod 600" in err
    for text in (unit, err):
        assert SECRET not in text and KEY not in text and KEY[:8] not in text

    env_file.chmod(0o600)
    code, unit, err = unit_command(capsys, "--config", str(config), "--env-file", str(env_file))
    assert code == 0 and "warning" not in err
    assert SECRET not in unit + err

    code, unit, err = unit_command(capsys, "--config", str(config))  # keys in the shell, not in the unit
    assert code == 0 and "EnvironmentFile" not in settings(unit)
    assert "does not inherit them" in err and SECRET not in unit + err and KEY not in unit + err


def test_a_bad_config_exits_2_naming_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[exchange]\nid = "binanceusdm"\nbogus = 1\n')
    code, unit, err = unit_command(capsys, "--config", str(bad))
    assert code == 2 and unit == ""
    assert str(bad) in err and "bogus" in err

    code, unit, err = unit_command(capsys, "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and unit == "" and "missing.toml" in err


def test_unit_names_and_paths_systemd_cannot_hold(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert sanitise_name("my live.v2!") == "my-live.v2"
    assert sanitise_name("!!!") == "engine"
    config = write_config(tmp_path, "my live.v2!.toml")
    code, unit, err = unit_command(capsys, "--config", str(config))
    assert code == 0 and settings(unit)["SyslogIdentifier"] == ["cockpit-my-live.v2"]
    assert "cockpit-my-live.v2.service" in err

    code, unit, err = unit_command(capsys, "--config", str(config), "--name", "a/b")
    assert code == 2 and unit == "" and "not a systemd unit name" in err

    newline = write_config(tmp_path / "two\nlines")
    code, unit, err = unit_command(capsys, "--config", str(newline))
    assert code == 2 and unit == "" and "control character" in err

    with pytest.raises(UsageError, match="cannot start the Python interpreter"):
        render_unit(UnitSpec(name="x", config=config, interpreter="/opt/it's/python"))


def _verify(unit_file: Path, tmp_path: Path, *mode: str) -> list[str]:
    """What `systemd-analyze verify` says about this unit file: its lines naming the file or the unit."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    result = subprocess.run(
        ["systemd-analyze", *mode, "verify", str(unit_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},  # a user manager needs one
    )
    said = (result.stdout + result.stderr).splitlines()
    return [line for line in said if unit_file.name in line or unit_file.stem in line]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_no_problem_in_the_unit(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    odd = tmp_path / "odd dir %h $HOME"  # quoting, specifiers and variables systemd would expand
    config = write_config(odd, "live.toml")
    env_file = odd / "keys.env"
    env_file.write_text("COCKPIT_API_KEY=k\nCOCKPIT_API_SECRET=s\n")
    env_file.chmod(0o600)
    code, unit, _ = unit_command(capsys, "--config", str(config), "--env-file", str(env_file))
    assert code == 0
    units = tmp_path / "units"
    units.mkdir()
    ours = units / "cockpit-live.service"
    ours.write_text(unit)
    assert _verify(ours, tmp_path) == []
    assert _verify(ours, tmp_path, "--user") == []

    # an interpreter whose path needs quoting: systemd checks that the program it parsed exists
    link = tmp_path / "py dir %i"
    link.mkdir()
    (link / "python").symlink_to(sys.executable)
    quoted = units / "cockpit-quoted.service"
    quoted.write_text(render_unit(UnitSpec(name="quoted", config=config, interpreter=str(link / "python"))))
    assert _verify(quoted, tmp_path) == []

    # the check can fail: the same unit with a missing interpreter and a misspelt key is reported
    broken = units / "cockpit-broken.service"
    broken.write_text(
        unit.replace(f"ExecStart={sys.executable}", f"ExecStart={sys.executable}-missing").replace(
            "RestartSec=15", "RestartSecs=15"
        )
    )
    said = "\n".join(_verify(broken, tmp_path))
    assert "RestartSecs" in said and f"{sys.executable}-missing" in said


async def test_the_units_command_line_runs_the_engine_and_sigterm_stops_it_cleanly(
    sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No systemd here: the unit's ExecStart=, WorkingDirectory=, Environment= and EnvironmentFile= are
    applied by hand, in an environment that has nothing else of the test's (no keys, no PYTHONPATH)."""
    monkeypatch.setenv(
        "XDG_DATA_HOME", str(tmp_path / "data")
    )  # the unit carries it: the same account folder
    config = write_config(tmp_path / "cfg", base_url=sim.base_url, session="run.duckdb")
    env_file = tmp_path / "keys.env"
    env_file.write_text(f"COCKPIT_API_KEY={TEST_KEY}\nCOCKPIT_API_SECRET={TEST_SECRET}\n")
    env_file.chmod(0o600)
    code, unit, _ = unit_command(capsys, "--config", str(config), "--env-file", str(env_file))
    assert code == 0
    found = settings(unit)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    for assignment in found["Environment"]:
        key, _, value = systemd_words(assignment)[0].partition("=")
        env[key] = value
    for line in Path(found["EnvironmentFile"][0]).read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    proc = await asyncio.create_subprocess_exec(
        *systemd_words(found["ExecStart"][0]),
        cwd=found["WorkingDirectory"][0],
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        await wait_until(
            lambda: any(" reconcile.done " in line for line in lines) or proc.returncode is not None,
            30,
            "reconcile.done printed",
        )
        if proc.returncode is not None:
            assert proc.stderr is not None
            raise AssertionError(f"exit {proc.returncode}: {(await proc.stderr.read()).decode()}")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), float(found["TimeoutStopSec"][0]))
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0
    assert any(" session.stopped " in line for line in lines)
    assert (config.parent / "run.duckdb").is_file()  # relative to the config's folder


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_watchdog_unit_runs_the_watchdog_always_and_verifies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "cfg")
    code, unit, err = unit_command(capsys, "--config", str(config), "--watchdog")
    assert code == 0
    found = settings(unit)
    assert systemd_words(found["ExecStart"][0]) == [
        *(sys.executable, "-m", "cockpit", "watchdog", "--config", str(config))
    ]
    assert found["Restart"] == ["always"] and found["RestartPreventExitStatus"] == ["2"]
    assert found["Description"] == ["cockpit watchdog (live.toml)"]
    assert "cockpit-live-watchdog" in err  # how to install it names its own unit
    units = tmp_path / "units"
    units.mkdir()
    ours = units / "cockpit-live-watchdog.service"
    ours.write_text(unit)
    assert _verify(ours, tmp_path) == []
    assert _verify(ours, tmp_path, "--user") == []
