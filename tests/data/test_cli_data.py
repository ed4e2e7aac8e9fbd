"""`t2igan data check` as a user runs it: the exit status tells whether the folder is sound."""

from __future__ import annotations

from tests.conftest import run_cli


def test_data_check_passes_on_a_sound_tree_and_fails_on_a_corrupt_jpeg(cub_tree, tmp_path):
    env = {"T2IGAN_CACHE": str(tmp_path / "cache")}
    sound = run_cli("data", "check", "cub", "--root", str(cub_tree.root), env=env)
    assert sound.returncode == 0, sound.stderr
    assert "sha256" in sound.stdout
    broken = next(iter(cub_tree.images.values()))
    broken.write_bytes(b"not a jpeg")
    result = run_cli("data", "check", "cub", "--root", str(cub_tree.root), env=env)
    assert result.returncode == 1
    assert broken.name in result.stdout
