"""The layers import downwards only: nothing in the library imports the command."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pyprocconn"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_library_module_imports_the_command() -> None:
    library = [p for p in PACKAGE.rglob("*.py") if "command" not in p.relative_to(PACKAGE).parts]
    assert len(library) > 10
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if "command" in n)
        for path in library
        if path.name != "__main__.py"  # ``python -m pyprocconn`` runs the command on purpose
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_command_imports_the_library_not_the_reverse() -> None:
    command = list((PACKAGE / "command").glob("*.py"))
    assert any("pyprocconn.processes" in _imports(path) for path in command)
