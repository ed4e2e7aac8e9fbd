"""The shared Trainer: checkpoints resume to the same numbers; NaN fails loudly; phases step in order."""

from __future__ import annotations

import json
import signal

import pytest
import torch

from t2igan.errors import T2IGanError
from t2igan.training.checkpoint import read_checkpoint, step_checkpoints
from t2igan.training.trainer import Trainer, TrainerConfig, TrainingDiverged
from tests.train.toy import ToyGAN, ToySource


def config(tmp_path, steps, **kw):
    return TrainerConfig(
        out_dir=tmp_path,
        total_steps=steps,
        lr_g=1e-3,
        lr_d=4e-3,
        seed=3,
        progress=False,
        checkpoint_every=kw.pop("checkpoint_every", 5),
        log_every=1,
        **kw,
    )


def final_weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def interrupted_then_resumed(tmp_path, arrange, error_match=None):
    """An uninterrupted 14-step run, and one that `arrange(model)` makes stop early, then resumed in a
    fresh Trainer: returns (resumed_from, whether the resumed weights equal the uninterrupted ones).
    Exact within one thread count and kernel set, which both runs share here: they run in this process."""
    torch.manual_seed(0)
    straight = Trainer(ToyGAN(), ToySource(), config(tmp_path / "a", 14))
    straight.fit()
    torch.manual_seed(0)
    stopped = ToyGAN()
    arrange(stopped)
    with pytest.raises(KeyboardInterrupt, match=error_match):
        Trainer(stopped, ToySource(), config(tmp_path / "b", 14)).fit()
    assert not (tmp_path / "b" / "final.pt").exists()
    torch.manual_seed(123)  # a fresh process would start from other RNG state
    resumed = Trainer(ToyGAN(), ToySource(), config(tmp_path / "b", 14))
    result = resumed.fit()
    same = all(torch.equal(v, resumed.model.state_dict()[k]) for k, v in final_weights(straight).items())
    return result.resumed_from, same


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    def die_in_step_13(model):  # after the step-10 checkpoint
        model.interrupt_at_call = 13

    assert interrupted_then_resumed(tmp_path, die_in_step_13) == (10, True)


def test_sigterm_stops_after_the_step_with_a_checkpoint_and_resume_matches(tmp_path):
    def preempt_in_step_7(model):  # a scheduler's SIGTERM arrives during step 7
        model.signals_at_call = (7, [signal.SIGTERM])

    found = interrupted_then_resumed(
        tmp_path, preempt_in_step_7, "SIGTERM at step 7; checkpoint .*step00000007.pt"
    )
    assert found == (7, True)  # step 7 was finished and kept, not redone
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_a_second_ctrl_c_stops_at_once_without_a_half_step_checkpoint(tmp_path):
    # as at a terminal: a job started in the background (`&`, nohup, some CI runners) inherits SIGINT
    # ignored, and the trainer rightly leaves an ignored signal alone
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        model = ToyGAN()
        model.signals_at_call = (3, [signal.SIGINT, signal.SIGINT])
        with pytest.raises(KeyboardInterrupt, match="SIGINT again"):
            Trainer(model, ToySource(), config(tmp_path, 14)).fit()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not list(tmp_path.glob("step*.pt"))


def test_an_ignored_signal_stays_ignored(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for a job started with `&` or nohup
    try:
        model = ToyGAN()
        model.signals_at_call = (3, [signal.SIGINT])
        result = Trainer(model, ToySource(), config(tmp_path, 6)).fit()
        assert result.steps == 6 and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_longer_budget_continues_from_the_final_checkpoint(tmp_path):
    Trainer(ToyGAN(), ToySource(), config(tmp_path, 6)).fit()
    result = Trainer(ToyGAN(), ToySource(), config(tmp_path, 8)).fit()
    assert (result.resumed_from, result.steps) == (6, 8)


def test_checkpoints_are_pruned_and_final_is_readable(tmp_path):
    trainer = Trainer(ToyGAN(), ToySource(), config(tmp_path, 20, keep_last=2))
    result = trainer.fit()
    assert [step for step, _ in step_checkpoints(tmp_path)] == [10, 15]
    checkpoint = read_checkpoint(result.final_checkpoint)
    assert checkpoint["progress"]["step"] == 20
    assert set(checkpoint["states"]["model"]) == set(trainer.model.state_dict())


def test_log_lines_past_the_resumed_step_are_dropped(tmp_path):
    killed = ToyGAN()
    killed.interrupt_at_call = 8  # checkpoint at 5, log up to 7, then killed
    with pytest.raises(KeyboardInterrupt):
        Trainer(killed, ToySource(), config(tmp_path, 9)).fit()
    Trainer(ToyGAN(), ToySource(), config(tmp_path, 9)).fit()
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))


def test_nan_loss_raises_with_the_step(tmp_path):
    model = ToyGAN()
    model.poison_at_call = 3
    with pytest.raises(TrainingDiverged, match="step 2: non-finite loss"):
        Trainer(model, ToySource(), config(tmp_path, 10)).fit()


def test_generator_style_d_step_runs_one_optimiser_step_per_phase(tmp_path):
    trainer = Trainer(ToyGAN(two_phase_d=True), ToySource(), config(tmp_path, 3))
    trainer.fit()
    state = trainer.opt_d.state_dict()["state"]
    assert int(next(iter(state.values()))["step"]) == 6  # two D optimiser steps per training step
    assert int(next(iter(trainer.opt_g.state_dict()["state"].values()))["step"]) == 3
    logged = json.loads((tmp_path / "log.jsonl").read_text().splitlines()[-1])["losses"]
    assert "d_loss" in logged and "d1_loss" in logged and "g_loss" in logged


def test_foreign_file_is_refused_with_advice(tmp_path):
    path = tmp_path / "official.pth"
    torch.save({"netG": {"fc.weight": torch.zeros(1)}}, path)
    from t2igan.errors import T2IGanError

    with pytest.raises(T2IGanError, match="t2igan convert"):
        read_checkpoint(path)


def test_train_seconds_add_up_over_a_resume_and_leave_out_in_training_evaluation(tmp_path):
    import time

    class SlowSource(ToySource):  # the first session's steps take ≥ 0.1 s each: training time
        def batches(self, epoch, start=0):
            for batch in super().batches(epoch, start):
                time.sleep(0.1)
                yield batch

    first = Trainer(ToyGAN(), SlowSource(), config(tmp_path, 4, checkpoint_every=2))
    first.on_step = lambda step: time.sleep(0.3) if step == 1 else None  # an evaluation: not training
    start = time.perf_counter()
    first_result = first.fit()
    wall = time.perf_counter() - start
    assert first_result.train_seconds < wall - 0.25  # the 0.3 s evaluation is not in the training time
    held = read_checkpoint(tmp_path / "final.pt")["progress"]["train_seconds"]
    assert 0 < held <= first_result.train_seconds
    (tmp_path / "final.pt").rename(tmp_path / "first.pt")  # resume from the step-2 checkpoint
    step2 = read_checkpoint(tmp_path / "step00000002.pt")["progress"]["train_seconds"]
    second = Trainer(ToyGAN(), ToySource(), config(tmp_path, 4, checkpoint_every=2))
    result = second.fit()
    assert result.resumed_from == 2 and step2 >= 0.2
    assert result.train_seconds > step2  # the first session's 0.2 s up to step 2 are counted
    assert read_checkpoint(tmp_path / "final.pt")["progress"]["train_seconds"] >= step2


def test_a_run_does_not_resume_with_another_text_encoder(tmp_path):
    def trainer(sha):
        info = {"text_encoder": {"name": "damsm", "sha256": sha}}
        return Trainer(ToyGAN(), ToySource(), config(tmp_path, 4, checkpoint_every=2, model_info=info))

    first = trainer("a" * 64)
    first.on_step = lambda step: (_ for _ in ()).throw(KeyboardInterrupt("stop")) if step == 2 else None
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert (tmp_path / "step00000002.pt").exists()
    with pytest.raises(
        T2IGanError,
        match=r"sha256 aaaaaaaaaaaa, but the encoder found now has bbbbbbbbbbbb.*mix two encoders",
    ):
        trainer("b" * 64).fit()
    assert trainer("a" * 64).fit().resumed_from == 2


def test_the_sample_grid_is_drawn_in_chunks_without_an_autograd_graph(tmp_path):
    from t2igan.nn import TextFeatures
    from t2igan.training.trainer import SAMPLE_CHUNK

    model = ToyGAN()
    seen, drawn = [], []
    original = model.generate_stages

    def recording(noise, text):
        seen.append((len(noise), torch.is_grad_enabled()))
        drawn.append(original(noise, text)[-1])
        return original(noise, text)

    model.generate_stages = recording
    count = SAMPLE_CHUNK + 2
    text, noise = TextFeatures(torch.randn(count, 4)), torch.randn(count, model.generator.noise_dim)
    trainer = Trainer(model, ToySource(), config(tmp_path, 2), sample_text=text, sample_noise=noise)
    trainer.fit()
    # at 256 px, 64 images in one batch hold gigabytes: the grid is drawn a few at a time, with no graph
    assert seen == [(SAMPLE_CHUNK, False), (2, False)]
    with torch.no_grad():
        whole = original(noise, text)[-1]
    torch.testing.assert_close(torch.cat(drawn), whole)  # the same images as in one batch
    assert (tmp_path / "samples" / "final.png").is_file()
