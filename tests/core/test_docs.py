"""docs/plugins.md shows the complete minimal plugin: its listings must be the files the suite installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugins" / "example"


def listings(text: str) -> dict[str, str]:
    """Fenced blocks whose first line is a comment naming a file: {file name: the rest of the block}."""
    found = {}
    for body in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        first, _, rest = body.partition("\n")
        named = re.fullmatch(r"# (\S+\.(?:py|cfg|toml))", first.strip())
        if named:
            found[named.group(1)] = rest
    return found


def test_the_plugin_guide_lists_the_example_plugin_byte_for_byte():
    shown = listings((ROOT / "docs" / "plugins.md").read_text(encoding="utf-8"))
    files = {
        "pyproject.toml": EXAMPLE / "pyproject.toml",
        "setup.cfg": EXAMPLE / "setup.cfg",
        "t2igan_example/__init__.py": EXAMPLE / "t2igan_example" / "__init__.py",
    }
    assert set(files) <= set(shown), f"docs/plugins.md lacks listings of {sorted(set(files) - set(shown))}"
    for name, path in files.items():
        assert shown[name] == path.read_text(encoding="utf-8"), f"docs/plugins.md: {name} differs from {path}"
