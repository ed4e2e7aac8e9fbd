"""Errors tell the truth: every flag that a message of ours names exists, and every place that a
missing-weights error tells the user to give a path (a flag, a plan key, a model override) exists and
sets that path."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest
import torch

from t2igan.cli import build_parser
from t2igan.errors import T2IGanError
from t2igan.metrics.inception import WEIGHTS_REFS
from t2igan.models import parse_model_ref, resolve
from t2igan.registry import get_registry
from t2igan.text.clip import clip_weights_ref
from t2igan.text.damsm import OFFICIAL_DAMSM, damsm_weights_ref
from t2igan.training.session import DatasetSession, TextEncoderPool
from t2igan.weights import WeightsSetting
from t2igan_plugins.alrgan.lvr import VGG16_REF
from tests.layouts import write_captions_pickle, write_cub
from tests.standins import write_damsm

ROOT = Path(__file__).resolve().parents[2]
# Flags of other programs that our code runs (git for the record's code version, torchrun for --nproc):
# they are arguments of those commands, never advice to a user of ours.
OTHER_PROGRAMS = {"--show-toplevel", "--porcelain", "--untracked-files", "--standalone"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def parser_flags(parser: argparse.ArgumentParser) -> set[str]:
    flags = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= parser_flags(sub)
    return flags


def flags_in_source(path: Path) -> set[str]:
    """Every `--flag` in a string literal (f-strings' literal parts too) of one module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(FLAG.findall(node.value))
    return found


def test_every_flag_named_in_the_code_is_a_flag_of_the_command():
    known = parser_flags(build_parser())
    named = {
        (flag, str(path.relative_to(ROOT)))
        for path in sorted([*(ROOT / "t2igan").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")])
        for flag in flags_in_source(path)
    }
    assert len(named) > 30  # the scan sees the messages (--root, --plan, --fid-mode, ...)
    assert sorted((f, where) for f, where in named if f not in known | OTHER_PROGRAMS) == []


def test_the_scan_finds_flags_in_plain_and_formatted_strings(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('x = 1\nraise SystemExit(f"give --text-encoder-weights {x} or --root DIR")\n')
    assert flags_in_source(module) == {"--text-encoder-weights", "--root"}


def weights_settings() -> list[WeightsSetting]:
    """The setting of every weights file the code resolves."""
    refs = [
        *WEIGHTS_REFS.values(),
        *(damsm_weights_ref(tag, part) for tag in (*OFFICIAL_DAMSM, "shapes") for part in ("text", "image")),
        clip_weights_ref("ViT-B-32", "openai"),
        clip_weights_ref("clip-small", "shapes"),
        VGG16_REF,
    ]
    assert all(ref.setting is not None for ref in refs), [r for r in refs if r.setting is None]
    return sorted({ref.setting for ref in refs}, key=lambda s: (s.kind, s.table, s.key))


def test_the_settings_are_of_the_three_kinds_and_their_advice_names_them():
    settings = weights_settings()
    assert {s.kind for s in settings} == {"flag", "plan", "override"}
    for setting in settings:
        assert setting.key in setting.advice and setting.table in setting.advice


def test_every_flag_setting_is_a_flag_of_the_commands_that_score():
    commands = {
        name: parser_flags(sub)
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }
    for setting in [s for s in weights_settings() if s.kind == "flag"]:
        assert setting.key in commands["bench"] and setting.key in commands["eval"], setting


@pytest.fixture()
def cub(tmp_path, monkeypatch):
    """A CUB folder with its DAMSM vocabulary, and official-format DAMSM files under $T2IGAN_WEIGHTS."""
    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    tree = write_cub(tmp_path / "cub")
    write_damsm(tmp_path / "weights", "cub", write_captions_pickle(tree))
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(tmp_path / "weights"))
    registry = get_registry()
    return registry, DatasetSession.open(registry, "cub", str(tree.root), progress=False)


def _load_with(registry, data, encoder: str, key: str, path: Path):
    pool = TextEncoderPool(registry, torch.device("cpu"), progress=False, options={encoder: {key: str(path)}})
    handle = pool.get(encoder, data)
    return handle.metric_object  # a metric's view: the DAMSM image encoder loads here


@pytest.mark.parametrize("index", range(3))
def test_every_plan_setting_is_read_from_the_plan_table_it_names(cub, tmp_path, index):
    plan = [s for s in weights_settings() if s.kind == "plan"]
    assert [s.name for s in plan] == [
        "[encoders.clip] pretrained",
        "[encoders.damsm] image_weights",
        "[encoders.damsm] weights",
    ]
    setting = plan[index]
    registry, data = cub
    missing = tmp_path / "no-such" / f"{setting.key}.pth"
    encoder = setting.table.split(".", 1)[1]
    with pytest.raises(T2IGanError, match=re.escape(str(missing))):
        _load_with(registry, data, encoder, setting.key, missing)


def test_every_override_setting_is_a_key_of_the_model_and_sets_the_path(tmp_path):
    registry = get_registry()
    missing = tmp_path / "no-such" / "vgg16.pth"
    for setting in [s for s in weights_settings() if s.kind == "override"]:
        assert setting.key == "lvr_vgg_weights"
        resolved = resolve(parse_model_ref(f"alrgan:lvr_features=vgg16,{setting.key}={missing}"), registry)
        assert resolved.config[setting.key] == str(missing)
        from t2igan_plugins.alrgan.lvr import build_extractor

        with pytest.raises(T2IGanError, match=re.escape(f"{setting.key} {missing}: no such file")):
            build_extractor(resolved.config["lvr_features"], resolved.config[setting.key])
