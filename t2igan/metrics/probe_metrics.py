"""The `shapes` probe metrics: `probe` (attribute accuracy of generated images against what their captions
state) and `probe_fd` (Fréchet distance in the probe's feature space); both refuse a probe whose own
accuracy on the real test images is below its threshold."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalBatch, EvalContext, cached_reference
from t2igan.metrics.fid import checked_frechet, feature_statistics
from t2igan.metrics.probe import (
    MISSING,
    PROBE_VERSION,
    TrainedProbe,
    attribute_accuracy,
    confusion,
    encode_labels,
)
from t2igan.metrics.r_precision import record_attributes
from t2igan.metrics.stats_cache import StatsKey
from t2igan.metrics.values import MetricValue, make_provenance


def probe_targets(
    records: Sequence[Any],
    samples: Sequence[Any],
    stated: Callable[[Any, int], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The attributes each generated image should show. `stated(record, caption_index)` says which ones its
    caption states; by default the record's attributes, refined by `attributes["caption_attributes"]
    [caption_index]` when the dataset lists per-caption attributes (an attribute a caption does not state
    should be absent or None there, so it is not scored)."""
    targets = []
    for sample in samples:
        record = records[sample.image_index]
        if stated is not None:
            targets.append(dict(stated(record, sample.caption_index)))
            continue
        attributes = dict(record_attributes(record))
        per_caption = attributes.pop("caption_attributes", None)
        if per_caption:
            attributes.update(per_caption[sample.caption_index])
        targets.append(attributes)
    return targets


def chance_level(targets: Sequence[Mapping[str, Any]], name: str) -> float:
    """What a generator that ignores the text scores on attribute `name`: the share of the most common
    value among the targets that state it (its best constant answer). Not 1 / classes: the classes a
    caption states need not be balanced (on `shapes` v3 only captions listing extras stated the count, so
    the scored counts were 2 or 3 and a text-blind generator drawing two objects every time scored 0.5)."""
    stated = [str(t[name]) for t in targets if t.get(name) is not None]
    if not stated:
        return float("nan")
    _, counts = np.unique(stated, return_counts=True)
    return float(counts.max() / len(stated))


JOINT_CHANCE_LIMIT = 1_000_000  # constant answers tried at most (`shapes`: about 30,000)


def joint_chance(encoded: Mapping[str, Tensor], sizes: Mapping[str, int], mask: Tensor) -> float | None:
    """What a generator that ignores the text scores all-correct on the images of `mask`: the share its
    best constant answer (one value per attribute) gets entirely right. Found by trying every constant
    answer: the most common value of each attribute on its own can miss the best joint one. None when
    there are more than JOINT_CHANCE_LIMIT answers to try."""
    names = [n for n in sizes if (encoded[n][mask] != MISSING).any()]
    if not names or not bool(mask.any()):
        return None
    targets = np.stack([encoded[n][mask].numpy() for n in names], axis=1)  # (images, attributes)
    if math.prod(sizes[n] for n in names) > JOINT_CHANCE_LIMIT:
        return None
    answers = np.array(list(itertools.product(*(range(sizes[n]) for n in names))))
    best = 0
    for start in range(0, len(answers), 4096):
        chunk = answers[start : start + 4096]
        right = np.ones((len(targets), len(chunk)), dtype=bool)
        for column in range(len(names)):
            stated = targets[:, column : column + 1]
            right &= (stated == MISSING) | (stated == chunk[None, :, column])
        best = max(best, int(right.sum(axis=0).max()))
    return best / len(targets)


def validated_probe(context: EvalContext, metric: str) -> TrainedProbe:
    """The context's probe, validated once on the real test images and refused below min_accuracy."""
    probe: TrainedProbe = context.encoder("probe", metric)
    if probe.validation is None:
        images = context.require_real_images(metric)
        labels = [
            {k: v for k, v in record_attributes(r).items() if k != "caption_attributes"}
            for r in context.records
        ]
        probe.validate(images, labels, context.device)
        probe.stats["validation_images"] = len(images)
    probe.require_valid()
    return probe


def _probe_provenance(probe: TrainedProbe, context: EvalContext, n_fake: int, **extra: Any) -> dict[str, Any]:
    return make_provenance(
        backend="t2igan-probe",
        backend_version=str(PROBE_VERSION),
        extractor=f"probe:{probe.config.arch}",
        extractor_sha256=probe.weights_sha256,
        resize=f"bilinear antialias to {probe.config.image_size}",
        mode="probe",
        n_real=probe.stats.get("validation_images"),
        n_fake=n_fake,
        seed=context.seed,
        probe_accuracy=dict(probe.validation or {}),
        min_accuracy=probe.config.min_accuracy,
        weights_note=probe.weights_note,
        stand_in=probe.stand_in,
        **extra,
    )


class ProbeMetric:
    """Attribute accuracy of generated images against their captions' attributes: `probe` (all stated
    attributes right), `probe_<attribute>`, and `probe_heldout` / `probe_seen` when targets carry
    `heldout_combo`. Needs `encoders["probe"]`, the real test images and records with attributes.
    Config `stated`: a callable (record, caption_index) -> the attributes that caption states."""

    name = "probe"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        self.probe: TrainedProbe = context.encoder("probe", self.name)
        self.predictions: dict[str, list[Tensor]] = {}
        self.samples: list[Any] = []

    def update(self, batch: EvalBatch) -> None:
        for name, value in self.probe.predict(batch.images, device=self.context.device).items():
            self.predictions.setdefault(name, []).append(value)
        self.samples.extend(batch.samples)

    def compute(self) -> list[MetricValue]:
        probe = validated_probe(self.context, self.name)
        if not self.samples:
            raise ConfigError("metric 'probe': no generated images with known captions were evaluated")
        predicted = {name: torch.cat(parts) for name, parts in self.predictions.items()}
        targets = probe_targets(self.context.records, self.samples, self.config.get("stated"))
        encoded = encode_labels(targets, probe.vocab)
        result = attribute_accuracy(predicted, encoded)
        # the real-image ceiling: the real test image of each sample, against the same stated attributes
        images = self.context.require_real_images(self.name)
        real = probe.real_predictions  # made by the validation on these images, unless they differ
        if real is None or len(next(iter(real.values()))) != len(images):
            real = probe.predict(images, device=self.context.device)
        index = torch.tensor([s.image_index for s in self.samples])
        ceiling = attribute_accuracy({name: value[index] for name, value in real.items()}, encoded)
        sizes = {name: len(values) for name, values in probe.vocab.items()}
        provenance = _probe_provenance(probe, self.context, len(self.samples))
        headline = {
            "reference": ceiling["all_correct"],
            "chance": joint_chance(encoded, sizes, result["known_mask"]),
        }
        values = [
            MetricValue(
                "probe", result["all_correct"], None, {**provenance, **headline}, higher_is_better=True
            )
        ]
        for name, accuracy in result["per_attribute"].items():
            if np.isnan(accuracy):  # no caption stated this attribute: nothing to score
                continue
            levels = {
                "chance": chance_level(targets, name),
                "reference": (probe.validation or {}).get(name),
                "confusion": confusion(predicted[name], encoded[name], probe.vocab[name]),
            }
            values.append(
                MetricValue(f"probe_{name}", accuracy, None, {**provenance, **levels}, higher_is_better=True)
            )
        heldout = torch.tensor([bool(t.get("heldout_combo")) for t in targets])
        if any("heldout_combo" in t for t in targets):
            for label, mask in (("heldout", heldout), ("seen", ~heldout)):
                mask = mask & result["known_mask"]
                if mask.any():
                    rate = float(result["all_correct_mask"][mask].float().mean())
                    levels = {
                        "n_fake": int(mask.sum()),
                        "reference": float(ceiling["all_correct_mask"][mask].float().mean()),
                        "chance": joint_chance(encoded, sizes, mask),
                    }
                    values.append(
                        MetricValue(
                            f"probe_{label}", rate, None, {**provenance, **levels}, higher_is_better=True
                        )
                    )
        return values


def real_floor(features: Tensor, seed: int) -> float:
    """The distance between two random halves of the real test images: what images exactly like the
    real ones score, at half the count (the distance's bias grows as counts fall, so at the full count a
    perfect generator scores somewhat below it)."""
    order = np.random.default_rng(seed).permutation(len(features))
    half = len(features) // 2
    first, second = feature_statistics(features[order[:half]]), feature_statistics(features[order[half:]])
    return checked_frechet("probe_fd floor", first, second, half, len(features) - half)[0]


class ProbeFDMetric:
    """Fréchet distance between generated and real test images in the probe's penultimate feature space."""

    name = "probe_fd"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        self.probe: TrainedProbe = context.encoder("probe", self.name)
        self.features: list[Tensor] = []

    def update(self, batch: EvalBatch) -> None:
        self.features.append(self.probe.features(batch.images, device=self.context.device))

    def compute(self) -> list[MetricValue]:
        probe = validated_probe(self.context, self.name)
        images = self.context.require_real_images(self.name)
        key = StatsKey(
            self.context.dataset,
            self.context.split_sha256,
            self.context.resolution,
            f"probe bilinear {probe.config.image_size}",
            "t2igan-probe",
            str(PROBE_VERSION),
            f"probe:{probe.config.arch}",
            probe.key,
            f"penultimate, real-real floor at seed {self.context.seed}",
            len(images),
        )

        def compute_real() -> dict[str, np.ndarray]:
            features = probe.features(images, device=self.context.device)
            mu, sigma = feature_statistics(features)
            return {"mu": mu, "sigma": sigma, "floor": np.array(real_floor(features, self.context.seed))}

        real, hit = cached_reference(self.context, key, compute_real)
        features = torch.cat(self.features)
        fake = feature_statistics(features)
        value, condition = checked_frechet(
            self.name, fake, (real["mu"], real["sigma"]), len(features), len(images)
        )
        provenance = _probe_provenance(
            probe,
            self.context,
            len(features),
            n_reference=len(images),
            reference_cached=hit,
            reference=float(real["floor"]),
            **condition,
        )
        return [MetricValue("probe_fd", value, None, provenance, higher_is_better=False)]
