"""The fleet file: the accounts one cockpit watches, each an engine of its own (one engine per account).

```toml
[[account]]
name = "main"                         # optional: the config file's stem, or the socket's name
config = "~/cockpit/main.toml"        # the config its engine runs with (its socket found as `attach` does)

[[account]]
name = "hedge"
socket = "~/cockpit-hedge.sock"       # or its control socket as a path (e.g. forwarded with `ssh -L`)
```

Relative paths are read from the fleet file's folder. Every problem is reported at once (the config's
renderer), with the field and the fix; a config file that is not there is refused here, a socket that is not
there is not (its engine may be down: the cockpit shows it UNREACHABLE and attaches when it is back).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cockpit.config.errors import ConfigError, ConfigProblem

FIELDS = ("name", "config", "socket")
EXAMPLE = '[[account]]\\nname = "main"\\nconfig = "main.toml"'


@dataclass(frozen=True)
class FleetAccount:
    """One account of the fleet: its name and where its engine is found (a config file, or a socket)."""

    name: str
    config: Path | None = None
    socket: Path | None = None


def account_name(config: Path | None, socket: Path | None) -> str:
    """The default name: the config file's stem, else the socket's name without `.duckdb.sock`/`.sock`."""
    if config is not None:
        return config.stem
    assert socket is not None
    name = socket.name
    for suffix in (".sock", ".duckdb"):
        name = name.removesuffix(suffix)
    return name or socket.name


def check_unique(accounts: list[FleetAccount], source: Path | None) -> None:
    """Two accounts by one name could not be told apart (nor picked with `ctl --account`): refused."""
    seen: dict[str, int] = {}
    problems: list[ConfigProblem] = []
    for number, account in enumerate(accounts, 1):
        if account.name in seen:
            problems.append(
                ConfigProblem(
                    f"account #{number}.name",
                    repr(account.name),
                    f"the same name as account #{seen[account.name]}",
                    'give each account its own name (`name = "…"`; without it, the config file\'s stem or '
                    "the socket's name is used)",
                )
            )
        seen.setdefault(account.name, number)
    if problems:
        raise ConfigError(source, problems)


def check_distinct(accounts: list[FleetAccount], source: Path | None) -> None:
    """Two accounts on one engine (the same config, or the same socket) would be summed twice in the totals
    and sent each fleet-wide action twice: refused."""
    seen: dict[Path, int] = {}
    problems: list[ConfigProblem] = []
    for number, account in enumerate(accounts, 1):
        where = account.config if account.config is not None else account.socket
        assert where is not None
        key = where.resolve()
        if key in seen:
            field = "config" if account.config is not None else "socket"
            problems.append(
                ConfigProblem(
                    f"account #{number}.{field}",
                    repr(str(where)),
                    f"the same engine as account #{seen[key]} (its totals would count twice, its actions "
                    "be sent twice)",
                    "list each engine once",
                )
            )
        seen.setdefault(key, number)
    if problems:
        raise ConfigError(source, problems)


def load_fleet(path: Path) -> list[FleetAccount]:
    """The accounts of the fleet file at `path`; ConfigError (exit 2) listing every problem."""
    path = path.expanduser()
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(
            path,
            [
                ConfigProblem(
                    "", "", f"the fleet file {where}", f"create it with one table per account: {EXAMPLE}"
                )
            ],
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("", "", f"not valid TOML: {exc}", "fix the syntax")]) from None
    problems: list[ConfigProblem] = []
    for key in data:
        if key != "account":
            close = difflib.get_close_matches(key, ["account"], n=1)
            hint = f"did you mean [[{close[0]}]]? " if close else ""
            problems.append(
                ConfigProblem(key, "", "unknown table", f"{hint}a fleet file holds [[account]] tables only")
            )
    tables = data.get("account", [])
    if not isinstance(tables, list) or not tables:
        problems.append(
            ConfigProblem(
                "account", "", "no account listed", f"add one [[account]] table per engine: {EXAMPLE}"
            )
        )
        raise ConfigError(path, problems)
    accounts: list[FleetAccount] = []
    for number, table in enumerate(tables, 1):
        account = _account(number, table, path.parent, problems)
        if account is not None:
            accounts.append(account)
    if problems:
        raise ConfigError(path, problems)
    check_unique(accounts, path)
    check_distinct(accounts, path)
    return accounts


def _account(number: int, table: object, folder: Path, problems: list[ConfigProblem]) -> FleetAccount | None:
    where = f"account #{number}"
    if not isinstance(table, dict):
        problems.append(ConfigProblem(where, "", "not a table", f"write it as [[account]]: {EXAMPLE}"))
        return None
    before = len(problems)
    for key in table:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                ConfigProblem(
                    f"{where}.{key}", "", "unknown field", f"{hint}the fields are {', '.join(FIELDS)}"
                )
            )
    for key in FIELDS:
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            problems.append(
                ConfigProblem(f"{where}.{key}", repr(table[key]), "not a non-empty string", "quote it")
            )
    if len(problems) > before:
        return None
    config = _path(table.get("config"), folder)
    socket = _path(table.get("socket"), folder)
    if (config is None) == (socket is None):
        problems.append(
            ConfigProblem(
                where,
                "",
                "needs exactly one of config or socket" + (", not both" if config else ""),
                '`config = "live.toml"` (the engine of that config) or `socket = "PATH"` (its socket)',
            )
        )
        return None
    if config is not None and not config.is_file():
        problems.append(
            ConfigProblem(
                f"{where}.config",
                repr(str(table["config"])),
                f"{config} does not exist" if not config.exists() else f"{config} is not a file",
                "give the path of the config that account's engine runs with (relative paths are read from "
                "the fleet file's folder)",
            )
        )
        return None
    name = str(table.get("name") or account_name(config, socket)).strip()
    return FleetAccount(name, config, socket)


def _path(value: object, folder: Path) -> Path | None:
    if not isinstance(value, str):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path
