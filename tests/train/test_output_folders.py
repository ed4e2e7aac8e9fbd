"""An output that cannot be written is one clear error before any encoder or model is built: an --out that
is a file, on a read-only file system, or on a full disk, for train, bench, sample, eval and convert.

The read-only and full file systems are real: a private mount namespace (`unshare`) mounts the folder
read-only, or a 1 MiB tmpfs over it, for the one command, and nothing outside it sees the change."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from t2igan.errors import ConfigError
from t2igan.paths import MIN_FREE_BYTES, check_output_file, check_output_folder
from tests.conftest import ROOT, run_cli

TRAIN = ("train", "--model", "dfgan", "--data", "shapes:size=tiny", "--steps", "2")
BENCH = ("bench", "--models", "dfgan", "--data", "shapes:size=tiny", "--steps", "2")


def in_namespace(mount: str, *args: str, cache: Path) -> subprocess.CompletedProcess:
    """`t2igan ARGS` after `mount` (a shell command) in a mount namespace of its own."""
    command = f"{mount} && exec {shlex.quote(sys.executable)} -m t2igan {shlex.join(args)}"
    return subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "T2IGAN_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HOME": str(cache)},
        timeout=300,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def nothing_built(cache: Path) -> bool:
    """No encoder was pre-trained and no image cache written: the error came before any work."""
    return not (cache / "encoders").exists() and not (cache / "images").exists()


@pytest.mark.parametrize("command", [TRAIN, BENCH], ids=["train", "bench"])
def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path, command):
    taken = tmp_path / "taken"
    taken.write_text("not a folder", encoding="utf-8")
    cache = tmp_path / "cache"
    line = one_line_error(run_cli(*command, "--out", str(taken), env={"T2IGAN_CACHE": str(cache)}))
    assert (
        line
        == f"t2igan {command[0]}: error: --out {taken}: is a file, expected a folder (give another --out)"
    )
    assert nothing_built(cache) and taken.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.parametrize("command", [TRAIN, BENCH], ids=["train", "bench"])
def test_an_out_on_a_read_only_file_system_is_refused_before_any_work(tmp_path, command):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    cache = tmp_path / "cache"
    mount = f"mount --bind -o ro {shlex.quote(str(shelf))} {shlex.quote(str(shelf))}"
    line = one_line_error(in_namespace(mount, *command, "--out", str(shelf / "runs"), cache=cache))
    assert f"--out {shelf / 'runs'}: {shelf} is on a read-only file system" in line
    assert nothing_built(cache) and not (shelf / "runs").exists()


@pytest.mark.parametrize("command", [TRAIN, BENCH], ids=["train", "bench"])
def test_an_out_on_a_full_disk_is_refused_before_any_work(tmp_path, command):
    small = tmp_path / "small"
    small.mkdir()
    cache = tmp_path / "cache"
    mount = f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(small))}"
    line = one_line_error(in_namespace(mount, *command, "--out", str(small / "run"), cache=cache))
    assert f"--out {small / 'run'}: only 1.0 MiB free on the disk of {small}" in line
    assert f"at least {MIN_FREE_BYTES // 2**20} MiB" in line and nothing_built(cache)


def test_sample_eval_and_convert_check_their_out_file_before_loading_anything(tmp_path):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    cache = tmp_path / "cache"
    mount = f"mount --bind -o ro {shlex.quote(str(shelf))} {shlex.quote(str(shelf))}"
    missing = str(tmp_path / "no-such.pt")  # never read: the --out check comes first
    for args in [
        ("sample", "--ckpt", missing, "--text", "a red circle", "--out", str(shelf / "grid.png")),
        ("sample", "--ckpt", missing, "--text", "a red circle", "--out", str(shelf / "folder")),
        ("eval", missing, "--out", str(shelf / "values.json")),
        ("convert", missing, "--model", "dfgan.bird256", "--out", str(shelf / "ours.pt")),
    ]:
        line = one_line_error(in_namespace(mount, *args, cache=cache))
        assert f"{shelf} is on a read-only file system" in line, (args, line)


def test_a_file_on_the_way_to_the_folder_is_named(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"--out {blocker}/a/b: {blocker} is a file, so the folder cannot"):
        check_output_folder(blocker / "a" / "b")
    with pytest.raises(ConfigError, match="is a folder, expected a file name"):
        check_output_file(tmp_path)
    assert check_output_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checking creates nothing
