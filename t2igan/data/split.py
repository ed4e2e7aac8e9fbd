"""Splits as data: the images and captions of one dataset split, and a manifest whose sha256 pins them.

Every run of a benchmark records the split sha256; two runs compare only if theirs are equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from t2igan.errors import T2IGanError

MANIFEST_FORMAT = 1  # bump when what a manifest holds changes


class Renderer(Protocol):
    """Draws a generated dataset's image from its record (the `shapes` generator)."""

    def render(self, record: ImageRecord, size: int) -> Image.Image: ...


@dataclass(frozen=True)
class ImageRecord:
    """One image: its key, its captions, where its file is (None when rendered), its bounding box
    (x, y, w, h) for the official crop, and attributes (class id, or the `shapes` ground truth)."""

    key: str
    captions: tuple[str, ...]
    path: str | None = None
    bbox: tuple[int, int, int, int] | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def official_bbox_crop(size: tuple[int, int], bbox: Sequence[int]) -> tuple[int, int, int, int]:
    """The crop box of AttnGAN/DF-GAN/GALIP `get_imgs`: a square of half-side r = int(0.75*max(w, h))
    around the box centre, clipped to the image (so it may come out non-square)."""
    width, height = size
    x, y, w, h = bbox
    r = int(max(w, h) * 0.75)
    center_x, center_y = int((2 * x + w) / 2), int((2 * y + h) / 2)
    return max(0, center_x - r), max(0, center_y - r), min(width, center_x + r), min(height, center_y + r)


def canonical_json(value: Any) -> bytes:
    """The byte form a manifest is hashed in: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@contextmanager
def _image_errors(path: str | Path) -> Iterator[None]:
    """A missing or undecodable image file as a T2IGanError that names it."""
    try:
        yield
    except FileNotFoundError:
        raise T2IGanError(f"image {path}: no such file") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise T2IGanError(f"image {path}: unreadable ({exc}); expected a JPEG/PNG image") from None


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes whose pixel range a file does not state, or colour spaces Pillow only relabels: no right answer.
REFUSED_MODES = {
    "I": "32-bit integer pixels, whose range the file does not state",
    "F": "32-bit float pixels, whose range the file does not state",
    "LAB": "CIE L*a*b* pixels, which Pillow does not convert to RGB colour-correctly",
    "HSV": "HSV pixels",
}


def to_rgb(img: Image.Image, source: str | Path) -> Image.Image:
    """8-bit RGB from any mode Pillow opens, as the official loaders' `convert('RGB')` gives it (grey,
    palette, CMYK, and alpha dropped), except where that would be wrong: 16-bit grey keeps its top 8 bits
    (convert clips it at 255, which makes an image almost white), and a mode with no known range is
    refused with the reason."""
    if img.mode in SIXTEEN_BIT_MODES:
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode in REFUSED_MODES:
        raise T2IGanError(
            f"image {source}: mode {img.mode} ({REFUSED_MODES[img.mode]}); save it as 8- or 16-bit RGB or grey"
        )
    try:
        return img.convert("RGB")
    except ValueError as exc:  # a mode Pillow has no conversion for ("La", premultiplied)
        raise T2IGanError(f"image {source}: mode {img.mode} cannot be converted to RGB ({exc})") from None


def read_image_file(path: str | Path, bbox: Sequence[int] | None = None) -> Image.Image:
    """Decode an image file to RGB (then the official bbox crop); a bad file raises T2IGanError."""
    with _image_errors(path), Image.open(path) as img:
        img = to_rgb(img, path)
    if bbox is not None:
        img = img.crop(official_bbox_crop(img.size, bbox))
    return img


def image_file_size(path: str | Path, bbox: Sequence[int] | None = None) -> tuple[int, int]:
    """(width, height) `read_image_file` would return, from the file's header alone (nothing decoded)."""
    with _image_errors(path), Image.open(path) as img:
        size = img.size
    if bbox is not None:
        left, top, right, bottom = official_bbox_crop(size, bbox)
        size = (right - left, bottom - top)
    return size


@dataclass(frozen=True)
class Split:
    """One split of one dataset: records (image-major; caption j of image i is `i*K + j`), where the
    files are, how images are pre-processed, and anything skipped while reading it (`problems`)."""

    dataset: str
    name: str
    records: tuple[ImageRecord, ...]
    root: Path | None
    captions_per_image: int
    preprocessing: Mapping[str, Any] = field(default_factory=dict)
    renderer: Renderer | None = None
    native_size: int = 256  # the size `load_image` renders at when images are generated
    problems: tuple[str, ...] = ()  # files skipped in "collect" mode (check), by name and reason
    notes: tuple[str, ...] = ()  # what was read but is worth knowing (e.g. caption files with extra lines)

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", tuple(self.records))
        object.__setattr__(self, "problems", tuple(self.problems))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __len__(self) -> int:
        return len(self.records)

    def image_path(self, index: int) -> Path:
        record = self.records[index]
        if record.path is None:
            raise T2IGanError(
                f"{self.dataset}/{self.name}: image {record.key!r} is generated, it has no file"
            )
        return (self.root or Path(".")) / record.path

    def load_image(self, index: int, size: int | None = None) -> Image.Image:
        """The RGB image after the official crop (file datasets) or as rendered at `size` (shapes)."""
        record = self.records[index]
        if self.renderer is not None:
            return self.renderer.render(record, size or self.native_size)
        return read_image_file(self.image_path(index), record.bbox)

    def captions(self) -> list[str]:
        """Every caption, image-major: the index the official loaders use (`i*K + j`)."""
        return [c for r in self.records for c in r.captions[: self.captions_per_image]]

    def caption(self, image_index: int, caption_index: int) -> str:
        return self.records[image_index].captions[caption_index]

    def manifest(self) -> dict[str, Any]:
        """Everything that defines the split's content, as plain JSON data."""
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "dataset": self.dataset,
            "split": self.name,
            "count": len(self.records),
            "captions_per_image": self.captions_per_image,
            "num_captions": sum(len(r.captions) for r in self.records),
            "files": [r.path if r.path is not None else r.key for r in self.records],
            "captions": [list(r.captions) for r in self.records],
            "preprocessing": _plain(dict(self.preprocessing)),
        }
        if any(r.attributes for r in self.records):  # class ids, or the shapes ground truth the probes score
            attributes = canonical_json([_plain(dict(r.attributes)) for r in self.records])
            manifest["attributes_sha256"] = hashlib.sha256(attributes).hexdigest()
        if any(r.bbox is not None for r in self.records):
            manifest["bboxes"] = [list(r.bbox) if r.bbox is not None else None for r in self.records]
        return manifest

    @cached_property
    def sha256(self) -> str:
        """sha256 of the canonical JSON of the manifest."""
        return hashlib.sha256(canonical_json(self.manifest())).hexdigest()

    def summary(self) -> dict[str, Any]:
        """What a run record keeps about its split (the manifest without the long lists)."""
        return {
            "dataset": self.dataset,
            "split": self.name,
            "count": len(self.records),
            "captions_per_image": self.captions_per_image,
            "sha256": self.sha256,
            "preprocessing": _plain(dict(self.preprocessing)),
        }


def _plain(value: Any) -> Any:
    """Tuples to lists and Paths to strings, so that the manifest round-trips through JSON unchanged."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    return value
