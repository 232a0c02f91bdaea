"""Config files: real TOML in a temp dir, every problem named (file, key, value, why, fix)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from cockpit.commands.cli import main
from cockpit.commands.config import validate_command
from cockpit.config.paths import config_dir, data_dir, default_config_file
from cockpit.config.settings import (
    Config,
    ConfigError,
    ConfigProblem,
    SessionConfig,
    default_config,
    load_config,
    parse_config,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-LIVE-9f8e7d6c5b4a3210"

FULL = """
[exchange]
id = "binanceusdm"
base_url = "http://127.0.0.1:18080/"

[session]
path = "sessions/today.duckdb"

[risk]
warn_drawdown_pct = 4
breaker_drawdown_pct = 6.5
kill_drawdown_pct = 12

[risk.clock]
warn_ms = 250
kill_ms = 1500

[feeds]
stale_after_s = 2.5
symbols = ["BTC/USDT:USDT", "1000PEPE/USDT:USDT"]
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> tuple[ConfigProblem, ...]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.problems


def only_problem(tmp_path: Path, text: str) -> ConfigProblem:
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, [p.render(None) for p in problems]
    return problems[0]


def test_full_file_loads_every_key(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config.source == path
    assert config.exchange.id == "binanceusdm"
    assert config.exchange.base_url == "http://127.0.0.1:18080"  # trailing slash dropped
    assert config.exchange.testnet is False
    assert config.session.path == tmp_path / "sessions" / "today.duckdb"  # relative to the config file
    assert config.risk.warn_drawdown_pct == 4.0
    assert config.risk.breaker_drawdown_pct == 6.5
    assert config.risk.kill_drawdown_pct == 12.0
    assert (config.risk.clock_warn_ms, config.risk.clock_kill_ms) == (250, 1500)
    assert config.feeds.stale_after_s == 2.5
    assert config.feeds.symbols == ("BTC/USDT:USDT", "1000PEPE/USDT:USDT")


def test_empty_file_gives_the_documented_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config = load_config(write(tmp_path, ""))
    risk = config.risk
    assert (risk.kill_drawdown_pct, risk.warn_drawdown_pct, risk.breaker_drawdown_pct) == (15.0, 5.0, 7.0)
    assert (risk.clock_warn_ms, risk.clock_kill_ms) == (500, 2000)
    assert config.feeds.stale_after_s == 5.0
    assert config.feeds.symbols[0] == "BTC/USDT:USDT" and len(config.feeds.symbols) == 5
    assert config.exchange == default_config().exchange
    assert config.exchange.base_url is None
    assert config.session.path is None
    assert config.session.dir == tmp_path / "data" / "cockpit" / "sessions"
    assert default_config() == Config(source=None)


def test_session_file_is_the_fixed_path_or_a_new_timestamped_file(tmp_path: Path) -> None:
    now = datetime(2026, 3, 9, 7, 5, 3)
    assert (
        SessionConfig(dir=tmp_path).resolve_session_file(now) == tmp_path / "session-20260309-070503.duckdb"
    )
    fixed = tmp_path / "mine.duckdb"
    assert SessionConfig(path=fixed, dir=tmp_path).resolve_session_file(now) == fixed


def test_paths_follow_xdg_and_ignore_relative_values(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "d")}
    assert config_dir(env) == tmp_path / "c" / "cockpit"
    assert data_dir(env) == tmp_path / "d" / "cockpit"
    assert default_config_file(env) == tmp_path / "c" / "cockpit" / "config.toml"
    relative = {"XDG_CONFIG_HOME": "rel", "XDG_DATA_HOME": ""}
    assert config_dir(relative) == Path.home() / ".config" / "cockpit"
    assert data_dir(relative) == Path.home() / ".local" / "share" / "cockpit"


@pytest.mark.parametrize(
    ("text", "key", "why", "fix"),
    [
        ("[risk]\nkill_drawdown = 10\n", "risk.kill_drawdown", "unknown key", "risk.kill_drawdown_pct"),
        ("[sesion]\npath = 'x.duckdb'\n", "sesion", "unknown key", "did you mean session"),
        ("[risk]\nstale_after_s = 3\n", "risk.stale_after_s", "unknown key", "feeds.stale_after_s"),
        ("[risk]\nclock_warn_ms = 300\n", "risk.clock_warn_ms", "unknown key", "risk.clock.warn_ms"),
        ('exchange = "binanceusdm"\n', "exchange", "must be a table", "[exchange]"),
        ("[risk]\nkill_drawdown_pct = true\n", "risk.kill_drawdown_pct", "not a boolean", "number"),
        ('[risk]\nkill_drawdown_pct = "15"\n', "risk.kill_drawdown_pct", "not a string", "number"),
        ("[risk.clock]\nwarn_ms = 500.0\n", "risk.clock.warn_ms", "whole number", "e.g. 500"),
        ("[exchange]\ntestnet = 'yes'\n", "exchange.testnet", "boolean", "true or false"),
        ("[feeds]\nsymbols = 'BTC/USDT:USDT'\n", "feeds.symbols", "must be an array", "list"),
        ("[risk]\nkill_drawdown_pct = 150\n", "risk.kill_drawdown_pct", "between 0 and 100", "15.0"),
        ("[risk]\nwarn_drawdown_pct = 0\n", "risk.warn_drawdown_pct", "between 0 and 100", "5.0"),
        ("[risk]\nbreaker_drawdown_pct = 100.0\n", "risk.breaker_drawdown_pct", "between 0 and 100", "7.0"),
        (
            "[risk]\nwarn_drawdown_pct = 8\n",
            "risk.warn_drawdown_pct",
            "<= risk.breaker_drawdown_pct",
            "lower",
        ),
        (
            "[risk]\nbreaker_drawdown_pct = 20\n",
            "risk.breaker_drawdown_pct",
            "<= risk.kill_drawdown_pct",
            "raise",
        ),
        ("[risk.clock]\nwarn_ms = 2000\n", "risk.clock.warn_ms", "< risk.clock.kill_ms", "lower"),
        ("[risk.clock]\nkill_ms = -1\n", "risk.clock.kill_ms", "from 1 to 600 000", "500"),
        ("[risk.clock]\nkill_ms = 18446744073709551616\n", "risk.clock.kill_ms", "from 1 to 600 000", "500"),
        ("[feeds]\nstale_after_s = 0\n", "feeds.stale_after_s", "from 0.5 to 3600", "5"),
        ("[feeds]\nstale_after_s = 1e-9\n", "feeds.stale_after_s", "from 0.5 to 3600", "5"),
        ("[feeds]\nstale_after_s = inf\n", "feeds.stale_after_s", "from 0.5 to 3600", "5"),
        ("[session]\npath = '~nosuchuser-x/s.duckdb'\n", "session.path", "no such user", "full path"),
        ('[session]\npath = "a\\u0000b.duckdb"\n', "session.path", "control character", "printable"),
        ('[session]\ndir = "a\\nb"\n', "session.dir", "control character", "printable"),
        ('[exchange]\nbase_url = "http://h\\u0000:1"\n', "exchange.base_url", "control character", "host"),
        ("[exchange]\nid = 'binanceusd'\n", "exchange.id", "not a ccxt exchange id", "'binanceusdm'"),
        ("[exchange]\nid = 'okx'\n", "exchange.id", "only supports 'binanceusdm', 'bybit'", "'bybit'"),
        ("[exchange]\nbase_url = 'ftp://h'\n", "exchange.base_url", "http:// or https://", "scheme://host"),
        ("[exchange]\nbase_url = 'localhost:8080'\n", "exchange.base_url", "http:// or https://", "e.g."),
        ("[exchange]\nbase_url = 'http://'\n", "exchange.base_url", "no host", "scheme://host"),
        ("[exchange]\nbase_url = 'http://h:99999'\n", "exchange.base_url", "port", "scheme://host"),
        ("[exchange]\nbase_url = 'http://h/fapi/v1'\n", "exchange.base_url", "path", "/fapi"),
        (
            "[exchange]\nbase_url = 'http://h'\ntestnet = true\n",
            "exchange.testnet",
            "conflicts with exchange.base_url",
            "not both",
        ),
        ("[session]\npath = 'a.duckdb'\ndir = 'd'\n", "session.dir", "exactly one session file", "not both"),
        ("[session]\npath = ''\n", "session.path", "empty", "path"),
        (
            "[feeds]\nsymbols = ['BTCUSDT']\n",
            "feeds.symbols[0]",
            "not a ccxt unified symbol",
            "'BTC/USDT:USDT'",
        ),
        ("[feeds]\nsymbols = ['eth/usdt:usdt']\n", "feeds.symbols[0]", "unified symbol", "'ETH/USDT:USDT'"),
        ("[feeds]\nsymbols = []\n", "feeds.symbols", "empty", "at least one"),
        ("[feeds]\nsymbols = ['BTC/USDT:USDT', 'BTC/USDT:USDT']\n", "feeds.symbols[1]", "twice", "duplicate"),
    ],
)
def test_each_mistake_is_named_with_key_value_why_and_fix(
    tmp_path: Path, text: str, key: str, why: str, fix: str
) -> None:
    problem = only_problem(tmp_path, text)
    assert problem.key == key
    assert why in problem.why
    assert fix in problem.fix
    rendered = problem.render(tmp_path / "config.toml")
    assert rendered.startswith(f"{tmp_path / 'config.toml'}: {key}")
    assert "fix: " in rendered


def test_bad_value_is_shown_as_written(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "[risk]\nkill_drawdown_pct = 150\n[exchange]\n")
    assert problem.value == "150"
    assert only_problem(tmp_path, "[risk]\nkill_drawdown_pct = true\n").value == "true"


def test_session_dir_with_tilde_expands_to_home(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[session]\ndir = '~/cockpit-sessions'\n"))
    assert config.session.dir == Path.home() / "cockpit-sessions"


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[exchange]\nid = 'okx'\n[risk]\nkill_drawdown_pct = 150\nkill = 1\n[feeds]\nstale_after_s = -2\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = {p.key for p in info.value.problems}
    assert keys == {"exchange.id", "risk.kill_drawdown_pct", "risk.kill", "feeds.stale_after_s"}
    rendered = info.value.render()
    assert "4 problems" in rendered
    for key in keys:
        assert f"{path}: {key}" in rendered
    assert info.value.exit_code == 2


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, "[risk]\nkill_drawdown_pct = 15\nwarn_drawdown_pct = \n")
    assert (problem.line, problem.column) == (3, 21)
    assert "invalid TOML" in problem.why
    assert f"{tmp_path / 'config.toml'}:3:21: invalid TOML" in problem.render(tmp_path / "config.toml")


def test_missing_file_is_named_with_the_default_location(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "file not found" in info.value.render()
    assert str(tmp_path / "nope.toml") in info.value.render()
    assert "config.toml" in info.value.problems[0].fix


def test_directory_and_non_utf8_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


@pytest.mark.parametrize(
    "text",
    [
        f'[exchange]\napi_key = "{SECRET}"\n',
        f'[exchange]\napiKey = "{SECRET}"\n',
        f'secret = "{SECRET}"\n',
        f'[exchange]\napi_secret = "{SECRET}"\n',
        f'[exchange.credentials]\npassword = "{SECRET}"\n',
        f'[exchange]\nbase_url = "https://me:{SECRET}@fapi.binance.com"\n',
    ],
)
def test_secrets_in_a_config_file_are_refused_without_echoing_them(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    exc = info.value
    secret_problems = [p for p in exc.problems if p.value == "<redacted>"]
    assert len(secret_problems) == 1
    for shown in (exc.render(), str(exc), repr(exc), repr(exc.problems)):
        assert SECRET not in shown
    assert "keyring" in secret_problems[0].fix and "COCKPIT_API_KEY" in secret_problems[0].fix


def test_parse_config_accepts_plain_dicts() -> None:
    config = parse_config({"risk": {"clock": {"kill_ms": 3000}}}, None)
    assert config.risk.clock_kill_ms == 3000
    with pytest.raises(ConfigError, match="<config>: feeds.stale_after_s"):
        parse_config({"feeds": {"stale_after_s": False}}, None)


def test_validate_prints_ok_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, FULL)
    assert main(["config", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path} is valid\n")
    assert "binanceusdm (http://127.0.0.1:18080)" in out
    assert str(tmp_path / "sessions" / "today.duckdb") in out
    assert "warn 4% / breaker 6.5% / kill 12%" in out
    assert "warn 250 ms / kill 1500 ms" in out


def test_validate_returns_2_and_lists_problems_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[risk]\nkill_drawdown_pct = 0\n")
    assert validate_command(str(path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: risk.kill_drawdown_pct = 0" in captured.err


def test_cockpit_config_validate_subprocess_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, f'[exchange]\nid = "okx"\nsecret = "{SECRET}"\n[risk]\nwarn_drawdown_pct = 50\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    for key in ("exchange.id", "exchange.secret", "risk.warn_drawdown_pct"):
        assert f"{path}: {key}" in result.stderr


# --- odd files: every one an exit-2 message naming the file, never a traceback or a hang ------------------

ODD_TOML = [
    "a = " + "[" * 5000 + "]" * 5000,  # deeper than the TOML parser can recurse
    "a = " + "[" * 40 + "]" * 40,  # parses, deeper than any key
    "[" + ".".join(["t"] * 300) + "]\nx = 1\n",  # a table 300 deep
    "x = {" + "a = {" * 200 + "}" * 201,  # inline tables
    "[risk.clock]\nkill_ms = 9" + "9" * 5000 + "\n",  # more digits than Python reads
    "[risk.clock]\nkill_ms = 170141183460469231731687303715884105728\n",  # 2**127
    "[risk.clock]\nwarn_ms = -9223372036854775809\n",
    "[risk]\nkill_drawdown_pct = 1e400\n",
    "[risk]\nkill_drawdown_pct = nan\n",
    "[feeds]\nsymbols = [[[['BTC/USDT:USDT']]]]\n",
    "[feeds]\nsymbols = [1, true, 2.5, {a = 1}, 1979-05-27]\n",
    "[feeds]\nstale_after_s = 1979-05-27T07:32:00Z\n",
    '[session]\npath = "x\\u0000y"\ndir = "\\u0000"\n',
    "[session]\npath = 5\n",
    '[session]\ndir = "' + "d/" * 3000 + '"\n',
    "[session]\npath = '~root\\u0000/x.duckdb'\n",
    '[exchange]\nbase_url = "http://[::1"\n',
    '[exchange]\nbase_url = "http://h:1/?signature=0123456789abcdef"\n',
    "[exchange]\nid = ''\n",
    "risk = 1\nfeeds = []\nsession = 'x'\n",
    "\x00 = 1\n",
    '"\\u0000" = 1\n',
    "[risk.clock.kill_ms]\nx = 1\n",
]


@pytest.mark.parametrize("text", ODD_TOML, ids=range(len(ODD_TOML)))
def test_odd_toml_is_a_named_problem_never_a_crash(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    rendered = info.value.render()
    assert info.value.exit_code == 2
    assert str(path) in rendered and "fix: " in rendered
    assert "0123456789abcdef" not in rendered  # a URL's query is redacted wherever it is echoed


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "huge"])
def test_special_files_are_named_without_reading_them(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "config.toml"
        os.mkfifo(path)  # no writer: reading it would block for ever
        why = "named pipe"
    elif kind == "dev-zero":
        path, why = Path("/dev/zero"), "character device"  # reading it would never end
    elif kind == "directory":
        path, why = tmp_path, "directory"
    else:
        path, why = write(tmp_path, "# padding\n" * 200_000), "larger than"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "cockpit", "config", "validate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}: " in result.stderr and why in result.stderr and "fix: " in result.stderr


def test_a_base_url_s_query_and_userinfo_are_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, '[exchange]\nbase_url = "https://fapi.example:443/?signature=abcdef0123&x=1"\n')
    problem = only_problem(tmp_path, path.read_text())
    assert "abcdef0123" not in problem.render(path)
    assert "signature=<redacted>" in problem.value


ODD_VALUES = (
    "-1",
    "0",
    "1e-9",
    "1e400",
    "-inf",
    "nan",
    "18446744073709551616",
    "-9223372036854775809",
    "true",
    "'x'",
    '"\\u0000"',
    '"~nosuchuser-x/a"',
    "[]",
    "[[[]]]",
    "{}",
    "{a = {b = {c = 1}}}",
    "1979-05-27",
    "07:32:00",
    "'http://u:p@h/?signature=s3cr3t'",
    '"' + "a" * 5000 + '"',
    "[" + "1," * 2000 + "]",
)


def test_a_seeded_fuzz_of_the_full_file_loads_or_names_its_problems(tmp_path: Path) -> None:
    """Every value of the full example swapped for odd ones, a few hundred times: each file either loads or
    raises ConfigError (exit 2) naming the file, never another exception, and never echoes the secret."""
    import random

    rng = random.Random(13)
    lines = FULL.strip().splitlines()
    values = [i for i, line in enumerate(lines) if " = " in line]
    for _ in range(300):
        mutated = list(lines)
        for index in rng.sample(values, rng.randint(1, 3)):
            key = mutated[index].split(" = ")[0]
            mutated[index] = f"{key} = {rng.choice(ODD_VALUES)}"
        text = "\n".join(mutated) + "\n"
        path = write(tmp_path, text)
        try:
            load_config(path)
        except ConfigError as exc:
            rendered = exc.render()
            assert str(path) in rendered and "fix: " in rendered, text
            assert "s3cr3t" not in rendered, text
