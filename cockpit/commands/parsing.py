"""What the commands' parsers share: the handler type and the `--config FILE` option.

Each command module registers its own parser (`register(commands)`) from here, and keeps its top-level
imports light (no DuckDB, Textual, ccxt, pydantic): `cockpit --help` imports every module that registers one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Commands = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Commands = argparse._SubParsersAction

Handler = Callable[[argparse.Namespace], int]

DEFAULT_CONFIG = "$XDG_CONFIG_HOME/cockpit/config.toml"


def config_option(parser: argparse.ArgumentParser, what: str = "cockpit TOML config") -> None:
    """`--config FILE`, defaulting to the config file at the default location (resolved in `cli.main`)."""
    parser.add_argument("--config", default=None, metavar="FILE", help=f"{what} (default: {DEFAULT_CONFIG})")
    parser.set_defaults(needs_config=True)
