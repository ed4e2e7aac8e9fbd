"""The protocol driver: selects test captions exactly as a dataset's Protocol says (seeded, the list of
(image index, caption index, noise seed) kept), generates in batches, streams each batch to the
requested metrics, and returns their values stamped with the protocol."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from t2igan.atomic import write_json_atomic
from t2igan.data.split import to_rgb
from t2igan.errors import ConfigError, T2IGanError
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample, Metric
from t2igan.metrics.images import to_float, to_uint8_nhwc
from t2igan.metrics.r_precision import record_captions
from t2igan.metrics.values import MetricValue, check_single_mode, label_protocol
from t2igan.specs import Protocol

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

Generate = Callable[[list[str], int], Tensor]
SAMPLES_FILE = "samples.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def is_quick(protocol: Protocol) -> bool:
    """`quick` protocols (by name, or any image cap) are labelled as such in every value."""
    return protocol.name.startswith("quick") or protocol.max_images is not None


def select_samples(caption_counts: Sequence[int], protocol: Protocol) -> list[EvalSample]:
    """What the official loops evaluate: `sample_times` shuffled passes over the test images (incomplete
    last batch dropped when `drop_last`), one random caption per image per pass, `images_per_caption`
    images per caption, capped at `max_images`; one noise seed per generated batch."""
    if protocol.batch_size <= 0 or protocol.sample_times <= 0 or protocol.images_per_caption <= 0:
        raise ConfigError(
            f"protocol {protocol.name!r}: batch_size, sample_times and images_per_caption must be > 0"
        )
    counts = np.asarray(caption_counts, dtype=np.int64)
    if len(counts) == 0 or (counts <= 0).any():
        raise ConfigError(f"protocol {protocol.name!r}: every test image needs at least one caption")
    rng = np.random.default_rng(protocol.seed)
    chosen: list[tuple[int, int]] = []
    for _ in range(protocol.sample_times):
        order = rng.permutation(len(counts))
        if protocol.drop_last:
            order = order[: len(order) // protocol.batch_size * protocol.batch_size]
        captions = np.floor(rng.random(len(order)) * counts[order]).astype(np.int64)
        for image, caption in zip(order.tolist(), captions.tolist(), strict=True):
            chosen.extend([(image, caption)] * protocol.images_per_caption)
    if protocol.max_images is not None:
        chosen = chosen[: protocol.max_images]
    if not chosen:
        raise ConfigError(
            f"protocol {protocol.name!r} selects no images (test split smaller than one batch "
            "with drop_last?)"
        )
    n_batches = (len(chosen) + protocol.batch_size - 1) // protocol.batch_size
    noise_seeds = rng.integers(0, 2**31 - 1, size=n_batches)
    return [
        EvalSample(image, caption, int(noise_seeds[i // protocol.batch_size]))
        for i, (image, caption) in enumerate(chosen)
    ]


@dataclass
class EvalResult:
    """Values, the samples evaluated, the protocol, and where the time went."""

    values: list[MetricValue]
    samples: list[EvalSample]
    protocol: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "values": [v.as_dict() for v in self.values],
            "protocol": self.protocol,
            "seconds": self.seconds,
            "samples": [[s.image_index, s.caption_index, s.noise_seed] for s in self.samples],
        }


def build_metrics(
    names: Sequence[str],
    context: EvalContext,
    configs: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
) -> dict[str, Metric]:
    """Metric objects by name through the registry; `configs["*"]` applies to every metric."""
    if registry is None:
        from t2igan.registry import get_registry

        registry = get_registry()
    configs = configs or {}
    common = dict(configs.get("*", {}))
    return {
        name: registry.metric(name).build({**common, **dict(configs.get(name, {}))}, context)
        for name in names
    }


def _batches(samples: Sequence[EvalSample], size: int) -> Iterator[list[EvalSample]]:
    for start in range(0, len(samples), size):
        yield list(samples[start : start + size])


def _check_images(images: Any, expected: int, where: str) -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise T2IGanError(f"{where}: expected images (B, 3, H, W) in [-1, 1], got {shape}")
    if len(images) != expected:
        raise T2IGanError(f"{where}: {len(images)} images for {expected} captions")
    return images.detach()


def stream(
    source: Iterable[EvalBatch],
    metrics: Mapping[str, Metric],
    total: int | None = None,
    progress: bool = True,
    description: str = "evaluating",
) -> dict[str, float]:
    """Feed every batch to every metric; seconds spent producing batches and scoring them."""
    from tqdm import tqdm

    seconds = {"generate": 0.0, "score": 0.0}
    iterator = iter(source)
    bar = tqdm(total=total, disable=not progress, desc=description, unit="img")
    while True:
        tick = time.perf_counter()
        batch = next(iterator, None)
        seconds["generate"] += time.perf_counter() - tick
        if batch is None:
            break
        tick = time.perf_counter()
        for metric in metrics.values():
            metric.update(batch)
        seconds["score"] += time.perf_counter() - tick
        bar.update(len(batch.images))
    bar.close()
    return seconds


def run_metrics(
    source: Iterable[EvalBatch],
    metrics: Mapping[str, Metric],
    protocol: Protocol,
    total: int | None = None,
    progress: bool = True,
) -> tuple[list[MetricValue], dict[str, float]]:
    """Stream every batch to every metric, then compute; returns values and timings."""
    seconds = stream(source, metrics, total, progress, f"evaluating ({protocol.name})")
    tick = time.perf_counter()
    values = [value for metric in metrics.values() for value in metric.compute()]
    seconds["compute"] = time.perf_counter() - tick
    values = label_protocol(values, protocol.name, is_quick(protocol))
    check_single_mode(values)
    return values, seconds


def generated_batches(
    generate: Generate, records: Sequence[Any], samples: Sequence[EvalSample], batch_size: int
) -> Iterator[EvalBatch]:
    """Generate the selected samples batch by batch (one noise seed per batch, as selected)."""
    for index, chunk in enumerate(_batches(samples, batch_size)):
        captions = [record_captions(records[s.image_index])[s.caption_index] for s in chunk]
        with torch.no_grad():
            images = generate(captions, chunk[0].noise_seed)
        yield EvalBatch(index, _check_images(images, len(chunk), "generate"), captions, chunk)


def prepare_context(context: EvalContext | None, records: Sequence[Any], protocol: Protocol) -> EvalContext:
    """The context with the test records, the protocol's name, quick flag and seed filled in."""
    context = context or EvalContext()
    context.records, context.protocol, context.quick = records, protocol.name, is_quick(protocol)
    context.seed = protocol.seed
    return context


def evaluate(
    generate: Generate,
    records: Sequence[Any],
    protocol: Protocol,
    context: EvalContext | None = None,
    metrics: Sequence[str] | None = None,
    metric_configs: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    progress: bool = True,
) -> EvalResult:
    """Evaluate `generate(captions, noise_seed) -> images in [-1, 1]` on the test `records` by `protocol`.

    `metrics` defaults to the protocol's; `context` carries the real images, encoders and stats cache (its
    records, protocol, quick flag and seed are set here from the arguments).
    """
    context = prepare_context(context, records, protocol)
    samples = select_samples([len(record_captions(r)) for r in records], protocol)
    objects = build_metrics(list(metrics or protocol.metrics), context, metric_configs, registry)
    source = generated_batches(generate, records, samples, protocol.batch_size)
    values, seconds = run_metrics(source, objects, protocol, len(samples), progress)
    return EvalResult(values, samples, _protocol_dict(protocol), seconds)


def _protocol_dict(protocol: Protocol) -> dict[str, Any]:
    return {**asdict(protocol), "metrics": list(protocol.metrics), "quick": is_quick(protocol)}


# ---------------------------------------------------------------------------------------------------
# Generated images on disk: PNG files plus samples.json saying what each was generated from


def save_generated(
    folder: str | Path, images: Tensor, samples: Sequence[EvalSample], start: int = 0
) -> list[Path]:
    """Write images as PNG (quantised as save_image does) and append their samples to samples.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, array in enumerate(to_uint8_nhwc(images)):
        path = folder / f"{start + offset:06d}.png"
        Image.fromarray(array).save(path)
        paths.append(path)
    index_file = folder / SAMPLES_FILE
    listed = json.loads(index_file.read_text(encoding="utf-8")) if index_file.is_file() else []
    listed.extend({"file": p.name, **asdict(s)} for p, s in zip(paths, samples, strict=True))
    write_json_atomic(index_file, listed)
    return paths


def read_samples(folder: str | Path) -> list[dict[str, Any]]:
    index_file = Path(folder) / SAMPLES_FILE
    if not index_file.is_file():
        raise ConfigError(
            f"{folder}: no {SAMPLES_FILE} (expected the listing save_generated writes: file, "
            "image_index, caption_index, noise_seed per image)"
        )
    listed = json.loads(index_file.read_text(encoding="utf-8"))
    missing = [e["file"] for e in listed if not (Path(folder) / e["file"]).is_file()]
    if missing:
        raise ConfigError(f"{folder}: {SAMPLES_FILE} lists {len(missing)} missing files, e.g. {missing[:5]}")
    return listed


def has_samples(folder: str | Path) -> bool:
    """Whether `folder` was written by `save_generated` (it says which caption each image came from)."""
    return (Path(folder) / SAMPLES_FILE).is_file()


def plain_images(folder: str | Path) -> list[Path]:
    """The image files of a folder without samples.json, in name order (images only: no captions known)."""
    folder = Path(folder)
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ConfigError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) and no {SAMPLES_FILE}")
    return found


def _read_images(paths: Sequence[Path], first: dict[str, Any]) -> Tensor:
    """Images as float in [-1, 1]; `first` remembers the folder's first image so every batch matches it."""
    arrays = []
    for path in paths:
        try:
            with Image.open(path) as image:
                arrays.append(np.asarray(to_rgb(image, path)))
        except OSError as exc:
            raise ConfigError(f"{path}: not a readable image ({exc})") from exc
        first.setdefault("shape", arrays[-1].shape)
        first.setdefault("name", path.name)
        if arrays[-1].shape != first["shape"]:
            (h, w), (h0, w0) = arrays[-1].shape[:2], first["shape"][:2]
            raise ConfigError(
                f"{path}: {w}x{h} px, but {first['name']} is {w0}x{h0}: a folder must hold images of one size"
            )
    return to_float(np.stack(arrays))


def listed_samples(listed: Sequence[Mapping[str, Any]]) -> list[EvalSample]:
    """The EvalSamples of samples.json entries."""
    return [EvalSample(int(e["image_index"]), int(e["caption_index"]), int(e["noise_seed"])) for e in listed]


def folder_batches(folder: str | Path, records: Sequence[Any], batch_size: int) -> Iterator[EvalBatch]:
    """Batches of a folder, read one batch at a time: with captions and samples when `save_generated`
    wrote it, images only (no captions) for a plain folder of images."""
    folder, first = Path(folder), {}
    if not has_samples(folder):
        paths = plain_images(folder)
        for index, start in enumerate(range(0, len(paths), batch_size)):
            yield EvalBatch(index, _read_images(paths[start : start + batch_size], first), [], [])
        return
    listed = read_samples(folder)
    for index, start in enumerate(range(0, len(listed), batch_size)):
        chunk = listed[start : start + batch_size]
        images = _read_images([folder / e["file"] for e in chunk], first)
        samples = listed_samples(chunk)
        captions = [record_captions(records[s.image_index])[s.caption_index] for s in samples]
        yield EvalBatch(index, images, captions, samples)


def caption_free(metrics: Sequence[str], registry: Registry | None = None) -> tuple[list[str], list[str]]:
    """Split metric names into those that score images alone and those that need each image's caption
    (their spec's `needs` holds "captions")."""
    if registry is None:
        from t2igan.registry import get_registry

        registry = get_registry()
    needing = [m for m in metrics if "captions" in registry.metric(m).needs]
    return [m for m in metrics if m not in needing], needing


def evaluate_folder(
    folder: str | Path,
    records: Sequence[Any],
    protocol: Protocol,
    context: EvalContext | None = None,
    metrics: Sequence[str] | None = None,
    metric_configs: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
    progress: bool = True,
) -> EvalResult:
    """Like `evaluate`, on images saved earlier: a folder written by `save_generated` (any metric), or a
    plain folder of images (only metrics that need no caption: FID, KID, IS, precision/recall, probe FD)."""
    context = prepare_context(context, records, protocol)
    names = list(metrics or protocol.metrics)
    if has_samples(folder):
        listed = read_samples(folder)
        samples, total = listed_samples(listed), len(listed)
    else:
        samples, total = [], len(plain_images(folder))
        _, needing = caption_free(names, registry)
        if needing:
            raise ConfigError(
                f"{folder}: metrics {', '.join(needing)} need the caption of every image, and a plain "
                f"folder has none (no {SAMPLES_FILE}); choose metrics that score images alone, "
                "e.g. --metrics fid,kid"
            )
    objects = build_metrics(names, context, metric_configs, registry)
    batches = folder_batches(folder, records, protocol.batch_size)
    values, seconds = run_metrics(batches, objects, protocol, total, progress)
    return EvalResult(values, samples, _protocol_dict(protocol), seconds)
