"""CLIP score (GALIP's formula and input quirk), CLIP and DAMSM R-precision (1 true caption among 100,
class-aware mismatches, 10 folds, seeded). Encoders are stand-ins with random weights (conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from t2igan.errors import ConfigError
from t2igan.metrics.clip_score import CLIP_MEAN, CLIP_STD, CLIPRPrecisionMetric, CLIPScoreMetric, clip_input
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.r_precision import (
    DAMSMRPrecisionMetric,
    fold_statistics,
    r_precision,
    record_class_ids,
    sample_mismatches,
)

from .conftest import RANDOM_NOTE, StandInCLIP, StandInDAMSM, make_records


def _stats(mean, std):
    return torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)


def test_paper_input_sees_half_to_one_and_clean_input_zero_to_one():
    images = torch.linspace(-1, 1, 3 * 8 * 8).view(1, 3, 8, 8)
    mean, std = _stats(CLIP_MEAN, CLIP_STD)
    paper = clip_input(images, "paper", 16) * std + mean
    clean = clip_input(images, "clean", 16) * std + mean
    assert paper.min() >= 0.5 - 1e-6 and paper.max() <= 1 + 1e-6 and paper.min() < 0.51
    assert clean.min() >= -1e-6 and clean.max() <= 1 + 1e-6 and clean.min() < 0.01
    # GALIP code/lib/utils.py transf_to_CLIP_input, written out independently
    expected = ((F.interpolate(images * 0.5 + 0.5, size=(16, 16)) + 1) * 0.5 - mean) / std
    torch.testing.assert_close(clip_input(images, "paper", 16), expected)
    with pytest.raises(ConfigError, match="input_mode"):
        clip_input(images, "galip", 16)


def _batches(images, records, samples, size=4):
    for index, start in enumerate(range(0, len(samples), size)):
        chunk = samples[start : start + size]
        captions = [records[s.image_index]["captions"][s.caption_index] for s in chunk]
        yield EvalBatch(index, images[start : start + size], captions, chunk)


def _samples(records, seed=0):
    rng = np.random.default_rng(seed)
    return [EvalSample(i, int(rng.integers(len(r["captions"]))), 0) for i, r in enumerate(records)]


def test_clip_score_is_the_mean_cosine_and_records_its_mode():
    records = make_records(10)
    samples = _samples(records)
    images = torch.rand(10, 3, 24, 24) * 2 - 1
    clip = StandInCLIP(image_size=16)
    values = {}
    for mode in ("paper", "clean"):
        metric = CLIPScoreMetric({"input_mode": mode}, EvalContext(records=records, encoders={"clip": clip}))
        for batch in _batches(images, records, samples):
            metric.update(batch)
        [values[mode]] = metric.compute()
    captions = [records[s.image_index]["captions"][s.caption_index] for s in samples]
    image_features = clip.image_embedding(clip_input(images, "paper", 16))
    expected = F.cosine_similarity(image_features, clip.encode_captions(captions).sentence).mean()
    assert values["paper"].value == pytest.approx(float(expected), abs=1e-6)
    assert values["clean"].value != pytest.approx(values["paper"].value, abs=1e-6)
    assert values["paper"].provenance["mode"] == "paper" and values["clean"].provenance["mode"] == "clean"
    assert (
        values["paper"].provenance["weights_note"] == RANDOM_NOTE and values["paper"].provenance["stand_in"]
    )
    assert -1 <= values["paper"].value <= 1  # raw cosine: not ×100, not clipped


def test_clip_score_carries_real_image_levels_matched_and_mismatched():
    """Beside the score: real test images with their own captions (reference) and with other images'
    captions (chance), on the same pairs; generated == real images reach exactly the reference."""
    records = make_records(10)
    samples = _samples(records)
    real = (torch.rand(10, 24, 24, 3) * 255).to(torch.uint8).numpy()  # the cache's uint8 NHWC
    images = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 127.5 - 1
    clip = StandInCLIP(image_size=16)
    metric = CLIPScoreMetric(
        {"input_mode": "paper"}, EvalContext(records=records, encoders={"clip": clip}, real_images=real)
    )
    for batch in _batches(images, records, samples):
        metric.update(batch)
    [value] = metric.compute()
    captions = [records[s.image_index]["captions"][s.caption_index] for s in samples]
    features = clip.image_embedding(clip_input(images, "paper", 16))
    others = clip.encode_captions(captions[1:] + captions[:1]).sentence
    assert value.provenance["reference"] == pytest.approx(value.value, abs=1e-6)
    assert value.provenance["chance"] == pytest.approx(
        float(F.cosine_similarity(features, others).mean()), abs=1e-6
    )
    assert value.provenance["reference_pairs"] == 10


def test_mismatches_come_from_other_classes_or_other_images():
    rng = np.random.default_rng(0)
    counts = np.full(30, 4)
    classes = np.arange(30) % 3
    true = np.arange(30)
    records, captions = sample_mismatches(true, counts, classes, rng, 99)
    assert records.shape == (30, 99) and (classes[records] != classes[true][:, None]).all()
    assert captions.min() >= 0 and captions.max() <= 3
    records, _ = sample_mismatches(true, counts, None, rng, 99)
    assert (records != true[:, None]).all() and len(np.unique(records)) == 30
    assert record_class_ids(make_records(6, classes=2)).tolist() == [0, 1, 0, 1, 0, 1]
    assert record_class_ids(make_records(6)) is None


def test_r_precision_extremes_and_folds():
    records = make_records(40)
    samples = _samples(records)
    clip = StandInCLIP()
    texts = [records[s.image_index]["captions"][s.caption_index] for s in samples]
    perfect = r_precision(
        clip.encode_captions(texts).sentence,
        samples,
        records,
        lambda c: clip.encode_captions(c).sentence,
        seed=0,
    )
    assert perfect.mean == 1.0 and perfect.std == 0.0 and len(perfect.fold_scores) == 10
    chance = r_precision(
        torch.randn(40, 16), samples, records, lambda c: clip.encode_captions(c).sentence, seed=0
    )
    assert chance.mean < 0.2
    hits = np.array([1] * 30 + [0] * 70)
    mean, std, scores = fold_statistics(hits, np.random.default_rng(1))
    assert mean == pytest.approx(0.3) and len(scores) == 10 and std > 0


def _r_precision_metric(metric_class, encoders, records, samples, images, seed):
    context = EvalContext(records=records, encoders=encoders, seed=seed)
    metric = metric_class({}, context)
    for batch in _batches(images, records, samples):
        metric.update(batch)
    return metric.compute()[0]


@pytest.mark.parametrize(
    "metric_class, key, encoder",
    [(CLIPRPrecisionMetric, "clip", StandInCLIP()), (DAMSMRPrecisionMetric, "damsm", StandInDAMSM())],
)
def test_r_precision_metrics_are_seeded(metric_class, key, encoder):
    records = make_records(24, classes=4)
    samples = _samples(records)
    images = torch.rand(24, 3, 16, 16) * 2 - 1
    a = _r_precision_metric(metric_class, {key: encoder}, records, samples, images, seed=3)
    b = _r_precision_metric(metric_class, {key: encoder}, records, samples, images, seed=3)
    others = {
        _r_precision_metric(metric_class, {key: encoder}, records, samples, images, seed=s).value
        for s in (4, 5, 6)
    }
    assert (a.value, a.std) == (b.value, b.std)
    assert others != {a.value}  # another seed draws other mismatches (and folds)
    assert a.provenance["mismatch"] == "other class" and a.provenance["candidates"] == 100
    assert a.provenance["folds"] == 10 and a.provenance["stand_in"] is True and a.std is not None


def test_missing_encoder_is_named():
    with pytest.raises(ConfigError, match="needs the 'damsm' encoder"):
        DAMSMRPrecisionMetric({}, EvalContext(records=make_records(3)))


def test_clip_score_with_the_project_clip_encoder():
    """t2igan's CLIPTextImageEncoder transforms [-1, 1] images itself; the metric passes the mode on."""
    from t2igan.text.clip import load_clip

    encoder = load_clip("clip-tiny", None)  # random weights (test)
    records = make_records(6)
    samples = _samples(records)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    metric = CLIPScoreMetric(
        {"input_mode": "clean"}, EvalContext(records=records, encoders={"clip": encoder})
    )
    for batch in _batches(images, records, samples):
        metric.update(batch)
    [value] = metric.compute()
    captions = [records[s.image_index]["captions"][s.caption_index] for s in samples]
    with torch.no_grad():
        expected = F.cosine_similarity(
            encoder.image_embedding(images, mode="clean"), encoder.encode_captions(captions).sentence
        ).mean()
    assert value.value == pytest.approx(float(expected), abs=1e-5)
    prov = value.provenance
    assert prov["mode"] == "clean" and prov["backend"] == "open_clip" and "clip-tiny" in prov["extractor"]
    assert prov["stand_in"] is True and "not OpenAI ViT-B/32" in prov["weights_note"]


def test_the_second_clip_scores_as_the_clip_score_would_under_that_clip(tmp_path):
    """`clip_score_2` loads the CLIP it is given (any open_clip model, from a file here) and computes exactly
    the CLIP score under it; its weights are marked unless verified as the model's released file."""
    from t2igan.metrics.clip_score import SecondCLIPScoreMetric, parse_second_clip
    from t2igan.text.clip import load_clip, save_clip_checkpoint

    torch.manual_seed(4)
    path = save_clip_checkpoint(tmp_path / "clip-tiny-other.pt", load_clip("clip-tiny", None))
    records = make_records(6)
    samples = _samples(records)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    second = SecondCLIPScoreMetric(parse_second_clip(f"clip-tiny={path}"), EvalContext(records=records))
    first = CLIPScoreMetric({}, EvalContext(records=records, encoders={"clip": load_clip("clip-tiny", path)}))
    for metric in (second, first):
        for batch in _batches(images, records, samples):
            metric.update(batch)
    [value], [expected] = second.compute(), first.compute()
    assert value.name == "clip_score_2" and value.value == expected.value
    assert value.provenance["stand_in"] is True and "not verified" in value.provenance["weights_note"]
    assert value.provenance["extractor_sha256"] == expected.provenance["extractor_sha256"]
    with pytest.raises(ConfigError, match="--second-clip '=x': expected MODEL or MODEL=WEIGHTS"):
        parse_second_clip("=x")
