"""docs/api.md runs as written: its Python blocks, in order, in one namespace, in an empty folder with
an empty cache. The blocks assert what they show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_page_has_an_example_of_every_api_function():
    text = "\n".join(python_blocks())
    import t2igan

    shown = {name for name in t2igan.__all__ if re.search(rf"\bt2igan\.{name}\(", text)}
    assert shown >= {"list_models", "create_model", "train", "load_split", "evaluate", "bench"}


def test_the_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    namespace: dict[str, object] = {}
    for number, block in enumerate(python_blocks(), 1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
        except Exception as exc:  # name the block: the traceback points into the page's text
            pytest.fail(f"docs/api.md block {number} failed: {type(exc).__name__}: {exc}")
    assert (tmp_path / "first.png").is_file()
    assert (tmp_path / "runs" / "api-bench" / "table.csv").is_file()
