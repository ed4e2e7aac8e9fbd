"""One learning-rate rule for every built-in `tiny` preset (t2igan.specs.TINY_LR_SCALE), so that the
short CPU budgets compare the models on equal terms; the paper presets keep the released rates."""

from __future__ import annotations

import pytest

from t2igan.registry import get_registry
from t2igan.specs import TINY_LR_SCALE, Optimizer, tiny_learning_rates

BUILT_IN = ("dfgan", "ratgan", "galip", "ratlip", "alrgan")


@pytest.mark.parametrize("name", BUILT_IN)
def test_tiny_trains_at_the_released_rates_times_the_scale(name):
    spec = get_registry().model(name)
    tiny = spec.presets["tiny"].optimizer
    released = [p.optimizer for p in spec.presets.values() if p.dataset is not None]
    assert released, f"{name} has no paper preset"
    for optimizer in released:
        assert tiny.lr_g == pytest.approx(optimizer.lr_g * TINY_LR_SCALE)
        assert tiny.lr_d == pytest.approx(optimizer.lr_d * TINY_LR_SCALE)
        assert tiny.betas == optimizer.betas
        assert optimizer.epochs and tiny.epochs is None  # a paper length; tiny runs take a budget's


# Adam (lr_g, lr_d, betas) of the released training code, per model (docs/official-code.md): DF-GAN
# code/src/train.py; GALIP src/train.py + cfg; RAT-GAN main.py; RATLIP its cfgs (as GALIP). ALR-GAN has no
# code: AttnGAN's Adam (2e-4, betas (0.5, 0.999)), the backbone it builds on (plugins/alrgan/presets.py).
RELEASED_ADAM = {
    "dfgan": (1e-4, 4e-4, (0.0, 0.9)),
    "ratgan": (1e-4, 4e-4, (0.0, 0.9)),
    "galip": (1e-4, 4e-4, (0.0, 0.9)),
    "ratlip": (1e-4, 4e-4, (0.0, 0.9)),
    "alrgan": (2e-4, 2e-4, (0.5, 0.999)),
}


@pytest.mark.parametrize("name", BUILT_IN)
def test_paper_presets_train_with_the_released_adam_and_the_trainer_uses_it(name, tmp_path):
    import torch

    from t2igan.models import parse_model_ref, resolve
    from t2igan.training.session import make_trainer

    lr_g, lr_d, betas = RELEASED_ADAM[name]
    spec = get_registry().model(name)
    for preset in [p for p in spec.presets.values() if p.dataset is not None]:
        assert (preset.optimizer.lr_g, preset.optimizer.lr_d, preset.optimizer.betas) == (lr_g, lr_d, betas)
    resolved = resolve(parse_model_ref(name), get_registry(), preset="tiny")
    model = torch.nn.ModuleDict({"g": torch.nn.Linear(1, 1), "d": torch.nn.Linear(1, 1)})
    model.generator_parameters = model["g"].parameters  # only the parameter lists reach the optimisers
    model.discriminator_parameters = model["d"].parameters
    trainer = make_trainer(model, None, resolved, tmp_path, 1, 0, torch.device("cpu"), progress=False)
    g, d = trainer.opt_g.param_groups[0], trainer.opt_d.param_groups[0]
    assert (g["lr"], d["lr"]) == pytest.approx((lr_g * TINY_LR_SCALE, lr_d * TINY_LR_SCALE))
    assert isinstance(trainer.opt_g, torch.optim.Adam) and g["betas"] == d["betas"] == betas


def test_the_rule_scales_both_rates_and_drops_the_paper_length():
    released = Optimizer(lr_g=1e-4, lr_d=4e-4, betas=(0.5, 0.999), epochs=600)
    assert tiny_learning_rates(released) == Optimizer(
        lr_g=1e-4 * TINY_LR_SCALE, lr_d=4e-4 * TINY_LR_SCALE, betas=(0.5, 0.999), epochs=None
    )
