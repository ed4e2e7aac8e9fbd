"""Suite-wide fixtures: the third-party test plugins, pip-installed into this environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_PLUGINS = ROOT / "tests" / "plugins"
TEST_PLUGIN_DISTS = ("t2igan-example", "t2igan-broken")

# Plan-file settings for tiny encoders and a tiny probe on `shapes:size=tiny`: tests of the runner and
# the commands are about them, not about encoder quality (which every record states beside its numbers).
TINY_ENCODER_SETTINGS = """
[encoders.damsm]
epochs = 1
image_size = 32
grid = 4
[encoders.clip]
model = "clip-tiny"
epochs = 1
[probe]
count = 200
epochs = 1
min_accuracy = 0.0
"""


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


@pytest.fixture(scope="session")
def third_party_plugins():
    """Install the example plugin and the deliberately broken one, as a user would; remove them after."""
    result = _pip("install", "--no-deps", "-q", str(TEST_PLUGINS / "example"), str(TEST_PLUGINS / "broken"))
    assert result.returncode == 0, result.stderr[-3000:]
    from t2igan.registry import reset_registry

    reset_registry()
    yield TEST_PLUGIN_DISTS
    _pip("uninstall", "-y", "-q", *TEST_PLUGIN_DISTS)
    reset_registry()


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `t2igan ARGS` in a fresh interpreter, as a user's shell would."""
    return subprocess.run(
        [sys.executable, "-m", "t2igan", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
