"""The project's own text encoders for an embedded dataset (`shapes`): pre-trained on first use, cached by
content hash under `cache_root()/encoders/`, reused afterwards, with their retrieval accuracy recorded.

The cache key covers everything that changes the weights: kind, dataset, train split sha256, the full
pre-training config, the seed and FORMAT_VERSION (bumped whenever the training code changes results).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import platform
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan.atomic import write_sidecar
from t2igan.data.split import Split, canonical_json
from t2igan.errors import ConfigError, T2IGanError, T2IGanWarning
from t2igan.nn.interfaces import TextEncoder
from t2igan.paths import cache_root as default_cache_root
from t2igan.weights import sha256_file

FORMAT_VERSION = 1  # bump when the training code (or a default) would change the weights for the same key
KINDS = ("damsm", "clip")
# top-1 text->image among 100 candidates: the size of R-precision's candidate set (1 match + 99 mismatches;
# docs/official-code.md, Evaluation protocols)
RETRIEVAL_CANDIDATES = 100
RETRIEVAL_DRAWS = 3  # top-1 is the mean over this many draws of the 99 mismatched candidates
DATA_IMAGE_SIZE = "data_image_size"  # config key: the image-cache resolution the encoder is trained from

# The shapes recipes (tuned on the default split; figures in the dataclass docstring of damsm_pretrain, in
# docs/measurements.md for clip_pretrain, and from benchmarks/encoder_retrieval.py). Only keys that differ from the trainers' dataclass
# defaults are listed; the full config (defaults + these + the caller's) is what the cache key hashes.
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "damsm": {
        DATA_IMAGE_SIZE: 32,
        "image_size": 32,  # 32 px, 4x4 regions: as good as 64 px at a quarter of the image cost
        "grid": 4,
        "width": 16,
        "batch_size": 64,  # cheaper per image than 48 here, and more negatives
        "dropout": 0.0,  # the official 0.5 slows learning on 60 words: 0.848 -> 0.873 top-1 at 10 epochs
        "epochs": 12,  # 16 epochs: 0.892 top-1, colour+shape 0.979; 12 keep the first bench short
    },
    "clip": {
        DATA_IMAGE_SIZE: 32,  # clip-small's own input size: no resize per batch
        "batch_size": 128,
        "lr": 2e-3,
        "warmup_steps": 60,
        # four captions per image per step and a logit scale starting at 40 (about where training takes it)
        # learn in 18 epochs what one caption learned in 40: colour+shape retrieval 0.926-0.959 over 3 seeds
        # (benchmarks/encoder_retrieval.py; docs/measurements.md, "The small CLIP's pre-training recipe")
        "captions_per_image": 4,
        "logit_scale_init": 40.0,
        "epochs": 18,
    },
}
LABELS = {"damsm": "DAMSM encoder", "clip": "CLIP encoder"}


@dataclass
class PretrainedEncoder:
    """A project-trained text encoder, ready to use (frozen, eval mode, on the requested device).

    For DAMSM, `encoder` is the bi-LSTM text encoder and carries the image encoder as the plain attribute
    `encoder.image_encoder` (not a submodule, so the text encoder's state dict keeps the official layout);
    for CLIP, `encoder` is the CLIPTextImageEncoder (both towers). `retrieval_top1` is text->image top-1
    among 100 candidates on the test split, mean over 3 draws. Measured on the default `shapes` split
    (benchmarks/encoder_retrieval.py; ground-truth oracle's ceiling 0.926): DAMSM at 16 epochs 0.892 in
    379 s (1 thread, `shapes` v1); clip-small, 18 epochs of four captions per image, 0.812-0.853 (colour+shape
    0.926-0.959, 3 seeds, `shapes` v4; oracle's ceiling 0.941): see clip_pretrain.
    """

    kind: str
    encoder: TextEncoder
    path: Path
    sha256: str
    key: str
    retrieval_top1: float | None
    stats: dict[str, Any] = field(default_factory=dict)
    trained_now: bool = False

    def describe(self) -> dict[str, Any]:
        """What a run record keeps about the encoder."""
        return {
            "kind": self.kind,
            "key": self.key,
            "weights_sha256": self.sha256,
            "retrieval_top1": self.retrieval_top1,
            "path": str(self.path),
            "trained_now": self.trained_now,
            "stats": self.stats,
        }


# ------------------------------------------------------------------------------------------ config


def full_config(kind: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trainer dataclass defaults, then DEFAULT_CONFIGS[kind], then `config`; checked, as plain JSON."""
    _check_kind(kind)
    merged = {**DEFAULT_CONFIGS[kind], **dict(config or {})}
    size = int(merged.pop(DATA_IMAGE_SIZE, 64))
    if size < 8:
        raise ConfigError(f"{DATA_IMAGE_SIZE}={size}: expected an image size of at least 8 pixels")
    trainer_config = _trainer_config(kind, merged)
    return {DATA_IMAGE_SIZE: size, **_plain(asdict(trainer_config))}


def _trainer_config(kind: str, values: Mapping[str, Any]) -> Any:
    if kind == "damsm":
        from t2igan.text.damsm_pretrain import DAMSMPretrainConfig

        return DAMSMPretrainConfig.from_mapping(values)
    from t2igan.text.clip_pretrain import CLIPPretrainConfig

    return CLIPPretrainConfig.from_mapping(values)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"encoder kind {kind!r}: expected one of {', '.join(KINDS)}")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def cache_key(kind: str, dataset: str, train: Split, config: Mapping[str, Any], seed: int) -> str:
    """sha256 over everything that changes the trained weights, the CLIP's architecture included: the
    config names it (`clip-small`), and a cache must not outlive an edit of that JSON file."""
    payload = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "dataset": dataset,
        "train_sha256": train.sha256,
        "config": _plain(dict(config)),
        "seed": seed,
    }
    if kind == "clip" and config.get("model"):
        from t2igan.text.clip import model_config

        payload["architecture"] = model_config(str(config["model"]))
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def cache_path(kind: str, dataset: str, key: str, root: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)  # labels such as "shapes:size=tiny"
    return (root or default_cache_root()) / "encoders" / kind / f"{safe}-{key[:16]}.pt"


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


# --------------------------------------------------------------------------------------- the entry


def ensure_pretrained(
    kind: str,
    dataset: str,
    train: Split,
    test: Split | None,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    cache_root: Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> PretrainedEncoder:
    """The cached encoder for (kind, dataset, train split, config, seed), pre-training it first if there
    is none (or the file on disk does not match its sidecar's sha256, which warns). A lock file serialises
    processes that race for the same key; the loser loads what the winner wrote."""
    cfg = full_config(kind, config)
    key = cache_key(kind, dataset, train, cfg, seed)
    path = cache_path(kind, dataset, key, cache_root)
    cached = _try_load(kind, path, key, device)
    if cached is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            cached = _try_load(kind, path, key, device)  # another process may have finished meanwhile
            if cached is None:
                print(
                    f"pre-training the {dataset} {LABELS[kind]} (first use; cached at {path})",
                    file=sys.stderr,
                )
                train_and_save(kind, dataset, train, test, path, cfg, device, seed, progress, cache_root, key)
                cached = _try_load(kind, path, key, device)
                if cached is None:
                    raise T2IGanError(f"pre-trained {kind} encoder {path}: unreadable right after writing it")
                cached.trained_now = True
                _report_top1(cached, dataset)
    if test is not None and cached.stats.get("test_sha256") != test.sha256:
        _remeasure(cached, test, device, seed, cache_root, progress)
    return cached


def _report_top1(encoder: PretrainedEncoder, dataset: str) -> None:
    top1 = encoder.retrieval_top1
    figure = "not measured (no test split)" if top1 is None else f"{top1:.3f}"
    seconds = encoder.stats.get("seconds", 0.0)
    print(
        f"pre-trained the {dataset} {LABELS[encoder.kind]} in {seconds:.0f} s: text->image top-1 among "
        f"{RETRIEVAL_CANDIDATES} = {figure} (sha256 {encoder.sha256[:16]})",
        file=sys.stderr,
    )


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------ cache reading


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _try_load(kind: str, path: Path, key: str, device: torch.device | str) -> PretrainedEncoder | None:
    """The cached encoder, or None when there is none or it is unusable (which warns, never loads it)."""
    meta = _read_sidecar(path)
    if meta is None and not path.is_file():
        return None
    problem = _cache_problem(path, key, meta)
    if problem is None:
        try:
            encoder = load_encoder(kind, path, device)
        except (T2IGanError, RuntimeError, OSError, ValueError) as exc:
            problem = f"unreadable ({exc})"
    if problem is not None:
        warnings.warn(
            f"cached {kind} encoder {path}: {problem}; pre-training it again", T2IGanWarning, stacklevel=3
        )
        return None
    assert meta is not None
    return PretrainedEncoder(
        kind, encoder, path, meta["sha256"], key, meta.get("retrieval_top1"), dict(meta.get("stats") or {})
    )


def _cache_problem(path: Path, key: str, meta: dict[str, Any] | None) -> str | None:
    if meta is None:
        return f"no readable sidecar {sidecar_path(path)}"
    if not path.is_file():
        return "the weights file is missing"
    if meta.get("key") != key:
        return f"the sidecar is for key {str(meta.get('key'))[:16]}, expected {key[:16]}"
    actual = sha256_file(path)
    if actual != meta.get("sha256"):
        return f"sha256 {actual[:16]} differs from the sidecar's {str(meta.get('sha256'))[:16]} (truncated?)"
    return None


def load_encoder(kind: str, path: Path, device: torch.device | str = "cpu") -> TextEncoder:
    """A frozen encoder from one of our checkpoints (DAMSM: with `.image_encoder` attached)."""
    _check_kind(kind)
    if kind == "damsm":
        from t2igan.text.damsm import load_damsm

        pair = load_damsm(text_path=path, with_image=True, device=device)
        # a plain attribute: R-precision finds it, the text encoder's state dict stays official
        object.__setattr__(pair.text_encoder, "image_encoder", pair.image_encoder)
        return pair.text_encoder
    from t2igan.text.clip import load_clip

    # the model config, name and input mode come from the checkpoint itself
    return load_clip(name="clip-small", pretrained=str(path), device=device)


# ------------------------------------------------------------------------------------------ training


def split_arrays(
    split: Split, image_size: int, cache_root: Path | None = None, progress: bool = True
) -> tuple[np.ndarray, list[list[str]]]:
    """uint8 (N, H, W, 3) images of a split (through the image cache) and its captions per image."""
    from t2igan.data.cache import ensure_image_cache

    cache = ensure_image_cache(split, image_size, "none", root=cache_root, progress=progress)
    images = np.array(cache.images)  # into memory: training indexes it randomly
    captions = [list(r.captions[: split.captions_per_image]) for r in split.records]
    return images, captions


def train_and_save(
    kind: str,
    dataset: str,
    train: Split,
    test: Split | None,
    path: Path,
    config: Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    cache_root: Path | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Pre-train from scratch and write `path` (atomically) and its JSON sidecar (last); returns the
    sidecar's content (sha256, retrieval_top1, stats)."""
    cfg = full_config(kind, config)
    key = key or cache_key(kind, dataset, train, cfg, seed)
    images, captions = split_arrays(train, cfg[DATA_IMAGE_SIZE], cache_root, progress)
    trainer_cfg = {k: v for k, v in cfg.items() if k != DATA_IMAGE_SIZE}
    start = time.perf_counter()
    if kind == "damsm":
        stats, save = _train_damsm(images, captions, trainer_cfg, device, seed, progress)
    else:
        stats, save = _train_clip(images, captions, trainer_cfg, device, seed, progress)
    stats.update(
        wall_seconds=time.perf_counter() - start,
        threads=torch.get_num_threads(),
        device=str(device),
        torch=str(torch.__version__),
        machine=platform.machine(),
        train_sha256=train.sha256,
        train_images=len(train),
        seed=seed,
        config=cfg,
        format=FORMAT_VERSION,
    )
    top1 = None
    if test is not None:
        encoder = save.encoder_for_eval()
        top1 = measure_top1(kind, encoder, test, cfg[DATA_IMAGE_SIZE], seed, cache_root, progress)
        stats["test_sha256"] = test.sha256
    stats["retrieval_top1"] = top1
    save.write(path, stats)
    meta = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "dataset": dataset,
        "key": key,
        "sha256": sha256_file(path),
        "retrieval_top1": top1,
        "stats": stats,
    }
    write_sidecar(sidecar_path(path), meta)
    return meta


@dataclass
class _Saver:
    """The trained modules and how to write them."""

    kind: str
    text: Any
    image: Any = None

    def encoder_for_eval(self) -> Any:
        if self.kind == "damsm":
            object.__setattr__(self.text, "image_encoder", self.image)
        return self.text

    def write(self, path: Path, stats: dict[str, Any]) -> None:
        if self.kind == "damsm":
            from t2igan.text.damsm import save_damsm_checkpoint

            save_damsm_checkpoint(path, self.text, self.image, stats=stats, config=stats["config"])
        else:
            from t2igan.text.clip import save_clip_checkpoint

            save_clip_checkpoint(path, self.text, stats=stats)


def _train_damsm(
    images: np.ndarray,
    captions: list[list[str]],
    cfg: Mapping[str, Any],
    device: Any,
    seed: int,
    progress: bool,
) -> tuple[dict[str, Any], _Saver]:
    from t2igan.text.damsm_pretrain import pretrain_damsm

    text, image, _, stats = pretrain_damsm(images, captions, cfg, device, seed, progress)
    out = stats.as_dict()
    out["train_retrieval_top1"] = out.pop("retrieval_top1")
    out["epochs"] = len(stats.epoch_losses)
    return out, _Saver("damsm", text, image)


def _train_clip(
    images: np.ndarray,
    captions: list[list[str]],
    cfg: Mapping[str, Any],
    device: Any,
    seed: int,
    progress: bool,
) -> tuple[dict[str, Any], _Saver]:
    from t2igan.text.clip_pretrain import pretrain_clip

    with torch.random.fork_rng(devices=[]):  # pretrain_clip seeds torch's global generator
        encoder, stats = pretrain_clip(images, captions, cfg, device, seed, progress)
    out = stats.as_dict()
    out.pop("config", None)
    out["epochs"] = len(stats.epoch_losses)
    return out, _Saver("clip", encoder)


# ------------------------------------------------------------------------------------------ retrieval


def measure_top1(
    kind: str,
    encoder: Any,
    test: Split,
    image_size: int,
    seed: int = 0,
    cache_root: Path | None = None,
    progress: bool = False,
    draws: int = RETRIEVAL_DRAWS,
) -> float:
    """Text->image top-1 among 100 candidates on `test`, mean over `draws` candidate draws."""
    images, captions = split_arrays(test, image_size, cache_root, progress)
    return mean_top1(kind, encoder, images, captions, seed, draws)


def mean_top1(
    kind: str, encoder: Any, images: np.ndarray, captions: list[list[str]], seed: int = 0, draws: int = 3
) -> float:
    """The mean over `draws` seeds of the kind's own retrieval_accuracy (text->image, 100 candidates)."""
    candidates = min(RETRIEVAL_CANDIDATES, len(images))
    scores = []
    for draw in range(draws):
        if kind == "damsm":
            from t2igan.text.damsm_pretrain import retrieval_accuracy

            image_encoder = encoder.image_encoder
            scores.append(
                retrieval_accuracy(encoder, image_encoder, images, captions, candidates, seed + draw)
            )
        else:
            from t2igan.text.clip_pretrain import retrieval_accuracy

            scores.append(retrieval_accuracy(encoder, images, captions, candidates, seed + draw))
    return float(np.mean(scores))


def _remeasure(
    cached: PretrainedEncoder,
    test: Split,
    device: Any,
    seed: int,
    cache_root: Path | None,
    progress: bool,
) -> None:
    """The cache holds the top-1 of another test split: measure it on this one and update the sidecar."""
    size = int(cached.stats.get("config", {}).get(DATA_IMAGE_SIZE, 64))
    cached.retrieval_top1 = measure_top1(cached.kind, cached.encoder, test, size, seed, cache_root, progress)
    cached.stats["test_sha256"] = test.sha256
    cached.stats["retrieval_top1"] = cached.retrieval_top1
    meta = _read_sidecar(cached.path) or {}
    if meta.get("sha256") == cached.sha256:
        meta.update(retrieval_top1=cached.retrieval_top1, stats=cached.stats)
        with _locked(cached.path.with_name(cached.path.name + ".lock")):
            write_sidecar(sidecar_path(cached.path), meta)
