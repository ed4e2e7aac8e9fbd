"""The project's own text encoders for an embedded dataset (`shapes`): pre-trained on first use, cached by
content hash under `cache_root()/encoders/`, reused afterwards, with their retrieval accuracy recorded.

The cache key covers everything that changes the weights: kind, dataset, train split sha256, the full
pre-training config, the seed and FORMAT_VERSION (bumped whenever the training code changes results).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from t2igan.atomic import write_sidecar
from t2igan.data.split import Split, canonical_json
from t2igan.errors import ConfigError, T2IGanError, T2IGanWarning
from t2igan.locking import exclusive, under_way
from t2igan.nn.interfaces import TextEncoder
from t2igan.paths import cache_root as default_cache_root
from t2igan.specs import DATA_IMAGE_SIZE, EncoderRecipe, LoadedText
from t2igan.weights import sha256_file

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the training code (or a default) would change the weights for the same key
# top-1 text->image among 100 candidates: the size of R-precision's candidate set (1 match + 99 mismatches;
# docs/official-code.md, Evaluation protocols)
RETRIEVAL_CANDIDATES = 100
RETRIEVAL_DRAWS = 3  # top-1 is the mean over this many draws of the 99 mismatched candidates


def recipe(kind: str, registry: Registry | None = None) -> EncoderRecipe:
    """The pre-training recipe of the text encoder `kind` in `registry` (default: the installed plugins'),
    or a clear error when it has none. Every function here takes the same optional `registry`."""
    if registry is None:
        from t2igan.registry import get_registry

        registry = get_registry()
    spec = registry.text_encoder(kind)  # an unknown name fails here, with the registered ones
    if spec.recipe is None:
        able = sorted(n for n, s in registry.text_encoders.items() if s.recipe is not None)
        raise ConfigError(
            f"text encoder {kind!r} has no pre-training recipe, so it cannot be trained on a dataset "
            f"without weights; those with one: {', '.join(able) or 'none'}"
        )
    return spec.recipe


@dataclass
class PretrainedEncoder:
    """A project-trained text encoder, ready to use (frozen, eval mode, on the requested device).

    `encoder` is what the recipe's `load` gives (for DAMSM the bi-LSTM carrying the image encoder as the plain
    attribute `image_encoder`; for CLIP both towers), `view` what metrics get. `retrieval_top1` is text->image top-1
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
    view: Any = None

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


def full_config(
    kind: str, config: Mapping[str, Any] | None = None, registry: Registry | None = None
) -> dict[str, Any]:
    """Trainer dataclass defaults, then the recipe's defaults, then `config`; checked, as plain JSON."""
    how = recipe(kind, registry)
    merged = {**how.defaults, **dict(config or {})}
    size = int(merged.pop(DATA_IMAGE_SIZE, 64))
    if size < 8:
        raise ConfigError(f"{DATA_IMAGE_SIZE}={size}: expected an image size of at least 8 pixels")
    return {DATA_IMAGE_SIZE: size, **_plain(dict(how.config(merged)))}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def cache_key(
    kind: str,
    dataset: str,
    train: Split,
    config: Mapping[str, Any],
    seed: int,
    registry: Registry | None = None,
) -> str:
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
    extra = recipe(kind, registry).key_extra
    if extra is not None:
        payload.update(extra(config))
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
    registry: Registry | None = None,
) -> PretrainedEncoder:
    """The cached encoder for (kind, dataset, train split, config, seed), pre-training it first if there
    is none (or the file on disk does not match its sidecar's sha256, which warns). A lock file serialises
    processes that race for the same key; the loser loads what the winner wrote."""
    how = recipe(kind, registry)
    cfg = full_config(kind, config, registry)
    key = cache_key(kind, dataset, train, cfg, seed, registry)
    path = cache_path(kind, dataset, key, cache_root)
    cached = _try_load(how, kind, path, key, device)
    if cached is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(path.with_name(path.name + ".lock"), f"the {dataset} {how.label}"):
            cached = _try_load(how, kind, path, key, device)  # another process may have finished meanwhile
            if cached is None:
                logger.info("pre-training the %s %s (first use; cached at %s)", dataset, how.label, path)
                with under_way(path, f"pre-training the {dataset} {how.label}"):
                    train_and_save(
                        kind,
                        dataset,
                        train,
                        test,
                        path,
                        cfg,
                        device,
                        seed,
                        progress,
                        cache_root,
                        key,
                        registry,
                    )
                cached = _try_load(how, kind, path, key, device)
                if cached is None:
                    raise T2IGanError(f"pre-trained {kind} encoder {path}: unreadable right after writing it")
                cached.trained_now = True
                _report_top1(cached, dataset, how.label)
    if test is not None and cached.stats.get("test_sha256") != test.sha256:
        _remeasure(cached, test, device, seed, cache_root, progress, registry)
    return cached


def _report_top1(encoder: PretrainedEncoder, dataset: str, label: str) -> None:
    top1 = encoder.retrieval_top1
    figure = "not measured (no test split)" if top1 is None else f"{top1:.3f}"
    seconds = encoder.stats.get("seconds", 0.0)
    logger.info(
        "pre-trained the %s %s in %.0f s: text->image top-1 among %d = %s (sha256 %s)",
        dataset,
        label,
        seconds,
        RETRIEVAL_CANDIDATES,
        figure,
        encoder.sha256[:16],
    )


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


def _try_load(
    how: EncoderRecipe, kind: str, path: Path, key: str, device: torch.device | str
) -> PretrainedEncoder | None:
    """The cached encoder, or None when there is none or it is unusable (which warns, never loads it)."""
    meta = _read_sidecar(path)
    if meta is None and not path.is_file():
        return None
    problem = _cache_problem(path, key, meta)
    if problem is None:
        try:
            loaded = how.load(path, device)
        except (T2IGanError, RuntimeError, OSError, ValueError) as exc:
            problem = f"unreadable ({exc})"
    if problem is not None:
        warnings.warn(
            f"cached {kind} encoder {path}: {problem}; pre-training it again", T2IGanWarning, stacklevel=3
        )
        return None
    assert meta is not None
    stats = dict(meta.get("stats") or {})
    return PretrainedEncoder(
        kind, loaded.encoder, path, meta["sha256"], key, meta.get("retrieval_top1"), stats, view=loaded.view
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


def load_encoder(
    kind: str, path: Path, device: torch.device | str = "cpu", registry: Registry | None = None
) -> LoadedText:
    """A frozen encoder from one of our checkpoints, as the recipe of `kind` loads it."""
    return recipe(kind, registry).load(path, device)


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
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Pre-train from scratch and write `path` (atomically) and its JSON sidecar (last); returns the
    sidecar's content (sha256, retrieval_top1, stats)."""
    cfg = full_config(kind, config, registry)
    key = key or cache_key(kind, dataset, train, cfg, seed, registry)
    images, captions = split_arrays(train, cfg[DATA_IMAGE_SIZE], cache_root, progress)
    trainer_cfg = {k: v for k, v in cfg.items() if k != DATA_IMAGE_SIZE}
    start = time.perf_counter()
    trained = recipe(kind, registry).train(images, captions, trainer_cfg, device, seed, progress)
    stats = trained.stats
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
        size = cfg[DATA_IMAGE_SIZE]
        top1 = measure_top1(kind, trained.encoder, test, size, seed, cache_root, progress, registry=registry)
        stats["test_sha256"] = test.sha256
    stats["retrieval_top1"] = top1
    trained.save(path, stats)
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
    registry: Registry | None = None,
) -> float:
    """Text->image top-1 among 100 candidates on `test`, mean over `draws` candidate draws."""
    images, captions = split_arrays(test, image_size, cache_root, progress)
    return mean_top1(kind, encoder, images, captions, seed, draws, registry)


def mean_top1(
    kind: str,
    encoder: Any,
    images: np.ndarray,
    captions: list[list[str]],
    seed: int = 0,
    draws: int = 3,
    registry: Registry | None = None,
) -> float:
    """The mean over `draws` seeds of the recipe's retrieval (text->image, 100 candidates)."""
    candidates = min(RETRIEVAL_CANDIDATES, len(images))
    retrieval = recipe(kind, registry).retrieval
    return float(np.mean([retrieval(encoder, images, captions, candidates, seed + d) for d in range(draws)]))


def _remeasure(
    cached: PretrainedEncoder,
    test: Split,
    device: Any,
    seed: int,
    cache_root: Path | None,
    progress: bool,
    registry: Registry | None = None,
) -> None:
    """The cache holds the top-1 of another test split: measure it on this one and update the sidecar."""
    size = int(cached.stats.get("config", {}).get(DATA_IMAGE_SIZE, 64))
    cached.retrieval_top1 = measure_top1(
        cached.kind, cached.encoder, test, size, seed, cache_root, progress, registry=registry
    )
    cached.stats["test_sha256"] = test.sha256
    cached.stats["retrieval_top1"] = cached.retrieval_top1
    meta = _read_sidecar(cached.path) or {}
    if meta.get("sha256") == cached.sha256:
        meta.update(retrieval_top1=cached.retrieval_top1, stats=cached.stats)
        with exclusive(
            cached.path.with_name(cached.path.name + ".lock"), f"the {cached.path.name} measurement"
        ):
            write_sidecar(sidecar_path(cached.path), meta)
