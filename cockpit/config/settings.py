"""Typed configuration, validated at load: every problem is named at once (file, key, value, why, fix).

API secrets never live here: they come from the OS keyring or the environment (see `cockpit.config.secrets`).
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from cockpit.config.paths import data_dir, default_config_file
from cockpit.core.errors import UsageError

SUPPORTED_EXCHANGES = ("binanceusdm",)
DEFAULT_SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "XRP/USDT:USDT", "BNB/USDT:USDT")
REDACTED = "<redacted>"
SECRETS_FIX = (
    "remove it from the file; secrets live in the OS keyring (`cockpit keys set EXCHANGE`) "
    "or in the env vars COCKPIT_API_KEY and COCKPIT_API_SECRET"
)


def _default_session_dir() -> Path:
    return data_dir() / "sessions"


@dataclass(frozen=True)
class ExchangeConfig:
    id: str = "binanceusdm"
    base_url: str | None = None
    testnet: bool = False


@dataclass(frozen=True)
class SessionConfig:
    """Exactly one session file per run: `path` if given, else a new file under `dir`."""

    path: Path | None = None
    dir: Path = field(default_factory=_default_session_dir)

    def resolve_session_file(self, now: datetime) -> Path:
        if self.path is not None:
            return self.path
        return self.dir / f"session-{now:%Y%m%d-%H%M%S}.duckdb"


@dataclass(frozen=True)
class RiskConfig:
    kill_drawdown_pct: float = 15.0
    warn_drawdown_pct: float = 5.0
    breaker_drawdown_pct: float = 7.0
    clock_warn_ms: int = 500
    clock_kill_ms: int = 2000


@dataclass(frozen=True)
class FeedConfig:
    stale_after_s: float = 5.0
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS


@dataclass(frozen=True)
class Config:
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    feeds: FeedConfig = field(default_factory=FeedConfig)
    source: Path | None = None


def default_config() -> Config:
    """Defaults everywhere (used by the demo)."""
    return Config()


@dataclass(frozen=True)
class ConfigProblem:
    key: str  # dotted key, "" for a whole-file problem
    value: str  # repr of the bad value, REDACTED, or "" when no value applies
    why: str
    fix: str
    line: int | None = None
    column: int | None = None

    def render(self, source: Path | None) -> str:
        where = str(source) if source is not None else "<config>"
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        head = f"{where}: {self.key}" if self.key else where
        if self.value:
            head += f" = {self.value}"
        return f"{head}: {self.why}\n    fix: {self.fix}"


class ConfigError(UsageError):
    """A config file with one or more problems; `render()` lists every one."""

    def __init__(self, source: Path | None, problems: Iterable[ConfigProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        where = str(source) if source is not None else "config"
        title = f"invalid config {where} ({count} problem{'s' if count != 1 else ''})"
        detail = "\n".join(p.render(source) for p in self.problems)
        super().__init__(title, detail, "fix every problem listed, then run `cockpit config validate FILE`")

    def render(self) -> str:
        lines = [f"error: {self.title}"]
        for problem in self.problems:
            lines.extend("  " + line for line in problem.render(self.source).splitlines())
        return "\n".join(lines)


# --- schema ---------------------------------------------------------------------------------------------

TABLES: dict[str, tuple[str, ...]] = {
    "": ("exchange", "session", "risk", "feeds"),
    "exchange": ("id", "base_url", "testnet"),
    "session": ("path", "dir"),
    "risk": ("kill_drawdown_pct", "warn_drawdown_pct", "breaker_drawdown_pct", "clock"),
    "risk.clock": ("warn_ms", "kill_ms"),
    "feeds": ("stale_after_s", "symbols"),
}
ALIASES = {"clock_warn_ms": "risk.clock.warn_ms", "clock_kill_ms": "risk.clock.kill_ms"}
_SECRET_MARKERS = ("apikey", "secret", "password", "passphrase", "privatekey")
_SYMBOL_RE = re.compile(r"^[A-Z0-9]+/[A-Z0-9]+(:[A-Z0-9]+(-[A-Z0-9-]+)?)?$")
_MISSING = object()


def is_secret_key(key: str) -> bool:
    norm = key.lower().replace("_", "").replace("-", "")
    return any(marker in norm for marker in _SECRET_MARKERS)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _toml_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


_WANTED: dict[tuple[type, ...], tuple[str, str]] = {
    (int, float): ("a number", "write a number, e.g. 5 or 7.5"),
    (int,): ("a whole number", "write a whole number, e.g. 500"),
    (bool,): ("a boolean", "write true or false (no quotes)"),
    (str,): ("a string", "put the value in quotes"),
    (list,): ("an array", "write a list, e.g. ['BTC/USDT:USDT', 'ETH/USDT:USDT']"),
}


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _show(value: object) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _walk_secrets(node: object, prefix: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = _join(prefix, str(key))
            if is_secret_key(str(key)):
                yield dotted
            else:
                yield from _walk_secrets(value, dotted)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk_secrets(item, f"{prefix}[{index}]")


def exchange_id_problem(exchange_id: str, *, gateway_only: bool = True) -> tuple[str, str] | None:
    """(why, fix) if `exchange_id` is not a ccxt exchange id (or, with gateway_only, not supported)."""
    if exchange_id in SUPPORTED_EXCHANGES:
        return None
    import ccxt  # slow (~0.5 s): only when the id is not the default

    known: list[str] = list(ccxt.exchanges)
    if exchange_id not in known:
        close = difflib.get_close_matches(exchange_id, known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else "for Binance USD-M futures use 'binanceusdm'"
        return "is not a ccxt exchange id", fix
    if gateway_only:
        supported = ", ".join(repr(x) for x in SUPPORTED_EXCHANGES)
        return (
            f"is a ccxt exchange, but the cockpit gateway only supports {supported} for now",
            "use 'binanceusdm' (Binance USD-M futures)",
        )
    return None


def _base_url_problem(url: str) -> tuple[str, str, bool] | None:
    """(why, fix, redact_value) if `url` is not http(s)://host[:port]."""
    fix = "write only scheme://host[:port], e.g. 'http://127.0.0.1:8080'; cockpit adds /fapi/... itself"
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@)", SECRETS_FIX, True
    if any(c.isspace() for c in url):
        return "contains whitespace", fix, False
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://", fix, False
    if not parts.hostname:
        return "has no host", fix, False
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "has a port that is not a number in 0-65535", fix, False
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must not have a path, query or fragment", fix, False
    return None


def _symbol_fix(symbol: str) -> str:
    upper = symbol.upper().strip()
    for quote in ("USDT", "USDC"):
        if "/" not in upper and upper.endswith(quote) and len(upper) > len(quote):
            return f"write ccxt unified symbols, e.g. '{upper[: -len(quote)]}/{quote}:{quote}'"
    if _SYMBOL_RE.match(upper):
        return f"write it in upper case: {upper!r}"
    return "write ccxt unified symbols such as 'BTC/USDT:USDT' (BASE/QUOTE:SETTLE)"


# --- the checker ----------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, source: Path | None) -> None:
        self.source = source
        self.problems: list[ConfigProblem] = []
        self.secret_keys: set[str] = set()

    def add(self, key: str, value: object, why: str, fix: str, *, redact: bool = False) -> None:
        shown = REDACTED if redact else ("" if value is _MISSING else _show(value))
        self.problems.append(ConfigProblem(key, shown, why, fix))

    def table(self, data: Mapping[str, object], name: str) -> dict[str, object]:
        """The table `name` (dotted) with unknown keys reported; {} if absent or not a table."""
        leaf = name.rsplit(".", 1)[-1]
        value = data.get(leaf, {}) if name else data
        if not isinstance(value, dict):
            self.add(
                name, value, f"must be a table, not {_article(_toml_type(value))}", f"write a [{name}] header"
            )
            return {}
        known = TABLES[name]
        for key in value:
            dotted = _join(name, key)
            if key in known or dotted in self.secret_keys:
                continue
            self.add(dotted, _MISSING, "unknown key", self._suggest(name, key))
        return value

    @staticmethod
    def _suggest(table: str, key: str) -> str:
        if key in ALIASES:
            return f"did you mean {ALIASES[key]}?"
        close = difflib.get_close_matches(key, TABLES[table], n=1)
        close = close or [k for k in TABLES[table] if k.startswith(key)][:1]
        if close:
            return f"did you mean {_join(table, close[0])}?"
        elsewhere = [_join(t, k) for t, keys in TABLES.items() for k in keys if k == key and t != table]
        if elsewhere:
            return f"did you mean {elsewhere[0]}? (it belongs in another table)"
        known = ", ".join(_join(table, k) for k in TABLES[table])
        return f"remove it; known keys here: {known}"

    def typed(self, table: Mapping[str, object], name: str, key: str, kinds: tuple[type, ...]) -> object:
        """The value if present and of one of `kinds` (bool is never a number), else _MISSING."""
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return value
        wanted, fix = _WANTED[kinds]
        if isinstance(value, bool):
            fix += " (true/false is a boolean, not a number)"
        why = f"must be {wanted}, not {_article(_toml_type(value))}"
        self.add(_join(name, key), value, why, fix)
        return _MISSING

    def number(self, table: Mapping[str, object], name: str, key: str, default: float) -> float | None:
        value = self.typed(table, name, key, (int, float))
        return default if value is _MISSING and key not in table else _as_float(value)

    def whole(self, table: Mapping[str, object], name: str, key: str, default: int) -> int | None:
        value = self.typed(table, name, key, (int,))
        if isinstance(value, int):
            return value
        return default if key not in table else None


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def parse_config(data: Mapping[str, object], source: Path | None) -> Config:
    """Validate parsed TOML; raise ConfigError naming every problem at once."""
    check = _Checker(source)
    for dotted in _walk_secrets(data, ""):
        check.secret_keys.add(dotted)
        check.add(dotted, None, "secrets are not allowed in a config file", SECRETS_FIX, redact=True)
    check.table(data, "")
    exchange = _parse_exchange(check, check.table(data, "exchange"))
    session = _parse_session(check, check.table(data, "session"), source)
    risk_table = check.table(data, "risk")
    risk = _parse_risk(check, risk_table, check.table(risk_table, "risk.clock"))
    feeds = _parse_feeds(check, check.table(data, "feeds"))
    if check.problems or exchange is None or risk is None or feeds is None:
        raise ConfigError(source, check.problems)
    return Config(exchange=exchange, session=session, risk=risk, feeds=feeds, source=source)


def _parse_exchange(check: _Checker, table: Mapping[str, object]) -> ExchangeConfig | None:
    default = ExchangeConfig()
    ok = True
    exchange_id = check.typed(table, "exchange", "id", (str,))
    if isinstance(exchange_id, str):
        problem = exchange_id_problem(exchange_id)
        if problem:
            check.add("exchange.id", exchange_id, *problem)
    else:
        ok = ok and "id" not in table
        exchange_id = default.id
    base_url: str | None = None
    if "base_url" in table:
        url = check.typed(table, "exchange", "base_url", (str,))
        if isinstance(url, str):
            url_problem = _base_url_problem(url)
            if url_problem:
                why, fix, redact = url_problem
                check.add("exchange.base_url", url, why, fix, redact=redact)
            base_url = url.rstrip("/")
    testnet = check.typed(table, "exchange", "testnet", (bool,))
    if isinstance(testnet, bool) and testnet and base_url is not None:
        check.add(
            "exchange.testnet",
            testnet,
            "conflicts with exchange.base_url (which already says where to connect)",
            "set either exchange.testnet or exchange.base_url, not both",
        )
    if not ok:
        return None
    return ExchangeConfig(id=exchange_id, base_url=base_url, testnet=testnet is True)


def _path(check: _Checker, table: Mapping[str, object], key: str, source: Path | None) -> Path | None:
    value = check.typed(table, "session", key, (str,))
    if not isinstance(value, str):
        return None
    if not value.strip():
        check.add(f"session.{key}", value, "is empty", f"give a path, or remove session.{key}")
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and source is not None:
        path = source.parent / path
    if key == "path" and path.is_dir():
        check.add(
            "session.path", value, "is a directory", "name a .duckdb file, or use session.dir for a folder"
        )
    if key == "dir" and path.exists() and not path.is_dir():
        check.add("session.dir", value, "exists and is not a directory", "name a folder, or use session.path")
    return path


def _parse_session(check: _Checker, table: Mapping[str, object], source: Path | None) -> SessionConfig:
    path = _path(check, table, "path", source)
    directory = _path(check, table, "dir", source)
    if "path" in table and "dir" in table:
        check.add(
            "session.dir",
            table["dir"],
            "conflicts with session.path: exactly one session file is used per run",
            "set session.path for a fixed file, or session.dir for a new file per run, not both",
        )
    return SessionConfig(path=path, dir=directory or _default_session_dir())


def _parse_risk(
    check: _Checker, table: Mapping[str, object], clock: Mapping[str, object]
) -> RiskConfig | None:
    d = RiskConfig()
    pcts = {
        "warn_drawdown_pct": check.number(table, "risk", "warn_drawdown_pct", d.warn_drawdown_pct),
        "breaker_drawdown_pct": check.number(table, "risk", "breaker_drawdown_pct", d.breaker_drawdown_pct),
        "kill_drawdown_pct": check.number(table, "risk", "kill_drawdown_pct", d.kill_drawdown_pct),
    }
    for key, pct in pcts.items():
        if pct is not None and not 0 < pct < 100:
            default = getattr(d, key)
            why = "must be a percentage strictly between 0 and 100"
            check.add(f"risk.{key}", table[key], why, f"use e.g. {default} (the default)")
            pcts[key] = None
    valid = [(key, pct) for key, pct in pcts.items() if pct is not None]
    for (low_key, low), (high_key, high) in zip(valid, valid[1:], strict=False):
        if low > high:
            check.add(
                f"risk.{low_key}",
                table.get(low_key, low),
                f"must be <= risk.{high_key} ({high:g}): warn <= breaker <= kill",
                f"lower risk.{low_key} or raise risk.{high_key}",
            )
    warn_ms = check.whole(clock, "risk.clock", "warn_ms", d.clock_warn_ms)
    kill_ms = check.whole(clock, "risk.clock", "kill_ms", d.clock_kill_ms)
    for key, ms in (("warn_ms", warn_ms), ("kill_ms", kill_ms)):
        if ms is not None and ms <= 0:
            check.add(f"risk.clock.{key}", ms, "must be a positive number of milliseconds", "use e.g. 500")
    if warn_ms is not None and kill_ms is not None and 0 < kill_ms <= warn_ms:
        check.add(
            "risk.clock.warn_ms",
            warn_ms,
            f"must be < risk.clock.kill_ms ({kill_ms}): the warning comes before the kill switch",
            "lower risk.clock.warn_ms or raise risk.clock.kill_ms (defaults 500 and 2000)",
        )
    w, b, k = pcts["warn_drawdown_pct"], pcts["breaker_drawdown_pct"], pcts["kill_drawdown_pct"]
    if w is None or b is None or k is None or warn_ms is None or kill_ms is None:
        return None
    return RiskConfig(k, w, b, warn_ms, kill_ms)


def _parse_feeds(check: _Checker, table: Mapping[str, object]) -> FeedConfig | None:
    d = FeedConfig()
    stale = check.number(table, "feeds", "stale_after_s", d.stale_after_s)
    if stale is not None and not (stale > 0 and math.isfinite(stale)):
        check.add(
            "feeds.stale_after_s", table["stale_after_s"], "must be a positive number of seconds", "use 5"
        )
        stale = None
    symbols: tuple[str, ...] | None = d.symbols
    raw = check.typed(table, "feeds", "symbols", (list,))
    if isinstance(raw, list):
        symbols = _check_symbols(check, raw)
    elif "symbols" in table:
        symbols = None
    if stale is None or symbols is None:
        return None
    return FeedConfig(stale_after_s=stale, symbols=symbols)


def _check_symbols(check: _Checker, raw: list[object]) -> tuple[str, ...] | None:
    if not raw:
        check.add("feeds.symbols", raw, "is empty", "list at least one symbol, e.g. ['BTC/USDT:USDT']")
        return None
    ok = True
    seen: set[str] = set()
    for index, item in enumerate(raw):
        key = f"feeds.symbols[{index}]"
        if not isinstance(item, str):
            check.add(
                key, item, f"must be a string, not {_article(_toml_type(item))}", "quote it: 'BTC/USDT:USDT'"
            )
            ok = False
        elif not _SYMBOL_RE.match(item):
            check.add(key, item, "is not a ccxt unified symbol", _symbol_fix(item))
            ok = False
        elif item in seen:
            check.add(key, item, "is listed twice", "remove the duplicate")
            ok = False
        else:
            seen.add(item)
    return tuple(str(s) for s in raw) if ok else None


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
