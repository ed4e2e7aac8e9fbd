"""Tiny dataset trees in the official on-disk layouts: a few generated JPEGs, caption files and split
pickles written the way the official metadata is (protocol-0 lists of keys, a py2 numpy class_info)."""

from __future__ import annotations

import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache root and no dataset roots from the environment."""
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    for name in (
        "T2IGAN_DATA",
        "T2IGAN_CUB_ROOT",
        "T2IGAN_COCO_ROOT",
        "T2IGAN_FLOWERS_ROOT",
        "T2IGAN_CELEBA_TINY_ROOT",
        "T2IGAN_SHAPES_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def write_jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    """A smooth random picture (JPEG-friendly) of `size` (w, h)."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, size=3)
    gx, gy = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    img = (base[None, None, :] * 0.5 + 100 * gx[..., None] + 60 * gy[..., None]).clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def write_captions(path: Path, count: int, stem: str, blank_lines: bool = True) -> list[str]:
    """`count` captions, with blank lines in between as in the Reed et al. text_c10 files."""
    captions = [f"caption {i} of {stem} a bird with wings" for i in range(count)]
    text = "\n\n".join(captions) if blank_lines else "\n".join(captions)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return captions


def write_filenames(path: Path, keys: list[str]) -> None:
    """filenames.pickle as in the AttnGAN birds metadata: a protocol-0 list of unicode strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(list(keys), protocol=0))


def py2_class_info_bytes(ids: list[int]) -> bytes:
    """class_info.pickle byte for byte in the layout of the official birds metadata: a Python 2
    protocol-0 list of numpy int64 scalars, a run of equal ids sharing one memoised object (opcodes read
    with pickletools from a copy of that file; the first element spells out the globals)."""

    def raw(value: int) -> str:
        return "S" + repr(int(value).to_bytes(8, "little", signed=True))[1:]

    lines = [
        "(lp0",
        "cnumpy.core.multiarray",
        "scalar",
        "p1",
        "(cnumpy",
        "dtype",
        "p2",
        "(S'i8'",
        "p3",
        "I0",
        "I1",
        "tp4",
        "Rp5",
        "(I3",
        "S'<'",
        "p6",
        "NNNI-1",
        "I-1",
        "I0",
        "tp7",
        "b" + raw(ids[0]),
        "p8",
        "tp9",
        "Rp10",
    ]
    last, memo = 10, 11
    for previous, value in zip(ids, ids[1:], strict=False):
        if value == previous:
            lines.append(f"ag{last}")
            continue
        lines += ["ag1", "(g5", raw(value), f"p{memo}", f"tp{memo + 1}", f"Rp{memo + 2}"]
        last, memo = memo + 2, memo + 3
    lines.append("a.")
    return "\n".join(lines).encode("latin1")


@dataclass
class Tree:
    """A dataset tree written by a fixture, and what it holds."""

    root: Path
    keys: dict[str, list[str]]
    captions_per_image: int
    images: dict[str, Path] = field(default_factory=dict)  # key -> image file
    texts: dict[str, Path] = field(default_factory=dict)  # key -> caption file
    extra: dict = field(default_factory=dict)


CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross")


@pytest.fixture
def cub_tree(tmp_path) -> Tree:
    """CUB in the `birds` layout under a folder deliberately NOT named birds (the crop must still apply)."""
    root = tmp_path / "cub_data"
    keys: dict[str, list[str]] = {"train": [], "test": []}
    tree = Tree(root, keys, 10)
    image_lines, box_lines, class_ids = [], [], {"train": [], "test": []}
    image_id = 0
    for class_index, class_dir in enumerate(CUB_CLASSES):
        split = "train" if class_index == 0 else "test"  # the T2I split is by class
        for n in range(3):
            image_id += 1
            key = f"{class_dir}/{class_dir.split('.')[1]}_{n:04d}_{image_id}"
            size = (120 + 10 * n, 90)
            write_jpeg(root / "CUB_200_2011" / "images" / f"{key}.jpg", size, image_id)
            image_lines.append(f"{image_id} {key}.jpg")
            box = (10.0 + n, 15.0, 40.0, 30.0 + n)
            box_lines.append(f"{image_id} " + " ".join(f"{v:.1f}" for v in box))
            write_captions(root / "text" / f"{key}.txt", 10, key)
            keys[split].append(key)
            class_ids[split].append(class_index + 1)
            tree.images[key] = root / "CUB_200_2011" / "images" / f"{key}.jpg"
            tree.texts[key] = root / "text" / f"{key}.txt"
            tree.extra.setdefault("boxes", {})[key] = box
            tree.extra.setdefault("sizes", {})[key] = size
    (root / "CUB_200_2011" / "images.txt").write_text("\n".join(image_lines) + "\n")
    (root / "CUB_200_2011" / "bounding_boxes.txt").write_text("\n".join(box_lines) + "\n")
    for split in ("train", "test"):
        write_filenames(root / split / "filenames.pickle", keys[split])
        (root / split / "class_info.pickle").write_bytes(py2_class_info_bytes(class_ids[split]))
    tree.extra["class_ids"] = class_ids
    return tree


def _flat_tree(root: Path, image_dir, text_key, image_key, per_image: int, counts=(3, 2)) -> Tree:
    keys = {
        "train": [f"image_{i:05d}" for i in range(1, counts[0] + 1)],
        "test": [f"image_{i:05d}" for i in range(counts[0] + 1, counts[0] + counts[1] + 1)],
    }
    tree = Tree(root, {}, per_image)
    for split, split_keys in keys.items():
        listed = []
        for i, key in enumerate(split_keys):
            folder = image_dir(split)
            image = folder / f"{key}.jpg"
            write_jpeg(image, (80 + 8 * i, 64), zlib.crc32(key.encode()) % 1000)
            text = root / "text" / f"{text_key(key)}.txt"
            write_captions(text, per_image, key)
            listed.append(image_key(key))
            tree.images[image_key(key)] = image
            tree.texts[image_key(key)] = text
        write_filenames(root / split / "filenames.pickle", listed)
        tree.keys[split] = listed
    return tree


@pytest.fixture(params=["dfgan", "ratlip"])
def flowers_tree(request, tmp_path) -> Tree:
    """Oxford-102 flowers in DF-GAN's (`oxford-102-flowers/images/<key>.jpg`) or RATLIP's layout
    (`images/<key.jpg>`, keys with extension)."""
    root = tmp_path / "flower"
    if request.param == "dfgan":
        tree = _flat_tree(root, lambda s: root / "oxford-102-flowers" / "images", str, str, 10)
    else:
        tree = _flat_tree(root, lambda s: root / "images", str, lambda k: f"{k}.jpg", 10)
    tree.extra["layout"] = request.param
    return tree


COCO_LAYOUTS = {
    "galip": lambda root, sub: root / "images" / sub / "jpg",
    "dfgan": lambda root, sub: root / "images" / sub,
    "attngan": lambda root, sub: root / "images",
}


@pytest.fixture(params=sorted(COCO_LAYOUTS))
def coco_tree(request, tmp_path) -> Tree:
    """MS-COCO 2014 in each of the three image layouts; caption files hold 6 lines (the loader keeps 5)."""
    root = tmp_path / "coco"
    folder = COCO_LAYOUTS[request.param]
    keys = {
        "train": ["COCO_train2014_000000000009", "COCO_train2014_000000000025"],
        "test": ["COCO_val2014_000000000042", "COCO_val2014_000000000073", "COCO_val2014_000000000074"],
    }
    tree = Tree(root, keys, 5, extra={"layout": request.param})
    for split, split_keys in keys.items():
        sub = "train2014" if split == "train" else "val2014"
        for i, key in enumerate(split_keys):
            tree.images[key] = folder(root, sub) / f"{key}.jpg"
            write_jpeg(tree.images[key], (96, 72), i)
            tree.texts[key] = root / "text" / f"{key}.txt"
            write_captions(tree.texts[key], 6, key, blank_lines=False)
        write_filenames(root / split / "filenames.pickle", split_keys)
    return tree


@pytest.fixture
def celeba_tree(tmp_path) -> Tree:
    """An MM-CelebA-HQ-style tree: images/<id>.jpg, text/<id>.txt (10 lines), integer-like ids."""
    root = tmp_path / "faces"
    return _flat_tree(root, lambda s: root / "images", str, str, 10, counts=(4, 2))
