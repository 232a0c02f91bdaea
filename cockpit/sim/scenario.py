"""Scenario files: faults scheduled on a timeline, for `cockpit sim --scenario FILE`.

[[fault]]
at = 5.0            # seconds after the simulator starts
kind = "ws_drop"
refuse_s = 3

[[fault]]
at = 20
kind = "rate_limit"
count = 3
retry_after_s = 2
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cockpit.core.errors import UsageError
from cockpit.sim.faults import FaultError, parse_fault


def load_scenario(path: Path) -> list[tuple[float, dict[str, Any]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"scenario file {path} does not exist", fix="pass the path of a TOML scenario file"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"cannot read scenario file {path}", str(exc), "check the path and its permissions"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{path} is not valid TOML", str(exc), "fix the syntax at the line and column named"
        ) from None
    unknown = sorted(set(data) - {"fault"})
    problems: list[str] = []
    if unknown:
        problems.append(f"unknown top-level key(s) {unknown}: a scenario has only [[fault]] tables")
    entries = data.get("fault", [])
    if not isinstance(entries, list):
        problems.append("'fault' must be an array of tables: write [[fault]] for each entry")
        entries = []
    timeline: list[tuple[float, dict[str, Any]]] = []
    for index, entry in enumerate(entries, start=1):
        where = f"fault #{index}"
        at = entry.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
            problems.append(f"{where}: at={at!r} must be a number of seconds >= 0 after start")
            continue
        spec = {k: v for k, v in entry.items() if k != "at"}
        try:
            parse_fault(spec)
        except FaultError as exc:
            problems.append(f"{where}: {exc}")
            continue
        timeline.append((float(at), spec))
    if problems:
        raise UsageError(
            f"scenario file {path} has {len(problems)} problem(s)",
            "\n  ".join(problems),
            "correct each entry named above; fault kinds and parameters are listed in the README",
        )
    return timeline
