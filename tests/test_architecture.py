"""The architecture contract: which code may import what (docs/architecture.md draws it).

* ``genre_model`` (the ML library) imports neither the bot nor discord.py;
* only the Discord adapter (``bot.discord_adapter``) imports ``discord``;
* storage and inference never import each other; retraining reaches them only through their
  protocols (``bot.storage.base``, ``bot.inference.base``), never a concrete backend;
* no module of the product imports the test kit;
* no circles between the product's modules.

Imports are read from the source with :mod:`ast` (every ``import``, also inside functions, except
those under ``if TYPE_CHECKING:``), so the check needs nothing installed and cannot be fooled by
what happens to be imported at run time.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

PACKAGES = ("genre_model", "bot")
#: bot.migrations lives in the top-level migrations/ folder (pyproject.toml maps it).
ROOTS = {"bot.migrations": REPO / "migrations"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    for name, folder in ROOTS.items():
        found[name] = folder / "__init__.py"
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path) -> set[str]:
    """Every module ``module`` imports: project modules by full name, others by top-level name."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # "from bot.storage import base" imports the module bot.storage.base
                sub = f"{source}.{alias.name}"
                out.add(sub if sub in MODULES else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _importers_of(prefix: str, *, within: str = "") -> dict[str, set[str]]:
    """Modules (under ``within``) that import ``prefix`` or anything under it."""
    return {m: {i for i in deps if i == prefix or i.startswith(prefix + ".")}
            for m, deps in GRAPH.items() if m.startswith(within)
            and any(i == prefix or i.startswith(prefix + ".") for i in deps)}


def test_the_library_knows_nothing_of_the_bot_or_discord():
    for forbidden in ("bot", "discord", "testkit"):
        assert _importers_of(forbidden, within="genre_model") == {}


def test_only_the_discord_adapter_imports_discord():
    importers = _importers_of("discord")
    assert importers, "the adapter imports discord: the check must see it"
    assert {m for m in importers if not m.startswith("bot.discord_adapter")} == set()


def test_the_service_layer_never_imports_the_adapter():
    offenders = {m for m in _importers_of("bot.discord_adapter") if not m.startswith("bot.discord_adapter")}
    assert offenders == {"bot.__main__"}  # `python -m bot` is the genre-bot command: the adapter's entry


def test_storage_and_inference_do_not_import_each_other():
    assert _importers_of("bot.inference", within="bot.storage") == {}
    assert _importers_of("bot.storage", within="bot.inference") == {}


def test_retraining_uses_storage_and_inference_through_their_protocols_only():
    allowed = {"bot.storage.base", "bot.inference.base"}
    used = set().union(*_importers_of("bot.storage", within="bot.retraining").values(),
                       *_importers_of("bot.inference", within="bot.retraining").values())
    assert used <= allowed, used - allowed


def test_the_product_never_imports_the_test_kit():
    assert _importers_of("testkit") == {}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in GRAPH:
                continue
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            strongconnect(v)
    return found


def test_no_import_cycles():
    assert _cycles() == []


def test_the_check_sees_a_cycle_when_there_is_one(monkeypatch):
    monkeypatch.setitem(GRAPH, "bot.settings", GRAPH["bot.settings"] | {"bot.backends"})
    assert any({"bot.settings", "bot.backends"} <= set(c) for c in _cycles())


@pytest.mark.parametrize("name", sorted({m for m, p in MODULES.items() if p.name == "__init__.py"}))
def test_every_package_is_installed(name: str):
    """pyproject.toml lists the packages by hand (migrations/ is mapped into bot): none forgotten."""
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert name in listed
