"""The README says what the code does: quick start, event vocabulary, fault kinds, keys."""

from __future__ import annotations

import re
from pathlib import Path

from cockpit.core.domain import EVENT_KINDS
from cockpit.sim.faults import FAULT_KINDS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_quick_start_is_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("##", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    assert block.group(1).split("\n")[:-1] == ["make demo", "make test"]


def test_every_event_kind_is_documented() -> None:
    missing = [kind for kind in EVENT_KINDS if f"`{kind}`" not in README]
    assert missing == []


def test_every_fault_kind_is_documented() -> None:
    missing = [kind for kind in FAULT_KINDS if f"`{kind}`" not in README]
    assert missing == []


def test_every_cockpit_key_is_documented() -> None:
    from cockpit.ui.app import CockpitApp

    keys = {b.key for b in CockpitApp.BINDINGS if hasattr(b, "key")}  # type: ignore[union-attr]
    shown = {"slash": "/", "question_mark": "?"}
    missing = [k for k in keys if f"| `{shown.get(k, k)}` |" not in README]
    assert missing == []
