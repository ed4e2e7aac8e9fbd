"""Suite-wide fixtures: torch's thread count, the claims about learning (`numerics`), and the third-party
test plugins, pip-installed into this environment."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


# Float results depend on the thread count and the CPU's kernels. The suite runs torch at
# OMP_NUM_THREADS threads (1 when unset), so a setting is chosen by the environment, never by chance.
TEST_THREADS = int(os.environ.get("OMP_NUM_THREADS") or 1)

# Claims about learning (`numerics` tests) run at these seeds (default 0); a comma list or a range "0-4".
NUMERICS_SEEDS_ENV = "T2IGAN_NUMERICS_SEEDS"
# A JSONL file each claim appends its value, bound and setting to (benchmarks/numerics_matrix.sh reads it).
NUMERICS_LOG_ENV = "T2IGAN_NUMERICS_LOG"


def pytest_sessionstart(session):
    torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _pinned_threads():
    """Every test starts at the suite's thread count, whatever a test before it set."""
    torch.set_num_threads(TEST_THREADS)


def numerics_seeds() -> list[int]:
    seeds: list[int] = []
    for part in os.environ.get(NUMERICS_SEEDS_ENV, "0").split(","):
        first, _, last = part.strip().partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def pytest_generate_tests(metafunc):
    # module scope: a module's trained fixture (an encoder, a probe) is trained once per seed
    if "numerics_seed" in metafunc.fixturenames:
        seeds = numerics_seeds()
        metafunc.parametrize("numerics_seed", seeds, ids=[f"seed{s}" for s in seeds], scope="module")


class Claim:
    """A claim about a learning outcome: asserts `value` beyond `bound` and, when NUMERICS_LOG_ENV is set,
    logs the value, the bound and the setting, so the margin each test keeps can be measured."""

    def __init__(self, test: str, seed: int | None):
        self.test, self.seed = test, seed

    def above(self, name: str, value: float, bound: float) -> None:
        self._check(name, float(value), float(bound), ">")

    def below(self, name: str, value: float, bound: float) -> None:
        self._check(name, float(value), float(bound), "<")

    def _check(self, name: str, value: float, bound: float, sense: str) -> None:
        margin = value - bound if sense == ">" else bound - value
        log = os.environ.get(NUMERICS_LOG_ENV)
        if log:
            entry = {
                "test": self.test,
                "claim": name,
                "value": value,
                "bound": bound,
                "sense": sense,
                "margin": margin,
                "seed": self.seed,
                "threads": torch.get_num_threads(),
                "capability": torch.backends.cpu.get_cpu_capability(),
                "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
            }
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        assert margin > 0, f"{name}: {value:.4g} is not {sense} {bound:.4g}"


@pytest.fixture
def claim(request) -> Claim:
    seed = request.getfixturevalue("numerics_seed") if "numerics_seed" in request.fixturenames else None
    return Claim(request.node.nodeid.split("[")[0], seed)


@pytest.fixture()
def restored_loggers():
    """The command's loggers as they were: `setup_logging` (an in-process `main()`) must not change other
    tests' logging."""
    from t2igan.cli import LOGGERS

    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in LOGGERS
    }
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
