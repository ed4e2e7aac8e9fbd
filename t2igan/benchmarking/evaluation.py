"""Evaluating a trained model by its dataset's protocol: the encoders the protocol's metrics need (CLIP,
DAMSM, the `shapes` probe) are loaded once per dataset, the model generates from the selected test
captions, and the values come back as run-record metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalContext
from t2igan.metrics.evaluate import EvalResult, evaluate
from t2igan.metrics.values import MetricValue
from t2igan.nn.interfaces import GANModel
from t2igan.progress import show_progress  # the metrics' bars take a plain flag: it follows -q here
from t2igan.specs import Protocol
from t2igan.training.session import DatasetSession, TextEncoderPool, TextHandle
from t2igan.training.trainer import seeded_rng

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

ENCODER_NEEDS = ("clip", "damsm", "probe")  # MetricSpec.needs entries that name an encoder
PROBE_SPLIT_SEED = 7_919  # the probe learns from its own shapes scenes, never from the test split
PROBE_SPLIT_COUNT = 10_000
logger = logging.getLogger(__name__)


def needed_encoders(metrics: Sequence[str], registry: Registry) -> list[str]:
    needs = {need for name in metrics for need in registry.metric(name).needs}
    return [name for name in ENCODER_NEEDS if name in needs]


def probe_training_split(data: DatasetSession, count: int = PROBE_SPLIT_COUNT) -> Any:
    """Scenes from the `shapes` test distribution (every colour-shape pair, held-out ones included) drawn
    with another seed: a probe trained on the train split has never seen the held-out pairs and would
    misread exactly what the test split measures."""
    from t2igan.data.commands import load_split

    options = {**data.options, "size": count, "seed": PROBE_SPLIT_SEED + int(data.options.get("seed", 0))}
    return load_split(data.name, "test", data.root, **options)


class EvalEncoders:
    """The metric-side encoders of each dataset, loaded (or, on `shapes`, trained) once per plan."""

    def __init__(
        self,
        pool: TextEncoderPool,
        probe_options: Mapping[str, Any] | None = None,
        progress: bool = True,
    ):
        self.pool, self.progress = pool, progress
        self.probe_options = dict(probe_options or {})
        self._probes: dict[str, Any] = {}

    def for_metrics(self, data: DatasetSession, metrics: Sequence[str], registry: Registry) -> dict[str, Any]:
        encoders: dict[str, Any] = {}
        for name in needed_encoders(metrics, registry):
            if name == "probe":
                encoders[name] = self.probe(data)
            else:
                encoders[name] = self.pool.get(name, data).metric_object
        return encoders

    def probe(self, data: DatasetSession) -> Any:
        if data.label not in self._probes:
            from t2igan.metrics.probe import load_or_train_probe

            options = dict(self.probe_options)
            count = int(options.pop("count", PROBE_SPLIT_COUNT))
            split = probe_training_split(data, count)
            image_size = int(options.get("image_size", 32))
            images = data.real_images(split, image_size)
            labels = [record.attributes for record in split.records]
            probe, cached = load_or_train_probe(
                images,
                labels,
                options,
                seed=0,
                progress=show_progress(self.progress),
                device=self.pool.device,
            )
            probe.stats["trained_on"] = (
                f"{data.label} test distribution, {len(split)} scenes, seed {split.preprocessing.get('seed')}"
            )
            if not cached:
                seconds = probe.stats["train_seconds"]
                logger.info("trained the %s probe in %.0f s (cached for later runs)", data.name, seconds)
            self._probes[data.label] = probe
        return self._probes[data.label]


def make_generate(
    model: GANModel, text: TextHandle, device: torch.device
) -> Callable[[list[str], int], Tensor]:
    """`generate(captions, noise_seed)`: the model's evaluation noise (truncated where the paper's
    evaluation truncates) from a seeded generator, images clamped to [-1, 1]. Randomness inside the
    forward (conditioning augmentation) is drawn from the same seed on a forked RNG: a batch gives the same
    images whatever ran before, and evaluating during training leaves the training's RNG untouched."""
    eval_noise = model.eval_noise or model.sample_noise

    def generate(captions: list[str], noise_seed: int) -> Tensor:
        features = text.encode(captions, device)
        generator = torch.Generator().manual_seed(int(noise_seed))  # CPU: same noise on every device
        noise = eval_noise(len(captions), generator).to(device)
        with seeded_rng(int(noise_seed), device):
            return model.generate(noise, features).float().cpu()

    return generate


INCEPTION_METRICS = ("fid", "kid", "is", "precision_recall")


def inception_configs(
    fid_mode: str, weights: str | None = None, reference_npz: str | None = None
) -> dict[str, dict[str, Any]]:
    """Metric configs of the Inception-based metrics: FID's mode, the official reference statistics for a
    `paper`-mode FID, and `weights`, a local file of the FID mode's extractor. KID, IS and precision/recall
    always run torch-fidelity's Inception (the `standard` file): they take `weights` only when FID's mode
    is standard, and otherwise find theirs as every weights file is found ($T2IGAN_WEIGHTS, download)."""
    configs: dict[str, dict[str, Any]] = {name: {} for name in INCEPTION_METRICS}
    configs["fid"]["mode"] = fid_mode
    if weights:
        for name, config in configs.items():
            if name == "fid" or fid_mode == "standard":
                config["weights"] = weights
    if reference_npz:
        configs["fid"]["reference_npz"] = reference_npz
    return configs


def evaluate_model(
    model: GANModel,
    text: TextHandle,
    data: DatasetSession,
    protocol: Protocol,
    encoders: EvalEncoders,
    registry: Registry,
    device: torch.device,
    resolution: int,
    folder: Path | None = None,
    fid_mode: str = "standard",
    progress: bool = True,
    metrics: Sequence[str] | None = None,
    inception_weights: str | None = None,
    fid_reference: str | None = None,
    second_clip: str | None = None,
) -> tuple[list[MetricValue], EvalResult]:
    """Score `model` on the dataset's test split by `protocol`; the samples evaluated are written to
    `folder/eval_samples.json` so that a number can be traced to the captions and noise behind it.
    `second_clip` (`MODEL=WEIGHTS`) adds the CLIP score under that CLIP as the metric `clip_score_2`."""
    metrics = list(metrics or protocol.metrics)
    configs = inception_configs(fid_mode, inception_weights, fid_reference)
    if second_clip:
        from t2igan.metrics.clip_score import parse_second_clip

        configs["clip_score_2"] = parse_second_clip(second_clip)
        metrics += [] if "clip_score_2" in metrics else ["clip_score_2"]
    test = data.test
    context = eval_context(
        data, resolution, metrics, encoders, registry, device, protocol.batch_size, progress
    )
    was_training = model.training
    model.eval()
    try:
        result = evaluate(
            make_generate(model, text, device),
            test.records,
            protocol,
            context,
            metrics=metrics,
            metric_configs=configs,
            registry=registry,
            progress=show_progress(progress),
        )
    finally:
        model.train(was_training)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "eval_samples.json").write_text(json.dumps(result.as_dict()["samples"]), encoding="utf-8")
    records = list(result.values)
    if not records:
        raise ConfigError(f"protocol {protocol.name!r} of {data.label} produced no metric values")
    return records, result


def eval_context(
    data: DatasetSession,
    resolution: int,
    metrics: Sequence[str],
    encoders: EvalEncoders,
    registry: Registry,
    device: torch.device,
    batch_size: int,
    progress: bool = True,
) -> EvalContext:
    """The test split's real images at `resolution`, the encoders `metrics` need, the stats cache."""
    test = data.test
    return EvalContext(
        dataset=data.label,
        split_sha256=test.sha256,
        resolution=resolution,
        real_images=data.real_images(test, resolution),
        device=device,
        encoders=encoders.for_metrics(data, metrics, registry),
        stats_cache=_stats_cache(),
        batch_size=batch_size,
        progress=show_progress(progress),
    )


def _stats_cache() -> Any:
    from t2igan.metrics.stats_cache import StatsCache

    return StatsCache()  # <cache>/metrics/stats
