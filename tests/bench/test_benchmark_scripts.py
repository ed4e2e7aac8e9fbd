"""Helpers of the scripts in benchmarks/ that can be checked without the official checkouts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"_t2igan_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_easydict_standin_survives_a_second_official_import(monkeypatch):
    """train_speed imports the official RAT-GAN once per configuration; the second call found the
    stand-in module (no __spec__) and crashed in find_spec."""
    parity = _load("official_parity", monkeypatch)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "easydict" else real_find_spec(name, *a)
    )
    saved = sys.modules.pop("easydict", None)
    try:
        parity.standin_easydict()
        first = sys.modules["easydict"]
        parity.standin_easydict()
        assert sys.modules["easydict"] is first
        config = first.EasyDict(a=1)
        config.b = 2
        assert (config.a, config["b"]) == (1, 2)
    finally:
        sys.modules.pop("easydict", None)
        if saved is not None:
            sys.modules["easydict"] = saved
