"""docs/records.md names, as code spans, every field and key a run record can hold: the dataclass fields,
the environment keys, the metric provenance keys and every key the runner writes into `costs`."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import torch

from t2igan.benchmarking import costs, records, runner
from t2igan.benchmarking.records import RunRecord, environment
from t2igan.metrics.values import PROVENANCE_FIELDS, MetricValue
from t2igan.nn.interfaces import TextFeatures
from t2igan.training.trainer import TrainResult

DOC = Path(__file__).resolve().parents[2] / "docs" / "records.md"


def code_spans() -> set[str]:
    """The text of every inline code span (`name`) of the document."""
    return set(re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8")))


def undocumented(names: object) -> list[str]:
    return sorted(set(names) - code_spans())


class _TinyModel(torch.nn.Module):
    """Just enough of a GANModel for `run_costs` and `inference_throughput`."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = torch.nn.Linear(2, 3)
        self.encoder = torch.nn.Linear(2, 2).requires_grad_(False)

    def parameter_groups(self) -> dict[str, torch.nn.Module]:
        return {"G": self.generator, "E": self.encoder}

    def sample_noise(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, 2)

    def generate(self, noise: torch.Tensor, text: TextFeatures) -> torch.Tensor:
        return self.generator(noise)


def _assigns_costs_from_run_costs(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Assign)
        and any(ast.unparse(target) == "record.costs" for target in node.targets)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "run_costs"
        for node in ast.walk(tree)
    )


def runner_added_cost_keys(tree: ast.AST) -> set[str]:
    """String keys the runner assigns into the record's costs: `record.costs["key"] = ...`."""
    keys = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if (
                isinstance(target, ast.Subscript)
                and ast.unparse(target.value) == "record.costs"
                and isinstance(target.slice, ast.Constant)
                and isinstance(target.slice.value, str)
            ):
                keys.add(target.slice.value)
    return keys


def written_cost_keys() -> set[str]:
    """`run_costs` called on a stub (as the runner calls it), plus what the runner adds afterwards."""
    tree = ast.parse(inspect.getsource(runner))
    assert _assigns_costs_from_run_costs(tree), "the runner no longer fills costs with run_costs()"
    added = runner_added_cost_keys(tree)
    assert added, "no `record.costs[...] = ...` found in the runner"
    model = _TinyModel()
    text = TextFeatures(torch.zeros(4, 2), None, None)
    throughput = costs.inference_throughput(model, text, torch.device("cpu"), repeats=1, warmup=0)
    result = TrainResult(
        steps=1,
        resumed_from=0,
        train_seconds=1.0,
        step_seconds_median=1.0,
        last_losses={},
        final_checkpoint=None,
        peak_memory_bytes=1,
    )
    return set(costs.run_costs(model, result, throughput)) | added


def test_doc_names_every_run_record_field():
    names = [f.name for f in dataclasses.fields(RunRecord)]
    assert not undocumented(names), f"RunRecord fields missing from {DOC}: {undocumented(names)}"


def test_doc_names_every_metric_record_field():
    names = [f.name for f in dataclasses.fields(MetricValue)]
    assert not undocumented(names), f"MetricValue fields missing from {DOC}: {undocumented(names)}"


def test_doc_names_every_environment_key():
    names = list(environment())
    assert not undocumented(names), f"environment() keys missing from {DOC}: {undocumented(names)}"


def test_doc_names_every_declared_provenance_field():
    assert not undocumented(PROVENANCE_FIELDS), (
        f"provenance fields missing from {DOC}: {undocumented(PROVENANCE_FIELDS)}"
    )


def test_doc_names_every_status():
    statuses = [records.STATUS_RUNNING, records.STATUS_FINISHED, records.STATUS_FAILED]
    assert not undocumented(statuses), f"status values missing from {DOC}: {undocumented(statuses)}"


def test_doc_names_every_cost_key():
    names = written_cost_keys()
    assert {"train_seconds", "images_per_second", "eval_seconds"} <= names  # the stub reached them
    assert not undocumented(names), f"costs keys missing from {DOC}: {undocumented(names)}"
