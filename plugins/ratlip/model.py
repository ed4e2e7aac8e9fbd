"""RATLIP as a GANModel: the shared CLIP-GAN (t2igan.nn.clip_gan) with this plugin's recurrent affines
(networks.py) in the CLIP adapter's M_Blocks and Conv_shuffle (conv → BN → LReLU → Shuffle Attention)
where RATLIP.py puts it."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from t2igan.errors import ConfigError
from t2igan.nn.clip_gan import CLIPGANModel, DeepFusion
from t2igan.nn.clip_gan_build import assemble, registry_fusion
from t2igan.nn.interfaces import BuildContext

from .networks import BatchSequenceFusion, ConvShuffle

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

RAT_MODES = ("batch_sequence", "per_sample", "none")


def make_fusions(config: Mapping[str, Any], registry: Registry, cond_dim: int, noise_dim: int):
    """M_Block fusion: RATLIP's `DFBLK_rnn` (`batch_sequence`, the official computation) or the registry's
    `rat` block (`per_sample`: one LSTM shared by the M_Blocks, state from the noise, γ/β per sample), or
    GALIP's deep fusion (`none`: the ablation row with Shuffle Attention alone).
    G_Blocks keep GALIP's deep fusion (RATLIP.py G_Block uses DFBLK)."""
    mode, hidden = config["rat_mode"], int(config["rnn_hidden"])
    if mode == "none":
        return DeepFusion, DeepFusion, None
    if mode == "batch_sequence":
        return partial(BatchSequenceFusion, hidden=hidden), DeepFusion, None
    if mode == "per_sample":
        spec = registry.fusion_block("rat")
        if spec.shared is None:
            raise ConfigError("rat_mode=per_sample: the registered `rat` fusion block has no shared LSTM")
        try:
            shared = spec.shared(cond_dim, noise_dim, hidden=hidden)
        except TypeError as exc:
            raise ConfigError(
                f"rat_mode=per_sample: the registered `rat` block does not take rnn_hidden={hidden} ({exc})"
            ) from exc
        return registry_fusion(registry, "rat", shared), DeepFusion, shared
    raise ConfigError(f"rat_mode={mode!r}: expected one of {', '.join(RAT_MODES)}")


def build(config: Mapping[str, Any], context: BuildContext) -> CLIPGANModel:
    """RATLIP from a preset config (paper presets check the CLIP they get; `tiny` sizes itself from it)."""
    conv = partial(ConvShuffle, attention=bool(config["shuffle_attention"]), groups=int(config["sa_groups"]))
    return assemble(
        config,
        context,
        lambda cond_dim, noise_dim: make_fusions(config, context.registry, cond_dim, noise_dim),
        mapper_conv2=conv,
        g_conv=conv,
        where="ratlip",
    )
