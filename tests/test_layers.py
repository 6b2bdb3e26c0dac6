"""The layer order of docs/architecture.md, checked on every import of the source tree.

A module imports only from layers below its own (and from its own package); ``compute``, ``model`` and
``sources`` never import each other; nothing below ``api`` serves HTTP (no fastapi, starlette, uvicorn);
nothing below ``cli`` prints or draws (no ``print``, no rich).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "novawatch"

#: Lowest first; each entry is one layer: the top-level packages and modules of novawatch in it.
LAYERS: list[set[str]] = [
    {"__init__", "redact"},
    {"objects", "logs", "config", "snapshot"},
    {"notifications"},
    {"hooks", "bus"},
    {"compute", "model", "sources", "contrib"},
    {"simulate"},
    {"api"},
    {"cli"},
]
LAYER = {name: number for number, names in enumerate(LAYERS) for name in names}
HTTP_SERVERS = ("fastapi", "starlette", "uvicorn")


def part(module: str) -> str:
    """The top-level package (or module) of ``novawatch.x.y``; ``__init__`` for ``novawatch`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).with_suffix("")
        yield ".".join(("novawatch", *relative.parts)).removesuffix(".__init__"), path


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def violations(module: str, path: Path) -> Iterator[str]:
    own = part(module)
    for line, target in imports(path):
        where = f"{path.relative_to(SRC.parent) if path.is_relative_to(SRC.parent) else path.name}:{line}"
        if target.split(".")[0] in HTTP_SERVERS and LAYER[own] < LAYER["api"]:
            yield f"{where}: {module} imports {target}, but nothing below api serves HTTP"
        if target.split(".")[0] == "rich" and own != "cli":
            yield f"{where}: {module} imports {target}, but only cli draws on the terminal"
        if target != "novawatch" and not target.startswith("novawatch."):
            continue
        other = part(target)
        if other == own:
            continue
        if other not in LAYER:
            yield f"{where}: {target} is in no layer of docs/architecture.md (tests/test_layers.py LAYERS)"
        elif LAYER[other] >= LAYER[own]:
            yield f"{where}: {module} ({own}, layer {LAYER[own]}) imports {target} ({other}, layer {LAYER[other]})"


def test_every_package_is_in_a_layer() -> None:
    found = {part(module) for module, _ in modules()}
    assert found - set(LAYER) == set(), "add new packages to LAYERS and to docs/architecture.md"


def test_no_module_imports_from_its_own_layer_or_above() -> None:
    problems = [v for module, path in modules() for v in violations(module, path)]
    assert problems == []


def test_nothing_below_cli_prints() -> None:
    printing = []
    for module, path in modules():
        if part(module) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert printing == []


@pytest.mark.parametrize(("module", "source", "problem"), [
    ("novawatch.model.x", "from novawatch.compute.db import Instance", "imports novawatch.compute.db"),
    ("novawatch.bus.x", "import novawatch.api.server", "imports novawatch.api.server"),
    ("novawatch.model.x", "from fastapi import FastAPI", "nothing below api serves HTTP"),
    ("novawatch.api.x", "from rich.table import Table", "only cli draws"),
    ("novawatch.api.x", "from novawatch.newthing import y", "in no layer"),
])
def test_a_forbidden_import_is_named(tmp_path: Path, module: str, source: str, problem: str) -> None:
    fake = tmp_path / "x.py"
    fake.write_text(source + "\n")
    found = list(violations(module, fake))
    assert any(problem in v for v in found), found


def test_the_layers_are_the_ones_docs_architecture_md_shows() -> None:
    text = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    for names in LAYERS:
        for name in names - {"__init__"}:
            assert f"`{name}`" in text, f"docs/architecture.md does not place `{name}`"
