"""Helpers of the scripts in benchmarks/ that can be checked without the official checkouts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

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


def test_numerics_spread_gives_each_claims_worst_margin_and_what_rounding_alone_moved(monkeypatch):
    spread = _load("numerics_spread", monkeypatch)

    def entry(seed, value, capability, threads):
        return {
            "test": "tests/models/test_x.py::test_d", "claim": "fall", "value": value, "bound": 0.5,
            "sense": ">", "margin": value - 0.5, "seed": seed, "threads": threads,
            "capability": capability, "onednn_isa": "",
        }  # fmt: skip

    entries = [
        entry(0, 1.2, "AVX2", 1),
        entry(0, 1.0, "DEFAULT", 2),
        entry(1, 0.7, "AVX2", 1),
        entry(1, 0.8, "DEFAULT", 2),
    ]
    (row,) = spread.spread_rows(entries)
    assert row["file"] == "models/test_x.py" and row["bound"] == "> 0.5" and row["range"] == "0.7 – 1.2"
    assert row["worst margin"] == pytest.approx(0.2) and row["rounding"] == pytest.approx(0.2)
    assert (row["seeds"], row["settings"]) == (2, 2)
    assert "| models/test_x.py | fall | > 0.5 | 0.7 – 1.2 | 0.2 | 0.2 | 2 | 2 |" in spread.markdown([row])
