"""R-precision as AttnGAN/DM-GAN define it: each generated image ranks its true caption among 99 captions
of other images (of another class where class ids exist); a hit when the true one scores highest; mean ±
std of the hit rate over 10 shuffled folds. Seeded. Encoders are passed in (DAMSM pair or CLIP)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from t2igan import __version__ as T2IGAN_VERSION
from t2igan.errors import ConfigError
from t2igan.metrics.context import EvalBatch, EvalContext, EvalSample
from t2igan.metrics.values import MetricValue, make_provenance, weights_provenance

# DM-GAN code/trainer.py sampling(): 99 mismatched captions per trial, 10 folds of the shuffled trials
MISMATCHED, FOLDS = 99, 10


def record_captions(record: Any) -> Sequence[str]:
    return record["captions"] if isinstance(record, Mapping) else record.captions


def record_attributes(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record.get("attributes") or {}
    return getattr(record, "attributes", None) or {}


def record_class_ids(records: Sequence[Any]) -> np.ndarray | None:
    """Per-record `attributes["class_id"]` when every record has one (CUB, flowers), else None (COCO)."""
    ids = [record_attributes(r).get("class_id") for r in records]
    if not ids or any(i is None for i in ids):
        return None
    _, groups = np.unique(np.asarray([str(i) for i in ids]), return_inverse=True)
    return groups.astype(np.int64)


def sample_mismatches(
    true_records: np.ndarray,
    caption_counts: np.ndarray,
    class_ids: np.ndarray | None,
    rng: np.random.Generator,
    count: int = MISMATCHED,
) -> tuple[np.ndarray, np.ndarray]:
    """(records, caption indices), each (N, count): random images of another class (another image when
    there are no class ids), then a random caption of each (DM-GAN datasets.py get_mis_caption)."""
    n_records = len(caption_counts)
    groups = class_ids if class_ids is not None else np.arange(n_records)
    own = groups[true_records][:, None]
    if np.all(groups == groups[0]):
        raise ConfigError("R-precision needs captions of at least two images (or classes) to mismatch")
    picked = rng.integers(0, n_records, size=(len(true_records), count))
    clash = groups[picked] == own
    while clash.any():  # rejection sampling, as the official loop redraws same-class images
        picked[clash] = rng.integers(0, n_records, size=int(clash.sum()))
        clash = groups[picked] == own
    captions = np.floor(rng.random(picked.shape) * caption_counts[picked]).astype(np.int64)
    return picked, captions


def fold_statistics(
    hits: np.ndarray, rng: np.random.Generator, folds: int = FOLDS
) -> tuple[float, float, list[float]]:
    """Mean and (population) std of the hit rate over `folds` near-equal parts of the shuffled trials.

    DM-GAN averages R[i*3000:(i+1)*3000-1] (2,999 of each 3,000); here every trial counts.
    """
    if len(hits) < folds:
        raise ConfigError(f"R-precision: {len(hits)} trials cannot form {folds} folds")
    shuffled = hits[rng.permutation(len(hits))]
    scores = [float(part.mean()) for part in np.array_split(shuffled, folds)]
    return float(np.mean(scores)), float(np.std(scores)), scores


def true_caption_wins(image_codes: Tensor, true_codes: Tensor, mismatch_codes: Tensor) -> np.ndarray:
    """Hits: cosine(image, true caption) is the argmax over [true, mismatched...] (ties go to the true one)."""
    candidates = torch.cat([true_codes.unsqueeze(1), mismatch_codes], dim=1)  # (N, 1 + K, D)
    scores = F.cosine_similarity(image_codes.unsqueeze(1), candidates, dim=-1, eps=1e-8)
    return (scores.argmax(dim=1) == 0).cpu().numpy()


@dataclass
class RPrecisionResult:
    mean: float
    std: float
    fold_scores: list[float]
    hits: np.ndarray


def r_precision(
    image_codes: Tensor,
    samples: Sequence[EvalSample],
    records: Sequence[Any],
    encode_texts: Callable[[list[str]], Tensor],
    seed: int,
    class_ids: np.ndarray | None = None,
    mismatched: int = MISMATCHED,
    folds: int = FOLDS,
    text_batch_size: int = 256,
) -> RPrecisionResult:
    """R-precision of generated images (`image_codes` (N, D), row i generated from `samples[i]`)."""
    if len(samples) != len(image_codes):
        raise ConfigError(f"R-precision: {len(image_codes)} image codes for {len(samples)} samples")
    rng = np.random.default_rng(seed)
    counts = np.asarray([len(record_captions(r)) for r in records], dtype=np.int64)
    true_records = np.asarray([s.image_index for s in samples], dtype=np.int64)
    true_captions = np.asarray([s.caption_index for s in samples], dtype=np.int64)
    mis_records, mis_captions = sample_mismatches(true_records, counts, class_ids, rng, mismatched)
    # encode each needed caption once: trials share captions
    pairs = np.concatenate(
        [np.stack([true_records, true_captions], 1), np.stack([mis_records.ravel(), mis_captions.ravel()], 1)]
    )
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    texts = [record_captions(records[r])[c] for r, c in unique]
    codes = torch.cat(
        [
            encode_texts(texts[i : i + text_batch_size]).float().cpu()
            for i in range(0, len(texts), text_batch_size)
        ]
    )
    inverse = torch.from_numpy(inverse.reshape(-1))
    n = len(samples)
    true_codes = codes[inverse[:n]]
    mismatch_codes = codes[inverse[n:]].reshape(n, mismatched, -1)
    hits = true_caption_wins(image_codes.float().cpu(), true_codes, mismatch_codes)
    mean, std, scores = fold_statistics(hits, rng, folds)
    return RPrecisionResult(mean, std, scores, hits)


class RPrecisionMetric(ABC):
    """Base of the DAMSM and CLIP R-precision metrics: keeps image codes per batch, ranks at the end."""

    name = ""
    encoder_name = ""

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        self.config, self.context = dict(config), context
        self.encoder = context.encoder(self.encoder_name, self.name)
        self.seed = int(self.config.get("seed", context.seed))
        self.codes: list[Tensor] = []
        self.samples: list[EvalSample] = []

    @abstractmethod
    def image_codes(self, images: Tensor) -> Tensor: ...

    @abstractmethod
    def text_codes(self, captions: list[str]) -> Tensor: ...

    def extra_provenance(self) -> dict[str, Any]:
        return {}

    @torch.no_grad()
    def update(self, batch: EvalBatch) -> None:
        self.codes.append(self.image_codes(batch.images.to(self.context.device)).float().cpu())
        self.samples.extend(batch.samples)

    @torch.no_grad()
    def compute(self) -> list[MetricValue]:
        if not self.samples:
            raise ConfigError(f"metric {self.name!r}: no generated images with known captions were evaluated")
        records = self.context.records
        class_ids = record_class_ids(records)
        result = r_precision(
            torch.cat(self.codes),
            self.samples,
            records,
            self.text_codes,
            self.seed,
            class_ids,
            int(self.config.get("mismatched", MISMATCHED)),
            int(self.config.get("folds", FOLDS)),
        )
        fields = {
            "backend": "t2igan",
            "backend_version": T2IGAN_VERSION,
            **weights_provenance(self.encoder, self.config),
        }
        fields.update(self.extra_provenance())
        provenance = make_provenance(
            n_real=len(records),
            n_fake=len(self.samples),
            seed=self.seed,
            mismatch="other class" if class_ids is not None else "other image",
            candidates=int(self.config.get("mismatched", MISMATCHED)) + 1,
            folds=len(result.fold_scores),
            **fields,
        )
        return [MetricValue(self.name, result.mean, result.std, provenance, higher_is_better=True)]


class DAMSMRPrecisionMetric(RPrecisionMetric):
    """AttnGAN/DM-GAN R-precision with the DAMSM pair: `image_encoder(images) -> (regions, code)` on images
    in [-1, 1], `text_encoder.encode_captions(captions).sentence`."""

    name = "r_precision"
    encoder_name = "damsm"

    def __init__(self, config: Mapping[str, Any], context: EvalContext):
        super().__init__(config, context)
        if getattr(self.encoder, "image_encoder", None) is None:
            raise ConfigError(
                "metric 'r_precision' needs the DAMSM image encoder as well as the text encoder "
                "(load the pair with its image_encoder weights)"
            )

    def image_codes(self, images: Tensor) -> Tensor:
        return self.encoder.image_encoder(images)[1]

    def text_codes(self, captions: list[str]) -> Tensor:
        return self.encoder.text_encoder.encode_captions(captions).sentence

    def extra_provenance(self) -> dict[str, Any]:
        from t2igan.weights import sha256_file

        files = [getattr(self.encoder, name, None) for name in ("text_file", "image_file")]
        present = [Path(f) for f in files if f is not None and Path(f).is_file()]
        return {
            "extractor": "DAMSM " + " + ".join(p.name for p in present) if present else "DAMSM",
            # the pair defines the number: one sha256 over both files' sha256s
            "extractor_sha256": hashlib.sha256("".join(sha256_file(p) for p in present).encode()).hexdigest()
            if present
            else None,
            "mode": "paper",
        }
