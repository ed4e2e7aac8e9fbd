"""What a metric sees during an evaluation: the test split (records, real images, sha256), the encoders,
the stats cache, and the generated batches one at a time; features shared by several metrics are
extracted once per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from t2igan.errors import ConfigError
from t2igan.metrics.images import batches
from t2igan.metrics.stats_cache import StatsCache, StatsKey
from t2igan.metrics.values import MetricValue


@dataclass(frozen=True)
class EvalSample:
    """One generated image: which test image's caption it was generated from, and the batch noise seed."""

    image_index: int
    caption_index: int
    noise_seed: int


@dataclass
class EvalBatch:
    """A generated batch: images float (B, 3, H, W) in [-1, 1], their captions and samples."""

    index: int
    images: Tensor
    captions: list[str]
    samples: list[EvalSample]


@dataclass
class EvalContext:
    """Everything a metric may use besides its config.

    `records` are the test split's records (each with `.captions` and an `.attributes` dict), aligned with
    `real_images` (uint8 (N, H, W, 3) array or memmap, or a tensor). `encoders` holds the objects some
    metrics need: "clip" (`image_embedding`, `encode_captions`), "damsm" (`.image_encoder`, `.text_encoder`),
    "probe" (a `t2igan.metrics.probe.TrainedProbe`).
    """

    dataset: str = ""
    split_sha256: str = ""
    resolution: int | None = None
    records: Sequence[Any] = ()
    real_images: Any = None
    protocol: str = ""
    quick: bool = False
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    encoders: dict[str, Any] = field(default_factory=dict)
    stats_cache: StatsCache | None = None
    batch_size: int = 32
    progress: bool = False
    shared: dict[Any, Any] = field(default_factory=dict)

    def shared_object(self, key: Any, factory: Callable[[], Any]) -> Any:
        """One object per key for the whole evaluation (an extractor, a feature bank, reference features)."""
        if key not in self.shared:
            self.shared[key] = factory()
        return self.shared[key]

    def encoder(self, name: str, metric: str) -> Any:
        if name not in self.encoders or self.encoders[name] is None:
            raise ConfigError(
                f"metric {metric!r} needs the {name!r} encoder; pass it in the evaluation context "
                f"(encoders={{'{name}': ...}}); available: {sorted(self.encoders) or 'none'}"
            )
        return self.encoders[name]

    def require_real_images(self, metric: str) -> Any:
        if self.real_images is None or len(self.real_images) == 0:
            raise ConfigError(f"metric {metric!r} needs the real test images (context.real_images)")
        return self.real_images


class Metric(Protocol):
    """What `MetricSpec.build(config, context)` returns: fed every generated batch, then asked for values."""

    def update(self, batch: EvalBatch) -> None: ...

    def compute(self) -> list[MetricValue]: ...


class FeatureBank:
    """Features of the generated images through one extractor; each batch is extracted once even when
    several metrics (FID, KID, PR, IS) feed it."""

    def __init__(self, extract: Callable[[Tensor], dict[str, Tensor]]):
        self.extract = extract
        self.parts: dict[str, list[Tensor]] = {}
        self.last_index: int | None = None

    def update(self, batch: EvalBatch) -> None:
        if batch.index == self.last_index:
            return
        for name, value in self.extract(batch.images).items():
            self.parts.setdefault(name, []).append(value)
        self.last_index = batch.index

    def result(self) -> dict[str, Tensor]:
        if not self.parts:
            raise ConfigError("no generated images were evaluated (the selection is empty)")
        return {name: torch.cat(values) for name, values in self.parts.items()}


def extract_all(
    images: Any,
    extract: Callable[[Tensor], dict[str, Tensor]],
    batch_size: int,
    progress: bool = False,
    description: str = "real images",
) -> dict[str, Tensor]:
    """Run `extract` over an image array in batches (real images: memmaps stay on disk until sliced)."""
    from tqdm import tqdm

    parts: dict[str, list[Tensor]] = {}
    total = (len(images) + batch_size - 1) // batch_size
    for chunk in tqdm(batches(images, batch_size), total=total, disable=not progress, desc=description):
        for name, value in extract(torch.from_numpy(np.array(chunk))).items():
            parts.setdefault(name, []).append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def cached_reference(
    context: EvalContext, key: StatsKey, compute: Callable[[], dict[str, np.ndarray]]
) -> tuple[dict[str, np.ndarray], bool]:
    """Reference arrays through the stats cache when the context has one (and the split is identified)."""
    if context.stats_cache is None or not context.split_sha256:
        return compute(), False
    return context.stats_cache.get_or_compute(key, compute)
