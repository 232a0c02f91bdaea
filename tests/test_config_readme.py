"""The README's "## Configuration" section is held to the schema (cockpit/config/schema.py): the same keys,
types, defaults and rules in its table, an example file that loads to the defaults, and an error listing that
is what `cockpit config validate` prints."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from cockpit.config.schema import FileKey, file_keys, schema_key
from cockpit.config.settings import ConfigError, default_config, load_config, parse_config

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
ROW = re.compile(r"^\| `(?P<key>[a-z_.<>]+)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \| (?P<rule>[^|]+) \|$")
XDG_DATA_HOME = "/XDG_DATA_HOME"  # a factory default is documented with the variable it follows


def table() -> dict[str, dict[str, str]]:
    rows = (ROW.match(line) for line in SECTION.splitlines())
    return {m["key"]: {k: v.strip() for k, v in m.groupdict().items()} for m in rows if m}


def block(language: str, containing: str = "") -> str:
    found = [b for b in re.findall(rf"```{language}\n(.*?)```", SECTION, re.S) if containing in b]
    assert found, f"no ```{language} block with {containing!r} in the README's Configuration section"
    return str(found[0])


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def documented_default(key: FileKey) -> str:
    """What the Default column says for `key`, from the schema."""
    if key.factory is not None:
        return f"`{str(key.factory()).replace(XDG_DATA_HOME, '$XDG_DATA_HOME')}`"
    if key.default is None:
        return "none"
    if isinstance(key.default, tuple):
        return f"the {len(key.default)} above"  # listed in the example file, checked below
    return f"`{toml_literal(key.default)}`"


def test_table_has_exactly_the_schema_keys() -> None:
    schema = [k.key for k in file_keys()]
    documented = list(table())
    assert [k for k in schema if k not in documented] == [], "in the schema, missing from the README table"
    assert [k for k in documented if k not in schema] == [], "in the README table, not in the schema"


def test_table_types_defaults_and_rules_are_the_schema_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", XDG_DATA_HOME)
    rows = table()
    for key in file_keys():
        row = rows[key.key]
        assert row["type"] == key.kind, key.key
        default = documented_default(key)
        if default == "none":
            assert row["default"].startswith("none"), key.key
        else:
            assert row["default"] == default, key.key
        assert row["rule"] == key.description, key.key


def test_example_file_names_every_key_and_loads_to_the_defaults() -> None:
    text = block("toml")
    named: set[str] = set()
    current = ""
    for line in text.splitlines():
        if header := re.match(
            r"^(?:# )?\[([a-z_.]+)\](?:\s+#.*)?$", line
        ):  # a named table is shown commented out
            current = header[1]
        elif assignment := re.match(r"^(?:# )?([a-z_]+) = ", line):
            named.add(schema_key(f"{current}.{assignment[1]}"))
    assert named == {k.key for k in file_keys()}
    assert parse_config(tomllib.loads(text), None) == default_config()


def test_error_listing_is_what_validate_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    command = "$ cockpit config validate bad.toml\n"
    console = block("console", command).split(command, 1)[1]
    monkeypatch.chdir(tmp_path)
    Path("bad.toml").write_text("[risk]\nkill_drawdown_pct = 150\n\n[feeds]\nstale = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(Path("bad.toml"))
    assert info.value.render() + "\n" == console
