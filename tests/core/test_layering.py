"""The rooms import one way: the CLI over the API, the API over the benchmark runner, the runner over
training; training never reaches back up, and nothing below the CLI sees argparse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "t2igan"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def reaching(room: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in (PACKAGE / room).rglob("*.py")
        for name in imports(path)
        if name.startswith(forbidden)
    )


@pytest.mark.parametrize(
    ("room", "above"),
    [
        ("training", ("t2igan.benchmarking", "t2igan.api", "t2igan.cli")),
        ("benchmarking", ("t2igan.api", "t2igan.cli")),
        ("metrics", ("t2igan.benchmarking", "t2igan.training", "t2igan.api", "t2igan.cli")),
        ("data", ("t2igan.benchmarking", "t2igan.training", "t2igan.api", "t2igan.cli")),
        ("text", ("t2igan.benchmarking", "t2igan.training", "t2igan.api", "t2igan.cli")),
        ("nn", ("t2igan.benchmarking", "t2igan.training", "t2igan.api", "t2igan.cli")),
    ],
)
def test_a_room_never_imports_the_rooms_above_it(room, above):
    assert reaching(room, above) == []


def test_only_the_cli_sees_argparse():
    users = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if "argparse" in imports(path) and "cli" not in path.relative_to(PACKAGE).parts
    )
    assert users == []
