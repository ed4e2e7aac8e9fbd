"""Sample grids (fixed captions × fixed noise, identical for every model so grids compare side by side)
and sample folders (one PNG per image, with the caption each was drawn from)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from t2igan.atomic import write_atomic, write_json_atomic
from t2igan.errors import ConfigError
from t2igan.metrics.images import to_uint8_nhwc


def grid_image(images: Tensor, rows: int, padding: int = 2) -> Image.Image:
    """Quantised as every image t2igan saves for evaluation (metrics.images.to_uint8), so a grid cell and the
    same image written by `save_generated` or `t2igan sample --out FOLDER` have the same pixels."""
    pixels = torch.from_numpy(to_uint8_nhwc(images.detach()))
    count, height, width, _ = pixels.shape
    cols = -(-count // rows)
    canvas = torch.full(
        (rows * (height + padding) + padding, cols * (width + padding) + padding, 3), 255, dtype=torch.uint8
    )
    for i in range(count):
        r, c = divmod(i, cols)
        y, x = padding + r * (height + padding), padding + c * (width + padding)
        canvas[y : y + height, x : x + width] = pixels[i]
    return Image.fromarray(canvas.numpy())


def save_grid(images: Tensor, path: str | os.PathLike, rows: int) -> Path:
    """Write a PNG grid atomically (row-major: one row per caption when rows = number of captions)."""
    image = grid_image(images, rows)
    return write_atomic(path, lambda handle: image.save(handle, format="PNG"))


def stage_grid(stages: list[Tensor]) -> tuple[Tensor, int]:
    """A multi-stage generator's outputs side by side: one row per sample, one column per stage (coarsest
    first), each stage enlarged to the finest size by pixel repetition so nothing is smoothed away.
    Returns the images in row-major order and the number of rows, for `save_grid`."""
    size = stages[-1].shape[-1]
    enlarged = [F.interpolate(s.float(), size=(size, size), mode="nearest") for s in stages]
    return torch.stack(enlarged, dim=1).flatten(0, 1), len(stages[-1])


SAMPLE_LISTING = "captions.json"


def save_sample_folder(
    folder: Path, images: Tensor, captions: list[str], per_caption: int, seed: int, source: str
) -> Path:
    """One PNG per image (caption-major, as the grid) and captions.json saying which caption, noise
    column and seed each file was drawn with. Refuses a folder that already holds a listing, so an
    earlier sampling is never overwritten. Only same-size images go in the folder, so `t2igan eval
    FOLDER` scores it as plain images (its captions are free text, not a split's)."""
    check_sample_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    listing = []
    for index, array in enumerate(to_uint8_nhwc(images)):
        name = f"{index:04d}.png"
        picture = Image.fromarray(array)
        write_atomic(folder / name, lambda handle, picture=picture: picture.save(handle, format="PNG"))
        caption_index, column = divmod(index, per_caption)
        listing.append({"file": name, "caption": captions[caption_index], "column": column, "seed": seed})
    write_json_atomic(folder / SAMPLE_LISTING, {"source": source, "images": listing})
    return folder


def check_sample_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"--out {folder}: is a file; expected a folder, or a path ending in .png for a grid"
        )
    if (folder / SAMPLE_LISTING).exists():
        raise ConfigError(
            f"--out {folder}: already holds {SAMPLE_LISTING} from an earlier sampling; "
            "choose a new folder (or a .png path for a grid)"
        )
