"""The core stays headless: nothing below the app imports Textual (the engine runs without a screen), and
no command that does not open a screen loads it either (`cockpit backup` over ssh, in cron, in CI)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = [
    "cockpit.core.domain",
    "cockpit.core.state",
    "cockpit.store",
    "cockpit.exchange.gateway",
    "cockpit.feeds",
    "cockpit.engine.runtime",
    "cockpit.sim.server",
    "cockpit.analytics",
    "cockpit.commands.run",
    "cockpit.commands.ctl",
]

# Every module behind a command that prints and exits (`cockpit run` imports the UI only without --headless,
# `cockpit replay` only once it opens its screen): every module of cockpit/commands, found, not listed.
COMMANDS = Path(__file__).resolve().parents[1] / "cockpit" / "commands"
CLI = sorted(f"cockpit.commands.{p.stem}" for p in COMMANDS.glob("*.py") if p.stem != "__init__") + [
    "cockpit.config.settings",
    "cockpit.config.secrets",
    "cockpit.replay.session",
    "cockpit.core.text",
]


def test_every_command_module_is_checked() -> None:
    assert {"cockpit.commands.cli", "cockpit.commands.keys", "cockpit.commands.replay"} <= set(CLI)


def textual_loaded_by(*modules: str) -> list[str]:
    """The Textual (and widgets) modules a fresh interpreter holds after importing `modules`."""
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "ui = ('textual', 'widgets')\n"
        + "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ui)\n"
        + "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in result.stdout.strip().split(",") if m]


def test_core_packages_never_load_textual() -> None:
    assert textual_loaded_by(*CORE) == []


@pytest.mark.parametrize("module", CLI)
def test_command_that_prints_and_exits_never_loads_textual(module: str) -> None:
    loaded = textual_loaded_by(module)
    assert loaded == [], f"importing {module} loads the UI: {loaded[:5]}"


def test_the_check_would_see_textual() -> None:
    """The probe is real: the cockpit app does load Textual."""
    assert "textual" in textual_loaded_by("cockpit.ui.app")


def test_no_module_of_cockpit_imports_itself_back() -> None:
    """No import cycles between modules of cockpit/, counting imports inside functions and those made only
    for type checking: every part depends one way (the engine's parts on engine/context.py, the simulator's
    REST API and trader on sim/venue.py)."""
    import grimp

    graph = grimp.build_graph("cockpit")
    cycles = sorted(
        {
            tuple(sorted((module, imported)))
            for module in graph.modules
            for imported in graph.find_modules_directly_imported_by(module)
            if imported != module and graph.chain_exists(importer=imported, imported=module)
        }
    )
    assert cycles == []


# The engine's parts are written against narrow contexts (cockpit/engine/context.py: `Events`, `OrderContext`,
# `KillSwitchContext`, …), each naming only what its functions read. `EngineContext`, their union, is for the
# code that composes the parts: engine.py, the context module itself, and market.py (still written against
# it), and these two wirings of market.py's functions. The control socket and the runtime hold the composed
# `Engine` itself: they are its clients, not its parts.
ENGINE = Path(__file__).resolve().parents[1] / "cockpit" / "engine"
NOT_PARTS = {"__init__", "context", "engine", "market", "control", "runtime"}
PARTS = sorted(p.stem for p in ENGINE.glob("*.py") if p.stem not in NOT_PARTS)
TAKE_THE_WHOLE_ENGINE = {
    "account.build_user_feed",  # hands itself to market.on_feed_status
    "workers.all",  # hands itself to market.market_loop
}
WIDE = "EngineContext"


def _names(node: ast.AST) -> set[str]:
    """The names an expression mentions, reading a string annotation as the expression it spells."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval")
        except SyntaxError:
            return set()
    found: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and n is not node:
            found |= _names(n)
    return found


def _annotations(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        args = [
            *node.args.posonlyargs,
            *node.args.args,
            *node.args.kwonlyargs,
            node.args.vararg,
            node.args.kwarg,
        ]
        return [a.annotation for a in args if a is not None and a.annotation is not None] + (
            [node.returns] if node.returns is not None else []
        )
    if isinstance(node, ast.AnnAssign):
        return [node.annotation]
    return []


def wide_uses(source: str, module: str) -> set[str]:
    """The functions and classes of `source` that name the whole `EngineContext` (under any alias it is
    imported as) in a signature, an annotation, or their body (a `cast`); its import alone does not count."""
    tree = ast.parse(source)
    aliases = {WIDE} | {
        alias.asname
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name == WIDE and alias.asname
    }
    found: set[str] = set()

    def visit(node: ast.AST, scope: str) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = f"{scope}.{node.name}"
        mentioned = set().union(*(_names(a) for a in _annotations(node)))
        if isinstance(node, ast.Name | ast.Attribute):
            mentioned |= _names(node)
        if mentioned & aliases:
            found.add(scope)
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, module)
    return found


def test_the_parts_are_found() -> None:
    assert {
        "account",
        "actions",
        "backups",
        "baddata",
        "clock",
        "dead_letters",
        "file_watch",
        "flatten",
        "guard",
        "killswitch",
        "orders",
        "peak",
        "precision",
        "reconcile",
        "workers",
    } <= set(PARTS)


@pytest.mark.parametrize("module", PARTS)
def test_an_engine_part_takes_a_narrow_context(module: str) -> None:
    """A part function typed against the whole EngineContext could read anything the engine holds: the
    contexts would widen again without anyone deciding it."""
    wide = wide_uses((ENGINE / f"{module}.py").read_text(), module) - TAKE_THE_WHOLE_ENGINE
    assert wide == set(), (
        f"{sorted(wide)} take the whole EngineContext: type them against the narrowest context of "
        "cockpit/engine/context.py that type-checks (or add one there, composed from its bricks)"
    )


@pytest.mark.parametrize("module", PARTS)
def test_every_engine_argument_is_typed_with_a_context(module: str) -> None:
    """The narrowing cannot be dodged with `Any` or an untyped argument: every `engine` a part function takes
    is one of context.py's Protocols."""
    contexts = {
        node.name
        for node in ast.parse((ENGINE / "context.py").read_text()).body
        if isinstance(node, ast.ClassDef)
    }
    untyped = []
    for node in ast.walk(ast.parse((ENGINE / f"{module}.py").read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                if arg.arg == "engine" and (arg.annotation is None or not _names(arg.annotation) <= contexts):
                    untyped.append(f"{module}.{node.name}")
    assert untyped == []


def test_the_check_would_see_a_wide_context() -> None:
    """The probe is real: it finds the whole EngineContext in a signature, a string annotation, under an
    alias, in a cast, and on a class attribute; a docstring naming it is not a use."""
    source = (
        "from cockpit.engine.context import EngineContext, Events\n"
        "from cockpit.engine.context import EngineContext as Whole\n"
        "def plain(engine: EngineContext) -> None: ...\n"
        "async def quoted(engine: 'EngineContext', n: int) -> None: ...\n"
        "def aliased(engine: Whole) -> None: ...\n"
        "def widened(engine: Events) -> None:\n"
        "    cast(EngineContext, engine)\n"
        "class Watch:\n"
        "    engine: EngineContext\n"
        "def narrow(engine: Events) -> None:\n"
        '    """Not the whole EngineContext."""\n'
    )
    assert wide_uses(source, "part") == {
        "part.plain",
        "part.quoted",
        "part.aliased",
        "part.widened",
        "part.Watch",
    }
