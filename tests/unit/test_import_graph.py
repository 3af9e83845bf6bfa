"""The packages import one way: models <- server <- trainer (DESIGN.md's layout).

Parses every module's imports with `ast` (top-level and inside functions alike), so a lazy
import cannot hide an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "server", "trainer")
# package -> the packages it must never import
FORBIDDEN = {"models": {"server", "trainer"}, "server": {"trainer"}, "trainer": set()}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """(repolsp package, line) for every `repolsp.<package>` import in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "repolsp":
                names = [f"repolsp.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "repolsp" and len(parts) > 1 and parts[1] in PACKAGES:
                found.add((parts[1], node.lineno))
    return found


def edges() -> dict[str, list[str]]:
    """'package -> package' -> ['file:line', ...] for every cross-package import."""
    graph: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target, line in imported_packages(path):
                if target != package:
                    key = f"{package} -> {target}"
                    graph.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


def test_the_scanner_sees_top_level_lazy_and_package_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from repolsp.server.config import Config\n"
                      "import repolsp.trainer.gitlog\n"
                      "from repolsp import models\n"
                      "def f():\n    from repolsp.trainer import mine\n")
    assert imported_packages(module) == {("server", 1), ("trainer", 2), ("models", 3),
                                         ("trainer", 5)}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_run_one_way(package):
    graph = edges()
    wrong = {key: where for key, where in graph.items()
             if key.split(" -> ")[0] == package and key.split(" -> ")[1] in FORBIDDEN[package]}
    assert not wrong, f"imports against models <- server <- trainer: {wrong}"


def test_the_allowed_edges_exist():
    # The server builds on models and the trainer on both; if one vanished, the scan is broken.
    assert {"server -> models", "trainer -> models", "trainer -> server"} <= set(edges())
