"""The content-hash cache of the project's pre-trained encoders: miss then hit, keys, corrupt files,
the lock, and re-measuring top-1 on another test split. Tiny shapes splits and tiny configs."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import shutil
import threading

import pytest
import torch

from t2igan.data.shapes import load_shapes_split
from t2igan.errors import ConfigError, UnknownNameError
from t2igan.text import pretrained
from t2igan.text.pretrained import cache_key, ensure_pretrained, full_config, sidecar_path
from t2igan.weights import sha256_file

TINY = {
    "damsm": {
        "epochs": 2,
        "data_image_size": 32,
        "image_size": 32,
        "grid": 4,
        "width": 4,
        "embedding_dim": 16,
        "batch_size": 32,
    },
    "clip": {"model": "clip-tiny", "epochs": 1, "data_image_size": 32, "batch_size": 32, "eval_images": 32},
}


@pytest.fixture(scope="module")
def splits():
    return load_shapes_split(split="train", size=64), load_shapes_split(split="test", size=40)


@pytest.fixture(scope="module")
def trained(splits, tmp_path_factory):
    """kind -> (first result, what it logged, its cache root): each kind trained once here."""
    out = {}
    for kind in TINY:
        root = tmp_path_factory.mktemp(f"cache-{kind}")
        with _logged() as log:
            out[kind] = (_ensure(kind, splits, root), log.getvalue(), root)
    return out


@contextlib.contextmanager
def _logged():
    """What the `t2igan` loggers say at INFO, as text (module-scoped fixtures cannot use caplog)."""
    text, logger = io.StringIO(), logging.getLogger("t2igan")
    handler, level = logging.StreamHandler(text), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield text
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _copy_cache(trained, kind, tmp_path):
    shutil.copytree(trained[kind][2], tmp_path, dirs_exist_ok=True)
    first = trained[kind][0]
    return tmp_path / first.path.relative_to(trained[kind][2])


@pytest.fixture()
def counted(monkeypatch):
    """Counts calls of the real pre-training."""
    calls = []
    real = pretrained.train_and_save

    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(pretrained, "train_and_save", wrapper)
    return calls


def _ensure(kind, splits, root, **kwargs):
    train, test = splits
    options = {"config": TINY[kind], "progress": False, "cache_root": root, **kwargs}
    return ensure_pretrained(kind, "shapes", train, test, **options)


def _forbid_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("pre-trained again although the cache holds a valid encoder")

    monkeypatch.setattr(pretrained, "train_and_save", fail)


@pytest.mark.parametrize("kind", ["damsm", "clip"])
def test_first_call_trains_and_second_loads_the_same_weights(kind, splits, trained, monkeypatch):
    first, err, root = trained[kind]
    assert first.trained_now and first.path.is_file()
    assert first.path.parent == root / "encoders" / kind and first.path.name.startswith("shapes-")
    label = pretrained.recipe(kind).label
    assert f"pre-training the shapes {label} (first use; cached at {first.path})" in err
    assert "top-1 among 100" in err
    assert first.sha256 == sha256_file(first.path)
    assert 0.0 <= first.retrieval_top1 <= 1.0
    assert first.stats["epochs"] == TINY[kind]["epochs"]

    _forbid_training(monkeypatch)
    with _logged() as log:
        second = _ensure(kind, splits, root)
    assert not second.trained_now
    assert (second.path, second.sha256, second.key) == (first.path, first.sha256, first.key)
    assert second.retrieval_top1 == first.retrieval_top1
    assert "pre-training" not in log.getvalue()
    captions = ["a small red circle at the top left", "a big blue star in the middle"]
    with torch.no_grad():
        a, b = first.encoder.encode_captions(captions), second.encoder.encode_captions(captions)
    torch.testing.assert_close(a.sentence, b.sentence, rtol=0, atol=0)
    assert not second.encoder.training
    assert not any(p.requires_grad for p in second.encoder.parameters())
    described = second.describe()
    assert {"kind", "key", "weights_sha256", "retrieval_top1", "path", "stats"} <= set(described)
    assert described["weights_sha256"] == first.sha256  # the key official encoders use in records too
    json.dumps(described)  # run records are JSON


def test_damsm_carries_its_image_encoder_outside_its_state_dict(trained):
    result = trained["damsm"][0]
    image_encoder = result.encoder.image_encoder
    assert image_encoder is not None and not image_encoder.training
    regions, code = image_encoder(torch.zeros(2, 3, 32, 32))
    assert code.shape == (2, TINY["damsm"]["embedding_dim"])
    assert regions.shape[1] == TINY["damsm"]["embedding_dim"]
    assert not any(k.startswith("image_encoder") for k in result.encoder.state_dict())


def test_the_key_covers_config_split_seed_and_format(splits, monkeypatch):
    train, _ = splits
    config = full_config("damsm", TINY["damsm"])
    key = cache_key("damsm", "shapes", train, config, 0)
    assert key == cache_key("damsm", "shapes", train, full_config("damsm", dict(TINY["damsm"])), 0)
    other_train = load_shapes_split(split="train", size=64, seed=1)
    changed = {
        cache_key("damsm", "shapes", train, {**config, "epochs": 3}, 0),
        cache_key("damsm", "shapes", other_train, config, 0),
        cache_key("damsm", "shapes", train, config, 1),
        cache_key("clip", "shapes", train, config, 0),
        cache_key("damsm", "shapes:size=tiny", train, config, 0),
    }
    monkeypatch.setattr(pretrained, "FORMAT_VERSION", pretrained.FORMAT_VERSION + 1)
    changed.add(cache_key("damsm", "shapes", train, config, 0))
    assert key not in changed and len(changed) == 6


def test_the_clip_key_follows_the_architecture_file_it_names(splits, tmp_path, monkeypatch):
    import t2igan.text.clip as clip_module

    train, _ = splits
    config = full_config("clip", {"model": "clip-small"})
    key = cache_key("clip", "shapes", train, config, 0)
    edited = json.loads((clip_module.CONFIG_DIR / "clip-small.json").read_text())
    edited["text_cfg"]["width"] *= 2  # what changing clip-small.json in a new release looks like
    (tmp_path / "clip-small.json").write_text(json.dumps(edited))
    monkeypatch.setattr(clip_module, "CONFIG_DIR", tmp_path)
    assert cache_key("clip", "shapes", train, config, 0) != key


def test_a_changed_config_trains_a_new_file(splits, trained, tmp_path, counted):
    first = _copy_cache(trained, "damsm", tmp_path)
    second = ensure_pretrained(
        "damsm", "shapes", *splits, config={**TINY["damsm"], "epochs": 1}, progress=False, cache_root=tmp_path
    )
    assert counted == ["damsm"]
    assert second.path != first and first.is_file() and second.stats["epochs"] == 1


def test_a_truncated_file_is_detected_and_retrained(splits, trained, tmp_path, counted):
    first = _copy_cache(trained, "damsm", tmp_path)
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    with pytest.warns(UserWarning, match="differs from the sidecar"):
        again = _ensure("damsm", splits, tmp_path)
    assert again.trained_now and counted == ["damsm"] and again.path == first
    assert sha256_file(again.path) == json.loads(sidecar_path(again.path).read_text())["sha256"]


def test_a_missing_sidecar_is_not_trusted(splits, trained, tmp_path, counted):
    first = _copy_cache(trained, "damsm", tmp_path)
    sidecar_path(first).unlink()
    with pytest.warns(UserWarning, match="no readable sidecar"):
        again = _ensure("damsm", splits, tmp_path)
    assert again.trained_now and counted == ["damsm"]


def test_the_lock_is_released_and_racing_threads_train_once(splits, tmp_path, counted):
    results, errors = [], []

    def call():
        try:
            results.append(_ensure("damsm", splits, tmp_path))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 2
    assert counted == ["damsm"]
    assert sorted(r.trained_now for r in results) == [False, True]
    assert results[0].sha256 == results[1].sha256
    lock = results[0].path.with_name(results[0].path.name + ".lock")
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if still held


def test_another_test_split_is_measured_without_training(splits, trained, tmp_path, monkeypatch):
    train, test = splits
    first = trained["clip"][0]
    path = _copy_cache(trained, "clip", tmp_path)
    _forbid_training(monkeypatch)
    other = load_shapes_split(split="test", size=40, seed=5)
    again = ensure_pretrained(
        "clip", "shapes", train, other, config=TINY["clip"], progress=False, cache_root=tmp_path
    )
    assert again.stats["test_sha256"] == other.sha256 != test.sha256
    saved = json.loads(sidecar_path(path).read_text())
    assert saved["stats"]["test_sha256"] == other.sha256
    assert saved["retrieval_top1"] == again.retrieval_top1
    assert saved["sha256"] == sha256_file(path) == first.sha256


def test_bad_kind_and_bad_config_key_are_named(splits, tmp_path):
    with pytest.raises(UnknownNameError, match="'bert'.*Known text encoders: clip, damsm"):
        ensure_pretrained("bert", "shapes", *splits, cache_root=tmp_path)
    with pytest.raises(ConfigError, match="epochz"):
        ensure_pretrained("damsm", "shapes", *splits, config={"epochz": 1}, cache_root=tmp_path)
