"""The `shapes` probe: a small timm classifier trained here on `shapes` images and their attributes; it
scores generated images against the attributes of their captions (`probe`) and gives a feature space for
a Fréchet distance (`probe_fd`). Refused when its own accuracy on real test images is below 0.95."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError, T2IGanError
from t2igan.locking import exclusive, under_way
from t2igan.metrics.images import to_float
from t2igan.weights import load_state_dict_file

PROBE_FORMAT = "t2igan-probe"
PROBE_VERSION = 1  # bump when training or architecture code changes: cached probes are then retrained
Labels = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ProbeConfig:
    """Architecture and training of the probe; `attributes` None = every scalar attribute of the labels."""

    arch: str = "resnet10t"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    stem_width: int = 8
    image_size: int = 32
    feature_dim: int = 128
    # no stem max-pool: twice the resolution for small objects. On shapes at 32 px (10k images, 10 epochs,
    # 1 thread) main_shape accuracy 0.979 in 87 s, against 0.959 in 51 s with the pool (measured here)
    stem_pool: bool = False
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    attributes: tuple[str, ...] | None = None
    min_accuracy: float = 0.95

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ProbeConfig:
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(
                f"probe config: unknown keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        for key in ("channels", "attributes"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def scalar_attributes(labels: Labels) -> tuple[str, ...]:
    """Attributes every label has as a str or int (bools such as `heldout_combo` are flags, not classes)."""
    if not labels:
        raise ConfigError("probe: no labels given")
    common = set(labels[0])
    for label in labels[1:]:
        common &= set(label)
    keep = [
        k
        for k in common
        if all(isinstance(lab[k], (str, int, np.integer)) and not isinstance(lab[k], bool) for lab in labels)
    ]
    if not keep:
        raise ConfigError(f"probe: the labels have no common str/int attributes (keys: {sorted(labels[0])})")
    return tuple(sorted(keep))


def build_vocabulary(labels: Labels, attributes: Sequence[str]) -> dict[str, list[str]]:
    vocab = {}
    for name in attributes:
        missing = [i for i, lab in enumerate(labels) if name not in lab]
        if missing:
            raise ConfigError(
                f"probe: attribute {name!r} is missing from label {missing[0]} (and {len(missing) - 1} more)"
            )
        vocab[name] = sorted({str(lab[name]) for lab in labels})
    return vocab


MISSING, UNSEEN = -2, -1  # target codes: attribute not stated (skipped); value the probe never saw (wrong)


def encode_labels(labels: Labels, vocab: Mapping[str, list[str]]) -> dict[str, Tensor]:
    """Class indices per attribute; MISSING where a label lacks the attribute, UNSEEN for unknown values."""
    out = {}
    for name, values in vocab.items():
        index = {v: i for i, v in enumerate(values)}
        out[name] = torch.tensor(
            [MISSING if lab.get(name) is None else index.get(str(lab[name]), UNSEEN) for lab in labels],
            dtype=torch.long,
        )
    return out


class ProbeNet(nn.Module):
    """timm backbone (pretrained=False) without pooling, a flattened bottleneck (the feature space of
    `probe_fd`; flattening keeps where things are), and one linear head per attribute."""

    def __init__(self, config: ProbeConfig, classes: Mapping[str, int]):
        super().__init__()
        import timm

        self.image_size = config.image_size
        self.backbone = timm.create_model(
            config.arch,
            pretrained=False,
            num_classes=0,
            global_pool="",
            channels=config.channels,
            stem_width=config.stem_width,
        )
        if not config.stem_pool and hasattr(self.backbone, "maxpool"):
            self.backbone.maxpool = nn.Identity()
        self.backbone.eval()  # a 1-image dry run to size the bottleneck; BatchNorm must not train on it
        with torch.no_grad():
            flat = self.backbone(torch.zeros(1, 3, config.image_size, config.image_size)).numel()
        self.backbone.train()
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(flat, config.feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(config.feature_dim, n) for name, n in classes.items()})

    def prepare(self, images: Any) -> Tensor:
        x = to_float(images)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        return x

    def features(self, x: Tensor) -> Tensor:
        return self.embed(self.backbone(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.features(x)
        return {name: head(features) for name, head in self.heads.items()}


@dataclass
class TrainedProbe:
    """A trained probe, its attribute vocabulary, training stats, content key and (once run) validation."""

    model: ProbeNet
    config: ProbeConfig
    vocab: dict[str, list[str]]
    stats: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    validation: dict[str, float] | None = None
    real_predictions: dict[str, Tensor] | None = field(default=None, repr=False)  # of the validation images
    weights_note: str = "trained by t2igan on shapes"
    stand_in: bool = False

    @property
    def attributes(self) -> list[str]:
        return list(self.vocab)

    @functools.cached_property
    def weights_sha256(self) -> str:
        """The probe's identity in provenance: sha256 over its weights (each tensor's name, dtype, shape and
        bytes, by name), the same for a probe just trained and one read back from its file."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _batched(self, images: Any, fn: Callable[[Tensor], Any], batch_size: int, device: Any) -> list[Any]:
        self.model.eval().to(device)
        outs = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                part = images[start : start + batch_size]
                chunk = part if isinstance(part, Tensor) else torch.from_numpy(np.array(part))
                outs.append(fn(self.model.prepare(chunk).to(device)))
        return outs

    def predict(self, images: Any, batch_size: int = 256, device: Any = "cpu") -> dict[str, Tensor]:
        outs = self._batched(images, self.model, batch_size, device)
        return {name: torch.cat([o[name].argmax(1).cpu() for o in outs]) for name in self.vocab}

    def features(self, images: Any, batch_size: int = 256, device: Any = "cpu") -> Tensor:
        return torch.cat(
            [f.double().cpu() for f in self._batched(images, self.model.features, batch_size, device)]
        )

    def accuracy(self, images: Any, labels: Labels, device: Any = "cpu") -> dict[str, float]:
        return attribute_accuracy(self.predict(images, device=device), encode_labels(labels, self.vocab))[
            "per_attribute"
        ]

    def validate(self, images: Any, labels: Labels, device: Any = "cpu") -> dict[str, float]:
        """Accuracy on real test images, kept with the probe and checked by `require_valid`."""
        self.real_predictions = self.predict(images, device=device)
        encoded = encode_labels(labels, self.vocab)
        self.validation = attribute_accuracy(self.real_predictions, encoded)["per_attribute"]
        return self.validation

    def require_valid(self) -> None:
        if self.validation is None:
            raise T2IGanError("probe has not been validated on real test images (call validate first)")
        low = {k: v for k, v in self.validation.items() if v < self.config.min_accuracy}
        if low:
            detail = ", ".join(f"{k} {v:.3f}" for k, v in sorted(low.items()))
            raise T2IGanError(
                f"probe metrics refused: the probe's accuracy on real test images is below "
                f"{self.config.min_accuracy} for {detail}; train it longer or larger (probe config epochs/channels)"
            )

    def save(self, path: str | os.PathLike) -> Path:
        payload = {
            "format": PROBE_FORMAT,
            "version": PROBE_VERSION,
            "config": asdict(self.config),
            "vocab": self.vocab,
            "stats": self.stats,
            "key": self.key,
            "state_dict": self.model.state_dict(),
        }
        return save_atomic(payload, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainedProbe:
        raw = load_state_dict_file(path, "probe checkpoint")
        if not isinstance(raw, Mapping) or raw.get("format") != PROBE_FORMAT:
            raise T2IGanError(f"probe checkpoint {path}: not a {PROBE_FORMAT} file")
        config = ProbeConfig.from_mapping(raw["config"])
        vocab = {k: list(v) for k, v in raw["vocab"].items()}
        model = ProbeNet(config, {k: len(v) for k, v in vocab.items()})
        model.load_state_dict(raw["state_dict"])
        return cls(model.eval(), config, vocab, dict(raw.get("stats", {})), str(raw.get("key", "")))


def save_atomic(payload: Any, path: Path) -> Path:
    from t2igan.atomic import write_atomic

    return write_atomic(path, lambda handle: torch.save(payload, handle))


def attribute_accuracy(predicted: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> dict[str, Any]:
    """Per-attribute accuracy over the images whose target states that attribute, and the all-correct rate:
    an image counts as all-correct when every attribute its target states is predicted right."""
    per_attribute: dict[str, float] = {}
    count = len(next(iter(targets.values())))
    all_correct = torch.ones(count, dtype=torch.bool)
    any_known = torch.zeros(count, dtype=torch.bool)
    for name, target in targets.items():
        known = target != MISSING
        correct = predicted[name] == target
        per_attribute[name] = float(correct[known].float().mean()) if known.any() else float("nan")
        all_correct &= correct | ~known
        any_known |= known
    rate = float(all_correct[any_known].float().mean()) if any_known.any() else float("nan")
    return {
        "per_attribute": per_attribute,
        "all_correct": rate,
        "all_correct_mask": all_correct & any_known,
        "known_mask": any_known,
    }


def confusion(predicted: Tensor, target: Tensor, values: Sequence[str]) -> dict[str, dict[str, int]]:
    """How often each stated value was drawn as each value: {stated: {predicted: images}}, the zero cells
    left out; only targets that state the attribute count (a value the probe never saw is stated as
    "unseen"). Says what an accuracy hides: a generator that draws three objects for every caption."""
    table: dict[str, dict[str, int]] = {}
    for stated, drawn in zip(target.tolist(), predicted.tolist(), strict=True):
        if stated == MISSING:
            continue
        row = table.setdefault("unseen" if stated == UNSEEN else values[stated], {})
        row[values[drawn]] = row.get(values[drawn], 0) + 1
    return {k: dict(sorted(v.items())) for k, v in sorted(table.items())}


def train_probe(
    images: Any,
    labels: Labels,
    config: ProbeConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
    device: Any = "cpu",
) -> TrainedProbe:
    """Train the probe on uint8 (N, H, W, 3) images (or float [-1, 1] NCHW) and per-image attribute dicts.

    The probe is a measuring instrument: train it on images covering every attribute combination the
    evaluation will show it (for `shapes`, not the train split, whose main objects never take the held-out
    (colour, shape) pairs — a probe trained there misreads those pairs in the test split).
    """
    from tqdm import tqdm

    config = config if isinstance(config, ProbeConfig) else ProbeConfig.from_mapping(config)
    if len(images) != len(labels):
        raise ConfigError(f"probe: {len(images)} images but {len(labels)} labels")
    attributes = config.attributes or scalar_attributes(labels)
    config = replace(config, attributes=tuple(attributes))
    vocab = build_vocabulary(labels, attributes)
    targets = encode_labels(labels, vocab)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ProbeNet(config, {k: len(v) for k, v in vocab.items()}).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = (len(images) + config.batch_size - 1) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.lr, total_steps=config.epochs * steps_per_epoch
    )
    generator = torch.Generator().manual_seed(seed)
    started, losses = time.perf_counter(), []
    bar = tqdm(range(config.epochs), disable=not progress, desc="probe training")
    for _ in bar:
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), config.batch_size):
            index = order[start : start + config.batch_size]
            x = model.prepare(torch.as_tensor(np.asarray(images[index.numpy()]))).to(device)
            out = model(x)
            loss = sum(F.cross_entropy(out[k], targets[k][index].to(device)) for k in vocab)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses[-steps_per_epoch:]):.3f}")
    seconds = time.perf_counter() - started
    stats = {
        "train_seconds": seconds,
        "images": len(images),
        "epochs": config.epochs,
        "seed": seed,
        "final_loss": float(np.mean(losses[-steps_per_epoch:])),
        "first_loss": float(losses[0]),
        "images_per_second": config.epochs * len(images) / max(seconds, 1e-9),
    }
    return TrainedProbe(model.eval(), config, vocab, stats)


def probe_key(images: Any, labels: Labels, config: ProbeConfig, seed: int) -> str:
    """Content hash of training images, labels, config, seed and probe code version (and timm's version)."""
    import timm

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(np.asarray(images)).tobytes())
    head = {
        "labels": [dict(lab) for lab in labels],
        "config": asdict(config),
        "seed": seed,
        "version": PROBE_VERSION,
        "timm": timm.__version__,
        "shape": list(np.asarray(images).shape),
    }
    digest.update(json.dumps(head, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()


def load_or_train_probe(
    images: Any,
    labels: Labels,
    config: ProbeConfig | Mapping[str, Any] | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    device: Any = "cpu",
) -> tuple[TrainedProbe, bool]:
    """(probe, from_cache): the cached probe of exactly this data/config/code, or a newly trained one."""
    from t2igan.metrics.stats_cache import cache_root

    config = config if isinstance(config, ProbeConfig) else ProbeConfig.from_mapping(config)
    key = probe_key(images, labels, config, seed)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "metrics" / "probes"
    path = folder / f"probe-{key[:24]}.pt"
    cached = _cached_probe(path, key)
    if cached is not None:
        return cached, True
    # processes that need the same probe at once (several benches on one cache) train it once
    with exclusive(path.with_name(path.name + ".lock"), "the probe"):
        cached = _cached_probe(path, key)
        if cached is not None:
            return cached, True
        with under_way(path, "training the probe"):
            probe = train_probe(images, labels, config, seed, progress, device)
            probe.key = key
            probe.save(path)
    return probe, False


def _cached_probe(path: Path, key: str) -> TrainedProbe | None:
    if not path.is_file():
        return None
    try:
        probe = TrainedProbe.load(path)
    except T2IGanError:
        return None  # unreadable or foreign: retrained and overwritten
    return probe if probe.key == key else None
