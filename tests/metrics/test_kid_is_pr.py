"""KID, IS and precision/recall: the same numbers as torch-fidelity's own call, seeded, and refused in
modes they do not exist in. Weights are random (conftest.py)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.utils import save_image

from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.inception import build_extractor
from t2igan.metrics.kid_is_pr import ISMetric, KIDMetric, PrecisionRecallMetric

from .conftest import fake_images, real_images

N_FAKE, N_REAL, SUBSET = 10, 10, 5


def _run(metric_class, config, fake=None, seed=100, real=None):
    context = EvalContext(real_images=real_images(N_REAL) if real is None else real, seed=seed, batch_size=5)
    metric = metric_class(config, context)
    images = fake_images(N_FAKE) if fake is None else fake
    for index, start in enumerate(range(0, len(images), 5)):
        chunk = images[start : start + 5]
        metric.update(
            EvalBatch(index, chunk, [""] * len(chunk), [EvalSample(i, 0, 0) for i in range(len(chunk))])
        )
    return metric.compute()


@pytest.fixture(scope="module")
def fidelity_reference(fidelity_weights, tmp_path_factory):
    """torch-fidelity's own KID and PR on the same images saved as PNG (fake via save_image)."""
    import torch_fidelity

    root = tmp_path_factory.mktemp("kid")
    (root / "fake").mkdir()
    (root / "real").mkdir()
    for i, image in enumerate(fake_images(N_FAKE)):
        save_image(image, root / "fake" / f"{i:03d}.png", normalize=True, value_range=(-1, 1))
    for i, image in enumerate(real_images(N_REAL)):
        Image.fromarray(image).save(root / "real" / f"{i:03d}.png")
    return torch_fidelity.calculate_metrics(
        feature_extractor="inception-v3-compat",
        input1=str(root / "fake"),
        input2=str(root / "real"),
        kid=True,
        prc=True,
        feature_layer_kid="64",
        feature_layer_prc="64",
        kid_subset_size=SUBSET,
        rng_seed=100,
        feature_extractor_weights_path=str(fidelity_weights),
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )


def test_kid_equals_torch_fidelity_and_is_seeded(standard64, fidelity_reference):
    config = {"extractor": standard64, "subset_size": SUBSET}
    [kid] = _run(KIDMetric, config, seed=100)
    [again] = _run(KIDMetric, config, seed=100)
    [other] = _run(KIDMetric, config, seed=7)
    assert kid.value == pytest.approx(fidelity_reference["kernel_inception_distance_mean"], abs=1e-6)
    assert kid.std == pytest.approx(fidelity_reference["kernel_inception_distance_std"], abs=1e-6)
    assert again.value == kid.value and again.std == kid.std
    assert other.value != kid.value
    assert kid.provenance["kid_subset_size"] == SUBSET and kid.provenance["seed"] == 100
    assert kid.provenance["backend"] == "torch-fidelity" and kid.higher_is_better is False


def test_precision_recall_equal_torch_fidelity(standard64, fidelity_reference):
    values = {v.name: v for v in _run(PrecisionRecallMetric, {"extractor": standard64})}
    assert set(values) == {"precision", "recall", "prc_f_score"}
    assert values["precision"].value == pytest.approx(fidelity_reference["precision"], abs=1e-6)
    assert values["recall"].value == pytest.approx(fidelity_reference["recall"], abs=1e-6)
    # real images scored against themselves are all inside each other's k-NN balls
    selfish = {
        v.name: v.value
        for v in _run(
            PrecisionRecallMetric,
            {"extractor": standard64},
            fake=torch.from_numpy(real_images(N_REAL)).permute(0, 3, 1, 2),
        )
    }
    assert selfish["precision"] == 1.0 and selfish["recall"] == 1.0


def test_inception_score_matches_a_direct_formula(fidelity_weights):
    extractor = build_extractor("standard", fidelity_weights, feature="2048")
    fake = fake_images(4)
    [score] = _run(ISMetric, {"extractor": extractor, "splits": 1}, fake=fake)
    logits = extractor.extract(fake)["logits"].double()
    p = logits.softmax(1)
    marginal = p.mean(0, keepdim=True)
    expected = float((p * (p.log() - marginal.log())).sum(1).mean().exp())
    assert score.value == pytest.approx(expected, rel=1e-9)
    assert score.value >= 1.0 and score.provenance["is_splits"] == 1 and score.provenance["n_real"] is None


def test_metrics_refuse_modes_they_do_not_exist_in(standard64):
    with pytest.raises(ConfigError, match="'kid' exists in mode 'standard'.*paper"):
        KIDMetric({"mode": "paper"}, EvalContext())
    with pytest.raises(ConfigError, match="'is' needs the Inception logits"):
        _run(ISMetric, {"extractor": standard64})


def test_the_inception_score_splits_follow_the_protocols_seed(fidelity_weights):
    from torch_fidelity.metric_isc import isc_features_to_metric

    extractor = build_extractor("standard", fidelity_weights, feature="2048")
    fake = fake_images(12)
    logits = extractor.extract(fake)["logits"]
    config = {"extractor": extractor, "splits": 3}
    for seed in (100, 7):
        [score] = _run(ISMetric, config, fake=fake, seed=seed)
        expected = isc_features_to_metric(logits, splits=3, shuffle=True, rng_seed=seed)
        assert score.value == pytest.approx(expected["inception_score_mean"], rel=1e-9)
        assert score.provenance["seed"] == seed
    # torch-fidelity's own default seed (2020) would split these 12 images otherwise
    default = isc_features_to_metric(logits, splits=3, shuffle=True, rng_seed=2020)["inception_score_mean"]
    assert _run(ISMetric, config, fake=fake, seed=100)[0].value != pytest.approx(default, rel=1e-9)


def test_precision_recall_in_blocks_equal_the_full_matrices():
    from torch_fidelity.metric_prc import prc_features_to_metric

    from t2igan.metrics.kid_is_pr import precision_recall

    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(300, 32, generator=g), torch.randn(260, 32, generator=g) * 1.2 + 0.1
    full = prc_features_to_metric(
        fake, real, prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=False, verbose=False
    )
    blocked = precision_recall(fake, real, 3, block=64)  # 5 blocks of generated, 5 of real rows
    assert blocked == {
        "precision": full["precision"], "recall": full["recall"], "prc_f_score": full["f_score"]
    }  # fmt: skip
    assert 0 < blocked["precision"] < 1 and 0 < blocked["recall"] < 1
