"""A third-party plugin package, installed with pip, is listed, provides its model, and a broken
plugin beside it is reported without stopping anything else."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def plugins_json(env=None):
    result = run_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_third_party_plugin_is_listed_and_broken_ones_are_reported(third_party_plugins):
    rows = plugins_json()
    example = rows["example"]
    assert example["status"] == "ok"
    assert example["distribution"] == "t2igan-example"
    assert example["version"] == "0.2.0"
    assert example["provides"] == {"model": ["example"]}
    assert example["licenses"] == {"model:example": "MIT"}
    assert rows["broken_import"]["status"] == "error"
    assert "t2igan_dependency_that_is_not_installed" in rows["broken_import"]["error"]
    assert rows["broken_hook"]["status"] == "error"
    assert "device" in rows["broken_hook"]["error"]  # pluggy names the argument the spec lacks


def test_third_party_model_is_listed_with_parameter_counts(third_party_plugins):
    result = run_cli("models", "--json", "exam*")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["model"], r["preset"]) for r in rows] == [("example", "tiny")]
    counts = rows[0]["parameters"]
    assert counts["G"]["trainable"] > 0 and counts["D"]["trainable"] > 0
    assert counts["G"]["frozen"] == 0


def test_env_can_exclude_third_party_plugins(third_party_plugins):
    rows = plugins_json({"T2IGAN_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "example" not in rows and "broken_import" not in rows
    rows = plugins_json({"T2IGAN_PLUGINS": "example"})
    assert "example" in rows and "broken_import" not in rows and "broken_hook" not in rows


def test_plugins_text_output_names_the_failure(third_party_plugins):
    result = run_cli("plugins")
    assert result.returncode == 0
    assert "broken_import" in result.stdout and "status: error" in result.stdout
    assert "example 0.2.0  [t2igan-example]  status: ok" in result.stdout
