"""`t2igan train`, `sample` and `eval` as a user runs them, on the tiny `shapes` split with tiny encoders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from t2igan.cli import main
from tests.conftest import TINY_ENCODER_SETTINGS

TINY_ENCODERS = TINY_ENCODER_SETTINGS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny DF-GAN run (its cache kept for the module)."""
    folder = tmp_path_factory.mktemp("train")
    mp = pytest.MonkeyPatch()
    mp.setenv("T2IGAN_CACHE", str(folder / "cache"))
    plan = folder / "settings.toml"
    plan.write_text(TINY_ENCODERS, encoding="utf-8")
    out = folder / "run"
    args = ["train", "--model", "dfgan", "--data", "shapes:size=tiny", "--steps", "3", "--plan", str(plan)]
    assert main([*args, "--out", str(out)]) == 0
    yield out, args, plan
    mp.undo()


def test_train_writes_a_checkpoint_samples_and_a_log(trained):
    out, _, _ = trained
    assert (out / "train" / "final.pt").is_file()
    assert (out / "train" / "samples" / "final.png").is_file()
    steps = [json.loads(line)["step"] for line in (out / "train" / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 3


def test_train_refuses_to_overwrite_and_resumes_on_request(trained, capsys):
    out, args, _ = trained
    assert main([*args, "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main([*args[:-4], "--steps", "5", "--plan", str(args[-1]), "--out", str(out), "--resume"]) == 0
    assert "trained 5 steps" in capsys.readouterr().out


def test_resume_with_nothing_to_resume_says_so_and_trains_nothing(trained, tmp_path, capsys):
    out, args, _ = trained
    assert main([*args, "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "train").exists()
    # the run's own train/ folder given instead of the run folder: the error names the parent
    assert main([*args, "--out", str(out / "train"), "--resume"]) == 2
    assert f"--out {out}" in capsys.readouterr().err
    assert not (out / "train" / "train").exists()


def test_the_same_seed_trains_the_same_weights_on_cpu(trained, tmp_path):
    import torch

    from t2igan.training.checkpoint import read_checkpoint

    _, args, _ = trained

    def weights(seed):
        out = tmp_path / f"seed{seed}-{len(list(tmp_path.iterdir()))}"
        assert main([*args, "--seed", str(seed), "--out", str(out)]) == 0
        return read_checkpoint(out / "train" / "final.pt")["states"]["model"]

    # exact between runs at one thread count and kernel set: these three run in this process
    first, again, other = weights(0), weights(0), weights(1)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_train_takes_the_checkpoint_interval_and_how_many_to_keep(trained, tmp_path, capsys):
    from t2igan.training.checkpoint import step_checkpoints

    _, args, _ = trained
    out = tmp_path / "kept"
    assert main([*args, "--checkpoint-every", "1", "--keep-last", "1", "--out", str(out)]) == 0
    # steps 1 and 2 were saved, step 3 is final.pt: one step checkpoint kept
    assert [step for step, _ in step_checkpoints(out / "train")] == [2]
    assert (out / "train" / "final.pt").is_file()
    with pytest.raises(SystemExit) as exited:  # argparse refuses it before anything runs
        main([*args, "--keep-last", "0", "--out", str(tmp_path / "none")])
    assert exited.value.code == 2 and not (tmp_path / "none").exists()
    assert "--keep-last: '0': expected a positive integer" in capsys.readouterr().err


def sample(checkpoint, png) -> int:
    captions = ["--text", "a red circle", "--text", "two blue squares"]
    return main(["sample", "--ckpt", str(checkpoint), *captions, "--n", "3", "--out", str(png)])


def test_sample_draws_a_grid_of_captions_by_noise(trained, tmp_path):
    out, _, _ = trained
    png, again = tmp_path / "grid.png", tmp_path / "again.png"
    assert sample(out / "train" / "final.pt", png) == 0
    width, height = Image.open(png).size
    assert width > height  # 2 rows (captions) x 3 columns (noise) of 32 px images
    assert sample(out / "train" / "final.pt", again) == 0
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(again)))  # seeded


def test_eval_of_a_checkpoint_uses_its_own_encoder_and_writes_json(trained, tmp_path, capsys, monkeypatch):
    from t2igan.training.session import TextEncoderPool

    out, _, plan = trained
    values = tmp_path / "values.json"
    pools, loads = [], []
    init, get = TextEncoderPool.__init__, TextEncoderPool.get

    def counting_init(self, *args, **kwargs):
        pools.append(self)
        init(self, *args, **kwargs)

    def counting_get(self, name, data, recorded=None):
        if (name, data.label) not in self._handles:
            loads.append(name)
        return get(self, name, data, recorded)

    monkeypatch.setattr(TextEncoderPool, "__init__", counting_init)
    monkeypatch.setattr(TextEncoderPool, "get", counting_get)
    code = main(
        [
            "eval",
            str(out / "train" / "final.pt"),
            "--metrics",
            "clip_score,probe",
            "--plan",
            str(plan),
            "--out",
            str(values),
        ]
    )
    assert code == 0, capsys.readouterr().err
    written = json.loads(values.read_text())
    names = {v["name"] for v in written["values"]}
    assert {"clip_score", "probe"} <= names
    assert written["protocol"] == "quick" and written["dataset"] == "shapes"
    assert written["split"]["name"] == "test" and len(written["split"]["sha256"]) == 64
    clip = next(v for v in written["values"] if v["name"] == "clip_score")
    assert -1.0 <= clip["value"] <= 1.0 and clip["provenance"]["n_fake"] == 100
    # one pool for the model and the metrics: each encoder loaded once in the process
    assert len(pools) == 1 and sorted(loads) == sorted(set(loads)) and "damsm" in loads


def test_eval_of_a_plain_image_folder_scores_what_needs_no_caption(trained, tmp_path, capsys):
    _, _, plan = trained
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(24):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"img{k:02d}.png")
    values = tmp_path / "values.json"
    args = ["eval", str(folder), "--data", "shapes:size=tiny", "--plan", str(plan), "--out", str(values)]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "no samples.json" in printed and "skipping" in printed and "clip_score" in printed
    written = json.loads(values.read_text())
    fd = next(v for v in written["values"] if v["name"] == "probe_fd")
    assert fd["value"] > 0 and fd["provenance"]["n_fake"] == 24
    assert not any(v["name"].startswith("probe_") and v["name"] != "probe_fd" for v in written["values"])
    assert main([*args, "--metrics", "probe"]) == 2
    assert "need the caption of every image" in capsys.readouterr().err


def test_eval_of_a_missing_source_is_a_one_line_error(capsys):
    assert main(["eval", "no/such/file.pt"]) == 2
    assert "no/such/file.pt: no such checkpoint file or image folder" in capsys.readouterr().err


def test_sample_rejects_a_foreign_file(tmp_path, capsys):
    bogus = tmp_path / "netG.pth"
    import torch

    torch.save({"netG": {}}, bogus)
    assert main(["sample", "--ckpt", str(bogus), "--text", "a red circle"]) == 2
    assert "not a t2igan checkpoint" in capsys.readouterr().err


def test_sample_into_a_folder_writes_each_image_and_its_caption(trained, tmp_path, capsys):
    """`--out FOLDER` (no .png suffix): one PNG per image, the same pixels as the grid's cells, a listing of
    caption and noise column per file; a second sampling into the same folder is refused, not merged."""
    out, _, plan = trained
    folder, png = tmp_path / "drawn", tmp_path / "grid.png"
    assert sample(out / "train" / "final.pt", folder) == 0
    assert sample(out / "train" / "final.pt", png) == 0
    listing = json.loads((folder / "captions.json").read_text())["images"]
    assert [(e["caption"], e["column"]) for e in listing] == [
        (c, k) for c in ("a red circle", "two blue squares") for k in range(3)
    ]
    grid = np.asarray(Image.open(png))
    second = np.asarray(Image.open(folder / listing[1]["file"]))  # row 0, column 1 of the grid
    assert second.shape == (32, 32, 3)
    assert np.array_equal(grid[2:34, 36:68], second)  # padding 2 around and between the cells
    assert sorted(p.name for p in folder.glob("*.png")) == [e["file"] for e in listing]
    capsys.readouterr()
    assert sample(out / "train" / "final.pt", folder) == 2
    assert "already holds captions.json" in capsys.readouterr().err
    values = tmp_path / "values.json"
    args = ["eval", str(folder), "--data", "shapes:size=tiny", "--plan", str(plan), "--out", str(values)]
    assert main([*args, "--metrics", "probe_fd"]) == 0, capsys.readouterr().err
    assert json.loads(values.read_text())["values"][0]["provenance"]["n_fake"] == 6
