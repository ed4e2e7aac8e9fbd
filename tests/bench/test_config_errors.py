"""Configuration values are checked before any work starts, each with one line naming the flag, field
or file, what was given and what was expected."""

from __future__ import annotations

import pytest

import t2igan
from t2igan.benchmarking.plan import load_plan_file, make_plan
from t2igan.errors import ConfigError
from tests.conftest import run_cli


def one_line(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("models", ["", " ", []])
def test_an_empty_models_field_is_an_error_not_every_model(models):
    with pytest.raises(ConfigError, match="models is empty: give at least one model name"):
        make_plan({"models": models})
    assert make_plan({}).models == []  # left out: every registered model


def test_bench_with_an_empty_models_flag_says_so(tmp_path):
    line = one_line(
        run_cli("bench", "--models", "", "--out", str(tmp_path / "out"), env={"T2IGAN_CACHE": str(tmp_path)})
    )
    assert "flags: models is empty" in line and not (tmp_path / "out").exists()


def test_a_plan_file_that_is_a_folder_or_not_utf8_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"plan file {tmp_path}: is a folder, expected a .toml file"):
        load_plan_file(tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(
        ConfigError, match=rf"plan file {latin}: not UTF-8 text \(byte 11\); save it as UTF-8"
    ):
        load_plan_file(latin)
    line = one_line(run_cli("bench", str(latin)))
    assert f"plan file {latin}: not UTF-8 text" in line


@pytest.mark.parametrize("value", ["-5", "0", "two"])
def test_train_refuses_a_step_count_that_is_not_positive(tmp_path, value):
    out = tmp_path / "run"
    line = one_line(
        run_cli(
            "train", "--model", "dfgan", "--data", "shapes:size=tiny", "--steps", value, "--out", str(out)
        )
    )
    assert f"argument --steps: {value!r}: expected a positive integer" in line
    assert not out.exists()  # today's `--steps -5` trained nothing and wrote final.pt


@pytest.mark.parametrize(("steps", "epochs"), [(-5, None), (None, 0), (True, None), (2, 3)])
def test_the_api_checks_the_budget_before_any_work(tmp_path, monkeypatch, steps, epochs):
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="expected a positive integer|not both"):
        t2igan.train("dfgan", "shapes:size=tiny", steps=steps, epochs=epochs, out=tmp_path / "run")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_a_misspelt_encoder_setting_is_refused_before_any_run(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'models = ["dfgan"]\nsteps = 2\n[encoders.damsm]\nweightz = "/w/text_encoder200.pth"\n',
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    line = one_line(
        run_cli("bench", str(plan), "--out", str(tmp_path / "out"), env={"T2IGAN_CACHE": str(cache)})
    )
    assert "[encoders.damsm] weightz: not a setting of the damsm encoder; known: " in line
    assert "weights" in line and not (cache / "encoders").exists()
    plan.write_text('models = ["dfgan"]\n[encoders.damsn]\nepochs = 1\n', encoding="utf-8")
    line = one_line(
        run_cli("bench", str(plan), "--out", str(tmp_path / "out"), env={"T2IGAN_CACHE": str(cache)})
    )
    assert "unknown text encoder 'damsn'. Did you mean 'damsm'?" in line
