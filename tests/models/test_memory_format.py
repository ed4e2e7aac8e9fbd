"""The Trainer's channels_last path (its default, for speed) computes what the NCHW path computes."""

from __future__ import annotations

import pytest
import torch

from t2igan.training.trainer import Trainer, TrainerConfig
from tests.models.conftest import build, tiny_batch


class _FixedBatches:
    steps_per_epoch = 2

    def batches(self, epoch: int, start: int = 0):
        for index in range(start, self.steps_per_epoch):
            yield tiny_batch(4, seed=10 * epoch + index)


def _trainer(registry, tmp_path, model_name: str, channels_last: bool) -> Trainer:
    torch.manual_seed(0)
    model = build(registry, model_name, "tiny", nf=8)
    config = TrainerConfig(
        out_dir=tmp_path / f"cl{int(channels_last)}",
        total_steps=2,
        lr_g=4e-4,
        lr_d=1.6e-3,
        seed=5,
        progress=False,
        channels_last=channels_last,
    )
    return Trainer(model, _FixedBatches(), config)


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.numerics
@pytest.mark.parametrize("model_name", ["dfgan", "ratgan"])
def test_channels_last_computes_what_nchw_computes(registry, tmp_path, model_name):
    for step in ("d_step", "g_step"):
        results = []
        for channels_last in (True, False):
            trainer = _trainer(registry, tmp_path, model_name, channels_last)
            torch.manual_seed(1)
            losses = getattr(trainer, step)(trainer.prepare(tiny_batch(4, seed=3)))
            part = trainer.model.discriminator if step == "d_step" else trainer.model.generator
            results.append((losses, _grads(part)))
        (fast_losses, fast_grads), (plain_losses, plain_grads) = results
        for key, value in plain_losses.items():
            assert fast_losses[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
        assert fast_grads.keys() == plain_grads.keys() and plain_grads
        # rounding differs with the convolution algorithm (and MA-GP's 6th power enlarges it): a
        # thousandth of a tensor's largest gradient; a mixed-up layout would be off by the whole scale
        for name, grad in plain_grads.items():
            scale = grad.abs().max().item()
            assert torch.allclose(fast_grads[name], grad, rtol=1e-3, atol=1e-3 * scale), (step, name)


def test_the_default_trains_in_channels_last(registry, tmp_path):
    trainer = _trainer(registry, tmp_path, "dfgan", True)
    seen: list[torch.Tensor] = []
    trainer.model.discriminator.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    trainer.fit()
    conv = next(m for m in trainer.model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    plain = _trainer(registry, tmp_path, "dfgan", False)
    plain.model.discriminator.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    plain.fit()
    assert seen[-1].is_contiguous()


def test_a_model_that_needs_nchw_says_so_and_trains_in_it(registry, tmp_path):
    trainer = _trainer(registry, tmp_path, "dfgan", True)
    type(trainer.model).channels_last = False  # as a plugin whose code calls .view on feature maps
    try:
        nchw = Trainer(trainer.model, _FixedBatches(), trainer.config)
    finally:
        del type(trainer.model).channels_last
    assert nchw.memory_format == torch.contiguous_format
    conv = next(m for m in nchw.model.discriminator.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # back from the first Trainer's NHWC
    assert nchw.prepare(tiny_batch(4)).images.is_contiguous()
