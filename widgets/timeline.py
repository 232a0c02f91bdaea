"""The replay timeline: where the replay is, its speed, and the incidents on the way (views only)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from cockpit.core.text import hms


class TimelineBar(Static):
    """`REPLAY ▶ 10×  12:01:03  [────!──█──·───]  4,512 / 120,000` — a mark where each incident starts
    (`incidents`: its first seq and severity): `!` critical, `·` warning."""

    def show(
        self,
        position: int,
        total: int,
        current_ts: float,
        incidents: Sequence[tuple[int, str]],
        playing: bool,
        speed: int,
    ) -> None:
        head = f" REPLAY {'▶' if playing else '❚❚'} {speed}×  {hms(current_ts)}  "
        tail = f"  {position:,} / {total:,} "
        width = max(10, self.size.width - len(head) - len(tail) - 2)
        bar = ["─"] * width
        for where, severity in incidents:
            cell = min(width - 1, (where - 1) * width // max(1, total))
            if severity == "critical" or bar[cell] == "─":
                bar[cell] = "!" if severity == "critical" else "·"
        cursor = min(width - 1, position * width // max(1, total)) if total else 0
        bar[cursor] = "█"
        text = Text(head, style="bold")
        text.append("[" + "".join(bar) + "]")
        text.append(tail)
        self.update(text)
