"""Short human durations ("45s", "12m", "3.5h", "2.0d") for tables, shared by the CLI and the screens.

Textual-free on purpose: `cockpit backup`/`restore` list backups with it and must not load the UI.
"""

from __future__ import annotations


def age(seconds: float) -> str:
    """Seconds as the largest sensible unit: under 90 s in seconds, under 90 min in minutes, under two
    days in hours, then days."""
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
