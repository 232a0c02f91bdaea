"""Where cockpit keeps its files, following the XDG base directory spec.

A relative or empty `$XDG_CONFIG_HOME` / `$XDG_DATA_HOME` is ignored, as the spec says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "cockpit"


def _xdg_base(var: str, fallback: str, env: Mapping[str, str] | None) -> Path:
    environ = os.environ if env is None else env
    value = environ.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/cockpit`, else `~/.config/cockpit`."""
    return _xdg_base("XDG_CONFIG_HOME", ".config", env) / APP_NAME


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_DATA_HOME/cockpit`, else `~/.local/share/cockpit`."""
    return _xdg_base("XDG_DATA_HOME", ".local/share", env) / APP_NAME


def default_config_file(env: Mapping[str, str] | None = None) -> Path:
    """`config_dir()/config.toml`."""
    return config_dir(env) / "config.toml"
