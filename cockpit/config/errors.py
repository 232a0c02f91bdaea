"""Config problems, every one at once: file, key, the value as written, why, and the fix.

`problems_of` maps pydantic's error list onto them, in the words of the schema (`Explain`, rules) and with a
did-you-mean for unknown keys; a secret-looking key is refused and its value never shown.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cockpit.config.rules import REDACTED, SECRETS_FIX, is_secret_key, redact_urls
from cockpit.config.schema import (
    RULE_ERROR,
    FileKey,
    file_keys,
    loader_keys,
    renamed_keys,
    schema_key,
    tables,
)
from cockpit.core.errors import UsageError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


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


# --- from pydantic's error list -------------------------------------------------------------------------

_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_OUT_OF_RANGE = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "too_short",
        "literal_error",
    }
)
_WANTED: dict[str, tuple[str, str]] = {
    "number": ("a number", "write a number, e.g. 5 or 7.5"),
    "integer": ("a whole number", "write a whole number, e.g. 500"),
    "boolean": ("a boolean", "write true or false (no quotes)"),
    "string": ("a string", "put the value in quotes"),
    "array of strings": ("an array", "write a list, e.g. ['BTC/USDT:USDT', 'ETH/USDT:USDT']"),
}
_SECRET_WHY = "secrets are not allowed in a config file"
_URL_KEYS = frozenset({"url", "urls", "uri", "webhook", "address"})


def problems_of(data: Mapping[str, object], errors: Sequence[ErrorDetails]) -> list[ConfigProblem]:
    """Every problem of a parsed file: its secret-looking keys, then pydantic's `errors`, in table order."""
    secrets = list(_walk_secrets(data, ""))
    problems = [ConfigProblem(key, REDACTED, _SECRET_WHY, SECRETS_FIX) for key in secrets]
    problems += [
        ConfigProblem(key, "", "unknown key", _suggest("", key)) for key in data if key in loader_keys()
    ]
    for error in errors:
        key = _dotted(error["loc"])
        if not any(key == s or key.startswith((f"{s}.", f"{s}[")) for s in secrets):
            problems.extend(_problems(key, error))
    return sorted(problems, key=_rank)


def _rank(problem: ConfigProblem) -> tuple[int, int, int]:
    """Secrets first, then table by table as the schema declares them, unknown keys first in each."""
    top = problem.key.split(".")[0].split("[")[0]
    names = tables()[""]
    table = names.index(top) + 1 if top in names else 0
    return (problem.why != _SECRET_WHY, table, problem.why != "unknown key")


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else part)
    return key


@dataclass(frozen=True)
class _Where:
    key: str  # "feeds.symbols[0]"
    field: FileKey | None  # feeds.symbols
    item: bool  # the key names an array item


def _where(key: str) -> _Where:
    base = schema_key(key.split("[")[0])
    field = next((k for k in file_keys() if k.key == base), None)
    return _Where(key, field, base != key)


def _problems(key: str, error: ErrorDetails) -> Iterator[ConfigProblem]:
    kind, value = error["type"], error["input"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == RULE_ERROR:
        for index in ctx["items"] or (None,):
            item_key, item = (key, value) if index is None else (f"{key}[{index}]", value[index])
            yield ConfigProblem(item_key, _shown(item, redact=ctx["redact"]), ctx["why"], ctx["fix"])
        return
    if kind == "too_short" and isinstance(value, list) and value:
        return  # pydantic counts the valid items only: each bad one is named already
    known = schema_key(key)
    if kind in _UNKNOWN and known not in tables():
        table = max((t for t in tables() if known.startswith(f"{t}.")), key=len, default="")
        if table.startswith("notify.targets.") and known.rpartition(".")[2] in _URL_KEYS:
            name = key.split(".")[2]
            yield ConfigProblem(
                key,
                REDACTED,
                "a target's URL carries its tokens: not in a config file",
                (
                    f"remove it; store it with `cockpit keys set notify:{name}` or export "
                    f"COCKPIT_NOTIFY_{name.upper()}"
                ),
            )
            return
        fix = _suggest(table, known.removeprefix(f"{table}."))
        if known != key:  # say the target's own name, not the schema's placeholder
            fix = fix.replace(f"{table}.", ".".join(key.split(".")[: table.count(".") + 1]) + ".")
        yield ConfigProblem(key, "", "unknown key", fix)
        return
    if known in tables():  # a table written as a value, or a sub-table that is not a table
        why = f"must be a table, not {_article(_toml_type(value))}"
        yield ConfigProblem(key, _shown(value), why, f"write a [{key}] header")
        return
    where = _where(key)
    field = where.field
    if field is None:  # not a key of the schema: name the library's words
        yield ConfigProblem(key, _shown(value), error["msg"], "see the README's configuration table")
        return
    if kind in _OUT_OF_RANGE and field.explain is not None:
        fix = field.explain.fix.format(default=field.default)
        yield ConfigProblem(key, _shown(value), field.explain.why, fix)
        return
    expected = field.kind.removeprefix("array of ").removesuffix("s") if where.item else field.kind
    wanted, fix = _WANTED[expected]
    if where.item and field.explain is not None and field.explain.item_fix:
        fix = field.explain.item_fix
    if isinstance(value, bool):
        fix += " (true/false is a boolean, not a number)"
    yield ConfigProblem(key, _shown(value), f"must be {wanted}, not {_article(_toml_type(value))}", fix)


def _suggest(table: str, key: str) -> str:
    aliases = renamed_keys()
    known = tables()
    if key in aliases:
        return f"did you mean {aliases[key]}?"
    close = difflib.get_close_matches(key, known[table], n=1)
    close = close or [k for k in known[table] if k.startswith(key)][:1]
    if close:
        return f"did you mean {_join(table, close[0])}?"
    elsewhere = [_join(t, k) for t, keys in known.items() for k in keys if k == key and t != table]
    if elsewhere:
        return f"did you mean {elsewhere[0]}? (it belongs in another table)"
    return f"remove it; known keys here: {', '.join(_join(table, k) for k in known[table])}"


# --- values, as the file wrote them ---------------------------------------------------------------------


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _toml_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _shown(value: object, *, redact: bool = False) -> str:
    """The value as written, or REDACTED if it is (or holds) a secret."""
    if redact or any(True for _ in _walk_secrets(value, "")):
        return REDACTED
    text = ("true" if value else "false") if isinstance(value, bool) else redact_urls(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _walk_secrets(node: object, prefix: str) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            dotted = _join(prefix, str(key))
            if is_secret_key(str(key)):
                yield dotted
            else:
                yield from _walk_secrets(value, dotted)
    elif isinstance(node, list | tuple):
        for index, item in enumerate(node):
            yield from _walk_secrets(item, f"{prefix}[{index}]")
