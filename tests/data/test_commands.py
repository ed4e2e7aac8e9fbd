"""`data check` / `data prepare`, root resolution and the built-in registrations."""

from __future__ import annotations

import numpy as np
import pytest

from t2igan.data.builtin import DATASETS
from t2igan.data.cache import index_path
from t2igan.data.commands import check_dataset, format_check_report, load_split, prepare
from t2igan.errors import ConfigError, T2IGanError, UnknownNameError
from t2igan.paths import cache_root, dataset_root, root_env_var
from t2igan.registry import get_registry


def test_check_reports_counts_captions_and_sha(cub_tree):
    report = check_dataset("cub", cub_tree.root)
    assert report.ok and [s.name for s in report.splits] == ["train", "test"]
    train = report.splits[0]
    assert (train.images, train.captions_per_image, train.captions) == (3, 10, 30)
    assert train.sha256 == load_split("cub", "train", cub_tree.root).sha256
    text = format_check_report(report)
    assert str(cub_tree.root) in text and train.sha256 in text and "ok:" in text and "birds" in text


def test_check_names_unreadable_and_missing_files_and_skips_them(cub_tree):
    bad_key, missing_key = cub_tree.keys["test"][0], cub_tree.keys["test"][2]
    cub_tree.texts[missing_key].unlink()
    sha_before = check_dataset("cub", cub_tree.root).splits[1].sha256
    data = cub_tree.images[bad_key].read_bytes()
    cub_tree.images[bad_key].write_bytes(data[: len(data) // 2])
    report = check_dataset("cub", cub_tree.root)
    test = report.splits[1]
    # the image of the missing caption file is skipped: out of the split; the unreadable one is still in it
    assert not report.ok and test.images == 2 and test.sha256 == sha_before
    assert test.problems == [p for p in test.problems if str(cub_tree.texts[missing_key]) in p] != []
    assert len(test.unreadable) == 1 and str(cub_tree.images[bad_key]) in test.unreadable[0]
    text = format_check_report(report)
    assert "1 problem(s); these images are skipped (left out of the split and its sha256)" in text
    assert "1 unreadable image(s), still counted in the split and its sha256" in text
    assert str(cub_tree.images[bad_key]) in text and str(cub_tree.texts[missing_key]) in text


def test_check_notes_caption_files_longer_than_used(cub_tree):
    key = cub_tree.keys["train"][0]
    path = cub_tree.texts[key]
    path.write_text(path.read_text() + "an eleventh caption\n")
    before = load_split("cub", "train", cub_tree.root)
    report = check_dataset("cub", cub_tree.root)
    assert report.ok  # still usable: the first 10 lines are the captions, as in the official loaders
    assert "an eleventh caption" not in before.captions()
    text = format_check_report(report)
    assert "1 caption file(s) have more than 10 non-empty lines" in text and str(path) in text
    assert "(11 lines)" in text and report.splits[1].notes == []


def test_check_warns_of_unofficial_counts_and_of_images_in_both_splits(cub_tree):
    from tests.layouts import write_filenames

    report = check_dataset("cub", cub_tree.root)
    assert report.ok  # a usable tree: warnings do not fail the check
    assert report.warnings == [
        f"train: {len(cub_tree.keys['train'])} images, the official split has 8,855: numbers from it are not "
        "comparable with the papers'",
        f"test: {len(cub_tree.keys['test'])} images, the official split has 2,933: numbers from it are not "
        "comparable with the papers'",
    ]
    leaked = cub_tree.keys["train"][0]
    write_filenames(cub_tree.root / "test" / "filenames.pickle", [*cub_tree.keys["test"][:-1], leaked])
    text = format_check_report(check_dataset("cub", cub_tree.root))
    [warning] = [line for line in text.splitlines() if "in both" in line]
    assert (
        warning.startswith("  warning: 1 image(s) are in both test and train, e.g. ")
        and f"{leaked}.jpg" in warning
    )
    assert check_dataset("shapes", size="tiny").warnings == []  # no official counts, disjoint splits


def test_check_of_shapes_needs_no_root():
    report = check_dataset("shapes", size="tiny")
    assert report.root is None and report.ok
    assert [s.images for s in report.splits] == [300, 100]
    assert "generated" in format_check_report(report)


def test_prepare_builds_caches_for_each_split(coco_tree, monkeypatch):
    monkeypatch.setenv("T2IGAN_COCO_ROOT", str(coco_tree.root))
    paths = prepare("coco", None, ["test"], 32, progress=False)
    assert len(paths) == 1 and paths[0].is_relative_to(cache_root())
    # crop_flip: each 96x72 image whole, shorter side int(32*76/64) = 38, so 50x38, end to end
    assert np.load(paths[0], mmap_mode="r").shape == (3 * 38 * 50 * 3,)
    assert np.load(index_path(paths[0]))[:, 1:].tolist() == [[38, 50]] * 3
    shapes_paths = prepare("shapes", None, None, 32, progress=False, size="tiny")
    assert [np.load(p, mmap_mode="r").shape[0] for p in shapes_paths] == [300, 100]


def test_prepare_stops_on_a_missing_caption_file(coco_tree):
    coco_tree.texts[coco_tree.keys["train"][0]].unlink()
    with pytest.raises(T2IGanError, match="no such file"):
        prepare("coco", coco_tree.root, ["train"], 32, progress=False)


def test_unknown_dataset_and_split(cub_tree):
    with pytest.raises(UnknownNameError, match="cub"):
        check_dataset("cubb", cub_tree.root)
    with pytest.raises(T2IGanError, match="not 'val'"):
        load_split("cub", "val", cub_tree.root)
    with pytest.raises(ConfigError, match="unknown option.*sise.*accepts native_size, seed, size"):
        load_split("shapes", "train", sise="tiny")


# ------------------------------------------------------------------------------------------------ roots


def test_root_resolution_order(tmp_path, monkeypatch):
    flag, env, data = tmp_path / "flag", tmp_path / "env", tmp_path / "data"
    for folder in (flag, env, data / "cub", data / "birds"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("T2IGAN_DATA", str(data))
    assert dataset_root("cub") == data / "cub"
    (data / "cub").rmdir()
    assert dataset_root("cub") == data / "birds"  # the official folder name also works
    monkeypatch.setenv("T2IGAN_CUB_ROOT", str(env))
    assert dataset_root("cub") == env
    assert dataset_root("cub", flag) == flag
    assert root_env_var("celeba-tiny") == "T2IGAN_CELEBA_TINY_ROOT"


def test_missing_root_error_names_all_three_places(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as info:
        dataset_root("coco")
    message = str(info.value)
    assert "--root" in message and "$T2IGAN_COCO_ROOT" in message and "$T2IGAN_DATA" in message
    with pytest.raises(ConfigError, match="not an existing folder"):
        dataset_root("coco", tmp_path / "absent")
    monkeypatch.setenv("T2IGAN_DATA", str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path / "coco")):
        check_dataset("coco")


def test_cache_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("T2IGAN_CACHE")
    assert cache_root().parts[-2:] == (".cache", "t2igan")


# --------------------------------------------------------------------------------------- registrations


def test_builtin_datasets_are_registered_with_protocols():
    registry = get_registry()
    for name in ("shapes", "cub", "coco", "flowers", "celeba-tiny"):
        spec = registry.dataset(name)
        assert set(spec.protocols) >= {"paper", "quick"}
        assert spec.protocols["quick"].max_images is not None
        assert all(p.source for p in spec.protocols.values())
    assert not registry.dataset("shapes").needs_root and registry.dataset("shapes").augmentation == "none"
    assert registry.dataset("cub").augmentation == "crop_flip"
    assert set(registry.dataset("shapes").protocols["paper"].metrics) == {"probe", "probe_fd", "clip_score"}


def test_paper_protocols_give_the_official_image_counts():
    by_name = {spec.name: spec for spec in DATASETS}
    cub = by_name["cub"].protocols["paper"]
    # DF-GAN CUB: 2,933 test images, batch 32, drop_last, 10 passes -> 91*32*10 = 29,120
    # (docs/official-code.md, Evaluation protocols)
    assert (2933 // cub.batch_size) * cub.batch_size * cub.sample_times == 29_120 and cub.drop_last
    coco = by_name["coco"].protocols["paper"]
    # DF-GAN COCO: 40,504 val2014 images, batch 32, one pass -> 1,265*32 = 40,480
    assert (40_504 // coco.batch_size) * coco.batch_size * coco.sample_times == 40_480
    known = {"fid", "kid", "is", "clip_score", "r_precision", "probe", "probe_fd"}
    assert all(set(p.metrics) <= known for spec in DATASETS for p in spec.protocols.values())
