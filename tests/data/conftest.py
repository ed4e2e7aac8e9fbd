"""The data tests' fixtures: tiny dataset trees in the official on-disk layouts (tests/layouts.py writes
them), and a cache and environment of their own."""

from __future__ import annotations

import pytest

from tests.layouts import COCO_LAYOUTS, Tree, write_celeba, write_coco, write_cub, write_flowers


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


@pytest.fixture
def cub_tree(tmp_path) -> Tree:
    """CUB in the `birds` layout under a folder deliberately NOT named birds (the crop must still apply)."""
    return write_cub(tmp_path / "cub_data")


@pytest.fixture(params=["dfgan", "ratlip"])
def flowers_tree(request, tmp_path) -> Tree:
    """Oxford-102 flowers in DF-GAN's or RATLIP's layout."""
    return write_flowers(tmp_path / "flower", request.param)


@pytest.fixture(params=sorted(COCO_LAYOUTS))
def coco_tree(request, tmp_path) -> Tree:
    """MS-COCO 2014 in each of the three image layouts."""
    return write_coco(tmp_path / "coco", request.param)


@pytest.fixture
def celeba_tree(tmp_path) -> Tree:
    """An MM-CelebA-HQ-style tree: images/<id>.jpg, text/<id>.txt (10 lines), integer-like ids."""
    return write_celeba(tmp_path / "faces")
