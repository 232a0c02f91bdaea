"""Which config file a command reads: `--config FILE` if given, else the default location the README names,
`$XDG_CONFIG_HOME/cockpit/config.toml` (usually `~/.config/cockpit/config.toml`)."""

from __future__ import annotations

from pathlib import Path

from cockpit.config.paths import default_config_file
from cockpit.core.errors import UsageError


def config_file(given: str | Path | None) -> Path:
    """`given`, or the default config file; UsageError (exit 2) naming the default path and how to create
    it when `--config` was not given and there is no file there."""
    if given is not None:
        return Path(given)
    path = default_config_file()
    if path.is_file():
        return path
    where = "is a folder, not a file" if path.is_dir() else "does not exist"
    raise UsageError(
        f"no config file: --config was not given and the default {path} {where}",
        "without --config, cockpit reads $XDG_CONFIG_HOME/cockpit/config.toml "
        "(~/.config/cockpit/config.toml)",
        "create it (every key is optional; README.md, section Configuration, has an example with every "
        f"key): `mkdir -p {path.parent} && $EDITOR {path}`, check it with `cockpit config validate {path}`; "
        "or pass --config FILE",
    )


def default_config_if_present() -> Path | None:
    """The default config file if there is one (for commands that work without a config)."""
    path = default_config_file()
    return path if path.is_file() else None
