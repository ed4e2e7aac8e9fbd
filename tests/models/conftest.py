"""Fixtures of the model tests: a registry holding only the DF-GAN and RAT-GAN plugins, and builders."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import t2igan_plugins.dfgan
import t2igan_plugins.ratgan
from t2igan.models import ModelRef, resolve
from t2igan.nn import Batch, BuildContext, TextFeatures
from t2igan.registry import PluginInfo, PluginLoader, Registry


def make_registry() -> Registry:
    """The two plugins registered in-process with the host's own validation (no entry points scanned)."""
    loader = PluginLoader(entry_points=[], environ={})
    for name, module in (("dfgan", t2igan_plugins.dfgan), ("ratgan", t2igan_plugins.ratgan)):
        info = loader.add(module, PluginInfo(name, module.__name__))
        assert info.status == "ok", info.error
    return loader.registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    return make_registry()


def build(registry: Registry, model: str, preset: str, meta: bool = False, **overrides: Any):
    spec = registry.model(model)
    config = resolve(ModelRef(model, preset, tuple(overrides.items())), registry).config
    if meta:
        with torch.device("meta"):
            return spec.build(config, BuildContext(registry=registry, device=torch.device("meta")))
    return spec.build(config, BuildContext(registry=registry))


def tiny_batch(batch_size: int = 4, size: int = 32, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, size, size, generator=g) * 2 - 1
    sentence = torch.randn(batch_size, 256, generator=g)
    return Batch(images, TextFeatures(sentence))


def d_update(model, batch: Batch, optimizer: torch.optim.Optimizer, seed: int | None = None) -> float:
    """One D update as the Trainer does it: one optimiser step per dict the model yields.

    With `seed`, every random draw of the step (fake noise, mismatched captions) is the same at each
    update, so D learns one fixed objective: its fall does not hang on which noise rounding leads to."""
    if seed is not None:
        torch.manual_seed(seed)
    result = model.d_step(batch)
    total = 0.0
    for losses in [result] if isinstance(result, dict) else result:
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()
        total += float(losses["loss"].detach())
    return total


def d_loss(model, batch: Batch, seed: int = 123) -> float:
    """The D loss on `batch` with fixed fake noise, every phase summed, without updating anything."""
    torch.manual_seed(seed)
    result = model.d_step(batch)
    return sum(
        float(losses["loss"].detach()) for losses in ([result] if isinstance(result, dict) else result)
    )


def d_loss_fall(
    model, batch: Batch, steps: int, seed: int, lr: float = 1e-3, betas: tuple[float, float] = (0.5, 0.999)
) -> float:
    """How far `steps` D updates on one batch, with the same noise at every step, lower its D loss: the
    first step's loss minus the mean of the last five. Adam with β1 = 0.5 descends where DF-GAN's own
    β1 = 0 makes the hinge loss swing between the real and the fake term."""
    optimizer = torch.optim.Adam(model.discriminator_parameters(), lr=lr, betas=betas)
    losses = [d_update(model, batch, optimizer, seed) for _ in range(steps)]
    return losses[0] - sum(losses[-5:]) / 5


def official_to_random(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=g) * 0.05 for key, shape in layout.items()}
