"""Typed configuration, validated at load: every problem is named at once (file, key, value, why, fix).

The schema (keys, types, defaults, rules) is `cockpit.config.schema`, validated by pydantic; the problems
and how they read are `cockpit.config.errors`. API secrets never live here: they come from the OS keyring or
the environment (see `cockpit.config.secrets`).
"""

from __future__ import annotations

import os
import re
import stat
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


MAX_BYTES = 1 << 20  # a config file is a few hundred bytes; anything near this is not one
MAX_DEPTH = 8  # the schema nests 3 deep ([risk.clock] keys); deeper is a mistake, and deep enough overflows

_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _read(path: Path) -> bytes:
    """The file's bytes, refusing anything but a regular file of at most MAX_BYTES without blocking on it
    (a FIFO with no writer, /dev/zero, a directory are named, never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        fix = f"check the path, or create the file (default location: {default_config_file()})"
        raise _file_error(path, "file not found", fix) from None
    except IsADirectoryError:
        raise _file_error(path, "is a directory, not a file", "name the config.toml file inside it") from None
    except PermissionError:
        raise _file_error(
            path, "cannot read: permission denied", "chmod u+r it, or run as its owner"
        ) from None
    except ValueError:  # a NUL in the name
        raise _file_error(path, "the path contains a NUL character", "give the file's real path") from None
    except OSError as exc:
        raise _file_error(path, f"cannot read: {exc.strerror}", "check the path and the disk") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise _file_error(path, "is a directory, not a file", "name the config.toml file inside it")
        for test, kind in _SPECIAL:
            if test(mode):
                raise _file_error(
                    path, f"is {kind}, not a regular file", "name a config.toml file (a regular file)"
                )
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BYTES:
                raise _file_error(
                    path,
                    f"is larger than {MAX_BYTES // 1024} KiB: not a cockpit config",
                    "name the config.toml file (a few lines of TOML)",
                )
        return b"".join(chunks)
    except OSError as exc:
        raise _file_error(path, f"cannot read: {exc.strerror}", "check the file and the disk") from None
    finally:
        os.close(fd)


def _too_deep(data: Mapping[str, object]) -> str | None:
    """The dotted key of the first value nested deeper than MAX_DEPTH tables or arrays, if any (iterative:
    a deep file must not overflow the checker)."""
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > MAX_DEPTH:
            return key
        if isinstance(node, Mapping):
            stack.extend(
                (value, f"{key}.{name}" if key else str(name), depth + 1) for name, value in node.items()
            )
        elif isinstance(node, list):
            stack.extend((item, f"{key}[{index}]", depth + 1) for index, item in enumerate(node))
    return None


def _nesting_error(path: Path, key: str) -> ConfigError:
    shown = key if len(key) <= 60 else key[:57] + "..."
    return ConfigError(
        path,
        [
            ConfigProblem(
                shown,
                "",
                f"is nested more than {MAX_DEPTH} tables or arrays deep: no cockpit key is",
                "remove the nesting: the deepest key is risk.clock.kill_ms ([risk.clock] kill_ms = ...)",
            )
        ],
    )


def load_config(path: Path) -> Config:
    """Read and validate a TOML config file; raise ConfigError naming every problem."""
    path = Path(path)
    raw = _read(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _file_error(
            path, f"is not UTF-8 text (bad byte at offset {exc.start})", "save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise _nesting_error(path, "") from None
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
    except ValueError:  # an integer of more than 4300 digits
        raise _file_error(
            path,
            "invalid TOML: a number has too many digits to read",
            "no cockpit value needs more than a few",
        ) from None
    deep = _too_deep(data)
    if deep is not None:
        raise _nesting_error(path, deep)
    return parse_config(data, path)
