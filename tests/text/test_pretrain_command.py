"""`t2igan pretrain-encoder` end to end through `t2igan.cli.main`, on the tiny shapes split with the default
config swapped for a tiny one (the CLI has no config flag)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from t2igan.cli import main
from t2igan.cli.commands import parse_overrides
from t2igan.errors import ConfigError
from t2igan.registry import get_registry
from t2igan.text import pretrained
from t2igan.weights import sha256_file

TINY = {
    "damsm": {
        "epochs": 2,
        "data_image_size": 32,
        "image_size": 32,
        "grid": 4,
        "width": 4,
        "embedding_dim": 16,
    },
    "clip": {"model": "clip-tiny", "epochs": 1, "data_image_size": 32, "batch_size": 64, "eval_images": 64},
}


@pytest.fixture()
def tiny_defaults(monkeypatch, tmp_path):
    registry = get_registry()
    for kind, config in TINY.items():
        spec = registry.text_encoder(kind)
        tiny = replace(spec, recipe=replace(spec.recipe, defaults=config))
        monkeypatch.setitem(registry.text_encoders, kind, tiny)
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _stdout_lines(text: str) -> dict[str, str]:
    return {line.split()[0]: line for line in text.splitlines() if line.strip()}


def test_out_writes_the_file_and_prints_top1_sha_and_path(tiny_defaults, capsys):
    out = tiny_defaults / "encoders" / "damsm.pt"
    code = main(["pretrain-encoder", "damsm", "--data", "shapes:size=tiny", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    lines = _stdout_lines(printed)
    assert "top-1 among 100 =" in lines["damsm:"] and "2 epochs" in lines["damsm:"]
    assert lines["sha256"].split()[1] == sha256_file(out)
    assert lines["path"].split()[1] == str(out)
    assert out.with_suffix(".json").is_file()
    assert not (tiny_defaults / "cache" / "encoders").exists()  # --out bypasses the encoder cache


def test_without_out_the_second_run_uses_the_cache(tiny_defaults, capsys, monkeypatch):
    assert main(["pretrain-encoder", "clip", "--data", "shapes:size=tiny"]) == 0
    first = _stdout_lines(capsys.readouterr().out)
    assert "trained in" in first["clip:"]
    assert str(tiny_defaults / "cache" / "encoders" / "clip") in first["path"]

    def fail(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pretrained, "train_and_save", fail)
    assert main(["pretrain-encoder", "clip", "--data", "shapes:size=tiny"]) == 0
    second = _stdout_lines(capsys.readouterr().out)
    assert "cached" in second["clip:"] and second["sha256"] == first["sha256"]


def test_unknown_dataset_exits_2_naming_it(tiny_defaults, capsys):
    assert main(["pretrain-encoder", "damsm", "--data", "shapez"]) == 2
    err = capsys.readouterr().err
    assert "shapez" in err and "shapes" in err


def test_missing_root_exits_2_naming_the_flag(tiny_defaults, capsys):
    missing = tiny_defaults / "no-such-folder"
    assert main(["pretrain-encoder", "damsm", "--data", "cub", "--root", str(missing)]) == 2
    assert f"--root {missing}" in capsys.readouterr().err


def test_overrides_parse_json_values_and_reject_bad_items():
    assert parse_overrides(["epochs=3", "lr=0.01", "model=clip-tiny", "betas=[0.5, 0.9]"]) == {
        "epochs": 3,
        "lr": 0.01,
        "model": "clip-tiny",
        "betas": [0.5, 0.9],
    }
    with pytest.raises(ConfigError, match="'epochs'"):
        parse_overrides(["epochs"])
