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


def test_data_commands_take_loader_options(celeba_tree, tmp_path, monkeypatch, capsys):
    from t2igan.cli import main

    monkeypatch.setenv("T2IGAN_CACHE", str(tmp_path / "cache"))
    keys = celeba_tree.keys
    (celeba_tree.root / "subset.txt").write_text("\n".join([*keys["train"][:2], keys["test"][0]]) + "\n")
    assert main(["data", "check", "celeba-tiny", "--root", str(celeba_tree.root)]) == 0
    full = capsys.readouterr().out
    assert main(["data", "check", "celeba-tiny:subset=subset.txt", "--root", str(celeba_tree.root)]) == 0
    sub = capsys.readouterr().out
    assert [line.split()[:2] for line in sub.splitlines() if "images x" in line] == [
        ["train", "2"],
        ["test", "1"],
    ]
    assert sub != full
    assert main(["data", "prepare", "shapes:size=tiny", "--splits", "test", "--resolution", "32"]) == 0
    assert "cache ready" in capsys.readouterr().out
    assert main(["data", "check", "shapes:sizes=tiny"]) == 2  # a misspelt option is named
    assert "sizes" in capsys.readouterr().err
