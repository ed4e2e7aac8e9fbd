"""README's set-up and test commands are the ones CI runs: a test, so they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands)


def test_ci_installs_as_the_readme_says_and_runs_its_test_command():
    install, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pip_steps = [part.strip() for part in install.split("&&") if part.strip().startswith("pip install")]
    assert pip_steps, "the README's first command must install the project with pip"
    for step in pip_steps:
        assert step in ci, f".ci/run does not run the README's {step!r}"
    assert test in ci, f".ci/run does not run the README's test command {test!r}"


def test_ci_refuses_a_run_where_no_test_passed():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "no test passed" in ci and "PIPESTATUS" in ci
