"""The image cache: a split's images decoded, cropped and resized once into .npy files that training
memory-maps, plus a JSON sidecar that says what they hold.

Two layouts:
- `square` (augmentation `none`): one uint8 (N, S, S, 3) array, each image resized (shorter side) and
  centre-cropped to S.
- `ragged` (augmentation `crop_flip`): each image resized with its shorter side to the load size and kept
  whole, as the official `Resize(int(imsize*76/64))` leaves it before `RandomCrop(imsize)`; the pixels of all
  images end to end in one flat uint8 array, and an int64 (N, 3) index (offset, height, width) beside it
  (`<stem>.index.npy`). A 640x480 COCO image is stored 405x304, so its random crops range over the whole
  width, not only the centre square.

Keyed by (dataset, split, image size, load size, manifest sha256). Written atomically, sidecar last; a
stale (other sha, layout or builder version), truncated or corrupted (content sha256) cache is rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from t2igan.atomic import atomic_path, write_atomic, write_sidecar
from t2igan.data.split import Split, image_file_size
from t2igan.errors import ConfigError, T2IGanError
from t2igan.hashing import sha256_file
from t2igan.paths import cache_root
from t2igan.progress import progress_bar

BUILDER_VERSION = 2  # bump when the pixels stored for the same split and sizes would change (2: 16-bit grey)
LOAD_RATIO = (
    76 / 64
)  # official `Resize(int(imsize * 76 / 64))` before RandomCrop (DF-GAN/GALIP prepare_dataset)
RESIZE_RULE = "shorter side to load size (PIL bilinear, as torchvision Resize), then centre crop to a square"
RAGGED_RESIZE_RULE = "shorter side to load size (PIL bilinear, as torchvision Resize), the whole image kept"
PARALLEL_MIN_IMAGES = 2_000  # below this a process pool costs more than it saves
# Caches up to this size are re-hashed on every open (the default shapes train cache, 36 MB, takes
# ~0.1 s); larger ones (CUB at 256 px is 2.4 GB) when asked: `t2igan data prepare --verify`.
VERIFY_MAX_BYTES = 256 * 2**20
logger = logging.getLogger(__name__)


def layout_for(augmentation: str) -> str:
    """`ragged` for crop_flip datasets (random crops need the whole resized image), `square` otherwise."""
    return "ragged" if augmentation == "crop_flip" else "square"


def index_path(array_path: Path) -> Path:
    """Where a ragged cache keeps its (offset, height, width) index, beside its pixel array."""
    return array_path.with_name(array_path.stem + ".index.npy")


def load_size_for(augmentation: str, image_size: int) -> int:
    """The stored side: int(imsize*76/64) for crop_flip datasets, imsize otherwise."""
    if augmentation == "crop_flip":
        return int(image_size * LOAD_RATIO)
    if augmentation == "none":
        return image_size
    raise ConfigError(f"augmentation {augmentation!r}: expected 'none' or 'crop_flip'")


@dataclass
class ImageCache:
    """An opened cache: the memory-mapped array and what its sidecar says."""

    array_path: Path
    sidecar_path: Path
    meta: dict[str, Any]
    rebuilt_reason: str | None = None  # why it was (re)built this time; None when reused
    _pixels: np.ndarray | None = field(default=None, repr=False)
    _index: np.ndarray | None = field(default=None, repr=False)

    @property
    def layout(self) -> str:
        return str(self.meta.get("layout", "square"))

    @property
    def pixels(self) -> np.ndarray:
        """The memory-mapped array: (N, S, S, 3) when square, flat (total,) when ragged."""
        if self._pixels is None:
            self._pixels = np.load(self.array_path, mmap_mode="r")
        return self._pixels

    @property
    def images(self) -> np.ndarray:
        """All images as one (N, S, S, 3) array (square layout only)."""
        if self.layout != "square":
            raise T2IGanError(
                f"image cache {self.array_path}: images of different sizes ({self.layout} layout); "
                "read them one at a time with image(i)"
            )
        return self.pixels

    @property
    def index(self) -> np.ndarray:
        """int64 (N, 3): offset into the flat array, height, width of each image (ragged layout)."""
        if self._index is None:
            if self.layout == "square":
                n, size = len(self), self.load_size
                offsets = np.arange(n, dtype=np.int64) * size * size * 3
                self._index = np.stack([offsets, np.full(n, size), np.full(n, size)], axis=1)
            else:
                self._index = np.load(index_path(self.array_path))
        return self._index

    def image(self, i: int) -> np.ndarray:
        """Image `i` as stored, uint8 (H, W, 3) (a view into the memory map)."""
        if self.layout == "square":
            return self.pixels[i]
        offset, height, width = (int(v) for v in self.index[i])
        return self.pixels[offset : offset + height * width * 3].reshape(height, width, 3)

    @property
    def image_size(self) -> int:
        return int(self.meta["image_size"])

    @property
    def load_size(self) -> int:
        return int(self.meta["load_size"])

    def __len__(self) -> int:
        return int(self.meta["count"] if "count" in self.meta else self.meta["shape"][0])


def cache_paths(split: Split, image_size: int, load_size: int, root: Path | None = None) -> tuple[Path, Path]:
    folder = (root or cache_root()) / "images" / split.dataset
    stem = f"{split.name}-{image_size}px-load{load_size}-{split.sha256[:16]}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def expected_meta(split: Split, image_size: int, load_size: int, layout: str = "square") -> dict[str, Any]:
    meta = {
        "builder_version": BUILDER_VERSION,
        "dataset": split.dataset,
        "split": split.name,
        "manifest_sha256": split.sha256,
        "image_size": image_size,
        "load_size": load_size,
        "dtype": "uint8",
        "source_files": source_files_fingerprint(split),
    }
    # square sidecars carry no `layout` key: caches built before ragged ones existed stay valid
    if layout == "square":
        meta["shape"] = [len(split), load_size, load_size, 3]
    else:
        meta.update(layout=layout, count=len(split))
    return meta


def source_files_fingerprint(split: Split) -> str | None:
    """sha256 over (path, size, modification time) of every image file of `split` (None when rendered): an
    image replaced under the same name, or another root with the same lists, makes the cache stale. A stat
    per file, not a read: 120k COCO files take about a second."""
    if split.renderer is None:
        digest = hashlib.sha256()
        for index, record in enumerate(split.records):
            path = split.image_path(index)
            try:
                stat = path.stat()
            except OSError as exc:
                raise T2IGanError(
                    f"image {path}: {exc.strerror or exc} (listed in {split.dataset}/{split.name})"
                ) from exc
            digest.update(f"{record.path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
    return None


# (path, size, mtime_ns) of arrays this process has already hashed: a bench opens the same cache once per
# run, and re-reading it each time would only repeat the same answer.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def remembered_sha256(path: Path, chunk: int = 2**22) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path, chunk)
    return _VERIFIED[key]


def invalid_reason(
    array_path: Path, sidecar_path: Path, expected: dict[str, Any], verify: bool | None = None
) -> str | None:
    """Why the cache on disk cannot be used (None when it can). `verify` re-hashes the array against the
    sha256 its sidecar recorded (None: only when it is at most VERIFY_MAX_BYTES)."""
    if not sidecar_path.is_file() or not array_path.is_file():
        return "missing"
    try:
        meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable sidecar {sidecar_path} ({exc})"
    for key, value in expected.items():
        if meta.get(key) == value:
            continue
        if key == "source_files":
            return "stale: image files changed since the cache was built (size or modification time)"
        return f"stale: {key} is {meta.get(key)!r}, expected {value!r}"
    size = array_path.stat().st_size
    if size != meta.get("bytes"):
        return f"truncated: {array_path} has {size} bytes, the sidecar says {meta.get('bytes')}"
    if meta.get("layout") == "ragged":
        index = index_path(array_path)
        if not index.is_file():
            return f"missing index {index}"
        held = (index.stat().st_size, remembered_sha256(index))
        if held != (meta.get("index_bytes"), meta.get("index_sha256")):
            return f"corrupt: {index} is not the index its sidecar recorded"
    if verify is None:
        verify = size <= VERIFY_MAX_BYTES
    if verify and meta.get("sha256") and remembered_sha256(array_path) != meta["sha256"]:
        return f"corrupt: {array_path} no longer has the sha256 its sidecar recorded ({meta['sha256'][:16]}…)"
    return None


def open_image_cache(
    split: Split, image_size: int, augmentation: str = "none", root: Path | None = None
) -> ImageCache:
    """The existing, valid cache; raises T2IGanError (saying why) when there is none."""
    load_size = load_size_for(augmentation, image_size)
    array_path, sidecar_path = cache_paths(split, image_size, load_size, root)
    expected = expected_meta(split, image_size, load_size, layout_for(augmentation))
    reason = invalid_reason(array_path, sidecar_path, expected)
    if reason is not None:
        raise T2IGanError(f"image cache {array_path}: {reason}; run `t2igan data prepare {split.dataset}`")
    return ImageCache(array_path, sidecar_path, json.loads(sidecar_path.read_text(encoding="utf-8")))


def ensure_image_cache(
    split: Split,
    image_size: int,
    augmentation: str = "none",
    root: Path | None = None,
    progress: bool = True,
    workers: int | None = None,
    verify: bool | None = None,
) -> ImageCache:
    """Open the cache of `split` at `image_size`, building it first if it is missing, stale, truncated or
    corrupted (`verify`: see `invalid_reason`)."""
    load_size = load_size_for(augmentation, image_size)
    array_path, sidecar_path = cache_paths(split, image_size, load_size, root)
    expected = expected_meta(split, image_size, load_size, layout_for(augmentation))
    reason = invalid_reason(array_path, sidecar_path, expected, verify)
    if reason is None:
        logger.debug("image cache %s: valid, reused", array_path)
        return ImageCache(array_path, sidecar_path, json.loads(sidecar_path.read_text(encoding="utf-8")))
    if reason == "missing":
        logger.debug("building image cache %s", array_path)
    else:
        logger.warning("rebuilding image cache %s: %s", array_path, reason)
    meta = build_image_cache(split, array_path, sidecar_path, expected, progress, workers)
    return ImageCache(array_path, sidecar_path, meta, rebuilt_reason=reason)


# ------------------------------------------------------------------------------------------- building


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after torchvision `Resize(size)`: the shorter side to `size`, the aspect kept."""
    if width <= height:
        return size, max(size, int(size * height / width))
    return max(size, int(size * width / height)), size


def resize_shorter(img: Image.Image, size: int) -> Image.Image:
    """torchvision `Resize(size)` (shorter side, bilinear) on a PIL image."""
    new = resized_size(*img.size, size)
    return img if new == img.size else img.resize(new, Image.BILINEAR)


def resize_and_center_crop(img: Image.Image, size: int) -> Image.Image:
    """torchvision `Resize(size)` (shorter side, bilinear) then `CenterCrop(size)`, on a PIL image."""
    img = resize_shorter(img, size)
    left = int(round((img.size[0] - size) / 2.0))
    top = int(round((img.size[1] - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def prepare_image(split: Split, index: int, load_size: int, layout: str = "square") -> np.ndarray:
    """The stored pixels of image `index`: rendered at load size, or decoded, cropped and resized (and,
    in the square layout, centre-cropped)."""
    if split.renderer is not None:
        img = split.load_image(index, size=load_size)
    elif layout == "ragged":
        img = resize_shorter(split.load_image(index), load_size)
    else:
        img = resize_and_center_crop(split.load_image(index), load_size)
    return np.asarray(img, dtype=np.uint8)


def stored_shape(split: Split, index: int, load_size: int) -> tuple[int, int]:
    """(height, width) image `index` will have in a ragged cache, read from the file header only."""
    if split.renderer is not None:
        return load_size, load_size
    size = image_file_size(split.image_path(index), split.records[index].bbox)
    width, height = resized_size(*size, load_size)
    return height, width


def ragged_index(split: Split, load_size: int) -> np.ndarray:
    """int64 (N, 3): offset into the flat pixel array, height, width, for every image of `split`."""
    shapes = np.array([stored_shape(split, i, load_size) for i in range(len(split))], dtype=np.int64)
    shapes = shapes.reshape(len(split), 2)
    sizes = shapes[:, 0] * shapes[:, 1] * 3
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return np.concatenate([offsets[:, None], shapes], axis=1)


def build_image_cache(
    split: Split,
    array_path: Path,
    sidecar_path: Path,
    meta: dict[str, Any],
    progress: bool = True,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write the array into a temporary file, then os.replace it, then the sidecar (last)."""
    array_path.parent.mkdir(parents=True, exist_ok=True)
    sidecar_path.unlink(missing_ok=True)  # an old sidecar must never vouch for a half-replaced array
    count, load_size = len(split), meta["load_size"]
    ragged = meta.get("layout") == "ragged"
    index = None
    if ragged:  # the sizes first (file headers only), so that workers know where each image goes
        index = ragged_index(split, load_size)
        write_atomic(index_path(array_path), lambda handle: np.save(handle, index))
        shape: tuple[int, ...] = (int(index[-1, 0] + index[-1, 1] * index[-1, 2] * 3) if count else 0,)
    else:
        shape = (count, load_size, load_size, 3)
    workers = _worker_count(workers, count, split)
    try:
        with atomic_path(array_path, suffix=".npy.tmp") as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            del out  # workers and the loop below reopen it r+; the header is written
            bar = progress_bar(
                total=count, show=progress, unit="img", desc=f"cache {split.dataset}/{split.name}"
            )
            with bar:
                if workers > 1:
                    _fill_parallel(split, tmp, load_size, index, workers, bar)
                else:
                    _fill_range(split, tmp, load_size, index, range(count), bar.update)
    except BaseException:
        index_path(array_path).unlink(missing_ok=True)  # a failed build leaves nothing behind
        raise
    full = {
        **meta,
        "bytes": array_path.stat().st_size,
        "sha256": remembered_sha256(array_path),
        "resize": "rendered at load size"
        if split.renderer is not None
        else (RAGGED_RESIZE_RULE if ragged else RESIZE_RULE),
        "preprocessing": dict(split.preprocessing),
    }
    if ragged:
        full.update(
            index_bytes=index_path(array_path).stat().st_size,
            index_sha256=remembered_sha256(index_path(array_path)),
        )
    write_sidecar(sidecar_path, full)
    return full


def _worker_count(workers: int | None, count: int, split: Split) -> int:
    if workers is not None:
        return max(0, workers)
    if split.renderer is not None or count < PARALLEL_MIN_IMAGES:
        return 0  # rendering is ~0.1 ms per 64 px image: a pool would only add start-up time
    return min(2, os.cpu_count() or 1)


def _fill_range(
    split: Split,
    path: Path,
    load_size: int,
    index: np.ndarray | None,
    indices: range,
    advance: Any = None,
) -> int:
    """Write images `indices` into the array at `path`: rows of a square array, or, with a ragged `index`,
    each image's pixels at its offset (an image whose size changed since the index was made is an error)."""
    out = np.load(path, mmap_mode="r+")
    for i in indices:
        if index is None:
            out[i] = prepare_image(split, i, load_size)
        else:
            offset, height, width = (int(v) for v in index[i])
            pixels = prepare_image(split, i, load_size, "ragged")
            if pixels.shape != (height, width, 3):
                raise T2IGanError(
                    f"image {i} of {split.dataset}/{split.name}: decoded to {pixels.shape[:2]}, its header "
                    f"said {(height, width)}; was the file replaced while the cache was built?"
                )
            out[offset : offset + pixels.size] = pixels.reshape(-1)
        if advance is not None:
            advance(1)
    out.flush()
    return len(indices)


# Each pool worker receives the split once (initializer), not once per chunk: a COCO split is ~80k records.
_WORKER_SPLIT: dict[str, Any] = {}


def _init_worker(split: Split, path: Path, load_size: int, index: np.ndarray | None) -> None:
    _WORKER_SPLIT.update(split=split, path=path, load_size=load_size, index=index)


def _fill_chunk(indices: range) -> int:
    state = _WORKER_SPLIT
    return _fill_range(state["split"], state["path"], state["load_size"], state["index"], indices)


def _fill_parallel(
    split: Split, path: Path, load_size: int, index: np.ndarray | None, workers: int, bar: Any
) -> None:
    chunk = 256
    chunks = [range(start, min(start + chunk, len(split))) for start in range(0, len(split), chunk)]
    # spawn, not fork: the parent may hold torch/OpenMP threads that a forked child would inherit locked
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(split, path, load_size, index)
    ) as pool:
        for future in as_completed([pool.submit(_fill_chunk, indices) for indices in chunks]):
            bar.update(future.result())
