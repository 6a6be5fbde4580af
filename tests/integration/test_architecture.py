"""The pure core imports only the standard library and itself (exactly: every import of every
module, read from the source), beside the import-linter contracts that ``make test`` runs."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).parent.parent.parent / "solver" / "core"


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_core_imports_only_the_standard_library_and_itself() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) > 15
    for path in modules:
        for name in imported(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith("solver.core"), (
                f"{path.name} imports {name}")


def test_the_core_s_own_tests_test_the_core_alone() -> None:
    """``tests/unit`` imports the core, its builders and the test tools, nothing else: the
    harness's tests are ``tests/simulation``'s, an adapter's ``tests/adapters``'."""
    tests = sorted((CORE.parent.parent / "tests" / "unit").glob("*.py"))
    assert len(tests) > 5
    allowed = ("solver.core", "tests.support.builders", "tests.unit", "pytest", "hypothesis")
    for path in tests:
        for name in imported(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or name.startswith(allowed), (
                f"{path.name} imports {name}")
