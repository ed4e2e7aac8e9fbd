"""GALIP as a GANModel: the shared CLIP-GAN (t2igan.nn.clip_gan) with GALIP's plain convs and DF-GAN-style
deep fusion, or another registered fusion block in the CLIP adapter (`galip:fusion=rat`) or G blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from t2igan.errors import ConfigError
from t2igan.nn.clip_gan import CLIPGANModel, DeepFusion, FusionFactory, plain_conv
from t2igan.nn.clip_gan_build import assemble, registry_fusion
from t2igan.nn.interfaces import BuildContext

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

BUILTIN_FUSION = "dfblk"  # GALIP.py DFBLK, built in: GALIP works without the DF-GAN plugin


def make_fusions(config: Mapping[str, Any], registry: Registry, cond_dim: int, noise_dim: int):
    """The M_Block and G_Block fusion factories; a registered family with a shared module (RAT's LSTM)
    gets one, built once and used by every block of that family."""
    names = {"fusion": str(config["fusion"]), "g_fusion": str(config["g_fusion"])}
    shared: nn.Module | None = None
    shared_name = None
    factories: dict[str, FusionFactory] = {}
    for key, name in names.items():
        if name == BUILTIN_FUSION:
            factories[key] = DeepFusion
            continue
        spec = registry.fusion_block(name)
        if spec.shared is not None:
            if shared_name not in (None, name):
                raise ConfigError(
                    f"fusion={names['fusion']!r}, g_fusion={names['g_fusion']!r}: two fusion families with "
                    "shared state in one generator are not supported; use one of them for both"
                )
            if shared is None:
                shared, shared_name = spec.shared(cond_dim, noise_dim), name
        factories[key] = registry_fusion(registry, name, shared if spec.shared is not None else None)
    return factories["fusion"], factories["g_fusion"], shared


def build(config: Mapping[str, Any], context: BuildContext) -> CLIPGANModel:
    """GALIP from a preset config (paper presets check the CLIP they get; `tiny` sizes itself from it)."""
    return assemble(
        config,
        context,
        lambda cond_dim, noise_dim: make_fusions(config, context.registry, cond_dim, noise_dim),
        mapper_conv2=plain_conv,
        g_conv=plain_conv,
        where="galip",
    )
