"""The config schema, written once: the frozen dataclasses the code uses are what a TOML file is validated
against (pydantic): each key's type, default, range and rules, and its description (the README's Rule column,
which tests/test_config_readme.py holds to this file).

A file is validated with `validate_file`; code builds these dataclasses directly (`dataclasses.replace` works)
and gets the same checks, except the ones about the file itself: session paths are resolved against the config
file's folder, checked on disk and held to "path or dir, not both" only when a file is loaded.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from cockpit.config.paths import data_dir
from cockpit.config.rules import DEFAULT_SYMBOLS, SYMBOL_RE, base_url_problem, exchange_id_problem, symbol_fix

if typing.TYPE_CHECKING:
    from pydantic import ValidationInfo

# Unknown keys are errors; a field written `clock.warn_ms` is read from the [risk.clock] sub-table of a file,
# while code names it `clock_warn_ms`.
_TABLE = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)
RULE_ERROR = "config_rule"
_SOURCE = "config_file"  # validation context key: the config file being loaded (None for a plain dict)


@dataclasses.dataclass(frozen=True)
class Explain:
    """How to name a value outside the field's declared range (gt, lt, finite, not empty)."""

    why: str
    fix: str  # may use {default}
    item_fix: str = ""  # for an array item of the wrong type


def rule(why: str, fix: str, *, redact: bool = False, items: tuple[int, ...] = ()) -> PydanticCustomError:
    """A broken rule, as an error in pydantic's list; the renderer shows `why` and `fix` as written
    (`items`: the array indexes at fault, each named as its own problem)."""
    return PydanticCustomError(
        RULE_ERROR, "{why}", {"why": why, "fix": fix, "redact": redact, "items": items}
    )


def _loading(info: ValidationInfo) -> bool:
    return isinstance(info.context, Mapping) and _SOURCE in info.context


def _field(info: ValidationInfo) -> str:
    assert info.field_name is not None
    return info.field_name


# --- [exchange] -----------------------------------------------------------------------------------------


def _exchange_id(exchange_id: str) -> str:
    problem = exchange_id_problem(exchange_id)
    if problem:
        raise rule(*problem)
    return exchange_id


def _base_url(url: str) -> str:
    problem = base_url_problem(url)
    if problem:
        why, fix, redact = problem
        raise rule(why, fix, redact=redact)
    return url.rstrip("/")


def _testnet(testnet: bool, info: ValidationInfo) -> bool:
    if testnet and info.data.get("base_url") is not None:
        raise rule(
            "conflicts with exchange.base_url (which already says where to connect)",
            "set either exchange.testnet or exchange.base_url, not both",
        )
    return testnet


@dataclass(frozen=True, config=_TABLE)
class ExchangeConfig:
    id: Annotated[
        str,
        Field(
            strict=True,
            description="a ccxt exchange id: `binanceusdm` (Binance USD-M) or `bybit` (Bybit linear USDT)",
        ),
        AfterValidator(_exchange_id),
    ] = "binanceusdm"
    base_url: Annotated[
        Annotated[str, Field(strict=True), AfterValidator(_base_url)] | None,
        Field(
            description="`http://` or `https://` host and optional port, no path; not together with `testnet`"
        ),
    ] = None
    testnet: Annotated[
        bool, Field(strict=True, description="use the exchange's testnet"), AfterValidator(_testnet)
    ] = False


# --- [session] ------------------------------------------------------------------------------------------


def _default_session_dir() -> Path:
    return data_dir() / "sessions"


def _not_empty(value: object, info: ValidationInfo) -> object:
    if isinstance(value, str) and not value.strip():
        raise rule("is empty", f"give a path, or remove session.{_field(info)}")
    if isinstance(value, str) and any(ord(c) < 32 or c == "\x7f" for c in value):
        raise rule(
            "contains a control character (a NUL, a newline, ...): no file can be named so",
            "write the path with printable characters only",
        )
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > 4096:
        raise rule("is longer than 4096 bytes, more than any file system allows", "write a shorter path")
    return value


def _in_file(path: Path, info: ValidationInfo) -> Path:
    """Loading a file: `~` expanded, a relative path taken from the config file's folder."""
    try:
        path = path.expanduser()
    except RuntimeError:  # `~name` of no such user, or no home directory at all
        user = str(path).split("/")[0]
        raise rule(
            f"starts with {user!r}, but there is no such user's home directory to expand it to",
            "write the full path (e.g. /home/NAME/...), or ~/... for your own home",
        ) from None
    source = info.context.get(_SOURCE) if isinstance(info.context, Mapping) else None
    return source.parent / path if isinstance(source, Path) and not path.is_absolute() else path


def _on_disk(check: Callable[[], bool], field: str) -> bool:
    """A check on the path (is_dir, exists), with an OS refusal (a name too long, a loop of links) named."""
    try:
        return check()
    except OSError as exc:
        raise rule(
            f"cannot be checked: {exc.strerror}", f"write a path this machine can use in {field}"
        ) from None


def _session_path(path: Path, info: ValidationInfo) -> Path:
    if not _loading(info):
        return path
    path = _in_file(path, info)
    if _on_disk(path.is_dir, "session.path"):
        raise rule("is a directory", "name a .duckdb file, or use session.dir for a folder")
    return path


def _session_dir(path: Path, info: ValidationInfo) -> Path:
    if not _loading(info):
        return path
    path = _in_file(path, info)
    if _on_disk(path.exists, "session.dir") and not _on_disk(path.is_dir, "session.dir"):
        raise rule("exists and is not a directory", "name a folder, or use session.path")
    if info.data.get("path") is not None:
        raise rule(
            "conflicts with session.path: exactly one session file is used per run",
            "set session.path for a fixed file, or session.dir for a new file per run, not both",
        )
    return path


ROTATE_MAX_MB = 1_000_000  # a terabyte
RETENTION_MAX_H = 8760.0  # a year of ticks in one file is already far more than anyone wants


@dataclass(frozen=True, config=_TABLE)
class SessionConfig:
    """Exactly one session file per run: `path` if given, else a new file under `dir`."""

    path: Annotated[
        Annotated[Path, BeforeValidator(_not_empty), AfterValidator(_session_path)] | None,
        Field(
            description="one fixed session file; `~` is expanded, relative paths are relative to the config "
            "file; not together with `session.dir`"
        ),
    ] = None
    dir: Annotated[
        Path,
        BeforeValidator(_not_empty),
        AfterValidator(_session_dir),
        Field(description="folder for a new `session-YYYYmmdd-HHMMSS.duckdb` per run"),
    ] = dataclasses.field(default_factory=_default_session_dir)

    tick_retention_h: Annotated[
        float,
        Field(
            strict=True,
            ge=0,
            le=RETENTION_MAX_H,
            allow_inf_nan=False,
            description="0 ≤ x ≤ 8760 (hours); market ticks older than this move from the session file to "
            "Parquet partitions in `ticks/` beside it; 0 keeps every tick in the file",
        ),
        Explain(
            f"must be a number of hours from 0 to {RETENTION_MAX_H:g} (0: keep every tick in the file)",
            "use {default:g} (the default)",
        ),
    ] = 1.0
    rotate: Annotated[
        Literal["daily", "never"],
        Field(
            description='"daily" or "never"; an engine that runs on past midnight UTC goes on in a new file, '
            "its State, kill switch and reconcile point carried over"
        ),
        Explain('must be "daily" or "never"', 'use "daily" (the default)'),
    ] = "daily"
    rotate_mb: Annotated[
        int,
        Field(
            strict=True,
            ge=0,
            le=ROTATE_MAX_MB,
            description="0 ≤ x ≤ 1000000 (MB); the session also goes on in a new file when the file grows "
            "past this; 0: no size limit",
        ),
        Explain(f"must be a whole number of MB from 0 to {ROTATE_MAX_MB} (0: no limit)", "use e.g. 4096"),
    ] = 0

    def resolve_session_file(self, now: datetime) -> Path:
        if self.path is not None:
            return self.path
        return self.dir / f"session-{now:%Y%m%d-%H%M%S}.duckdb"


# --- [risk] and [risk.clock] ------------------------------------------------------------------------------

_DRAWDOWNS = ("warn_drawdown_pct", "breaker_drawdown_pct", "kill_drawdown_pct")  # low to high


def _drawdown_order(pct: float, info: ValidationInfo) -> float:
    """warn <= breaker <= kill, among the valid ones."""
    name = _field(info)
    above = [key for key in _DRAWDOWNS[_DRAWDOWNS.index(name) + 1 :] if key in info.data]
    if above and pct > info.data[above[0]]:
        higher = above[0]
        raise rule(
            f"must be <= risk.{higher} ({info.data[higher]:g}): warn <= breaker <= kill",
            f"lower risk.{name} or raise risk.{higher}",
        )
    return pct


def _clock_order(warn_ms: int, info: ValidationInfo) -> int:
    kill_ms = info.data.get("clock_kill_ms")
    if kill_ms is not None and kill_ms <= warn_ms:
        defaults = _defaults(RiskConfig)
        raise rule(
            f"must be < risk.clock.kill_ms ({kill_ms}): the warning comes before the kill switch",
            "lower risk.clock.warn_ms or raise risk.clock.kill_ms "
            f"(defaults {defaults['clock_warn_ms']} and {defaults['clock_kill_ms']})",
        )
    return warn_ms


Percent = Annotated[
    float,
    Field(strict=True, gt=0, lt=100, allow_inf_nan=False, validate_default=True),
    Explain("must be a percentage strictly between 0 and 100", "use e.g. {default} (the default)"),
    AfterValidator(_drawdown_order),
]
# Durations have a named minimum and maximum: a value outside them is a typo (or a 64-bit overflow waiting to
# happen), never a setting that works.
MILLIS_MIN, MILLIS_MAX = 1, 600_000  # 1 ms .. 10 minutes of clock drift
STALE_MIN_S, STALE_MAX_S = 0.5, 3600.0  # below 0.5 s every quiet moment reconnects; above an hour is blind
Millis = Annotated[
    int,
    Field(strict=True, ge=MILLIS_MIN, le=MILLIS_MAX, validate_default=True),
    Explain(
        f"must be a whole number of milliseconds from {MILLIS_MIN} to {MILLIS_MAX:_}".replace("_", " "),
        "use e.g. 500",
    ),
]


def _flatten_subtables(cls: type, data: Any) -> Any:
    """A file's sub-table ([risk.clock]) as the keys its fields are read from (`clock.warn_ms`, ...); a
    sub-table that is not a table stays as it is, and is named as such."""
    if not isinstance(data, dict):
        return data
    names = [_file_name(name, info) for name, info in _fields(cls).items()]
    subtables = {name.split(".")[0] for name in names if "." in name}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in subtables and isinstance(value, dict):
            flat.update({f"{key}.{sub}": item for sub, item in value.items()})
        else:
            flat[key] = value
    return flat


@dataclass(frozen=True, config=_TABLE)
class RiskConfig:
    # Declared from the highest threshold down: a field's rule sees the fields above it (`info.data`), so
    # warn <= breaker <= kill and clock warn_ms < kill_ms hold among the valid ones, named on the lower.
    kill_drawdown_pct: Annotated[Percent, Field(description="0 < x < 100; kill switch")] = 15.0
    breaker_drawdown_pct: Annotated[Percent, Field(description="0 < x < 100; circuit breaker")] = 7.0
    warn_drawdown_pct: Annotated[Percent, Field(description="0 < x < 100, and warn ≤ breaker ≤ kill")] = 5.0
    clock_kill_ms: Annotated[
        Millis, Field(validation_alias="clock.kill_ms", description="1 ≤ x ≤ 600000; clock drift kill switch")
    ] = 2000
    clock_warn_ms: Annotated[
        Millis,
        Field(
            validation_alias="clock.warn_ms",
            description="1 ≤ x ≤ 600000 and < `kill_ms`; clock drift warning",
        ),
        AfterValidator(_clock_order),
    ] = 500

    @model_validator(mode="before")
    @classmethod
    def _clock_table(cls, data: Any) -> Any:
        return _flatten_subtables(cls, data)


# --- [feeds] --------------------------------------------------------------------------------------------


def _unified_symbol(symbol: str) -> str:
    if not SYMBOL_RE.match(symbol):
        raise rule("is not a ccxt unified symbol", symbol_fix(symbol))
    return symbol


def _no_duplicates(symbols: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    twice: list[int] = []
    for index, symbol in enumerate(symbols):
        if symbol in seen:
            twice.append(index)
        seen.add(symbol)
    if twice:
        raise rule("is listed twice", "remove the duplicate", items=tuple(twice))
    return symbols


Symbol = Annotated[str, Field(strict=True), AfterValidator(_unified_symbol)]


@dataclass(frozen=True, config=_TABLE)
class FeedConfig:
    stale_after_s: Annotated[
        float,
        Field(
            strict=True,
            ge=STALE_MIN_S,
            le=STALE_MAX_S,
            allow_inf_nan=False,
            description="0.5 ≤ x ≤ 3600 (seconds); a symbol with no tick for this long is stale",
        ),
        Explain(
            f"must be a number of seconds from {STALE_MIN_S:g} to {STALE_MAX_S:g}",
            "use {default:g} (the default)",
        ),
    ] = 5.0
    symbols: Annotated[
        tuple[Symbol, ...],
        Field(
            min_length=1,
            description="ccxt unified symbols (`BASE/QUOTE:SETTLE`), no duplicates, each a market the "
            "exchange lists (checked at start); the markets whose book and marks are streamed — a position on"
            " any other market is tracked and marked too",
        ),
        Explain("is empty", "list at least one symbol, e.g. ['BTC/USDT:USDT']", "quote it: 'BTC/USDT:USDT'"),
        AfterValidator(_no_duplicates),
    ] = DEFAULT_SYMBOLS


# --- [metrics] ------------------------------------------------------------------------------------------

LISTEN_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})$")


def _listen(address: str) -> str:
    m = LISTEN_RE.match(address)
    if m is None or not 0 <= int(m["port"]) <= 65535:  # port 0: any free port (the log names it)
        raise rule(
            "is not HOST:PORT (a host name or IP address, then a port from 0 to 65535)",
            'write e.g. "127.0.0.1:9464"',
        )
    return address


@dataclass(frozen=True, config=_TABLE)
class MetricsConfig:
    listen: Annotated[
        Annotated[str, Field(strict=True), AfterValidator(_listen)] | None,
        Field(
            description="`HOST:PORT` where Prometheus scrapes `/metrics`; none: no endpoint; keep it on "
            "127.0.0.1 unless the port is firewalled to your Prometheus"
        ),
    ] = None


# --- [notify], [notify.targets.<name>] and [watchdog] -------------------------------------------------------

# what a target may ask for: the family of an incident's cause (cockpit/core/incidents.py), "other" for the
# rest, "all" for every one; "engine" is the watchdog's (the engine stopped answering, committing or hearing)
INCIDENT_FAMILIES = (
    "feed",
    "exchange",
    "clock",
    "drawdown",
    "killswitch",
    "ghost",
    "database",
    "backup",
    "order",
    "reconcile",
    "flatten",
    "dead_letter",
    "bad_data",
    "health",
    "alert",
    "notify",
    "engine",
    "other",
)
TARGET_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _family(name: str) -> str:
    if name != "all" and name not in INCIDENT_FAMILIES:
        close = difflib.get_close_matches(name, INCIDENT_FAMILIES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise rule("is not an incident kind", f'{hint}use "all" or some of: {", ".join(INCIDENT_FAMILIES)}')
    return name


Family = Annotated[str, Field(strict=True), AfterValidator(_family)]


@dataclass(frozen=True, config=_TABLE)
class TargetConfig:
    """One place notifications go; its URL (tokens inside) is in the keyring or an env var, never here."""

    min_severity: Annotated[
        Literal["warning", "critical"],
        Field(description='"warning" or "critical"; incidents below it are not sent here'),
        Explain('must be "warning" or "critical"', 'use "warning" (the default) or "critical"'),
    ] = "warning"
    kinds: Annotated[
        tuple[Family, ...],
        Field(
            min_length=1,
            description='incident kinds sent here: "all", or some of feed, exchange, clock, drawdown, '
            "killswitch, ghost, database, backup, order, reconcile, flatten, dead_letter, bad_data, health, "
            "alert, notify, engine, other",
        ),
        Explain("is empty", 'list at least one kind, or ["all"]', 'quote it: "feed"'),
    ] = ("all",)
    rate_per_hour: Annotated[
        int,
        Field(
            strict=True,
            ge=1,
            le=3600,
            description="1 ≤ x ≤ 3600; messages at most, per hour (beyond: folded into the next one)",
        ),
        Explain("must be a whole number from 1 to 3600", "use {default} (the default)"),
    ] = 30
    summary: Annotated[
        bool, Field(strict=True, description="also send the daily summary here (`notify.summary_at`)")
    ] = False


def _target_names(targets: dict[str, TargetConfig]) -> dict[str, TargetConfig]:
    bad = [name for name in targets if not TARGET_NAME_RE.match(name)]
    if bad:
        raise rule(
            f"has a target named {bad[0]!r}: names are lowercase letters, digits and _ (up to 32), "
            "starting with a letter",
            f"rename [notify.targets.{bad[0]}], e.g. to [notify.targets.phone] (its URL then lives in "
            "COCKPIT_NOTIFY_PHONE or `cockpit keys set notify:phone`)",
        )
    return targets


def _clock_time(value: str) -> str:
    m = re.match(r"^([01][0-9]|2[0-3]):([0-5][0-9])$", value)
    if m is None:
        raise rule("is not a time of day HH:MM (24 h, UTC)", 'write e.g. "08:00"')
    return value


@dataclass(frozen=True, config=_TABLE)
class NotifyConfig:
    targets: Annotated[
        dict[str, TargetConfig],
        Field(description="one table per target"),
        AfterValidator(_target_names),
    ] = dataclasses.field(default_factory=dict)
    grace_s: Annotated[
        float,
        Field(
            strict=True,
            ge=0,
            le=3600,
            allow_inf_nan=False,
            description="0 ≤ x ≤ 3600 (seconds); a warning incident is sent once it has been open this long "
            "(one cockpit resolves sooner is left to the daily summary); criticals are sent at once",
        ),
        Explain("must be a number of seconds from 0 to 3600", "use {default:g} (the default)"),
    ] = 30.0
    repeat_critical_min: Annotated[
        int,
        Field(
            strict=True,
            ge=0,
            le=1440,
            description="0 ≤ x ≤ 1440 (minutes); an open critical incident is sent again this often until "
            "acknowledged (`A` in the cockpit, `cockpit ctl ack`); 0: once",
        ),
        Explain("must be a whole number of minutes from 0 to 1440 (0: never repeat)", "use {default}"),
    ] = 15
    summary_at: Annotated[
        Annotated[str, Field(strict=True), AfterValidator(_clock_time)] | None,
        Field(description="`HH:MM` UTC; the daily summary of the last 24 h, to targets with `summary`"),
    ] = "08:00"
    heartbeat_every_s: Annotated[
        float,
        Field(
            strict=True,
            ge=10,
            le=3600,
            allow_inf_nan=False,
            description="10 ≤ x ≤ 3600 (seconds); how often the engine calls its heartbeat URL "
            "(`COCKPIT_HEARTBEAT_URL` or `cockpit keys set notify:heartbeat`), if it has one",
        ),
        Explain("must be a number of seconds from 10 to 3600", "use {default:g} (the default)"),
    ] = 60.0


@dataclass(frozen=True, config=_TABLE)
class WatchdogConfig:
    every_s: Annotated[
        float,
        Field(
            strict=True,
            ge=1,
            le=600,
            allow_inf_nan=False,
            description="1 ≤ x ≤ 600 (seconds); how often `cockpit watchdog` asks the engine",
        ),
        Explain("must be a number of seconds from 1 to 600", "use {default:g} (the default)"),
    ] = 10.0
    silent_after_s: Annotated[
        float,
        Field(
            strict=True,
            ge=5,
            le=3600,
            allow_inf_nan=False,
            description="5 ≤ x ≤ 3600 (seconds); no event committed, or no market data, for this long is an "
            "engine fallen silent",
        ),
        Explain("must be a number of seconds from 5 to 3600", "use {default:g} (the default)"),
    ] = 60.0


# --- the whole file -------------------------------------------------------------------------------------


@dataclass(frozen=True, config=_TABLE)
class Config:
    exchange: ExchangeConfig = dataclasses.field(default_factory=ExchangeConfig)
    session: SessionConfig = dataclasses.field(default_factory=SessionConfig)
    risk: RiskConfig = dataclasses.field(default_factory=RiskConfig)
    feeds: FeedConfig = dataclasses.field(default_factory=FeedConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    notify: NotifyConfig = dataclasses.field(default_factory=NotifyConfig)
    watchdog: WatchdogConfig = dataclasses.field(default_factory=WatchdogConfig)
    source: Annotated[Path | None, Field(exclude=True)] = None  # set by the loader, not a key of the file


@cache
def _adapter() -> TypeAdapter[Config]:
    return TypeAdapter(Config)


def validate_file(data: Mapping[str, object], source: Path | None) -> Config:
    """Validate a parsed TOML file (pydantic.ValidationError lists every problem)."""
    loaded = {key: value for key, value in data.items() if key not in loader_keys()}
    return _adapter().validate_python(
        {**loaded, "source": source}, by_alias=True, by_name=False, context={_SOURCE: source}
    )


# --- the schema as the file sees it (for the error renderer and the README check) -------------------------


@dataclasses.dataclass(frozen=True)
class FileKey:
    key: str  # dotted, as written in the file: "risk.clock.warn_ms"
    attribute: str  # on the dataclass: "clock_warn_ms"
    kind: str  # "string", "boolean", "integer", "number", "array of strings"
    default: object  # dataclasses.MISSING when computed by `factory`
    factory: Callable[[], object] | None
    description: str
    explain: Explain | None


_KINDS: dict[object, str] = {str: "string", Path: "string", bool: "boolean", int: "integer", float: "number"}


def kind_of(annotation: object) -> str:
    """The TOML kind of a Python annotation: "string", "integer", "array of strings", "table", ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return kind_of(next(arg for arg in args if arg is not type(None)))
    if origin is Annotated:
        return kind_of(args[0])
    if origin is tuple:
        return f"array of {kind_of(args[0])}s"
    if origin is dict:  # [notify.targets.<name>]: tables named by the file
        return "table of tables"
    if origin is Literal:  # one of named words
        return kind_of(type(args[0]))
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return "table"
    return _KINDS[annotation]


def _fields(cls: type) -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = cls.__pydantic_fields__  # type: ignore[attr-defined]
    return fields


def _file_name(name: str, info: FieldInfo) -> str:
    return info.validation_alias if isinstance(info.validation_alias, str) else name


def _defaults(cls: type) -> dict[str, object]:
    return {name: info.default for name, info in _fields(cls).items()}


@cache
def _walk() -> tuple[tuple[FileKey, ...], dict[str, tuple[str, ...]]]:
    keys: list[FileKey] = []
    tables: dict[str, list[str]] = {}

    def visit(cls: type, table: str) -> None:
        tables[table] = []
        for name, info in _fields(cls).items():
            if info.exclude:
                continue
            *subtables, leaf = _file_name(name, info).split(".")
            holder = table
            for sub in subtables:  # risk.clock: `clock` is a name of [risk]
                if sub not in tables[holder]:
                    tables[holder].append(sub)
                holder = _join(holder, sub)
                tables.setdefault(holder, [])
            tables[holder].append(leaf)
            dotted = _join(holder, leaf)
            if kind_of(info.annotation) == "table":
                assert isinstance(info.annotation, type)
                visit(info.annotation, dotted)
                continue
            if kind_of(info.annotation) == "table of tables":
                tables[dotted] = [NAMED]
                visit(typing.get_args(info.annotation)[1], f"{dotted}.{NAMED}")
                continue
            explain = next((m for m in info.metadata if isinstance(m, Explain)), None)
            factory = typing.cast("Callable[[], object] | None", info.default_factory)
            default = dataclasses.MISSING if factory is not None else info.default
            description = info.description or ""
            keys.append(
                FileKey(dotted, name, kind_of(info.annotation), default, factory, description, explain)
            )

    visit(Config, "")
    return tuple(keys), {table: tuple(names) for table, names in tables.items()}


def _join(table: str, key: str) -> str:
    return f"{table}.{key}" if table else key


NAMED = "<name>"  # the name of a table the file names ([notify.targets.phone]), as the schema writes it


def schema_key(key: str) -> str:
    """A key as the file writes it, as the schema names it: `notify.targets.phone.kinds` is
    `notify.targets.<name>.kinds`."""
    parts = key.split(".")
    known = tables()
    for index in range(1, len(parts)):
        if known.get(".".join(parts[:index])) == (NAMED,):
            parts[index] = NAMED
    return ".".join(parts)


def file_keys() -> tuple[FileKey, ...]:
    """Every key a config file may set, in schema order."""
    return _walk()[0]


def tables() -> dict[str, tuple[str, ...]]:
    """Each table of the file ("" is the top level, "risk.clock" a sub-table) and the names it may hold."""
    return _walk()[1]


@cache
def loader_keys() -> frozenset[str]:
    """Top-level fields the loader sets (`source`): unknown keys in a file."""
    return frozenset(name for name, info in _fields(Config).items() if info.exclude)


def renamed_keys() -> dict[str, str]:
    """Attribute names that are not what the file calls the key: {"clock_warn_ms": "risk.clock.warn_ms"}."""
    return {k.attribute: k.key for k in file_keys() if k.key.rpartition(".")[2] != k.attribute}
