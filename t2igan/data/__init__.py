"""Data: splits and their manifests, the image cache and loader, the embedded `shapes` dataset and the
readers of the real datasets in their official layouts."""

from typing import Any

from t2igan.data.cache import ImageCache, ensure_image_cache, load_size_for, open_image_cache
from t2igan.data.split import ImageRecord, Split, official_bbox_crop

_LOADER_NAMES = ("CachedImageDataset", "dataset_for_split", "epoch_choices", "make_dataloader")

__all__ = [
    *_LOADER_NAMES,
    "ImageCache",
    "ImageRecord",
    "Split",
    "ensure_image_cache",
    "load_size_for",
    "official_bbox_crop",
    "open_image_cache",
]


def __getattr__(name: str) -> Any:
    # The loader needs torch; `t2igan data check` and the registry should not pay for importing it.
    if name in _LOADER_NAMES:
        from t2igan.data import loader

        return getattr(loader, name)
    raise AttributeError(f"module 't2igan.data' has no attribute {name!r}")
