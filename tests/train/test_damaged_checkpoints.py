"""A damaged checkpoint falls back: every checkpoint carries its sha256 beside it, resume takes the newest
intact one and names the bad file, temporaries of a killed write go, and no error of ours repeats
PyTorch's advice to load a refused file with weights_only=False."""

from __future__ import annotations

import collections
import fractions
import logging
import os
import pickle
import subprocess

import pytest
import torch

from t2igan.errors import T2IGanError
from t2igan.training.checkpoint import (
    checksum_path,
    make_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    save_checkpoint,
    step_checkpoints,
)
from t2igan.training.trainer import Trainer
from t2igan.weights import load_state_dict_file
from tests.train.test_trainer import config, final_weights
from tests.train.toy import ToyGAN, ToySource


def stopped_run(folder):
    """A 14-step run stopped in step 13: it holds step5 and step10 (and their checksums), no final.pt."""
    torch.manual_seed(0)
    model = ToyGAN()
    model.interrupt_at_call = 13
    with pytest.raises(KeyboardInterrupt):
        Trainer(model, ToySource(), config(folder, 14)).fit()
    assert [step for step, _ in step_checkpoints(folder)] == [5, 10]
    return dict(step_checkpoints(folder))


def resume(folder):
    torch.manual_seed(123)  # a fresh process would start from other RNG state
    trainer = Trainer(ToyGAN(), ToySource(), config(folder, 14))
    return trainer, trainer.fit()


def straight_weights(folder):
    torch.manual_seed(0)
    trainer = Trainer(ToyGAN(), ToySource(), config(folder, 14))
    trainer.fit()
    return final_weights(trainer)


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the tensor data: torch.load reads it without complaint
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path):
    path.write_bytes(os.urandom(path.stat().st_size))


@pytest.mark.parametrize("damage", [flip_a_byte, truncate, garbage], ids=lambda f: f.__name__)
def test_resume_takes_the_newest_intact_checkpoint_and_names_the_damaged_one(tmp_path, damage, caplog):
    held = stopped_run(tmp_path / "run")
    damage(held[10])
    with caplog.at_level(logging.WARNING, logger="t2igan"):
        trainer, result = resume(tmp_path / "run")
    assert result.resumed_from == 5
    assert all(
        torch.equal(v, trainer.model.state_dict()[k]) for k, v in straight_weights(tmp_path / "a").items()
    )
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"resuming from {held[5]}, the newest intact checkpoint: checkpoint {held[10]}")
    assert "damaged: its sha256" in warning and "step00000010.pt.sha256" in warning


def test_a_checkpoint_without_its_checksum_is_still_checked_by_its_archive(tmp_path, caplog):
    held = stopped_run(tmp_path / "run")
    checksum_path(held[10]).unlink()  # as a checkpoint of an older t2igan, or a copy without it
    truncate(held[10])
    with caplog.at_level(logging.WARNING, logger="t2igan"):
        _, result = resume(tmp_path / "run")
    assert result.resumed_from == 5
    assert "truncated or damaged: not a complete torch.save archive" in caplog.text


def test_with_no_intact_checkpoint_the_error_names_each_one(tmp_path):
    held = stopped_run(tmp_path / "run")
    flip_a_byte(held[10])
    truncate(held[5])
    with pytest.raises(T2IGanError) as caught:
        resume(tmp_path / "run")
    message = str(caught.value)
    assert message.startswith(
        f"{tmp_path / 'run'}: no intact checkpoint to resume from: checkpoint {held[10]}"
    )
    assert f"checkpoint {held[5]}: damaged" in message and "Move them away" in message


def test_temporaries_of_a_killed_write_are_removed_at_the_next_start(tmp_path, caplog):
    stopped_run(tmp_path / "run")
    left = tmp_path / "run" / ".step00000015.pt.k2x9_q1z.tmp"  # what atomic_path leaves when killed
    left.write_bytes(b"half a checkpoint")
    kept = tmp_path / "run" / ".notes.tmp"  # not one of ours: stays
    kept.write_text("mine", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="t2igan"):
        resume(tmp_path / "run")
    assert not left.exists() and kept.exists()
    assert "removed 1 temporary file(s) of an interrupted write" in caplog.text


def test_the_checksum_is_sha256sum_format_and_goes_with_its_checkpoint(tmp_path):
    held = stopped_run(tmp_path / "run")
    checked = subprocess.run(
        ["sha256sum", "-c", checksum_path(held[10]).name],
        cwd=tmp_path / "run",
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0 and checked.stdout.strip() == "step00000010.pt: OK"
    flip_a_byte(held[10])
    with pytest.raises(T2IGanError, match="damaged: its sha256"):
        read_checkpoint(held[10])
    resume(tmp_path / "run")  # from step 5 on to 14: step10 is written again, whole, and final.pt
    names = sorted(p.name for p in (tmp_path / "run").iterdir() if p.suffix in (".pt", ".sha256"))
    assert names == [
        "final.pt",
        "final.pt.sha256",
        "step00000005.pt",
        "step00000005.pt.sha256",
        "step00000010.pt",
        "step00000010.pt.sha256",
    ]
    assert read_checkpoint(held[10])["progress"]["step"] == 10


def test_pruned_checkpoints_take_their_checksums_with_them(tmp_path):
    for step in (5, 10, 15):
        save_checkpoint(
            make_checkpoint(model_info={}, states={}, progress={"step": step}),
            tmp_path / f"step{step:08d}.pt",
        )
    prune_checkpoints(tmp_path, keep_last=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step00000015.pt", "step00000015.pt.sha256"]


def _pickled_object(path):
    torch.save({"w": torch.zeros(2), "ratio": fractions.Fraction(1, 3)}, path)


def _plain_pickle(path):
    path.write_bytes(pickle.dumps({"a": collections.OrderedDict(b=fractions.Fraction(1, 2))}, protocol=4))


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (_pickled_object, "refused: it holds pickled Python objects (fractions.Fraction)"),
        (_plain_pickle, "cannot be read as a PyTorch weights file (UnpicklingError)"),
        (lambda p: p.write_bytes(os.urandom(4096)), "cannot be read as a PyTorch weights file"),
        (lambda p: p.write_bytes(b""), "truncated or damaged"),
    ],
    ids=["object", "plain-pickle", "garbage", "empty"],
)
def test_a_refused_file_is_explained_in_our_words(tmp_path, write, reason):
    path = tmp_path / "weights.pth"
    write(path)
    with pytest.raises(T2IGanError) as caught:
        load_state_dict_file(path, what="text encoder")
    message = str(caught.value)
    assert message.startswith(f"text encoder {path}: {reason}")
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # torch's text is not shown
