"""The core stays headless: nothing below the app imports Textual (the engine runs without a screen)."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "cockpit.domain",
    "cockpit.state",
    "cockpit.store",
    "cockpit.exchange.gateway",
    "cockpit.feeds",
    "cockpit.engine.runtime",
    "cockpit.sim.server",
    "cockpit.analytics",
    "cockpit.run",
    "cockpit.ctl",
]


def test_core_packages_never_load_textual() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in CORE)
        + "ui = ('textual', 'widgets')\n"
        + "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ui)\n"
        + "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
