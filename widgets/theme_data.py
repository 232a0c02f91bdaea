"""Themes are data: parse themes.toml into Textual `Theme` objects (the App reads the file, registers them).

File shape::

    [[theme]]
    name = "cockpit-dark"        # the first theme is the default
    primary = "#4a9eff"
    ...
    [theme.variables]
    pnl-up = "#3fb950"
    ...
"""

from __future__ import annotations

import tomllib
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

COLOR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "success",
    "warning",
    "error",
    "boost",
)
REQUIRED_FIELDS = ("name", "primary", "foreground", "background", "dark")
FLAG_FIELDS = ("dark", "ansi")
NUMBER_FIELDS = ("luminosity_spread", "text_alpha")
# Every custom variable the cockpit's tcss and widgets use; each theme must define all of them.
REQUIRED_VARIABLES = (
    "pnl-up",
    "pnl-down",
    "stale",
    "warn",
    "critical",
    "ok",
    "ghost",
    "muted",
    "badge-live",
    "dd-green",
    "dd-yellow",
    "dd-orange",
    "dd-red",
)
DEFAULT_THEME = "cockpit-dark"


def _fail(theme: str, field: str, why: str) -> ValueError:
    return ValueError(f"theme {theme!r}, field {field!r}: {why}")


def _color(theme: str, field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(theme, field, f"expected a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError as error:
        raise _fail(theme, field, f"{value!r} is not a colour ({error})") from None
    return value


def _theme(index: int, raw: Any) -> Theme:
    if not isinstance(raw, dict):
        raise _fail(f"#{index + 1}", "theme", "expected a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"#{index + 1}", "name", f"expected a non-empty string, got {name!r}")
    for field in REQUIRED_FIELDS:
        if field not in raw:
            raise _fail(name, field, "missing")
    known = {"name", "variables", *COLOR_FIELDS, *FLAG_FIELDS, *NUMBER_FIELDS}
    for field in raw:
        if field not in known:
            raise _fail(name, field, f"unknown field; known: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {"name": name}
    for field in COLOR_FIELDS:
        if field in raw:
            kwargs[field] = _color(name, field, raw[field])
    for field in FLAG_FIELDS:
        if field in raw:
            if not isinstance(raw[field], bool):
                raise _fail(name, field, f"expected true or false, got {raw[field]!r}")
            kwargs[field] = raw[field]
    for field in NUMBER_FIELDS:
        if field in raw:
            if isinstance(raw[field], bool) or not isinstance(raw[field], int | float):
                raise _fail(name, field, f"expected a number, got {raw[field]!r}")
            kwargs[field] = float(raw[field])
    variables = raw.get("variables", {})
    if not isinstance(variables, dict):
        raise _fail(name, "variables", "expected a table")
    for var in REQUIRED_VARIABLES:
        if var not in variables:
            raise _fail(name, f"variables.{var}", "missing")
    kwargs["variables"] = {str(k): _color(name, f"variables.{k}", v) for k, v in variables.items()}
    return Theme(**kwargs)


def load_themes(text: str) -> list[Theme]:
    """Themes from themes.toml text, in file order (the first is the default). ValueError names the theme
    and field of any bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"themes file is not valid TOML: {error}") from None
    raw_themes = data.get("theme")
    if not isinstance(raw_themes, list) or not raw_themes:
        raise ValueError("themes file has no [[theme]] entries")
    themes = [_theme(i, raw) for i, raw in enumerate(raw_themes)]
    seen: set[str] = set()
    for theme in themes:
        if theme.name in seen:
            raise _fail(theme.name, "name", "defined twice")
        seen.add(theme.name)
    return themes
