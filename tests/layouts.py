"""Dataset trees in the official on-disk layouts, written by tests: generated JPEGs, caption files and split
pickles written the way the official metadata is (protocol-0 lists of keys, a py2 numpy class_info), and
the AttnGAN captions pickle that holds the official DAMSM vocabulary."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


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


CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross")


def write_cub(
    root: Path,
    train_classes: Sequence[str] = CUB_CLASSES[:1],
    test_classes: Sequence[str] = CUB_CLASSES[1:],
    per_class: int = 3,
) -> Tree:
    """CUB in the `birds` layout: the T2I split is by class, `per_class` images of each, bounding boxes."""
    keys: dict[str, list[str]] = {"train": [], "test": []}
    tree = Tree(root, keys, 10)
    image_lines, box_lines, class_ids = [], [], {"train": [], "test": []}
    image_id = 0
    classes = [("train", c) for c in train_classes] + [("test", c) for c in test_classes]
    for class_index, (split, class_dir) in enumerate(classes):
        for n in range(per_class):
            image_id += 1
            key = f"{class_dir}/{class_dir.split('.')[1]}_{n:04d}_{image_id}"
            size = (120 + 10 * (n % 3), 90)
            write_jpeg(root / "CUB_200_2011" / "images" / f"{key}.jpg", size, image_id)
            image_lines.append(f"{image_id} {key}.jpg")
            box = (10.0 + n % 3, 15.0, 40.0, 30.0 + n % 3)
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


def write_flat(
    root: Path,
    image_dir: Callable[[str], Path],
    text_key: Callable[[str], str],
    image_key: Callable[[str], str],
    per_image: int,
    counts: tuple[int, int] = (3, 2),
) -> Tree:
    """The flowers and faces layouts: `image_%05d` keys, one caption file per image, split pickles."""
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
            write_jpeg(image, (80 + 8 * (i % 4), 64), zlib.crc32(key.encode()) % 1000)
            text = root / "text" / f"{text_key(key)}.txt"
            write_captions(text, per_image, key)
            listed.append(image_key(key))
            tree.images[image_key(key)] = image
            tree.texts[image_key(key)] = text
        write_filenames(root / split / "filenames.pickle", listed)
        tree.keys[split] = listed
    return tree


def write_flowers(root: Path, layout: str = "dfgan", counts: tuple[int, int] = (3, 2)) -> Tree:
    """Oxford-102 flowers in DF-GAN's (`oxford-102-flowers/images/<key>.jpg`) or RATLIP's layout
    (`images/<key.jpg>`, keys with extension)."""
    if layout == "dfgan":
        tree = write_flat(root, lambda s: root / "oxford-102-flowers" / "images", str, str, 10, counts)
    else:
        tree = write_flat(root, lambda s: root / "images", str, lambda k: f"{k}.jpg", 10, counts)
    tree.extra["layout"] = layout
    return tree


def write_celeba(root: Path, counts: tuple[int, int] = (4, 2)) -> Tree:
    """An MM-CelebA-HQ-style tree: images/<id>.jpg, text/<id>.txt (10 lines)."""
    return write_flat(root, lambda s: root / "images", str, str, 10, counts)


COCO_LAYOUTS = {
    "galip": lambda root, sub: root / "images" / sub / "jpg",
    "dfgan": lambda root, sub: root / "images" / sub,
    "attngan": lambda root, sub: root / "images",
}
COCO_KEYS = {
    "train": ["COCO_train2014_000000000009", "COCO_train2014_000000000025"],
    "test": ["COCO_val2014_000000000042", "COCO_val2014_000000000073", "COCO_val2014_000000000074"],
}


def write_coco(root: Path, layout: str, keys: dict[str, list[str]] | None = None) -> Tree:
    """MS-COCO 2014 in one of the three image layouts; caption files hold 6 lines (the loader keeps 5)."""
    keys = keys or COCO_KEYS
    folder = COCO_LAYOUTS[layout]
    tree = Tree(root, keys, 5, extra={"layout": layout})
    for split, split_keys in keys.items():
        sub = "train2014" if split == "train" else "val2014"
        for i, key in enumerate(split_keys):
            tree.images[key] = folder(root, sub) / f"{key}.jpg"
            write_jpeg(tree.images[key], (96, 72), i)
            tree.texts[key] = root / "text" / f"{key}.txt"
            write_captions(tree.texts[key], 6, key, blank_lines=False)
        write_filenames(root / split / "filenames.pickle", split_keys)
    return tree


def write_captions_pickle(tree: Tree, name: str = "captions.pickle") -> int:
    """AttnGAN's `[train_captions, test_captions, ixtoword, wordtoix]` over the tree's caption files, the
    vocabulary of the official DAMSM encoders; returns the vocabulary size."""
    from t2igan.text.vocab import Vocabulary, tokenize_caption

    captions = {
        split: [
            line
            for key in tree.keys[split]
            for line in tree.texts[key].read_text().splitlines()
            if line.strip()
        ]
        for split in ("train", "test")
    }
    vocab = Vocabulary.build(captions["train"] + captions["test"])
    index = {word: i for i, word in enumerate(vocab.words)}
    ids = {s: [[index[w] for w in tokenize_caption(c)] for c in lines] for s, lines in captions.items()}
    ixtoword = dict(enumerate(vocab.words))
    payload = [ids["train"], ids["test"], ixtoword, {w: i for i, w in ixtoword.items()}]
    (tree.root / name).write_bytes(pickle.dumps(payload, protocol=2))
    return len(vocab)
