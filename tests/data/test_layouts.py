"""The real datasets' readers on tiny trees in each official layout: counts, captions, the CUB crop,
layout detection, and errors that name the file at fault."""

from __future__ import annotations

import pytest
from PIL import Image

from t2igan.data.layouts import (
    load_celeba_tiny_split,
    load_coco_split,
    load_cub_split,
    load_flowers_split,
    read_captions,
)
from t2igan.errors import ConfigError, T2IGanError


def test_cub_counts_captions_and_class_ids(cub_tree):
    for name in ("train", "test"):
        split = load_cub_split(cub_tree.root, name)
        assert [r.key for r in split.records] == cub_tree.keys[name]
        assert split.captions_per_image == 10 and all(len(r.captions) == 10 for r in split.records)
        assert [r.attributes["class_id"] for r in split.records] == cub_tree.extra["class_ids"][name]
    first = load_cub_split(cub_tree.root, "train").records[0]
    assert first.captions[0] == f"caption 0 of {first.key} a bird with wings"  # blank lines skipped


def test_cub_crop_applies_although_the_folder_is_not_named_birds(cub_tree):
    split = load_cub_split(cub_tree.root, "train")
    assert "birds" not in str(cub_tree.root)
    for index, record in enumerate(split.records):
        x, y, w, h = (int(v) for v in cub_tree.extra["boxes"][record.key])
        assert record.bbox == (x, y, w, h)
        width, height = cub_tree.extra["sizes"][record.key]
        r = int(max(w, h) * 0.75)  # DF-GAN code/lib/datasets.py get_imgs
        cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
        expected = (min(width, cx + r) - max(0, cx - r), min(height, cy + r) - max(0, cy - r))
        assert split.load_image(index).size == expected
    assert "0.75" in split.manifest()["preprocessing"]["crop"]
    assert len(split.manifest()["preprocessing"]["bbox_table_sha256"]) == 64


def test_flowers_both_layouts(flowers_tree):
    split = load_flowers_split(flowers_tree.root, "train")
    assert [r.key for r in split.records] == flowers_tree.keys["train"]
    assert len(load_flowers_split(flowers_tree.root, "test")) == len(flowers_tree.keys["test"])
    expected = "DF-GAN" if flowers_tree.extra["layout"] == "dfgan" else "RATLIP"
    assert split.preprocessing["layout"].startswith(expected)
    assert split.image_path(0) == flowers_tree.images[split.records[0].key]
    assert split.load_image(0).mode == "RGB"


def test_coco_detects_each_image_layout_and_keeps_five_captions(coco_tree):
    names = {"galip": "GALIP", "dfgan": "DF-GAN", "attngan": "AttnGAN"}
    for name in ("train", "test"):
        split = load_coco_split(coco_tree.root, name)
        assert len(split) == len(coco_tree.keys[name])
        assert split.preprocessing["layout"].startswith(names[coco_tree.extra["layout"]])
        assert all(len(r.captions) == 5 for r in split.records)  # the files hold 6 lines
        assert split.image_path(0) == coco_tree.images[split.records[0].key]
    assert split.load_image(0).size == (96, 72)  # no crop outside CUB


def test_celeba_tiny_subset_is_applied_and_pinned(celeba_tree):
    full = load_celeba_tiny_split(celeba_tree.root, "train")
    assert len(full) == 4 and full.preprocessing["subset"] is None
    (celeba_tree.root / "subset.txt").write_text("image_00002\nimage_00004\nimage_00099\n")
    sub = load_celeba_tiny_split(celeba_tree.root, "train", subset="subset.txt")
    assert [r.key for r in sub.records] == ["image_00002", "image_00004"]
    assert len(sub.preprocessing["subset"]["sha256"]) == 64 and sub.sha256 != full.sha256


def test_read_captions_takes_the_first_k_non_empty_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("\n  \none\n...\ntwo\r\nthree\nfour\n", encoding="utf-8")
    assert read_captions(path, 3) == ("one", "two", "three")
    with pytest.raises(T2IGanError, match="4 non-empty lines, expected at least 5") as info:
        read_captions(path, 5)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------------- errors


def test_missing_root_folder_is_named(tmp_path):
    with pytest.raises(T2IGanError, match="no such folder") as info:
        load_cub_split(tmp_path / "nothing", "train")
    assert str(tmp_path / "nothing") in str(info.value)


def test_missing_caption_file_is_named(cub_tree):
    key = cub_tree.keys["train"][1]
    cub_tree.texts[key].unlink()
    with pytest.raises(T2IGanError, match="no such file") as info:
        load_cub_split(cub_tree.root, "train")
    assert str(cub_tree.texts[key]) in str(info.value) and "expected 10 captions" in str(info.value)
    split = load_cub_split(cub_tree.root, "train", on_error="collect")
    assert len(split) == 2 and str(cub_tree.texts[key]) in split.problems[0]


@pytest.mark.parametrize("coco_tree", ["galip", "dfgan"], indirect=True)  # the layouts with per-set folders
def test_a_per_set_coco_tree_missing_one_set_names_the_folder(coco_tree):
    import shutil

    shutil.rmtree(coco_tree.root / "images" / "val2014")
    with pytest.raises(
        T2IGanError, match=r"images/val2014: no such folder.*train2014/ in the per-set layout"
    ):
        load_coco_split(coco_tree.root, "test")
    assert len(load_coco_split(coco_tree.root, "train")) == 2


def test_too_few_caption_lines_is_named(coco_tree):
    key = coco_tree.keys["test"][0]
    coco_tree.texts[key].write_text("one\ntwo\n")
    with pytest.raises(T2IGanError, match="2 non-empty lines, expected at least 5") as info:
        load_coco_split(coco_tree.root, "test")
    assert str(coco_tree.texts[key]) in str(info.value)


def test_missing_image_and_missing_split_list_are_named(flowers_tree):
    key = flowers_tree.keys["test"][0]
    flowers_tree.images[key].unlink()
    with pytest.raises(T2IGanError, match="no such file") as info:
        load_flowers_split(flowers_tree.root, "test")
    assert str(flowers_tree.images[key]) in str(info.value)
    (flowers_tree.root / "train" / "filenames.pickle").unlink()
    with pytest.raises(T2IGanError, match="filenames.pickle: no such file"):
        load_flowers_split(flowers_tree.root, "train")


def test_corrupt_jpeg_is_named_when_loaded(cub_tree):
    key = cub_tree.keys["test"][0]
    data = cub_tree.images[key].read_bytes()
    cub_tree.images[key].write_bytes(data[: len(data) // 3])
    split = load_cub_split(cub_tree.root, "test")
    with pytest.raises(T2IGanError, match="unreadable") as info:
        split.load_image(0)
    assert str(cub_tree.images[key]) in str(info.value)


def test_unknown_split_and_bad_on_error(coco_tree):
    with pytest.raises(ConfigError, match="not 'val'"):
        load_coco_split(coco_tree.root, "val")
    with pytest.raises(ConfigError, match="on_error"):
        load_coco_split(coco_tree.root, "train", on_error="ignore")


def test_a_missing_coco_image_folder_lists_the_three_layouts(tmp_path):
    (tmp_path / "coco" / "train").mkdir(parents=True)
    with pytest.raises(T2IGanError) as info:
        load_coco_split(tmp_path / "coco", "train")
    message = str(info.value)
    assert "train2014/jpg" in message and "train2014" in message and message.count("images") >= 3


def test_images_are_rgb_after_loading(celeba_tree):
    key = celeba_tree.keys["test"][0]
    Image.new("L", (40, 30), 128).save(celeba_tree.images[key])
    split = load_celeba_tiny_split(celeba_tree.root, "test")
    assert split.load_image(0).mode == "RGB"
