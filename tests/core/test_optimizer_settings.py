"""A preset's optimiser settings are a typed field (`Preset.optimizer`), overridden by the same keys as
before (`lr_g`, `lr_d`, `beta1`, `beta2`, `max_epoch`) and kept in records and checkpoints under them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from t2igan.errors import ConfigError, RegistrationError
from t2igan.models import parse_model_ref, resolve
from t2igan.registry import get_registry
from t2igan.specs import Optimizer, Preset
from t2igan.training.session import make_trainer


def test_an_override_changes_the_optimizer_and_the_builder_never_sees_its_keys():
    resolved = resolve(parse_model_ref("dfgan:lr_g=0.001,beta1=0.5,max_epoch=3,nf=8"), get_registry())
    assert resolved.optimizer == Optimizer(lr_g=1e-3, lr_d=4e-4 * 4, betas=(0.5, 0.9), epochs=3)
    assert not set(Optimizer.CONFIG_KEYS) & set(resolved.config) and resolved.config["nf"] == 8
    # what a record or a checkpoint keeps: both, under the keys an override names
    assert resolved.settings == {**resolved.config, **resolved.optimizer.as_config()}
    assert resolved.settings["lr_g"] == 1e-3 and resolved.settings["max_epoch"] == 3


def test_the_trainer_takes_the_resolved_optimizer(tmp_path):
    resolved = resolve(parse_model_ref("ratgan:lr_d=0.002,beta2=0.99"), get_registry(), preset="tiny")
    model = torch.nn.ModuleDict({"g": torch.nn.Linear(1, 1), "d": torch.nn.Linear(1, 1)})
    model.generator_parameters = model["g"].parameters
    model.discriminator_parameters = model["d"].parameters
    trainer = make_trainer(model, None, resolved, tmp_path, 1, 0, torch.device("cpu"), progress=False)
    g, d = trainer.opt_g.param_groups[0], trainer.opt_d.param_groups[0]
    assert d["lr"] == 0.002 and g["lr"] == pytest.approx(1e-4 * 4)
    assert g["betas"] == d["betas"] == (0.0, 0.99)


def test_settings_read_back_from_a_record_rebuild_the_same_split():
    registry = get_registry()
    resolved = resolve(parse_model_ref("alrgan:max_epoch=7"), registry, preset="tiny")
    again = resolve(parse_model_ref("alrgan"), registry, preset="tiny").with_settings(resolved.settings)
    assert (again.config, again.optimizer) == (resolved.config, resolved.optimizer)
    # a checkpoint's config that lacks the optimiser keys keeps the preset's optimiser
    bare = again.with_settings(resolved.config)
    assert bare.optimizer == resolved.preset.optimizer and bare.config == resolved.config


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("lr_g=-1", "lr_g"),
        ("beta1=1.5", "betas"),
        ("max_epoch=0", r"epochs \(max_epoch\)"),
    ],
)
def test_an_override_out_of_range_is_one_config_error_naming_the_model_and_key(override, named):
    with pytest.raises(ConfigError, match=rf"^dfgan:{override}: optimizer {named}"):
        resolve(parse_model_ref(f"dfgan:{override}"), get_registry())


def test_a_preset_keeps_optimiser_keys_out_of_its_config_and_needs_an_optimizer():
    tiny = get_registry().model("dfgan").preset("tiny")
    with pytest.raises(RegistrationError, match="config keys lr_g, max_epoch belong in its optimizer"):
        dataclasses.replace(tiny, config={**tiny.config, "lr_g": 1e-4, "max_epoch": 3})
    with pytest.raises(RegistrationError, match="optimizer must be a t2igan.specs.Optimizer"):
        Preset("x", {}, {"lr_g": 1e-4, "lr_d": 1e-4}, 32, 16, "damsm")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lr_g": 0.0, "lr_d": 1e-4}, "lr_g: expected a positive number"),
        ({"lr_g": 1e-4, "lr_d": True}, "lr_d: expected a positive number"),
        ({"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.9,)}, "betas: expected two numbers"),
        ({"lr_g": 1e-4, "lr_d": 1e-4, "epochs": 2.5}, "epochs .max_epoch.: expected a positive int"),
    ],
)
def test_an_optimizer_checks_its_fields(fields, message):
    with pytest.raises(RegistrationError, match=message):
        Optimizer(**fields)
