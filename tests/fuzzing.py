"""Inputs a careless user or an attacker hands the command, as hypothesis strategies, and the one check
they all get: each either succeeds or ends in one line from our error classes, never a traceback. Used by
the bounded fuzz test in the suite (tests/core/test_fuzz.py) and the longer benchmarks/fuzz.py."""

from __future__ import annotations

import contextlib
import io
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from t2igan.benchmarking.plan import PLAN_FIELDS, load_plan_file
from t2igan.benchmarking.runner import validate_plan
from t2igan.cli import main
from t2igan.data.layouts import read_captions
from t2igan.errors import T2IGanError
from t2igan.models import parse_model_ref, resolve
from t2igan.registry import get_registry

# -------------------------------------------------------------------------------------------- values

NAMES = ["dfgan", "ratgan", "galip", "ratlip", "alrgan", "dfgan.bird256", "galip.cub", "nosuch", ""]
KEYS = [
    "nf",
    "fusion",
    "lr_g",
    "max_epoch",
    "truncation",
    "magp_weight",
    "clip_layers",
    "shuffle_attention",
    "x",
]
WORDS = ["1", "-5", "0", "3.5", "nan", "inf", "true", "none", "abc", "rat", "1e-3", "", "=", ",", "ü"]

toml_scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(string.printable, max_size=12),
    st.sampled_from(["dfgan", "shapes:size=tiny", "all", "paper", "quick", "smoke", "clean", "cub=/nowhere"]),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["damsm", "clip", "epochs", "a"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"


plan_texts = st.one_of(
    st.dictionaries(st.sampled_from([*PLAN_FIELDS, "modles", "name"]), toml_values, max_size=6).map(
        lambda fields: "".join(f"{k} = {_toml_value(v)}\n" for k, v in fields.items())
    ),
    st.binary(max_size=200),  # not TOML, or not UTF-8, at all
)
model_refs = st.builds(
    lambda name, pairs: name + (":" + ",".join(f"{k}={v}" for k, v in pairs) if pairs else ""),
    st.sampled_from(NAMES),
    st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(WORDS)), max_size=3),
) | st.text(string.ascii_letters + string.digits + ":,.=_- ", max_size=30)
bench_argv = st.lists(
    st.sampled_from(
        [
            ["--models", "dfgan"],
            ["--models", ""],
            ["--data", "shapes:size=tiny"],
            ["--data", "shapez"],
            ["--seeds", "0,1"],
            ["--seeds", "a,b"],
            ["--steps", "-5"],
            ["--steps", "3"],
            ["--epochs", "2"],
            ["--budget", "paper"],
            ["--budget", "huge"],
            ["--fid-mode", "clean"],
            ["--fid-reference", "cub=x.npz"],
            ["--eval-images", "0"],
            ["--batch-size", "true"],
            ["--second-clip", "=="],
            ["--root", "cub"],
            ["--protocol", "full"],
        ]
    ),
    max_size=4,
).map(lambda parts: [flag for part in parts for flag in part])
caption_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.text(max_size=40), max_size=12).map(lambda lines: "\n".join(lines).encode("utf-8")),
)

# ---------------------------------------------------------------------------------------- the check


class Escaped(AssertionError):
    """An input that ended in something other than success or one line from our error classes."""


def outcome(call: Callable[[], Any]) -> str:
    """ "ok" or "refused"; anything else (an exception of another class, a message over several lines)
    raises Escaped."""
    try:
        call()
    except T2IGanError as exc:
        if "\n" in str(exc).strip():
            raise Escaped(f"a message over several lines: {exc}") from exc
        return "refused"
    except Exception as exc:
        raise Escaped(f"{type(exc).__name__}: {exc}") from exc
    return "ok"


def check_plan_text(text: str | bytes, folder: Path) -> str:
    path = folder / "plan.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", errors="surrogatepass"))
    return outcome(lambda: validate_plan(load_plan_file(path), get_registry()))


def check_model_ref(text: str) -> str:
    return outcome(lambda: resolve(parse_model_ref(text), get_registry()))


def check_bench_argv(argv: list[str], out: Path) -> str:
    """`t2igan bench ARGV --emit-commands`: the flags are parsed and the plan is checked, nothing runs."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["bench", *argv, "--out", str(out), "--emit-commands"])
        except SystemExit as exc:  # argparse: a bad flag
            code = exc.code
        except Exception as exc:
            raise Escaped(f"bench {argv}: {type(exc).__name__}: {exc}") from exc
    said = [
        line
        for line in stderr.getvalue().splitlines()
        if line.strip() and not line.startswith("t2igan: warning")
    ]
    if code not in (0, 2) or "Traceback" in stderr.getvalue() or (code == 2 and len(said) != 1):
        raise Escaped(f"bench {argv}: exit {code}, stderr {stderr.getvalue()!r}")
    return "ok" if code == 0 else "refused"


def check_caption_file(data: bytes, folder: Path, count: int = 3) -> str:
    path = folder / "captions.txt"
    path.write_bytes(data)
    return outcome(lambda: read_captions(path, count))
