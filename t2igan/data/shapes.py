"""`shapes`, the embedded dataset: procedural scenes of one main object and up to two smaller ones,
ten captions each, with the ground truth kept beside every image so that probes can score generators.

Deterministic from a seed; needs nothing on disk. Some (colour, shape) pairs never appear in train
(neither as the main object nor as an extra) so the test split measures compositional generalisation.
"""

from __future__ import annotations

import functools
import math
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from t2igan.data.split import ImageRecord, Split
from t2igan.errors import ConfigError

GENERATOR_VERSION = 4  # bump whenever a record, caption or pixel for the same seed would change

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
# Saturated and far apart in RGB, so each stays recognisable when an object is a few pixels wide at 32 px.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 35, 35),
    "green": (35, 170, 60),
    "blue": (40, 80, 235),
    "yellow": (245, 215, 35),
    "purple": (150, 55, 190),
    "orange": (250, 135, 25),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128),
    "black": (18, 18, 18),
    "white": (242, 242, 242),
    "brown": (100, 64, 34),
}
SIZES: dict[str, float] = {"small": 0.30, "medium": 0.42, "large": 0.56}  # main object diameter / side
# Extras are always smaller than the smallest main object (0.28). Larger extras (0.18-0.24) made the small
# CLIP mistake extras for the main object: colour+shape top-1 0.858 against 0.929 with these sizes.
EXTRA_DIAMETER = (0.15, 0.22)
EXTRA_JITTER = 0.06  # an extra's centre stays this close to the centre of the cell its caption names
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
OBJECT_COUNTS = (1, 2, 3)
# One held-out pair per colour and per shape, so every word is still seen in train with other partners.
HELDOUT_COMBOS: tuple[tuple[str, str], ...] = (
    ("red", "triangle"),
    ("green", "star"),
    ("blue", "circle"),
    ("yellow", "cross"),
    ("purple", "square"),
    ("orange", "diamond"),
)
TEST_HELDOUT_FRACTION = 0.5
SPLIT_SIZES: dict[str, dict[str, int]] = {
    "default": {"train": 10_000, "test": 2_000},
    "small": {"train": 2_000, "test": 500},
    "tiny": {"train": 300, "test": 100},
}
ATTRIBUTE_CLASSES: dict[str, tuple[Any, ...]] = {
    "main_shape": SHAPES,
    "main_colour": tuple(COLOURS),
    "main_size": tuple(SIZES),
    "main_position": POSITIONS,
    "background": tuple(BACKGROUNDS),
    "object_count": OBJECT_COUNTS,
}
CAPTIONS_PER_IMAGE = 10
MAX_CAPTION_WORDS = 18  # DAMSM truncates at WORDS_NUM 18 (DF-GAN code/cfg/bird.yml)

SHAPE_WORDS = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "star": ("star",),
    "cross": ("cross", "plus"),
}
COLOUR_WORDS = {c: (c,) for c in COLOURS} | {"purple": ("purple", "violet")}
SIZE_WORDS = {"small": ("small", "little"), "medium": ("medium", "medium sized"), "large": ("large", "big")}
BACKGROUND_WORDS = {b: (b,) for b in BACKGROUNDS} | {"gray": ("gray", "grey")}
POSITION_WORDS = {
    "top left": ("at the top left", "in the upper left corner"),
    "top": ("at the top", "in the upper middle"),
    "top right": ("at the top right", "in the upper right corner"),
    "left": ("on the left", "at the left side"),
    "center": ("in the center", "in the middle"),
    "right": ("on the right", "at the right side"),
    "bottom left": ("at the bottom left", "in the lower left corner"),
    "bottom": ("at the bottom", "in the lower middle"),
    "bottom right": ("at the bottom right", "in the lower right corner"),
}
COUNT_WORDS = {1: ("a lone", "a single", "only one", "just one"), 2: ("two",), 3: ("three",)}
# {s} size, {c} colour, {o} shape, {p} position, {b} background; {n} the number of objects; {x} the extras,
# each with its colour, shape and cell ("a blue star to the northwest and a green cross to the east").
MAIN_TEMPLATES = (
    "a {s} {c} {o} {p} on a {b} background",
    "there is a {s} {c} {o} {p}",
    "a {b} image with a {s} {c} {o} {p}",
    "the {c} {o} is {s} and sits {p}",
    "{s} {c} {o} {p}, {b} background",
    "a picture of a {c} {o} {p}",
    "{p} of a {b} picture there is a {c} {o}",
    "a {c} {o} {p}",
)
# Short, so that two extras with their cells fit in 18 words: the main object's position is left unstated.
# {n} says how many objects there are ("two", "three").
EXTRA_TEMPLATES = (
    "a {c} {o} and {x}",
    "{x} near a {c} {o}",
    "{c} {o} on {b} with {x}",
    "{n} shapes, {c} {o} and {x}",
)
# A scene of the main object alone says so in as many captions as a scene with extras lists them ({n}: "a
# lone", "a single", ...). Shapes v3 never stated a count of one: the count was scored only on captions
# listing two or three objects, and a text-blind generator drawing three got half of them right; every model
# stayed at that chance after 6,000 steps of the `shapes` bench, drawing extras for most captions whatever
# they said.
# Each names the main position. A draft with two of the four silent on it cost the small CLIP its placement
# (benchmarks/encoder_retrieval.py, seed 0: colour+shape top-1 0.899, position of those hits 0.787; with these
# four 0.913 and 0.871, v3 0.925-0.963 and 0.871-0.974 over three seeds), and GALIP's position at 6,000 steps
# fell to 0.239 (0.657 on v3).
SINGLE_TEMPLATES = (
    "{n} {c} {o} {p} on a {b} background",
    "{n} {s} {c} {o} {p} and nothing else",
    "{n} {c} {o} {p}, no other shape",
    "{n} {c} {o} {p} on {b}",
)
# Compass words for the extras, none of them a word of POSITION_WORDS: a position word then always refers to
# the main object, which the small CLIP learns much faster than telling "at top left" from "at the top left"
# (text->image top-1 0.68 against 0.55 after the same 24 epochs, extras 0.18-0.24 wide:
# benchmarks/encoder_retrieval.py). Extras never take the centre cell, which has no compass word.
EXTRA_POSITION_WORDS = {
    "top left": ("to the northwest",),
    "top": ("to the north",),
    "top right": ("to the northeast",),
    "left": ("to the west",),
    "right": ("to the east",),
    "bottom left": ("to the southwest",),
    "bottom": ("to the south",),
    "bottom right": ("to the southeast",),
}


def split_sizes(size: str | int, split: str) -> int:
    if isinstance(size, int):
        return size
    if size not in SPLIT_SIZES:
        raise ConfigError(f"shapes option size={size!r}: expected one of {sorted(SPLIT_SIZES)} or a number")
    return SPLIT_SIZES[size][split]


def main_combos(heldout: bool) -> list[tuple[str, str]]:
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    return [p for p in pairs if (p in HELDOUT_COMBOS) == heldout]


# ------------------------------------------------------------------------------------------ scenes


def _sample_scene(rng: random.Random, split: str) -> dict[str, Any]:
    heldout = split != "train" and rng.random() < TEST_HELDOUT_FRACTION
    colour, shape = rng.choice(main_combos(heldout))
    size = rng.choice(tuple(SIZES))
    position = rng.choice(POSITIONS)
    diameter = SIZES[size] + rng.uniform(-0.02, 0.02)
    row, col = divmod(POSITIONS.index(position), 3)
    radius = diameter / 2
    x = _clip((col + 0.5) / 3 + rng.uniform(-0.05, 0.05), radius + 0.02)
    y = _clip((row + 0.5) / 3 + rng.uniform(-0.05, 0.05), radius + 0.02)
    main = {**_object(shape, colour, x, y, diameter, rng), "position": position}
    extras = _sample_extras(rng, split, main, rng.choice(OBJECT_COUNTS) - 1)
    return {
        "main_shape": shape,
        "main_colour": colour,
        "main_size": size,
        "main_position": position,
        "background": rng.choice(tuple(BACKGROUNDS)),
        "object_count": 1 + len(extras),
        "heldout_combo": heldout,
        "objects": [*extras, main],  # drawing order: main last, so it is never hidden
    }


def _clip(value: float, margin: float) -> float:
    return min(max(value, margin), 1 - margin)


def _object(shape: str, colour: str, x: float, y: float, diameter: float, rng: random.Random) -> dict:
    angle = 0.0 if shape == "circle" else rng.uniform(-12.0, 12.0)
    return {
        "shape": shape,
        "colour": colour,
        "x": round(x, 4),
        "y": round(y, 4),
        "diameter": round(diameter, 4),
        "angle": round(angle, 2),
    }


def _sample_extras(rng: random.Random, split: str, main: dict, count: int) -> list[dict]:
    """Smaller objects away from the main one, each near the centre of one of the eight outer cells of the
    3x3 grid that no other object's centre is in (so a caption can say where it is); pairs held out of train
    are never drawn in train. An extra that finds no free place in 30 tries is left out (the count says so)."""
    pairs = [(c, s) for c in COLOURS for s in SHAPES if (c, s) != (main["colour"], main["shape"])]
    if split == "train":
        pairs = [p for p in pairs if p not in HELDOUT_COMBOS]
    placed: list[dict] = []
    taken = {main["position"], *(p for p in POSITIONS if p not in EXTRA_POSITION_WORDS)}
    for _ in range(count):
        colour, shape = rng.choice(pairs)
        diameter = rng.uniform(*EXTRA_DIAMETER)
        for _attempt in range(30):
            position = rng.choice([p for p in POSITIONS if p not in taken])
            row, col = divmod(POSITIONS.index(position), 3)
            radius = diameter / 2
            x = _clip((col + 0.5) / 3 + rng.uniform(-EXTRA_JITTER, EXTRA_JITTER), radius + 0.01)
            y = _clip((row + 0.5) / 3 + rng.uniform(-EXTRA_JITTER, EXTRA_JITTER), radius + 0.01)
            if all(_apart(x, y, diameter, other) for other in (main, *placed)):
                placed.append({**_object(shape, colour, x, y, diameter, rng), "position": position})
                taken.add(position)
                break
    return placed


def _apart(x: float, y: float, diameter: float, other: dict) -> bool:
    return math.hypot(x - other["x"], y - other["y"]) > (diameter + other["diameter"]) / 2 + 0.02


# ---------------------------------------------------------------------------------------- captions


def make_captions(
    scene: dict[str, Any], rng: random.Random, count: int = CAPTIONS_PER_IMAGE
) -> tuple[tuple[str, ...], list[dict[str, None]]]:
    """`count` captions: every one names the main object's colour and shape; four state how many objects
    there are (listing the extras, or saying the main object is alone), the others leave the count open.
    Beside each caption, the probe attributes it leaves unstated (as None): those are not scored."""
    extras = scene["objects"][:-1]
    templates = list(MAIN_TEMPLATES)
    rng.shuffle(templates)
    counted = EXTRA_TEMPLATES if extras else SINGLE_TEMPLATES
    chosen = [*counted, *templates[: count - len(counted)]]
    rng.shuffle(chosen)
    filled = [_fill(template, scene, extras, rng) for template in chosen[:count]]
    return tuple(caption for caption, _ in filled), [unstated_attributes(t) for _, t in filled]


TEMPLATE_ATTRIBUTES = {  # which probe attribute each template field states
    "s": "main_size",
    "c": "main_colour",
    "o": "main_shape",
    "p": "main_position",
    "b": "background",
    "x": "object_count",  # the extras listed one by one
    "n": "object_count",  # a number word
}


def unstated_attributes(template: str) -> dict[str, None]:
    """The probe attributes a template does not state, mapped to None. A fresh dict per caption; the parse
    is done once."""
    return dict.fromkeys(_unstated(template))


@functools.cache
def _unstated(template: str) -> tuple[str, ...]:
    stated = {TEMPLATE_ATTRIBUTES[field] for _, field, _, _ in string.Formatter().parse(template) if field}
    return tuple(name for name in ATTRIBUTE_CLASSES if name not in stated)


_ARTICLE = re.compile(r"\ba ([aeiou])")  # "a orange" -> "an orange"


def _fill(template: str, scene: dict[str, Any], extras: list[dict], rng: random.Random) -> tuple[str, str]:
    """The caption and the template it was finally written from."""
    words = {
        "s": rng.choice(SIZE_WORDS[scene["main_size"]]),
        "c": rng.choice(COLOUR_WORDS[scene["main_colour"]]),
        "o": rng.choice(SHAPE_WORDS[scene["main_shape"]]),
        "p": rng.choice(POSITION_WORDS[scene["main_position"]]),
        "b": rng.choice(BACKGROUND_WORDS[scene["background"]]),
        "x": " and ".join(_extra_phrase(e, rng) for e in extras),
        "n": rng.choice(COUNT_WORDS[len(extras) + 1]),
    }
    caption = _ARTICLE.sub(r"an \1", template.format(**words))
    if len(caption.replace(",", " ").split()) > MAX_CAPTION_WORDS:  # never reached with these tables
        template = MAIN_TEMPLATES[-1]
        caption = template.format(**words)
    return caption, template


def _extra_phrase(extra: dict, rng: random.Random) -> str:
    colour, shape = rng.choice(COLOUR_WORDS[extra["colour"]]), rng.choice(SHAPE_WORDS[extra["shape"]])
    return f"a {colour} {shape} {rng.choice(EXTRA_POSITION_WORDS[extra['position']])}"


# --------------------------------------------------------------------------------------- rendering


def _outline(shape: str, radius: float) -> list[tuple[float, float]]:
    """Polygon of a shape of the given radius around (0, 0), before rotation."""
    if shape == "square":
        h = radius * 0.82  # a square of the same radius would look bigger than the circle
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if shape == "triangle":
        return [_polar(radius, a) for a in (-90, 30, 150)]
    if shape == "diamond":  # taller than wide, so a slightly rotated square is never mistaken for it
        return [(0, -radius), (radius * 0.68, 0), (0, radius), (-radius * 0.68, 0)]
    if shape == "star":
        return [_polar(radius if k % 2 == 0 else radius * 0.45, -90 + 36 * k) for k in range(10)]
    if shape == "cross":
        a, r = radius * 0.34, radius
        return [
            (-a, -r),
            (a, -r),
            (a, -a),
            (r, -a),
            (r, a),
            (a, a),
            (a, r),
            (-a, r),
            (-a, a),
            (-r, a),
            (-r, -a),
            (-a, -a),
        ]
    raise ValueError(f"unknown shape {shape!r}")


def _polar(radius: float, degrees: float) -> tuple[float, float]:
    return radius * math.cos(math.radians(degrees)), radius * math.sin(math.radians(degrees))


@dataclass(frozen=True)
class ShapesRenderer:
    """Draws a record's scene at any size; supersampled so edges are smooth even at 32 px."""

    version: int = GENERATOR_VERSION

    def render(self, record: ImageRecord, size: int) -> Image.Image:
        return render_scene(record.attributes, size)


def render_scene(scene: dict[str, Any] | Any, size: int) -> Image.Image:
    factor = max(1, min(4, 512 // size))
    side = size * factor
    img = Image.new("RGB", (side, side), BACKGROUNDS[scene["background"]])
    draw = ImageDraw.Draw(img)
    for obj in scene["objects"]:
        cx, cy, radius = obj["x"] * side, obj["y"] * side, obj["diameter"] * side / 2
        fill = COLOURS[obj["colour"]]
        if obj["shape"] == "circle":
            draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)
            continue
        cos, sin = math.cos(math.radians(obj["angle"])), math.sin(math.radians(obj["angle"]))
        points = [
            (cx + px * cos - py * sin, cy + px * sin + py * cos) for px, py in _outline(obj["shape"], radius)
        ]
        draw.polygon(points, fill=fill)
    return img.reduce(factor) if factor > 1 else img


# ------------------------------------------------------------------------------------------- split


def load_shapes_split(
    root: Any = None,
    split: str = "train",
    size: str | int = "default",
    seed: int = 0,
    native_size: int = 64,
) -> Split:
    """The `shapes` split `split` ("train" or "test"); `size` is "default", "small", "tiny" or a count."""
    if split not in ("train", "test"):
        raise ConfigError(f"shapes has splits 'train' and 'test', not {split!r}")
    count = split_sizes(size, split)
    rng = random.Random(f"t2igan-shapes/v{GENERATOR_VERSION}/{seed}/{split}")
    records = []
    for index in range(count):
        scene = _sample_scene(rng, split)
        captions, scene["caption_attributes"] = make_captions(scene, rng)
        records.append(ImageRecord(key=f"{split}_{index:06d}", captions=captions, attributes=scene))
    preprocessing = {
        "generator": "t2igan.data.shapes",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "size": size,
        "heldout_combos": [list(p) for p in HELDOUT_COMBOS],
        "test_heldout_fraction": TEST_HELDOUT_FRACTION,
        "render": "PIL ImageDraw, supersampled min(4, 512//size)x then box-reduced",
    }
    return Split(
        "shapes",
        split,
        tuple(records),
        None,
        CAPTIONS_PER_IMAGE,
        preprocessing,
        renderer=ShapesRenderer(),
        native_size=native_size,
    )


def heldout_mask(records: Sequence[ImageRecord]) -> list[bool]:
    """Which records' main object is a held-out (colour, shape) pair."""
    return [bool(r.attributes.get("heldout_combo")) for r in records]
