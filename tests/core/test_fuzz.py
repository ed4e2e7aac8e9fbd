"""Bounded fuzzing: plan files, model references, `bench` flags and caption files, each drawn by
hypothesis; every one either succeeds or ends with one line from our error classes, never a traceback
(tests/fuzzing.py holds the inputs and the check; benchmarks/fuzz.py runs many more)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.fuzzing import (
    bench_argv,
    caption_bytes,
    check_bench_argv,
    check_caption_file,
    check_model_ref,
    check_plan_text,
    model_refs,
    plan_texts,
)

BOUNDED = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@BOUNDED
@given(plan_texts)
def test_plan_files(text):
    with tempfile.TemporaryDirectory() as folder:
        assert check_plan_text(text, Path(folder)) in ("ok", "refused")


@BOUNDED
@given(model_refs)
def test_model_references(text):
    assert check_model_ref(text) in ("ok", "refused")


@settings(max_examples=25, deadline=None, derandomize=True)
@given(bench_argv)
def test_bench_flags(argv):
    with tempfile.TemporaryDirectory() as folder:
        assert check_bench_argv(argv, Path(folder) / "out") in ("ok", "refused")


@BOUNDED
@given(caption_bytes)
def test_caption_files(data):
    with tempfile.TemporaryDirectory() as folder:
        assert check_caption_file(data, Path(folder)) in ("ok", "refused")


def test_the_check_catches_what_escapes():
    import pytest

    from tests.fuzzing import Escaped, outcome

    with pytest.raises(Escaped, match="ZeroDivisionError"):
        outcome(lambda: 1 / 0)
    assert outcome(lambda: None) == "ok"
