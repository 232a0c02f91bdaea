"""The core stays headless: nothing below the app imports Textual (the engine runs without a screen), and
no command that does not open a screen loads it either (`cockpit backup` over ssh, in cron, in CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CORE = [
    "cockpit.core.domain",
    "cockpit.core.state",
    "cockpit.store",
    "cockpit.exchange.gateway",
    "cockpit.feeds",
    "cockpit.engine.runtime",
    "cockpit.sim.server",
    "cockpit.analytics",
    "cockpit.commands.run",
    "cockpit.commands.ctl",
]

# Every module behind a command that prints and exits (`cockpit run` imports the UI only without --headless,
# `cockpit replay` only once it opens its screen): every module of cockpit/commands, found, not listed.
COMMANDS = Path(__file__).resolve().parents[1] / "cockpit" / "commands"
CLI = sorted(f"cockpit.commands.{p.stem}" for p in COMMANDS.glob("*.py") if p.stem != "__init__") + [
    "cockpit.config.settings",
    "cockpit.config.secrets",
    "cockpit.replay.session",
    "cockpit.core.text",
]


def test_every_command_module_is_checked() -> None:
    assert {"cockpit.commands.cli", "cockpit.commands.keys", "cockpit.commands.replay"} <= set(CLI)


def textual_loaded_by(*modules: str) -> list[str]:
    """The Textual (and widgets) modules a fresh interpreter holds after importing `modules`."""
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "ui = ('textual', 'widgets')\n"
        + "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ui)\n"
        + "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in result.stdout.strip().split(",") if m]


def test_core_packages_never_load_textual() -> None:
    assert textual_loaded_by(*CORE) == []


@pytest.mark.parametrize("module", CLI)
def test_command_that_prints_and_exits_never_loads_textual(module: str) -> None:
    loaded = textual_loaded_by(module)
    assert loaded == [], f"importing {module} loads the UI: {loaded[:5]}"


def test_the_check_would_see_textual() -> None:
    """The probe is real: the cockpit app does load Textual."""
    assert "textual" in textual_loaded_by("cockpit.ui.app")


def test_no_module_of_cockpit_imports_itself_back() -> None:
    """No import cycles between modules of cockpit/, counting imports inside functions and those made only
    for type checking: every part depends one way (the engine's parts on engine/context.py, the simulator's
    REST API and trader on sim/venue.py)."""
    import grimp

    graph = grimp.build_graph("cockpit")
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if imported != module and graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []
