"""Training batches from the image cache: (image in [-1, 1], image index, caption index) per item.

One random caption per image per epoch, as the official loaders draw (`random.randint(0, K)` in
DF-GAN code/lib/datasets.py `__getitem__`), but drawn from (seed, epoch) so that a run reproduces.
`crop_flip` datasets get the official RandomCrop(imsize) + RandomHorizontalFlip from the load-size cache,
whose images keep their aspect (shorter side at the load size), so a crop may fall anywhere in the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from t2igan.data.cache import ImageCache, ensure_image_cache
from t2igan.data.split import Split
from t2igan.errors import ConfigError


@dataclass(frozen=True)
class EpochChoices:
    """Every random choice of one epoch, per image: caption index, crop offset (top, left), flip."""

    captions: np.ndarray  # (N,) int64
    offsets: np.ndarray  # (N, 2) int64
    flips: np.ndarray  # (N,) bool


def epoch_choices(
    seed: int,
    epoch: int,
    count: int,
    captions_per_image: int,
    load_size: int,
    image_size: int,
    augment: bool,
    shapes: np.ndarray | None = None,
) -> EpochChoices:
    """The choices of epoch `epoch`: a pure function of its arguments (same in every process).

    `shapes` (N, 2) holds each stored image's (height, width) (default: load_size square). A crop offset is
    uniform over the image's own range, as torchvision RandomCrop draws it; without `augment`, the centre.
    """
    rng = np.random.default_rng([seed, epoch, count])
    captions = rng.integers(0, captions_per_image, size=count)
    if shapes is None:
        shapes = np.full((count, 2), load_size, dtype=np.int64)
    ranges = np.asarray(shapes, dtype=np.int64) - image_size + 1  # valid offsets per axis
    if augment:
        offsets = np.floor(rng.random((count, 2)) * ranges).astype(np.int64)
        flips = rng.random(count) < 0.5
    else:
        offsets = np.round((ranges - 1) / 2.0).astype(np.int64)  # CenterCrop's int(round((H - h) / 2))
        flips = np.zeros(count, dtype=bool)
    return EpochChoices(captions, offsets, flips)


class CachedImageDataset(Dataset):
    """A torch Dataset over an image cache. Call `set_epoch(e)` before iterating each epoch (before the
    DataLoader starts its workers, which copy the dataset: do not use persistent workers)."""

    def __init__(
        self,
        cache: ImageCache,
        captions_per_image: int,
        augmentation: str = "none",
        seed: int = 0,
        epoch: int = 0,
    ):
        if augmentation not in ("none", "crop_flip"):
            raise ConfigError(f"augmentation {augmentation!r}: expected 'none' or 'crop_flip'")
        if augmentation == "crop_flip" and cache.load_size < cache.image_size:
            raise ConfigError(
                f"{cache.array_path}: load size {cache.load_size} < image size {cache.image_size}"
            )
        self.array_path: Path = cache.array_path
        self.layout = cache.layout
        self.index = cache.index  # (offset, height, width) per image; small, copied into workers
        self.count = len(cache)
        self.image_size = cache.image_size
        self.load_size = cache.load_size
        self.captions_per_image = captions_per_image
        self.augmentation = augmentation
        self.seed = seed
        self._images: np.ndarray | None = None
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.choices = epoch_choices(
            self.seed,
            epoch,
            self.count,
            self.captions_per_image,
            self.load_size,
            self.image_size,
            augment=self.augmentation == "crop_flip",
            shapes=self.index[:, 1:],
        )

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        if self._images is None:  # opened per process: a memmap must not be pickled into workers
            self._images = np.load(self.array_path, mmap_mode="r")
        if self.layout == "square":
            stored = self._images[index]
        else:
            offset, height, width = (int(v) for v in self.index[index])
            stored = self._images[offset : offset + height * width * 3].reshape(height, width, 3)
        top, left = (int(v) for v in self.choices.offsets[index])
        pixels = stored[top : top + self.image_size, left : left + self.image_size]
        if self.choices.flips[index]:
            pixels = pixels[:, ::-1]
        image = torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float()  # a copy: memmaps are read-only
        return image.div_(127.5).sub_(1.0), index, int(self.choices.captions[index])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_images"] = None
        return state


def dataset_for_split(
    split: Split,
    image_size: int,
    augmentation: str = "none",
    seed: int = 0,
    cache_root: Path | None = None,
    progress: bool = True,
) -> CachedImageDataset:
    """Build (or reuse) the split's cache and wrap it as a training dataset."""
    cache = ensure_image_cache(split, image_size, augmentation, root=cache_root, progress=progress)
    return CachedImageDataset(cache, split.captions_per_image, augmentation, seed)


def make_dataloader(
    dataset: CachedImageDataset,
    batch_size: int,
    epoch: int = 0,
    num_workers: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
) -> DataLoader:
    """A DataLoader for one epoch: order and augmentation drawn from (dataset.seed, epoch)."""
    dataset.set_epoch(epoch)
    generator = torch.Generator().manual_seed(dataset.seed * 1_000_003 + epoch)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        num_workers=num_workers,
        generator=generator,
        persistent_workers=False,
    )
