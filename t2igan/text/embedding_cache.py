"""Text embeddings of a split, computed once per (encoder weights sha256, split sha256) and reused by
training and evaluation: one row per caption, image-major (row = image * K + caption)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan.errors import T2IGanError
from t2igan.nn.interfaces import TextEncoder, TextFeatures

CACHE_VERSION = 1


@dataclass
class EmbeddingTable:
    """Memory-mapped sentence (and optionally word) embeddings of every caption of a split."""

    folder: Path
    sentence: np.ndarray  # (N*K, D_s) float32
    words: np.ndarray | None  # (N*K, D_w, T) float32
    mask: np.ndarray | None  # (N*K, T) bool, True at padding
    captions_per_image: int
    meta: dict[str, Any]

    def rows(self, image_index: torch.Tensor, caption_index: torch.Tensor) -> np.ndarray:
        return (image_index.long() * self.captions_per_image + caption_index.long()).numpy()

    def features(self, image_index: torch.Tensor, caption_index: torch.Tensor) -> TextFeatures:
        rows = self.rows(image_index, caption_index)
        sentence = torch.from_numpy(np.ascontiguousarray(self.sentence[rows]))
        words = None if self.words is None else torch.from_numpy(np.ascontiguousarray(self.words[rows]))
        mask = None if self.mask is None else torch.from_numpy(np.ascontiguousarray(self.mask[rows]))
        return TextFeatures(sentence, words, mask)


def _folder(root: Path, encoder_key: str, split: Any) -> Path:
    return root / "embeddings" / encoder_key / f"{split.dataset}-{split.name}-{split.sha256[:16]}"


def _valid(folder: Path, expected: dict[str, Any]) -> bool:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    if any(meta.get(k) != v for k, v in expected.items()):
        return False
    for name, size in meta.get("bytes", {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def load_or_build(
    encoder: TextEncoder,
    encoder_key: str,
    split: Any,
    cache_root: Path,
    with_words: bool = False,
    batch_size: int = 256,
    progress: bool = True,
) -> EmbeddingTable:
    """Return the cached table, building it first if missing, stale or truncated.

    `encoder_key` names the encoder and its weights (e.g. "damsm-<sha256>"); `split` is a
    t2igan.data Split (its records' captions, `captions_per_image`, `sha256`).
    """
    folder = _folder(Path(cache_root), encoder_key, split)
    expected = {
        "version": CACHE_VERSION,
        "encoder": encoder_key,
        "split_sha256": split.sha256,
        "with_words": with_words,
    }
    if not _valid(folder, expected):
        _build(encoder, split, folder, expected, with_words, batch_size, progress)
    return _open(folder, split.captions_per_image)


def _captions(split: Any) -> list[str]:
    per_image = split.captions_per_image
    captions: list[str] = []
    for record in split.records:
        if len(record.captions) < per_image:
            raise T2IGanError(
                f"{split.dataset}/{split.name}: image {record.key!r} has {len(record.captions)} captions, "
                f"expected {per_image}"
            )
        captions.extend(record.captions[:per_image])
    return captions


def _build(
    encoder, split, folder: Path, meta: dict[str, Any], with_words: bool, batch_size: int, progress: bool
) -> None:
    from t2igan.progress import progress_bar

    captions = _captions(split)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        arrays: dict[str, np.lib.format.open_memmap] = {}
        encoder.eval()
        with torch.no_grad():
            for start in progress_bar(
                range(0, len(captions), batch_size),
                show=progress,
                desc=f"text embeddings {split.dataset}/{split.name}",
                unit="batch",
            ):
                features = encoder.encode_captions(captions[start : start + batch_size])
                chunk = {"sentence": features.sentence}
                if with_words:
                    if features.words is None:
                        raise T2IGanError(f"text encoder {meta['encoder']} gives no word features")
                    chunk["words"], chunk["mask"] = features.words, features.mask
                for name, tensor in chunk.items():
                    _store(
                        arrays, tmp, name, tensor, start, len(captions), getattr(encoder, "max_words", None)
                    )
        for array in arrays.values():
            array.flush()
        meta = {
            **meta,
            "count": len(captions),
            "bytes": {f"{n}.npy": (tmp / f"{n}.npy").stat().st_size for n in arrays},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _store(
    arrays: dict, folder: Path, name: str, tensor: torch.Tensor, start: int, total: int, max_words: int | None
) -> None:
    """Write one batch; word features (B, D, T) and masks (B, T) are padded to the encoder's max_words."""
    values = tensor.detach().cpu()
    values = values.numpy().astype(np.bool_ if values.dtype == torch.bool else np.float32)
    if name not in arrays:
        shape = list(values.shape[1:])
        if name in ("words", "mask") and max_words:
            shape[-1] = max_words
        arrays[name] = np.lib.format.open_memmap(
            folder / f"{name}.npy", mode="w+", dtype=values.dtype, shape=(total, *shape)
        )
    target = arrays[name]
    if values.shape[-1] > target.shape[-1] and name in ("words", "mask"):
        raise T2IGanError(
            f"text encoder gave {values.shape[-1]} word positions, more than its max_words {target.shape[-1]}"
        )
    if values.shape[1:] != target.shape[1:]:  # word features padded to each batch's longest caption
        padded = np.zeros((len(values), *target.shape[1:]), dtype=target.dtype)
        if name == "mask":
            padded[:] = True
        index = tuple(slice(0, s) for s in values.shape[1:])
        padded[(slice(None), *index)] = values
        values = padded
    target[start : start + len(values)] = values


def _open(folder: Path, captions_per_image: int) -> EmbeddingTable:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))

    def load(name: str) -> np.ndarray | None:
        path = folder / f"{name}.npy"
        return np.load(path, mmap_mode="r") if path.is_file() else None

    return EmbeddingTable(folder, load("sentence"), load("words"), load("mask"), captions_per_image, meta)
