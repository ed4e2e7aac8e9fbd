"""Every built-in metric's real provenance: each declared field holds the kind it is declared as, and the
report is built from them, FID's statistics source (text) and the probe's and CLIP's `reference` (numbers)
alike. Weights are random (conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2igan.benchmarking.records import STATUS_FINISHED, RunRecord, write_record
from t2igan.benchmarking.report import build_report
from t2igan.errors import T2IGanError
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.evaluate import evaluate
from t2igan.metrics.fid import FIDMetric, statistics_sha256
from t2igan.metrics.inception import build_extractor
from t2igan.metrics.probe import train_probe
from t2igan.metrics.values import PROVENANCE_FIELDS, MetricValue, check_provenance, make_provenance
from t2igan.specs import Protocol

from .conftest import StandInCLIP, StandInDAMSM, synthetic_shapes

STANDARD = ("fid", "kid", "is", "precision_recall", "clip_score", "r_precision", "clip_r_precision")
PROBE = ("probe", "probe_fd")
ATTRIBUTES = ("background", "colour", "position", "size")


def _captions(labels):
    return [
        {
            "captions": [f"a {lab['size']} {lab['colour']} {lab['shape']} at the {lab['position']}"],
            "attributes": lab,
        }
        for lab in labels
    ]


@pytest.fixture(scope="module")
def scene():
    """Synthetic shapes: real test images, their records, a probe trained on others."""
    train, test = synthetic_shapes(320, 32, seed=0), synthetic_shapes(48, 32, seed=1)
    config = {"attributes": ATTRIBUTES, "image_size": 32, "epochs": 3, "batch_size": 32, "min_accuracy": 0.0}
    probe = train_probe(*train, config, seed=0, progress=False)
    return test[0], _captions(test[1]), probe


def _generate(real):
    def generate(captions, noise_seed):
        g = torch.Generator().manual_seed(noise_seed)
        index = torch.randint(0, len(real), (len(captions),), generator=g)
        images = torch.as_tensor(real[index.numpy()]).permute(0, 3, 1, 2).float() / 127.5 - 1
        return (images + 0.2 * torch.randn(images.shape, generator=g)).clamp(-1, 1)

    return generate


@pytest.fixture(scope="module")
def values(scene, standard64, fidelity_weights, torchvision_weights, tmp_path_factory):
    """Every built-in metric computed once, as the protocol driver computes them; paper-mode FID against
    our own statistics of the test split and against a statistics file."""
    real, records, probe = scene
    encoders = {"clip": StandInCLIP(), "damsm": StandInDAMSM(), "probe": probe}
    context = EvalContext(dataset="toy", real_images=real, encoders=encoders, seed=5)
    logits = build_extractor("standard", fidelity_weights, feature="2048")  # IS needs its logits
    configs = {
        "fid": {"extractor": standard64},
        "kid": {"extractor": standard64, "subset_size": 8},
        "is": {"extractor": logits, "splits": 2},
        "precision_recall": {"extractor": standard64},
        "r_precision": {"mismatched": 9},
        "clip_r_precision": {"mismatched": 9},
    }
    protocol = Protocol("paper", STANDARD + PROBE, sample_times=1, batch_size=16, seed=5)
    standard = evaluate(_generate(real), records, protocol, context, metric_configs=configs, progress=False)
    paper = {}
    npz = tmp_path_factory.mktemp("npz") / "toy_val256_FIDK0.npz"
    np.savez(npz, mu=np.zeros(64), sigma=np.eye(64))
    for source, extra in (("own", {}), ("file", {"reference_npz": str(npz)})):
        context = EvalContext(dataset="toy", real_images=real, seed=5, batch_size=16)
        config = {"mode": "paper", "weights": str(torchvision_weights), "feature": "64", **extra}
        metric = FIDMetric(config, context)
        fake = _generate(real)(["x"] * 16, 3)
        metric.update(EvalBatch(0, fake, ["x"] * 16, [EvalSample(i, 0, 3) for i in range(16)]))
        (paper[source],) = metric.compute()
    return standard.values, paper


def test_every_declared_field_of_every_metric_holds_its_kind(values):
    standard, paper = values
    found = {value.name for value in standard}
    names = {"precision", "recall", "prc_f_score", "probe_colour", *STANDARD, *PROBE} - {"precision_recall"}
    assert names <= found, found
    for value in [*standard, *paper.values()]:
        check_provenance(value.provenance, value.name)  # raises on a declared field of another kind
        assert set(PROVENANCE_FIELDS) & set(value.provenance), value.name
    fid = next(v for v in standard if v.name == "fid").provenance
    assert fid["reference_source"] == "test split" and "reference" not in fid
    assert len(fid["reference_stats_sha256"]) == 64
    assert paper["file"].provenance["reference_stats_sha256"] == statistics_sha256(np.zeros(64), np.eye(64))
    assert paper["file"].provenance["reference_source"].endswith("toy_val256_FIDK0.npz")
    for name in ("probe_colour", "clip_score"):
        levels = next(v for v in standard if v.name == name).provenance
        assert isinstance(levels["reference"], float) and isinstance(levels["chance"], float)


def _record(dataset, metric_values, seed=0):
    record = RunRecord("plan", dataset, "dfgan", seed, status=STATUS_FINISHED, model_name="dfgan")
    record.split = {"sha256": "abc"}
    record.protocol = {"name": "paper"}
    record.metrics = list(metric_values)
    return record


def test_the_report_reads_every_metrics_real_provenance(values, tmp_path):
    standard, paper = values
    write_record(tmp_path / "a", _record("toy", standard))
    write_record(tmp_path / "b", _record("toy-paper-own", [paper["own"]]))
    write_record(tmp_path / "c", _record("toy-paper-file", [paper["file"]]))
    report = build_report(tmp_path)
    notes = "\n".join(report.notes)
    assert "toy levels (chance / real test images):" in notes and "clip_score" in notes
    assert "probe_colour" in notes
    # a paper-mode FID against our own statistics is marked, saying what they are; one against a file is not
    own = [n for n in report.notes if n.startswith("† toy-paper-own/fid[paper]")]
    assert own and "against t2igan's own statistics of the test split" in own[0]
    assert paper["own"].provenance["reference_stats_sha256"][:12] in own[0]
    assert not any(n.startswith("† toy-paper-file/fid") and "own statistics" in n for n in report.notes)
    csv = report.results
    assert set(csv.loc[csv["metric"] == "fid", "prov_reference_source"]) >= {"test split"}


def test_a_value_of_the_wrong_kind_is_refused_where_it_is_made():
    with pytest.raises(
        T2IGanError, match=r"provenance 'reference' of fid: expected a number, got str 'test split'"
    ):
        MetricValue("fid", 1.0, provenance=make_provenance(reference="test split"))
    with pytest.raises(T2IGanError, match=r"'n_fake' of kid: expected a count, got float"):
        MetricValue("kid", 1.0, provenance=make_provenance(n_fake=2.5))
    with pytest.raises(T2IGanError, match=r"'stand_in' of x: expected a flag"):
        MetricValue("x", 1.0, provenance={"stand_in": "yes"})
    # a plugin's own fields are kept as they are
    assert MetricValue("x", 1.0, provenance={"my_field": [1, 2]}).provenance["my_field"] == [1, 2]
