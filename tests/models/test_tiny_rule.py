"""One learning-rate rule for every built-in `tiny` preset (t2igan.specs.TINY_LR_SCALE), so that the
short CPU budgets compare the models on equal terms; the paper presets keep the released rates."""

from __future__ import annotations

import pytest

from t2igan.errors import RegistrationError
from t2igan.registry import get_registry
from t2igan.specs import TINY_LR_SCALE, tiny_learning_rates

BUILT_IN = ("dfgan", "ratgan", "galip", "ratlip", "alrgan")


@pytest.mark.parametrize("name", BUILT_IN)
def test_tiny_trains_at_the_released_rates_times_the_scale(name):
    spec = get_registry().model(name)
    tiny = spec.presets["tiny"].config
    released = [p.config for p in spec.presets.values() if p.dataset is not None]
    assert released, f"{name} has no paper preset"
    for config in released:
        assert tiny["lr_g"] == pytest.approx(config["lr_g"] * TINY_LR_SCALE)
        assert tiny["lr_d"] == pytest.approx(config["lr_d"] * TINY_LR_SCALE)
        assert (tiny["beta1"], tiny["beta2"]) == (config["beta1"], config["beta2"])


def test_the_rule_needs_both_rates():
    assert tiny_learning_rates({"lr_g": 1e-4, "lr_d": 4e-4, "nf": 16}) == {
        "lr_g": 1e-4 * TINY_LR_SCALE,
        "lr_d": 4e-4 * TINY_LR_SCALE,
        "nf": 16,
    }
    with pytest.raises(RegistrationError, match="'lr_d'"):
        tiny_learning_rates({"lr_g": 1e-4})
