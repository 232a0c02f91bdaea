"""Each command module registers its own parser, and `cockpit --help` stays light: building every parser
imports no DuckDB, Textual, ccxt, Polars, pydantic, keyring or network library (a fresh interpreter)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ROOT / "cockpit" / "commands"
NOT_COMMANDS = {"__init__", "cli", "parsing", "session_files", "ctl", "ctl_fleet"}  # ctl: built in cli.py
HEAVY = ("duckdb", "textual", "ccxt", "polars", "pyarrow", "pydantic", "keyring", "aiohttp", "websockets")


def command_modules() -> list[str]:
    return sorted(p.stem for p in COMMANDS.glob("*.py") if p.stem not in NOT_COMMANDS)


@pytest.mark.parametrize("name", command_modules())
def test_every_command_module_registers_its_own_parser(name: str) -> None:
    module = importlib.import_module(f"cockpit.commands.{name}")
    assert callable(getattr(module, "register", None)), f"cockpit/commands/{name}.py has no register()"
    source = (ROOT / "cockpit" / "commands" / "cli.py").read_text()
    assert f"{name}.register(commands)" in source


def test_building_every_parser_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from cockpit.commands.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"`cockpit --help` imports {result.stdout.strip()[:200]}"


def test_help_lists_every_command() -> None:
    from cockpit.commands.cli import build_parser

    text = build_parser().format_help()
    for command in (
        *("sim", "demo", "run", "attach", "service", "ctl", "config", "doctor", "dlq", "backup", "restore"),
        "replay",
        *("sessions", "report", "export", "verify", "keys"),
    ):
        assert f"    {command} " in text, command
