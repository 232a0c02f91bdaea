"""Starting the Textual cockpit from the CLI: `cockpit run` and `cockpit demo` without --headless."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cockpit.engine.runtime import RunSpec, Runtime
from cockpit.ui.attached import AttachedBackend
from cockpit.ui.backend import EngineBackend


def run_app(runtime: Any, spec: RunSpec, label: str) -> int:
    """Run the app until the operator quits; returns the exit code (errors are raised, not printed): a
    session file deleted or replaced meanwhile is an error (exit 3) saying where its backup is."""
    from cockpit.ui.app import CockpitApp

    app = CockpitApp(
        EngineBackend(runtime, label),
        kill_pct=spec.config.risk.kill_drawdown_pct,
        breaker_pct=spec.config.risk.breaker_drawdown_pct,
    )
    code = app.run()
    if app.error is not None:
        raise app.error
    lost = getattr(runtime, "lost", None)
    if lost is not None:
        raise lost.error()
    return int(code or 0)


def run_attached(find_socket: Callable[[], Path], stop_engine: Callable[[], None] | None = None) -> int:
    """The cockpit over a running engine until the operator quits (the engine keeps running, unless
    `stop_engine` is given: the demo's own engine); an engine that cannot be attached is an error."""
    from cockpit.ui.app import CockpitApp

    backend = AttachedBackend(find_socket(), find_socket=find_socket, stop_engine=stop_engine)
    app = CockpitApp(backend)
    code = app.run()
    if app.error is not None:
        raise app.error
    return int(code or 0)


def run_fleet(accounts: list[tuple[str, Callable[[], Path], str]]) -> int:
    """The cockpit over several running engines, one per account: (name, its socket's finder, the `ctl`
    option that reaches it where it runs, e.g. `--config F`). Quitting leaves every engine running."""
    from cockpit.ui.fleet import Account, FleetBackend
    from cockpit.ui.fleet_app import FleetApp

    fleet = FleetBackend(
        [
            Account(name, AttachedBackend(Path(name), label=name, find_socket=find), act_there=there)
            for name, find, there in accounts
        ]
    )
    app = FleetApp(fleet)
    code = app.run()
    if app.error is not None:
        raise app.error
    return int(code or 0)


def run_live(spec: RunSpec) -> int:
    return run_app(Runtime(spec), spec, str(spec.session_file))


def session_label(path: Path) -> str:
    return path.name
