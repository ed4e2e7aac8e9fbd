"""Messages go through `logging`: the library logs under `t2igan` and adds no handler, the command sets
the level once (`-v` / `-q`), progress (messages and bars) goes to stderr and results to stdout."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from t2igan.cli import LOGGERS, build_parser, setup_logging
from t2igan.data.cache import ensure_image_cache
from t2igan.data.shapes import load_shapes_split
from t2igan.progress import show_progress
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ library


def test_the_image_cache_says_what_it_does_through_the_t2igan_logger(tmp_path, caplog):
    split = load_shapes_split(None, "test", size=8, seed=1)
    with caplog.at_level(logging.DEBUG, logger="t2igan"):
        built = ensure_image_cache(split, 16, root=tmp_path, progress=False)
        ensure_image_cache(split, 16, root=tmp_path, progress=False)
        built.sidecar_path.write_text("{", encoding="utf-8")
        ensure_image_cache(split, 16, root=tmp_path, progress=False)
    said = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("t2igan")]
    assert [(name, level) for name, level, _ in said] == [
        ("t2igan.data.cache", logging.DEBUG),
        ("t2igan.data.cache", logging.DEBUG),
        ("t2igan.data.cache", logging.WARNING),
    ]
    assert said[0][2] == f"building image cache {built.array_path}"
    assert said[1][2] == f"image cache {built.array_path}: valid, reused"
    assert said[2][2].startswith(f"rebuilding image cache {built.array_path}: unreadable sidecar")


def test_the_library_alone_adds_no_handler_and_writes_nothing_to_stderr(tmp_path):
    # a fresh interpreter: no handler of pytest's, none of an in-process `main()` of another test
    code = (
        "import logging\nfrom pathlib import Path\n"
        "from t2igan.data.cache import ensure_image_cache\n"
        "from t2igan.data.shapes import load_shapes_split\n"
        "logging.getLogger('t2igan').setLevel(logging.DEBUG)\n"
        "split = load_shapes_split(None, 'test', size=8, seed=1)\n"
        "for _ in range(2):\n"
        f"    ensure_image_cache(split, 16, root=Path({str(tmp_path)!r}), progress=False)\n"
        "handlers = [h for name in ('t2igan', 't2igan.data', 't2igan.data.cache')\n"
        "            for h in logging.getLogger(name).handlers if not isinstance(h, logging.NullHandler)]\n"
        "print(len(handlers))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0"]
    assert result.stderr == ""  # debug messages were logged, and nobody showed them


def library_modules() -> list[Path]:
    package = ROOT / "t2igan"
    return sorted(
        [path for path in package.rglob("*.py") if "cli" not in path.relative_to(package).parts]
        + list((ROOT / "plugins").rglob("*.py"))
    )


def _is_std_stream(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr in ("stdout", "stderr")
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def terminal_writes(source: str) -> list[int]:
    """The lines of `print(...)` calls and of `sys.stdout` / `sys.stderr` writes in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        printed = isinstance(func, ast.Name) and func.id == "print"
        written = isinstance(func, ast.Attribute) and func.attr == "write" and _is_std_stream(func.value)
        if printed or written:
            found.append(node.lineno)
    return sorted(found)


def test_library_code_prints_nothing_to_stderr_or_stdout():
    """Outside the command (t2igan/cli) messages go through `logging` and results are returned: a
    notebook user decides what shows, and a command's stdout holds only its results."""
    modules = library_modules()
    assert modules, "no library modules found"
    hits = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in modules
        for line in terminal_writes(path.read_text(encoding="utf-8"))
    ]
    assert hits == []


def test_the_check_finds_prints_and_stream_writes():
    source = "import sys\nprint('x', file=sys.stderr)\nsys.stderr.write('y')\nlen('z')\nprint('w')\n"
    assert terminal_writes(source) == [2, 3, 5]


# ------------------------------------------------------------------------------- the command's level


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        (["bench"], 0),
        (["-q", "bench"], -1),
        (["bench", "-q"], -1),
        (["-v", "data", "prepare", "shapes"], 1),
        (["data", "prepare", "shapes", "-qq"], -2),
        (["--verbose", "models", "--quiet"], 0),
    ],
)
def test_v_and_q_are_taken_before_and_after_the_command(argv, verbosity):
    args = build_parser().parse_args(argv)
    assert args.verbose - args.quiet == verbosity


def test_setup_logging_installs_one_handler_and_sets_the_level(restored_loggers):
    for verbosity, level in [
        (0, logging.INFO),
        (1, logging.DEBUG),
        (-1, logging.WARNING),
        (-3, logging.ERROR),
    ]:
        setup_logging(verbosity)
        setup_logging(verbosity)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            assert logger.level == level
            assert len([h for h in logger.handlers if h.__class__.__module__ == "t2igan.cli"]) == 1


def test_progress_bars_follow_the_t2igan_logger(restored_loggers):
    logger = logging.getLogger("t2igan")
    logger.setLevel(logging.NOTSET)  # nobody set it (a notebook): the caller's flag decides
    assert show_progress(True) and not show_progress(False)
    setup_logging(-1)
    assert not show_progress(True)
    setup_logging(0)
    assert show_progress(True) and not show_progress(False)


def test_quiet_prepare_prints_its_result_only_and_verbose_shows_debug_messages(tmp_path):
    env = {"T2IGAN_CACHE": str(tmp_path / "cache")}
    prepare = ("data", "prepare", "shapes:size=tiny", "--splits", "test")
    quiet = run_cli("-q", *prepare, "--resolution", "16", env=env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith("cache ready: ") and quiet.stderr == ""

    shown = run_cli(*prepare, "--resolution", "24", env=env)  # without -q: the bar of the build
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("cache ready: ") and "cache shapes/test" in shown.stderr

    verbose = run_cli(*prepare, "--resolution", "16", "-v", env=env)
    assert verbose.returncode == 0, verbose.stderr
    path = quiet.stdout.split("cache ready: ", 1)[1].strip()
    assert verbose.stdout.strip() == quiet.stdout.strip()
    assert f"debug: t2igan.data.cache: image cache {path}: valid, reused" in verbose.stderr
