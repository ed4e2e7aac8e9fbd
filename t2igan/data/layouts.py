"""Readers of the real datasets in the on-disk layouts the official code expects: CUB-200-2011 (`birds`),
Oxford-102 flowers (DF-GAN and RATLIP), MS-COCO 2014 (AttnGAN, DF-GAN, GALIP) and CelebA-tiny.

Each returns a `Split`; the layout found and the pre-processing applied are written into its manifest.
Layout facts: docs/official-code.md, Datasets (DF-GAN/GALIP/RATLIP `code/lib/datasets.py`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2igan.data.safe_pickle import safe_load
from t2igan.data.split import ImageRecord, Split
from t2igan.errors import ConfigError, T2IGanError
from t2igan.hashing import sha256_file

SPLITS = ("train", "test")
CAPTION_ERRORS = ("strict", "replace")
WORD = re.compile(r"\w")
CUB_CROP_RULE = (
    "bbox crop: r = int(0.75*max(w, h)) around the box centre, clipped to the image "
    "(AttnGAN/DF-GAN/GALIP code/lib/datasets.py get_imgs); applied whatever the root folder is named"
)


@dataclass
class Problems:
    """Raises at the first problem ("raise"), or keeps them all and skips the image ("collect")."""

    mode: str = "raise"
    caption_errors: str = "strict"  # "replace": read a caption file that is not UTF-8 with U+FFFD
    found: list[str] = field(default_factory=list)
    longer: list[str] = field(default_factory=list)  # caption files with more non-empty lines than used
    replaced: list[str] = field(default_factory=list)  # caption files read with replacement characters

    def __post_init__(self) -> None:
        if self.mode not in ("raise", "collect"):
            raise ConfigError(f"on_error={self.mode!r}: expected 'raise' or 'collect'")
        if self.caption_errors not in CAPTION_ERRORS:
            raise ConfigError(
                f"caption_errors={self.caption_errors!r}: expected one of {', '.join(CAPTION_ERRORS)}"
            )

    def report(self, message: str) -> None:
        if self.mode == "raise":
            raise T2IGanError(message)
        self.found.append(message)


# ---------------------------------------------------------------------------------------- file reading


def read_captions(path: Path, count: int, problems: Problems | None = None) -> tuple[str, ...]:
    """The first `count` non-empty lines of a caption file (lines without a word character are empty to
    the official loaders too: their tokenizer yields nothing and they skip the line). A file with more
    lines is used as the official loaders use it (its first `count`) and named in `problems.longer`. A file
    that is not UTF-8 is refused, naming its line (the official loaders open it as UTF-8 and stop), or
    read with replacement characters and named in `problems.replaced` under caption_errors="replace"."""
    problems = problems if problems is not None else Problems()
    if not path.is_file():
        raise T2IGanError(f"caption file {path}: no such file (expected {count} captions, one per line)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        if problems.caption_errors != "replace":
            raise T2IGanError(
                f"caption file {path}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}); fix the file, "
                "or read such files with replacement characters: give the dataset as NAME:caption_errors=replace "
                "(e.g. --data cub:caption_errors=replace)"
            ) from None
        text = raw.decode("utf-8", errors="replace")
        problems.replaced.append(f"{path} line {line}")
    lines = [line.strip() for line in text.splitlines() if WORD.search(line)]
    if len(lines) < count:
        raise T2IGanError(f"caption file {path}: {len(lines)} non-empty lines, expected at least {count}")
    if len(lines) > count:
        problems.longer.append(f"{path} ({len(lines)} lines)")
    return tuple(lines[:count])


def read_filenames(path: Path) -> list[str]:
    """train|test/filenames.pickle: the ordered keys of a split (plain list of strings)."""
    if not path.is_file():
        raise T2IGanError(
            f"{path}: no such file (expected the split's list of image keys, as in the official metadata)"
        )
    keys = safe_load(path)
    if not isinstance(keys, (list, tuple)):
        raise T2IGanError(f"{path}: holds a {type(keys).__name__}, expected a list of image keys")
    return [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in keys]


def read_class_ids(path: Path, count: int) -> list[int] | None:
    """class_info.pickle (a py2 pickle, read with encoding='bytes' as DF-GAN does), if present."""
    if not path.is_file():
        return None
    ids = safe_load(path, encoding="bytes")
    if not isinstance(ids, (list, tuple)) or len(ids) != count:
        raise T2IGanError(f"{path}: expected a list of {count} class ids, one per image of filenames.pickle")
    return [int(i) for i in ids]


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise T2IGanError(f"{path}: no such folder (expected {what})")
    return path


def _check_split(dataset: str, split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"{dataset} has splits {', '.join(SPLITS)}, not {split!r}")


def _strip_ext(key: str) -> str:
    return key[: -len(Path(key).suffix)] if Path(key).suffix.lower() in (".jpg", ".jpeg", ".png") else key


# ------------------------------------------------------------------------------------- record building


def build_records(
    root: Path,
    keys: Sequence[str],
    image_of: Callable[[str], Path],
    text_of: Callable[[str], Path],
    captions_per_image: int,
    problems: Problems,
    bboxes: dict[str, tuple[int, int, int, int]] | None = None,
    class_ids: Sequence[int] | None = None,
) -> list[ImageRecord]:
    """One record per key whose image and caption file are readable; problems go to `problems`."""
    records = []
    for index, key in enumerate(keys):
        image = image_of(key)
        if not image.is_file():
            problems.report(f"image {image}: no such file (listed in filenames.pickle as {key!r})")
            continue
        try:
            captions = read_captions(text_of(key), captions_per_image, problems)
        except T2IGanError as exc:
            problems.report(str(exc))
            continue
        bbox = None
        if bboxes is not None:
            if key not in bboxes:
                problems.report(f"image {key!r}: no bounding box in CUB_200_2011/bounding_boxes.txt")
                continue
            bbox = bboxes[key]
        attributes = {"class_id": class_ids[index]} if class_ids is not None else {}
        records.append(ImageRecord(key, captions, image.relative_to(root).as_posix(), bbox, attributes))
    return records


def _split(
    dataset: str,
    split: str,
    root: Path,
    records: list[ImageRecord],
    k: int,
    problems: Problems,
    preprocessing: dict[str, Any],
) -> Split:
    if not records:
        detail = f"; first problem: {problems.found[0]}" if problems.found else ""
        raise T2IGanError(f"{dataset}/{split} under {root}: no usable images{detail}")
    notes: tuple[str, ...] = ()
    if problems.longer:
        notes += (
            f"{len(problems.longer)} caption file(s) have more than {k} non-empty lines; the first {k} are "
            f"used, as the official loaders do: {', '.join(problems.longer[:3])}"
            + (" …" if len(problems.longer) > 3 else ""),
        )
    if problems.replaced:
        notes += (
            f"{len(problems.replaced)} caption file(s) are not UTF-8 and were read with replacement characters "
            f"(caption_errors=replace): {', '.join(problems.replaced[:3])}"
            + (" …" if len(problems.replaced) > 3 else ""),
        )
    return Split(
        dataset, split, tuple(records), root, k, preprocessing, problems=tuple(problems.found), notes=notes
    )


# ------------------------------------------------------------------------------------------------- CUB


def read_cub_bboxes(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """key ('class_dir/img', no extension) -> (x, y, w, h), truncated to int as DF-GAN's `.astype(int)`."""
    images_txt = root / "CUB_200_2011" / "images.txt"
    boxes_txt = root / "CUB_200_2011" / "bounding_boxes.txt"
    for path in (images_txt, boxes_txt):
        if not path.is_file():
            raise T2IGanError(
                f"{path}: no such file (expected the CUB-200-2011 metadata; cub needs it for the crop)"
            )
    paths = dict(_id_rows(images_txt, 2))
    boxes: dict[str, tuple[int, int, int, int]] = {}
    for image_id, values in _id_rows(boxes_txt, 5):
        if image_id not in paths:
            raise T2IGanError(f"{boxes_txt}: image id {image_id} is not in {images_txt}")
        try:
            x, y, w, h = (int(float(v)) for v in values.split())
        except ValueError:
            raise T2IGanError(f"{boxes_txt}: line of id {image_id} is not 'id x y w h'") from None
        boxes[_strip_ext(paths[image_id])] = (x, y, w, h)
    return boxes


def _id_rows(path: Path, fields: int) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2 or len(line.split()) != fields:
            raise T2IGanError(f"{path}:{number}: expected {fields} space-separated fields, got {line!r}")
        rows.append((parts[0], parts[1]))
    return rows


def load_cub_split(
    root: str | os.PathLike,
    split: str,
    on_error: str = "raise",
    captions_per_image: int = 10,
    caption_errors: str = "strict",
) -> Split:
    """CUB-200-2011 in the `birds` layout (10 captions per image: DF-GAN code/cfg/bird.yml)."""
    _check_split("cub", split)
    root = _require_dir(Path(root), "the CUB root holding CUB_200_2011/, text/, train/ and test/")
    images = _require_dir(root / "CUB_200_2011" / "images", "the CUB-200-2011 images")
    keys = read_filenames(root / split / "filenames.pickle")
    problems = Problems(on_error, caption_errors)
    records = build_records(
        root,
        keys,
        lambda k: images / f"{k}.jpg",
        lambda k: root / "text" / f"{k}.txt",
        captions_per_image,
        problems,
        bboxes=read_cub_bboxes(root),
        class_ids=read_class_ids(root / split / "class_info.pickle", len(keys)),
    )
    preprocessing = {
        "layout": "birds (AttnGAN/DF-GAN/GALIP/RATLIP)",
        "crop": CUB_CROP_RULE,
        "bbox_table_sha256": sha256_file(root / "CUB_200_2011" / "bounding_boxes.txt"),
    }
    return _split("cub", split, root, records, captions_per_image, problems, preprocessing)


# --------------------------------------------------------------------------------------------- flowers


def load_flowers_split(
    root: str | os.PathLike,
    split: str,
    on_error: str = "raise",
    captions_per_image: int = 10,
    caption_errors: str = "strict",
) -> Split:
    """Oxford-102 flowers: DF-GAN's `oxford-102-flowers/images/<key>.jpg` or RATLIP's `images/<key.jpg>`,
    captions in `text/<key without extension>.txt` (10 per image: DF-GAN code/cfg/flower.yml)."""
    _check_split("flowers", split)
    root = _require_dir(Path(root), "the flowers root holding images/, text/, train/ and test/")
    dfgan = root / "oxford-102-flowers" / "images"
    if dfgan.is_dir():
        layout, folder = "DF-GAN (oxford-102-flowers/images/<key>.jpg)", dfgan
    elif (root / "images").is_dir():
        layout, folder = "RATLIP (images/<key with extension>)", root / "images"
    else:
        raise T2IGanError(
            f"{root}: neither {dfgan} (DF-GAN layout) nor {root / 'images'} (RATLIP layout) exists"
        )
    keys = read_filenames(root / split / "filenames.pickle")
    problems = Problems(on_error, caption_errors)
    records = build_records(
        root,
        keys,
        lambda k: folder / f"{_strip_ext(k)}.jpg",
        lambda k: root / "text" / f"{_strip_ext(k)}.txt",
        captions_per_image,
        problems,
        class_ids=read_class_ids(root / split / "class_info.pickle", len(keys)),
    )
    return _split(
        "flowers", split, root, records, captions_per_image, problems, {"layout": layout, "crop": "none"}
    )


# ------------------------------------------------------------------------------------------------ COCO


def detect_coco_images(root: Path, split: str) -> tuple[str, Path]:
    """The image folder of a COCO split, trying GALIP/RATLIP, then DF-GAN, then AttnGAN/DM-GAN."""
    sub = "train2014" if split == "train" else "val2014"
    candidates = (
        ("GALIP/RATLIP (images/<set>/jpg/<key>.jpg)", root / "images" / sub / "jpg"),
        ("DF-GAN (images/<set>/<key>.jpg)", root / "images" / sub),
        ("AttnGAN/DM-GAN (images/<key>.jpg)", root / "images"),
    )
    for layout, folder in candidates[:2]:
        if folder.is_dir():
            return layout, folder
    other = "val2014" if sub == "train2014" else "train2014"
    if (root / "images" / other).is_dir():  # a per-set tree missing this set: not the flat layout
        raise T2IGanError(
            f"{root / 'images' / sub}: no such folder (the {split!r} split's images); {root / 'images'} holds "
            f"{other}/ in the per-set layout, so {sub}/ is expected beside it"
        )
    if candidates[2][1].is_dir():
        return candidates[2]
    raise T2IGanError(
        f"{root}: no COCO image folder for split {split!r}: expected one of "
        + ", ".join(str(folder) for _, folder in candidates)
    )


def load_coco_split(
    root: str | os.PathLike,
    split: str,
    on_error: str = "raise",
    captions_per_image: int = 5,
    caption_errors: str = "strict",
) -> Split:
    """MS-COCO 2014: train = train2014, test = val2014; the first 5 captions (DF-GAN code/cfg/coco.yml)."""
    _check_split("coco", split)
    root = _require_dir(Path(root), "the COCO root holding images/, text/, train/ and test/")
    layout, folder = detect_coco_images(root, split)
    keys = read_filenames(root / split / "filenames.pickle")
    problems = Problems(on_error, caption_errors)
    records = build_records(
        root,
        keys,
        lambda k: folder / f"{k}.jpg",
        lambda k: root / "text" / f"{k}.txt",
        captions_per_image,
        problems,
    )
    return _split(
        "coco", split, root, records, captions_per_image, problems, {"layout": layout, "crop": "none"}
    )


# ----------------------------------------------------------------------------------------- CelebA-tiny


def read_subset(path: Path) -> list[str]:
    if not path.is_file():
        raise T2IGanError(f"subset list {path}: no such file (expected one image id per line)")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_celeba_tiny_split(
    root: str | os.PathLike,
    split: str,
    on_error: str = "raise",
    captions_per_image: int = 10,
    subset: str | None = None,
    caption_errors: str = "strict",
) -> Split:
    """CelebA-tiny as a subset of a Multi-Modal-CelebA-HQ-style tree: `images/<id>.jpg` (or MM-CelebA-HQ's
    `image/CelebA-HQ-img/<id>.jpg`), `text/<id>.txt` with 10 lines, train|test/filenames.pickle.

    RATLIP's exact subset is not published (docs/official-code.md, Datasets); `subset` names a file of ids (one per
    line, relative to the root or absolute) that restricts the split, and its sha256 is recorded.
    """
    _check_split("celeba-tiny", split)
    root = _require_dir(Path(root), "the CelebA-tiny root holding images/, text/, train/ and test/")
    if (root / "images").is_dir():
        layout, folder = "MM-CelebA-HQ style (images/<id>.jpg)", root / "images"
    elif (root / "image" / "CelebA-HQ-img").is_dir():
        layout, folder = "MM-CelebA-HQ (image/CelebA-HQ-img/<id>.jpg)", root / "image" / "CelebA-HQ-img"
    else:
        raise T2IGanError(f"{root}: neither {root / 'images'} nor {root / 'image' / 'CelebA-HQ-img'} exists")
    keys = read_filenames(root / split / "filenames.pickle")
    preprocessing: dict[str, Any] = {"layout": layout, "crop": "none", "subset": None}
    if subset is not None:
        subset_path = Path(subset) if Path(subset).is_absolute() else root / subset
        wanted = set(read_subset(subset_path))
        keys = [k for k in keys if _strip_ext(k) in wanted]
        preprocessing["subset"] = {"file": str(subset), "sha256": sha256_file(subset_path)}
    problems = Problems(on_error, caption_errors)
    records = build_records(
        root,
        keys,
        lambda k: folder / f"{_strip_ext(k)}.jpg",
        lambda k: root / "text" / f"{_strip_ext(k)}.txt",
        captions_per_image,
        problems,
    )
    return _split("celeba-tiny", split, root, records, captions_per_image, problems, preprocessing)
