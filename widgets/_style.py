"""Rich styles from the active theme's variables (for Rich text drawn inside tables and logs)."""

from __future__ import annotations

from rich.style import Style
from textual.app import App
from textual.color import Color, ColorParseError


def theme_style(app: App[object], variable: str, bold: bool = False) -> Style:
    """A Rich style coloured with the theme variable `variable` (e.g. "pnl-up"); plain if undefined."""
    value = app.theme_variables.get(variable)
    if not value:
        return Style(bold=bold) if bold else Style.null()
    try:
        color = Color.parse(value)
    except ColorParseError:
        return Style(bold=bold) if bold else Style.null()
    return Style(color=color.rich_color, bold=bold or None)
