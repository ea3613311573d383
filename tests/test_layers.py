"""The layers of docs/architecture.md, read from the code's own imports.

    cli -> render -> run -> net | lab -> core

Each package may import only the ones below it; only render/ imports rich,
only cli/ imports typer, and the sans-I/O core touches no clock, socket or
event loop (time comes in as an argument, from an injected clock).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parent.parent / "probe"

#: package -> the natprobe packages it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": {"errors"},
    "net": {"core", "errors"},
    "lab": {"core", "errors"},
    "run": {"net", "lab", "core", "errors"},
    "render": {"core", "errors"},
    "cli": {"render", "run", "net", "lab", "core", "errors", "schemas"},
    # The test kit for applications: the lab's middleboxes, nothing above them.
    "testing": {"lab", "core", "errors"},
    "schemas": {"errors"},
}
#: Third-party and standard modules only one package may import.
ONLY_IN = {"rich": "render", "typer": "cli"}
NOT_IN_CORE = ("asyncio", "socket", "select", "time", "selectors", "threading", "subprocess")


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def package_files() -> Iterator[tuple[str, Path]]:
    for path in sorted(PROBE.rglob("*.py")):
        parts = path.relative_to(PROBE).parts
        if len(parts) > 1:
            yield parts[0], path


def test_every_package_has_a_place_in_the_layers() -> None:
    assert {package for package, _ in package_files()} == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_nothing_imports_upwards(package: str) -> None:
    wrong = []
    for owner, path in package_files():
        if owner != package:
            continue
        for line, module in imports(path):
            top, _, rest = module.partition(".")
            if top == "probe" and rest:
                target = rest.split(".")[0]
                if target != package and target not in ALLOWED[package]:
                    wrong.append(f"{path.relative_to(PROBE)}:{line} imports {module}")
            if top in ONLY_IN and ONLY_IN[top] != package:
                wrong.append(f"{path.relative_to(PROBE)}:{line} imports {top}, which only {ONLY_IN[top]}/ may")
            if package == "core" and top in NOT_IN_CORE:
                wrong.append(f"{path.relative_to(PROBE)}:{line} imports {top}: the core is sans-I/O")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The reader itself: a planted upward import and a planted clock are found.
    planted = tmp_path / "x.py"
    planted.write_text("import time\nfrom probe.run.survey import run_survey\nfrom . import y\n")
    assert list(imports(planted)) == [(1, "time"), (2, "probe.run.survey")]
