"""Fixtures of the DAMSM tests: a tiny synthetic image-caption set whose captions say what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
PLACES = {"top left": (0, 0), "top right": (0, 1), "bottom left": (1, 0), "bottom right": (1, 1)}
TEMPLATES = (
    "a {c} square at the {p}",
    "the {p} holds a {c} square",
    "{c} square in the {p} corner",
    "there is a small {c} box at the {p} of the grey picture",
)


def make_squares(count: int, size: int = 32, seed: int = 0):
    """`count` grey images with one coloured square in one quadrant; captions name colour and quadrant.

    Returns uint8 images (N, size, size, 3), captions (4 per image), class ids (colour x quadrant).
    """
    rng = np.random.default_rng(seed)
    images = np.full((count, size, size, 3), 128, dtype=np.uint8)
    captions, classes = [], []
    colours, places, half = list(COLOURS), list(PLACES), size // 2
    for i in range(count):
        colour, place = colours[rng.integers(4)], places[rng.integers(4)]
        row, col = PLACES[place]
        side = int(rng.integers(half // 2, half - 1))
        y = row * half + int(rng.integers(0, half - side + 1))
        x = col * half + int(rng.integers(0, half - side + 1))
        images[i, y : y + side, x : x + side] = COLOURS[colour]
        captions.append([t.format(c=colour, p=place) for t in TEMPLATES])
        classes.append(colours.index(colour) * 4 + places.index(place))
    return images, captions, classes


@pytest.fixture(scope="session")
def squares_train():
    return make_squares(96, seed=0)


@pytest.fixture(scope="session")
def squares_test():
    return make_squares(64, seed=1)
