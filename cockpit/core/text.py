"""How numbers, ages, durations and clocks read, everywhere: the panes, `ctl`, the reports and the CLI tables.

Pure functions: no Textual, no clock reads (the caller passes the time).
"""

from __future__ import annotations

import math
import time
from decimal import ROUND_HALF_EVEN, Decimal

DASH = "—"

Number = Decimal | float | int


def _dec(value: Number) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def fmt_price(value: Number | None) -> str:
    """A price as given (no rounding, no exponent); "—" when unknown."""
    if value is None:
        return DASH
    text = format(_dec(value), "f")
    return "0" if text in ("-0", "") else text


def step_places(step: Number) -> int:
    """Decimals a step allows: 0.1 -> 1, 0.0001 -> 4, 0.010 -> 2, 1 or 10 -> 0."""
    exponent = _dec(step).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def fmt_step(value: Number | None, step: Number | None, pad: bool = True) -> str:
    """A price or quantity at its market's precision: rounded (half even) to the decimals of `step` (the
    tick or the amount step), so 63949.123456 with tick 0.1 reads "63949.1" and 64006 "64006.0"; `pad=False`
    (sizes) drops trailing zeros: 0.010 reads "0.01". Without a step: as given, without trailing zeros.
    "—" when unknown."""
    if value is None:
        return DASH
    if step is None:
        return fmt_qty(value)
    places = step_places(step)
    d = _dec(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if d == 0:
        d = abs(d)
    return f"{d:.{places}f}" if pad else fmt_qty(d)


def fmt_qty(value: Number | None) -> str:
    """A quantity as given, without trailing zeros; "—" when unknown."""
    if value is None:
        return DASH
    text = format(_dec(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


def fmt_money(value: Number | None, places: int = 2, signed: bool = False) -> str:
    """`1234.5` -> "1,234.50"; signed adds "+" to positive values ("-" is always shown)."""
    if value is None:
        return DASH
    d = _dec(value)
    quantum = Decimal(1).scaleb(-places)
    d = d.quantize(quantum, rounding=ROUND_HALF_EVEN)
    if d == 0:
        d = abs(d)  # no "-0.00"
    text = f"{d:,.{places}f}"
    if signed and d > 0:
        text = "+" + text
    return text


def fmt_pct(value: Number | None, places: int = 2, signed: bool = False) -> str:
    """`3.14159` -> "3.14%"; signed adds "+" to positive values."""
    if value is None:
        return DASH
    d = _dec(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if d == 0:
        d = abs(d)
    text = f"{d:.{places}f}%"
    if signed and d > 0:
        text = "+" + text
    return text


def fmt_age(seconds: float | None) -> str:
    """Elapsed time, compact: "0.4s", "6.2s", "3m12s", "2h05m", "3d04h"; "—" when unknown."""
    if seconds is None or math.isnan(seconds):
        return DASH
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.1f}s"
    whole = int(s)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def fmt_duration(seconds: float) -> str:
    """A duration in words, for sentences: "0.4 s", "45.0 s", "2.5 min", "3.5 h", "2.3 days"."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def fmt_countdown(seconds: float) -> str:
    """Time left, rounded up to whole seconds: "27s", "1m05s"."""
    whole = max(0, math.ceil(seconds - 1e-9))
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60:02d}s"


def per_window(window_s: float, short: bool = False) -> str:
    """A budget's window as said beside its figure: "per min" (60 s), "per 5s", "per s"; `short`: "/min",
    "/5s", "/s" (a gauge's label)."""
    unit = "min" if window_s == 60 else "s" if window_s == 1 else f"{window_s:g}s"
    return f"/{unit}" if short else f"per {unit}"


def fmt_ms(value: float | None) -> str:
    """`142.3` -> "142 ms"; "—" when unknown."""
    if value is None:
        return DASH
    return f"{value:.0f} ms"


def fmt_offset_ms(value: float | None) -> str:
    """A signed clock offset: "+12 ms", "-1500 ms"; "—" when unknown."""
    if value is None:
        return DASH
    return f"{value:+.0f} ms"


def hms(ts: float, utc: bool = False) -> str:
    """Wall-clock seconds as HH:MM:SS, local time (the TZ of the process) or UTC."""
    return time.strftime("%H:%M:%S", time.gmtime(ts) if utc else time.localtime(ts))


def truncate(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis when it is longer."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def one_line(text: str) -> str:
    """Newlines and runs of whitespace folded to single spaces."""
    return " ".join(text.split())


def shorten(text: str, width: int) -> str:
    """`text` on one line, cut to `width` with an ellipsis."""
    return truncate(one_line(text), width)
