"""The protocol driver: caption selection as the protocol says (seeded, recorded), batched generation,
metrics fed once per batch, values stamped with the protocol; plus provenance and stats-cache keys."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from t2igan.errors import ConfigError, T2IGanError
from t2igan.metrics.context import EvalContext
from t2igan.metrics.evaluate import evaluate, evaluate_folder, save_generated, select_samples
from t2igan.metrics.stats_cache import StatsCache, StatsKey
from t2igan.metrics.values import MetricValue, check_single_mode, make_provenance
from t2igan.specs import Protocol

from .conftest import StandInCLIP, make_records, real_images

METRICS = ("fid", "kid", "clip_score")


def generate(captions, noise_seed):
    """A deterministic stand-in generator: noise from the seed, tinted by the caption's length."""
    noise = torch.randn(len(captions), 3, 32, 32, generator=torch.Generator().manual_seed(noise_seed))
    tint = torch.tensor([len(c) % 7 / 7.0 for c in captions]).view(-1, 1, 1, 1)
    return (noise * 0.5 + tint).clamp(-1, 1)


def test_selection_follows_the_protocol():
    counts = [3] * 10
    protocol = Protocol(
        "paper", ("fid",), images_per_caption=2, sample_times=2, batch_size=4, drop_last=True, seed=1
    )
    samples = select_samples(counts, protocol)
    assert (
        len(samples) == 2 * 8 * 2
    )  # 2 passes x 8 images (the last incomplete batch dropped) x 2 images each
    first_pass = [s.image_index for s in samples[:16]]
    assert len(set(first_pass)) == 8 and all(first_pass.count(i) == 2 for i in set(first_pass))
    assert all(0 <= s.caption_index < 3 for s in samples)
    for start in range(0, len(samples), 4):
        assert len({s.noise_seed for s in samples[start : start + 4]}) == 1  # one noise seed per batch
    assert len({s.noise_seed for s in samples}) > 1
    assert select_samples(counts, protocol) == samples
    assert select_samples(counts, dataclasses.replace(protocol, seed=2)) != samples
    assert len(select_samples(counts, dataclasses.replace(protocol, max_images=5, name="quick"))) == 5
    with pytest.raises(ConfigError, match="selects no images"):
        select_samples([1, 1], Protocol("paper", ("fid",), batch_size=4, drop_last=True))


class CountingExtractor:
    """Wraps an extractor to count how often the pipeline calls it."""

    def __init__(self, inner):
        self.inner, self.info, self.calls = inner, inner.info, 0

    def extract(self, images):
        self.calls += 1
        return self.inner.extract(images)


@pytest.fixture(scope="module")
def run(standard64):
    records = make_records(8, captions_per_image=2)
    extractor = CountingExtractor(standard64)
    protocol = Protocol("quick", METRICS, sample_times=2, batch_size=4, max_images=12, seed=5)
    context = EvalContext(dataset="toy", real_images=real_images(8), encoders={"clip": StandInCLIP()})
    configs = {"fid": {"extractor": extractor}, "kid": {"extractor": extractor, "subset_size": 4}}
    result = evaluate(generate, records, protocol, context, metric_configs=configs, progress=False)
    return result, extractor, records, protocol, configs


def test_evaluate_runs_the_protocol_and_labels_every_value(run):
    result, extractor, records, protocol, _ = run
    assert [v.name for v in result.values] == ["fid", "kid", "clip_score"]
    assert len(result.samples) == 12
    for value in result.values:
        assert value.provenance["protocol"] == "quick" and value.provenance["quick"] is True
        assert value.provenance["seed"] == 5
    # fid and kid share the features: 3 generated batches + 2 batches of real images (batch 32 -> 1)
    assert extractor.calls == 3 + 1
    assert result.values[0].provenance["n_fake"] == 12 and result.values[0].provenance["n_real"] == 8
    saved = json.loads(json.dumps(result.as_dict()))
    assert saved["samples"][0] == [
        result.samples[0].image_index,
        result.samples[0].caption_index,
        result.samples[0].noise_seed,
    ]
    assert saved["protocol"]["quick"] is True and saved["seconds"]["score"] > 0


def save_run(result, records, folder):
    """Regenerate the evaluated images batch by batch and save them as `t2igan eval` would find them."""
    for start in range(0, len(result.samples), 4):
        chunk = result.samples[start : start + 4]
        captions = [records[s.image_index]["captions"][s.caption_index] for s in chunk]
        save_generated(folder, generate(captions, chunk[0].noise_seed), chunk, start)


def test_folder_of_saved_images_gives_the_same_numbers(run, tmp_path):
    result, extractor, records, protocol, configs = run
    save_run(result, records, tmp_path)
    context = EvalContext(dataset="toy", real_images=real_images(8), encoders={"clip": StandInCLIP()})
    again = evaluate_folder(
        tmp_path, records, protocol, context, metrics=("fid",), metric_configs=configs, progress=False
    )
    assert again.samples == result.samples
    assert again.values[0].value == pytest.approx(result.values[0].value, abs=1e-9)


def test_a_plain_folder_of_images_is_scored_by_the_metrics_that_need_no_caption(run, tmp_path):
    result, extractor, records, protocol, configs = run
    save_run(result, records, tmp_path)
    (tmp_path / "samples.json").unlink()  # now just PNG files, as another tool would leave them
    context = EvalContext(dataset="toy", real_images=real_images(8), encoders={"clip": StandInCLIP()})
    plain = evaluate_folder(
        tmp_path, records, protocol, context, metrics=("fid",), metric_configs=configs, progress=False
    )
    assert plain.samples == []  # no caption is known for any image
    assert plain.values[0].value == pytest.approx(result.values[0].value, abs=1e-9)
    assert plain.values[0].provenance["n_fake"] == len(result.samples)
    with pytest.raises(ConfigError, match="clip_score need the caption of every image"):
        evaluate_folder(tmp_path, records, protocol, context, metrics=("fid", "clip_score"), progress=False)
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "zzz_odd.png")
    with pytest.raises(ConfigError, match="zzz_odd.png: 16x16 px"):
        evaluate_folder(
            tmp_path, records, protocol, context, metrics=("fid",), metric_configs=configs, progress=False
        )


def test_generator_output_is_checked():
    protocol = Protocol("quick", ("clip_score",), batch_size=3, max_images=3)
    context = EvalContext(encoders={"clip": StandInCLIP()})
    with pytest.raises(T2IGanError, match="generate: 2 images for 3 captions"):
        evaluate(lambda c, s: torch.zeros(2, 3, 8, 8), make_records(4), protocol, context, progress=False)


def test_modes_are_never_mixed_and_provenance_is_complete():
    value = MetricValue("fid", 1.0, provenance=make_provenance(mode="paper"))
    assert {
        "backend",
        "extractor_sha256",
        "n_real",
        "n_fake",
        "seed",
        "mode",
        "protocol",
        "weights_note",
    } <= set(value.provenance)
    check_single_mode([value, MetricValue("kid", 1.0, provenance=make_provenance(mode="standard"))])
    with pytest.raises(T2IGanError, match="fid: paper, standard"):
        check_single_mode([value, MetricValue("fid", 2.0, provenance=make_provenance(mode="standard"))])


def test_stats_key_covers_everything_that_changes_the_numbers(tmp_path, monkeypatch):
    key = StatsKey("cub", "sha", 256, "bilinear", "torch-fidelity", "0.4.0", "inception", "abc", "2048", 100)
    digests = {key.digest()}
    for name, value in [
        ("dataset", "coco"),
        ("split_sha256", "x"),
        ("resolution", 128),
        ("resize", "bicubic"),
        ("backend", "clean-fid"),
        ("backend_version", "0.5"),
        ("extractor_sha256", "def"),
        ("feature", "64"),
        ("n_images", 99),
    ]:
        digests.add(dataclasses.replace(key, **{name: value}).digest())
    assert len(digests) == 10
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "root"))
    cache = StatsCache()
    assert cache.folder == tmp_path / "root" / "metrics" / "stats"
    calls = []
    arrays, hit = cache.get_or_compute(key, lambda: calls.append(1) or {"mu": torch.ones(3).numpy()})
    again, hit_again = cache.get_or_compute(key, lambda: calls.append(1) or {"mu": torch.zeros(3).numpy()})
    assert (hit, hit_again, len(calls)) == (False, True, 1) and again["mu"].tolist() == [1.0, 1.0, 1.0]


def test_every_metric_is_registered():
    from t2igan.registry import get_registry

    registry = get_registry()
    names = {
        "fid",
        "kid",
        "is",
        "precision_recall",
        "clip_score",
        "clip_r_precision",
        "r_precision",
        "probe",
        "probe_fd",
    }
    assert names <= set(registry.metrics)
    assert registry.metric("fid").higher_is_better is False and registry.metric("probe").higher_is_better
