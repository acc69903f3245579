"""The layer contract of docs/architecture.md, read from the code itself (``ast``, no import).

Bottom to top: the contract, the logs, the pure projections, the view stores and runners,
the application layer, the faces. A module may import its own layer and the ones below,
never one above; the modules import each other without cycles; and the pure projections
reach nothing that does I/O, directly or through what they import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "contract",
        (
            "ledger",  # the package itself: re-exports of the contract
            "ledger.errors",
            "ledger.vocabulary",
            "ledger.identifiers",  # identifier kinds and normal forms (issue 12)
            "ledger.timeutil",
            "ledger.strict",
            "ledger.redact",
            "ledger.extensions",
            "ledger.payloads",
            "ledger.events",
            "ledger.codec",
            "ledger.kafka_binding",
            "ledger.schema",
            "ledger.asyncapi",
            "ledger.describe",
            "ledger.generate",
            "ledger.settings",
            "ledger.stopping",
            "ledger.log",  # the EventLog port and its record types (no I/O)
        ),
    ),
    ("logs", ("ledger.*",)),
    ("projections", ("projections", "projections.*")),
    ("consumers", ("consumers", "consumers.*")),
    ("application", ("application", "application.*")),
    ("faces", ("faces", "faces.*", "cli")),
]
"""Each module's layer: the first entry whose pattern matches it (``x.*``: under ``x``)."""

PACKAGES = ("ledger", "projections", "consumers", "application", "faces")

IO_MODULES = (
    "sqlite3",
    "psycopg",
    "psycopg_pool",
    "kafka",
    "confluent_kafka",
    "eventsourcing",
    "socket",
    "subprocess",
    "multiprocessing",
    "concurrent",
    "shutil",
    "tempfile",
    "urllib.request",
    "http",
    "os",
    "signal",
    "select",
    "threading",
    "asyncio",
)
"""What a pure projection may not reach: databases, brokers, processes, files, the network."""

IO_CALLS = ("open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink", "mkdir")
"""Calls that touch files, refused in the pure projections' own code."""


def source_files() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path
    yield "cli", ROOT / "cli.py"


@cache
def modules() -> dict[str, Path]:
    return dict(source_files())


def layer_of(module: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if module == pattern or (pattern.endswith(".*") and module.startswith(pattern[:-1])):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def imports(module: str) -> tuple[tuple[str, str], ...]:
    """What ``module`` imports: ``(name, when)``, ``when`` one of ``"top"`` (at import
    time), ``"lazy"`` (inside a function) or ``"typing"`` (``if TYPE_CHECKING``: never at
    run time). ``from a import b`` gives ``a.b`` when that is a module of ours, else ``a``."""
    return parse_imports(modules()[module].read_text(encoding="utf-8"), set(modules()))


def parse_imports(text: str, known: set[str]) -> tuple[tuple[str, str], ...]:
    tree = ast.parse(text)
    found: list[tuple[str, str]] = []

    def visit(node: ast.AST, when: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = when
            if isinstance(child, ast.If) and _type_checking(child):
                inner = "typing"
            elif when == "top" and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                inner = "lazy"
            if isinstance(child, ast.Import):
                found.extend((alias.name, when) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    name = f"{child.module}.{alias.name}"
                    found.append((name if name in known else child.module, when))
            visit(child, inner)

    visit(tree, "top")
    return tuple(found)


def ours(name: str) -> str | None:
    """The module of ours that an imported name is (or is in), if any."""
    while name:
        if name in modules():
            return name
        name = name.rpartition(".")[0]
    return None


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def upward(module: str, found: tuple[tuple[str, str], ...]) -> list[str]:
    """The imports of ``module`` (``found``) that reach a layer above its own."""
    return [
        f"{name} ({LAYERS[layer_of(target)][0]})"
        for name, _ in found
        if (target := ours(name)) is not None and layer_of(target) > layer_of(module)
    ]


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    above = upward(module, imports(module))
    assert not above, f"{module} ({LAYERS[layer_of(module)][0]}) imports a layer above: {above}"


def test_no_import_cycles() -> None:
    """Between modules of ours, counting module-level imports (those run at import time;
    a package's ``__init__`` re-exporting its own modules is not a cycle)."""
    graph = {
        module: {
            target
            for name, when in imports(module)
            if when == "top"
            and (target := ours(name)) is not None
            and target != module
            and not module.startswith(f"{target}.")  # a module importing its own package
        }
        for module in modules()
    }
    cycles = find_cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    return cycles


def reach(module: str) -> set[str]:
    """Every module of ours that running ``module`` can load, itself included (imports at
    the top and inside functions; not those only a type checker reads)."""
    seen, todo = {module}, [module]
    while todo:
        for name, when in imports(todo.pop()):
            target = ours(name) if when != "typing" else None
            if target is not None and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


PURE = sorted(m for m in modules() if m == "projections" or m.startswith("projections."))


@pytest.mark.parametrize("module", PURE)
def test_pure_projections_reach_no_io(module: str) -> None:
    offending = sorted(
        {
            f"{source} imports {name}"
            for source in reach(module)
            for name, when in imports(source)
            if when != "typing"
            and any(name == io or name.startswith(f"{io}.") for io in IO_MODULES)
        }
    )
    assert not offending, f"{module} reaches I/O: {offending}"


@pytest.mark.parametrize("module", PURE)
def test_pure_projections_touch_no_files(module: str) -> None:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    calls = [
        f"line {node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id in IO_CALLS)
            or (isinstance(node.func, ast.Attribute) and node.func.attr in IO_CALLS)
        )
    ]
    assert not calls, f"{module} touches files at {calls}"


def test_the_checks_find_what_they_look_for() -> None:
    """An upward import (also a lazy one and one only for type checking), a cycle and a
    module no layer holds are all found, so a green run means something."""
    known = set(modules())
    made_up = (
        "from consumers.store import ViewStore\n"
        "def f():\n    from application import service\n"
        "if TYPE_CHECKING:\n    import cli\n"
    )
    found = parse_imports(made_up, known)
    assert upward("projections.profile", found) == [
        "consumers.store (consumers)",
        "application.service (application)",
        "cli (faces)",
    ]
    assert upward("application.service", found) == ["cli (faces)"]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    with pytest.raises(AssertionError, match="in no layer"):
        layer_of("somewhere.else")
    assert "ledger.events" in reach("projections.profile")
    assert "ledger.sqlite_log" not in reach("projections.profile")
