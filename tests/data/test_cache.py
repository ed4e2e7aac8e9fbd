"""The image cache: built once, reused, and rebuilt (never used) when stale or truncated."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from t2igan.data import cache as cache_module
from t2igan.data.cache import (
    BUILDER_VERSION,
    ensure_image_cache,
    load_size_for,
    open_image_cache,
    prepare_image,
    resize_and_center_crop,
    resize_shorter,
    resized_size,
)
from t2igan.data.layouts import load_cub_split
from t2igan.data.shapes import load_shapes_split
from t2igan.errors import T2IGanError


@pytest.fixture(scope="module")
def tiny_shapes():
    return load_shapes_split(None, "test", size=40, seed=1)


def test_load_size_is_the_official_76_over_64():
    # DF-GAN/GALIP prepare_dataset: Resize(int(imsize * 76 / 64)) -> 304 for 256
    assert load_size_for("crop_flip", 256) == 304
    assert load_size_for("crop_flip", 64) == 76
    assert load_size_for("none", 64) == 64


def test_build_then_reuse(tiny_shapes, isolated_cache):
    built = ensure_image_cache(tiny_shapes, 32, progress=False)
    assert built.rebuilt_reason == "missing"
    assert built.images.shape == (40, 32, 32, 3) and built.images.dtype == np.uint8
    assert np.array_equal(built.images[7], np.asarray(tiny_shapes.load_image(7, 32)))
    meta = json.loads(built.sidecar_path.read_text())
    assert meta["manifest_sha256"] == tiny_shapes.sha256 and meta["builder_version"] == BUILDER_VERSION
    assert meta["bytes"] == built.array_path.stat().st_size and meta["load_size"] == 32
    assert meta["sha256"] == hashlib.sha256(built.array_path.read_bytes()).hexdigest()
    assert built.array_path.is_relative_to(isolated_cache)
    again = ensure_image_cache(tiny_shapes, 32, progress=False)
    assert again.rebuilt_reason is None and again.array_path == built.array_path
    assert [p.name for p in built.array_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize(
    "corrupt, reason",
    [
        (lambda arr, side: arr.write_bytes(arr.read_bytes()[:-100]), "truncated"),
        (lambda arr, side: _edit(side, builder_version=BUILDER_VERSION - 1), "stale: builder_version"),
        (lambda arr, side: _edit(side, manifest_sha256="0" * 64), "stale: manifest_sha256"),
        (lambda arr, side: side.unlink(), "missing"),
        (lambda arr, side: side.write_text("{not json"), "unreadable sidecar"),
        (lambda arr, side: _flip_last_byte(arr), "corrupt"),  # same size, other pixels
    ],
)
def test_stale_or_truncated_caches_are_rebuilt(tiny_shapes, corrupt, reason):
    first = ensure_image_cache(tiny_shapes, 32, progress=False)
    expected = np.array(first.images)
    corrupt(first.array_path, first.sidecar_path)
    with pytest.raises(T2IGanError, match="data prepare"):
        open_image_cache(tiny_shapes, 32)
    rebuilt = ensure_image_cache(tiny_shapes, 32, progress=False)
    assert rebuilt.rebuilt_reason.startswith(reason)
    assert np.array_equal(np.array(rebuilt.images), expected)
    assert open_image_cache(tiny_shapes, 32).rebuilt_reason is None


def _flip_last_byte(array_path):
    data = bytearray(array_path.read_bytes())
    data[-1] ^= 0xFF
    array_path.write_bytes(bytes(data))


def test_a_large_cache_is_re_hashed_only_when_asked(tiny_shapes, monkeypatch):
    import t2igan.data.cache as cache

    first = ensure_image_cache(tiny_shapes, 32, progress=False)
    _flip_last_byte(first.array_path)
    monkeypatch.setattr(cache, "VERIFY_MAX_BYTES", 10)  # as if it were a multi-GB cache
    assert ensure_image_cache(tiny_shapes, 32, progress=False).rebuilt_reason is None
    rebuilt = ensure_image_cache(tiny_shapes, 32, progress=False, verify=True)
    assert rebuilt.rebuilt_reason.startswith("corrupt")


def _edit(sidecar, **changes):
    meta = json.loads(sidecar.read_text())
    meta.update(changes)
    sidecar.write_text(json.dumps(meta))


def test_a_changed_split_gets_its_own_cache(tiny_shapes):
    first = ensure_image_cache(tiny_shapes, 32, progress=False)
    record = dataclasses.replace(tiny_shapes.records[0], captions=("changed",) * 10)
    changed = dataclasses.replace(tiny_shapes, records=(record, *tiny_shapes.records[1:]))
    second = ensure_image_cache(changed, 32, progress=False)
    assert second.array_path != first.array_path and second.rebuilt_reason == "missing"


def test_crop_flip_datasets_keep_the_whole_image_at_load_size(cub_tree):
    """RandomCrop after Resize(int(imsize*76/64)) ranges over the whole resized image: the cache keeps each
    image whole, its shorter side at the load size (38 for 32 px), not a centre square."""
    from torchvision import transforms

    split = load_cub_split(cub_tree.root, "train")
    built = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    assert built.layout == "ragged" and len(built) == 3 and built.load_size == 38 and built.image_size == 32
    for i in range(len(split)):
        expected = np.asarray(transforms.Resize(38)(split.load_image(i)))  # bbox crop, official resize
        assert np.array_equal(built.image(i), expected) and min(expected.shape[:2]) == 38
    with pytest.raises(T2IGanError, match="read them one at a time"):
        _ = built.images
    sidecar = json.loads(built.sidecar_path.read_text())
    assert "bbox crop" in sidecar["preprocessing"]["crop"] and sidecar["layout"] == "ragged"
    assert ensure_image_cache(split, 32, augmentation="crop_flip", progress=False).rebuilt_reason is None


@pytest.mark.parametrize("damage", ["delete", "truncate", "rewrite"])
def test_a_damaged_ragged_index_is_rebuilt(cub_tree, damage):
    split = load_cub_split(cub_tree.root, "train")
    built = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    index = cache_module.index_path(built.array_path)
    expected = np.array(built.index)
    if damage == "delete":
        index.unlink()
    elif damage == "truncate":
        index.write_bytes(index.read_bytes()[:-8])
    else:
        np.save(index, expected[::-1].copy())  # same size, other content
    with pytest.raises(T2IGanError, match="index"):
        open_image_cache(split, 32, augmentation="crop_flip")
    again = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    assert again.rebuilt_reason is not None and np.array_equal(np.load(index), expected)


def test_a_square_crop_flip_cache_of_an_older_version_is_rebuilt(cub_tree):
    split = load_cub_split(cub_tree.root, "train")
    built = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    meta = json.loads(built.sidecar_path.read_text())
    for key in ("layout", "count", "index_bytes", "index_sha256"):
        meta.pop(key)
    meta["shape"] = [3, 38, 38, 3]  # how the sidecar of a centre-square cache read
    built.sidecar_path.write_text(json.dumps(meta))
    again = ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    assert again.rebuilt_reason == "stale: layout is None, expected 'ragged'" and again.layout == "ragged"


def test_a_failed_ragged_build_leaves_no_index(cub_tree):
    key = cub_tree.keys["train"][1]
    cub_tree.images[key].write_bytes(cub_tree.images[key].read_bytes()[:300])  # header kept, data cut
    split = load_cub_split(cub_tree.root, "train")
    with pytest.raises(T2IGanError, match=key.split("/")[-1]):
        ensure_image_cache(split, 32, augmentation="crop_flip", progress=False)
    array_path, _ = cache_module.cache_paths(split, 32, 38)
    assert list(array_path.parent.iterdir()) == []


@pytest.mark.parametrize(
    "size, target", [((200, 100), 50), ((30, 91), 20), ((137, 137), 64), ((120, 90), 38), ((640, 427), 304)]
)
def test_resize_and_center_crop_matches_torchvision(size, target):
    from torchvision import transforms

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    reference = transforms.Compose([transforms.Resize(target), transforms.CenterCrop(target)])(img)
    assert np.array_equal(np.asarray(resize_and_center_crop(img, target)), np.asarray(reference))
    resized = np.asarray(resize_shorter(img, target))
    assert np.array_equal(resized, np.asarray(transforms.Resize(target)(img)))
    assert resized.shape[:2] == resized_size(*size, target)[::-1]


def test_an_image_replaced_under_its_name_makes_the_cache_stale(cub_tree):
    from tests.layouts import write_jpeg

    split = load_cub_split(cub_tree.root, "test")
    first = ensure_image_cache(split, 16, progress=False)
    before = np.array(first.images)
    key = cub_tree.keys["test"][1]
    write_jpeg(cub_tree.images[key], Image.open(cub_tree.images[key]).size, seed=999)  # another picture
    again = load_cub_split(cub_tree.root, "test")
    assert again.sha256 == split.sha256  # same lists and captions: the manifest cannot see it
    with pytest.raises(T2IGanError, match="image files changed"):
        open_image_cache(again, 16)
    rebuilt = ensure_image_cache(again, 16, progress=False)
    assert rebuilt.rebuilt_reason.startswith("stale: image files changed")
    index = [r.key for r in again.records].index(key)
    assert not np.array_equal(rebuilt.images[index], before[index])
    assert np.array_equal(np.delete(np.array(rebuilt.images), index, 0), np.delete(before, index, 0))


def test_parallel_build_matches_serial(cub_tree, monkeypatch):
    split = load_cub_split(cub_tree.root, "test")
    serial = ensure_image_cache(split, 16, progress=False, workers=0)
    expected = np.array(serial.images)
    serial.sidecar_path.unlink()
    parallel = ensure_image_cache(split, 16, progress=False, workers=2)
    assert np.array_equal(np.array(parallel.images), expected)


def test_a_corrupt_image_stops_the_build_and_leaves_nothing(cub_tree):
    key = cub_tree.keys["test"][1]
    cub_tree.images[key].write_bytes(cub_tree.images[key].read_bytes()[:300])
    split = load_cub_split(cub_tree.root, "test")
    with pytest.raises(T2IGanError, match="unreadable") as info:
        ensure_image_cache(split, 16, progress=False)
    assert str(cub_tree.images[key]) in str(info.value)
    array_path, sidecar_path = cache_module.cache_paths(split, 16, 16)
    assert not array_path.exists() and not sidecar_path.exists()
    assert [p for p in array_path.parent.iterdir()] == []


def test_prepare_image_renders_shapes_at_load_size(tiny_shapes):
    assert prepare_image(tiny_shapes, 0, 48).shape == (48, 48, 3)
