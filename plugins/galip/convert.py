"""GALIP's released checkpoints (`{'model': {'netG', 'netD', 'netC'}}`, code/lib/modules.py save_model) mapped
onto our modules. netG's copy of the frozen CLIP (`mapping.CLIP_ViT.*`) is dropped, optionally after
checking it against the CLIP we run with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from t2igan.nn import clip_gan, clip_gan_build

WHAT = "GALIP checkpoint"


def convert_official(
    path_or_state: str | os.PathLike | Mapping[str, Any], clip: Any = None, model: Any = None
) -> dict[str, dict[str, Tensor]]:
    """`{"generator": ..., "discriminator": ...}`; with `clip`, netG's CLIP copy must equal its weights.
    Every release has the same layout; `model` (the model the states are for) keeps a summary of netG's
    CLIP copy, checked against the CLIP found when the converted checkpoint is loaded."""
    return clip_gan_build.convert_official_checkpoint(path_or_state, WHAT, clip, model)


def load_official(
    model: clip_gan.CLIPGANModel,
    path_or_state: str | os.PathLike | Mapping[str, Any],
    check_clip: bool = True,
) -> None:
    """Load strictly into a built GALIP; the error lists missing, unexpected and mis-shaped keys."""
    clip_gan_build.load_official(model, path_or_state, WHAT, check_clip)
