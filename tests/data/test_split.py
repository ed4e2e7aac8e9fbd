"""Splits and manifests: the official crop rule, and a sha256 that is stable across processes and moves
with any caption, file or box."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from t2igan.data.layouts import load_cub_split
from t2igan.data.split import ImageRecord, Split, canonical_json, official_bbox_crop, read_image_file
from t2igan.errors import T2IGanError

ROOT = Path(__file__).resolve().parents[2]


def test_bbox_crop_follows_the_official_rule():
    # get_imgs: r = int(max(w,h)*0.75) = 30, centre (int((2*10+30)/2), int((2*20+40)/2)) = (25, 40)
    assert official_bbox_crop((100, 80), (10, 20, 30, 40)) == (0, 10, 55, 70)  # clipped on the left
    # box well inside: a square of side 2r
    assert official_bbox_crop((500, 500), (200, 200, 40, 20)) == (190, 180, 250, 240)
    # clipped on the right and bottom
    assert official_bbox_crop((100, 100), (80, 90, 20, 10)) == (75, 80, 100, 100)


def _split(captions=("a red bird", "a blue bird")) -> Split:
    records = (
        ImageRecord("k0", tuple(captions), "images/k0.jpg", (1, 2, 3, 4)),
        ImageRecord("k1", ("x", "y"), "images/k1.jpg", None),
    )
    return Split("toy", "test", records, Path("/nowhere"), 2, {"crop": "rule"})


def test_manifest_holds_files_captions_and_preprocessing():
    manifest = _split().manifest()
    assert manifest["count"] == 2 and manifest["captions_per_image"] == 2 and manifest["num_captions"] == 4
    assert manifest["files"] == ["images/k0.jpg", "images/k1.jpg"]
    assert manifest["captions"] == [["a red bird", "a blue bird"], ["x", "y"]]
    assert manifest["bboxes"] == [[1, 2, 3, 4], None]
    assert manifest["preprocessing"] == {"crop": "rule"}
    assert json.loads(canonical_json(manifest)) == manifest  # plain JSON, round-trips


def test_sha256_moves_with_one_caption_a_box_or_the_preprocessing():
    base = _split().sha256
    assert _split().sha256 == base
    assert _split(("a red bird", "a blue bird.")).sha256 != base
    split = _split()
    moved_box = dataclasses.replace(
        split, records=(dataclasses.replace(split.records[0], bbox=(1, 2, 3, 5)), split.records[1])
    )
    assert moved_box.sha256 != base
    assert dataclasses.replace(split, preprocessing={"crop": "other"}).sha256 != base
    relabelled = dataclasses.replace(split.records[1], attributes={"class_id": 3})
    assert dataclasses.replace(split, records=(split.records[0], relabelled)).sha256 != base


def test_sha256_is_the_same_in_another_process(cub_tree):
    here = load_cub_split(cub_tree.root, "train").sha256
    code = (
        "import sys; from t2igan.data.layouts import load_cub_split; "
        "print(load_cub_split(sys.argv[1], 'train').sha256)"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(cub_tree.root)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        check=True,
    ).stdout.strip()
    assert other == here and len(here) == 64


def test_caption_index_is_image_major():
    split = _split()
    assert split.captions() == ["a red bird", "a blue bird", "x", "y"]
    assert split.caption(1, 0) == "x"


def test_read_image_file_names_a_corrupt_or_missing_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    Image.new("RGB", (32, 32), (255, 0, 0)).save(bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(T2IGanError, match="unreadable") as info:
        read_image_file(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(T2IGanError, match="no such file"):
        read_image_file(tmp_path / "absent.jpg")
