"""Where the theme files are (`themes/` in a checkout, `cockpit/themes/` in an installed wheel), and the
remembered theme choice."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson

from cockpit.config.paths import config_dir

DEFAULT_THEME = "cockpit-dark"


def themes_dir() -> Path:
    """The folder holding the .tcss files and themes.toml."""
    packaged = Path(str(resources.files("cockpit"))) / "themes"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "themes"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"cockpit's themes folder is missing (looked in {packaged} and {checkout})")


def settings_file() -> Path:
    return config_dir() / "ui.json"


def saved_theme() -> str | None:
    try:
        value = orjson.loads(settings_file().read_bytes()).get("theme")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def save_theme(name: str) -> None:
    path = settings_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = orjson.loads(path.read_bytes())
            if not isinstance(data, dict):
                data = {}
        except (OSError, orjson.JSONDecodeError):
            data = {}
        data["theme"] = name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        tmp.replace(path)
    except OSError:
        return  # remembering the theme is a convenience; never fail the app for it
