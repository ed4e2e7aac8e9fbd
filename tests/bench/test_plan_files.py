"""The plan files under benchmarks/plans load, name only registered models and datasets, and every
row builds (on the meta device) with the preset the runner picks for each dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2igan.benchmarking.plan import load_plan_file
from t2igan.models import choose_preset, parameter_counts, resolve
from t2igan.registry import get_registry

PLANS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "plans").glob("*.toml"))


def test_there_is_a_plan_per_paper_dataset_and_one_for_shapes():
    assert {p.stem for p in PLANS} >= {"shapes", "cub", "coco", "flowers", "celeba-tiny"}


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_plan_file_loads_with_registered_names(path):
    plan = load_plan_file(path)
    registry = get_registry()
    for dataset in plan.datasets:
        assert registry.dataset(dataset).name == dataset
    for ref in plan.models:
        spec = registry.model(ref.name)
        assert spec.name == ref.name
        for dataset in plan.datasets:
            # an override key the model does not have, or values its build rejects, raise ConfigError
            resolved = resolve(ref, registry, preset=choose_preset(spec, dataset, ref.preset))
            assert parameter_counts(resolved, registry)["G"]["total"] > 0
    assert plan.budget.name in ("steps", "short", "paper")
    if plan.datasets != ["shapes"]:
        assert plan.protocol == "paper" and plan.fid_mode == "paper"
