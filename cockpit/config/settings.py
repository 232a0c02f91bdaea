"""Typed configuration, validated at load: every problem is named at once (file, key, value, why, fix).

The schema (keys, types, defaults, rules) is `cockpit.config.schema`, validated by pydantic; the problems
and how they read are `cockpit.config.errors`. API secrets never live here: they come from the OS keyring or
the environment (see `cockpit.config.secrets`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from cockpit.config.errors import ConfigError, ConfigProblem, problems_of
from cockpit.config.paths import default_config_file
from cockpit.config.rules import (
    DEFAULT_SYMBOLS,
    REDACTED,
    SECRETS_FIX,
    SUPPORTED_EXCHANGES,
    exchange_id_problem,
    is_secret_key,
)
from cockpit.config.schema import Config, ExchangeConfig, FeedConfig, RiskConfig, SessionConfig, validate_file

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = [
    "DEFAULT_SYMBOLS",
    "REDACTED",
    "SECRETS_FIX",
    "SUPPORTED_EXCHANGES",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "ExchangeConfig",
    "FeedConfig",
    "RiskConfig",
    "SessionConfig",
    "default_config",
    "exchange_id_problem",
    "is_secret_key",
    "load_config",
    "parse_config",
]


def default_config() -> Config:
    """Defaults everywhere (used by the demo)."""
    return Config()


def parse_config(data: Mapping[str, object], source: Path | None) -> Config:
    """Validate parsed TOML; raise ConfigError naming every problem at once."""
    config: Config | None = None
    errors: list[ErrorDetails] = []
    try:
        config = validate_file(data, source)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    # raised outside the except clause: pydantic's error (which holds the values) is not kept as its context
    problems = problems_of(data, errors)
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


# --- loading and the CLI --------------------------------------------------------------------------------

_AT_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _file_error(path: Path, why: str, fix: str) -> ConfigError:
    return ConfigError(path, [ConfigProblem("", "", why, fix)])


def load_config(path: Path) -> Config:
    """Read and validate a TOML config file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        fix = f"check the path, or create the file (default location: {default_config_file()})"
        raise _file_error(path, "file not found", fix) from None
    except IsADirectoryError:
        raise _file_error(path, "is a directory, not a file", "name the config.toml file inside it") from None
    except PermissionError:
        raise _file_error(
            path, "cannot read: permission denied", "chmod u+r it, or run as its owner"
        ) from None
    except OSError as exc:
        raise _file_error(path, f"cannot read: {exc.strerror}", "check the file and the disk") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(
            path, f"is not UTF-8 text (bad byte at offset {exc.start})", "save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _AT_RE.search(message)
        line, column = (int(match[1]), int(match[2])) if match else (None, None)
        why = f"invalid TOML: {_AT_RE.sub('', message)}"
        where = f"at line {line}" if line is not None else "(look for an unclosed string, bracket or table)"
        fix = (
            f"correct the TOML syntax {where}: "
            "strings need quotes, tables are [name], keys are `name = value`"
        )
        problem = ConfigProblem("", "", why, fix, line=line, column=column)
        raise ConfigError(path, [problem]) from None
    return parse_config(data, path)
