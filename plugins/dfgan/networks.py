"""DF-GAN's networks (tobran/DF-GAN code/models/GAN.py): the deep-fusion block, the generator, the
discriminator backbone (NetD) and its conditional head (NetC).

Module names follow the official ones (`fc`, `GBlocks.i.fuse1.affine0.fc_gamma.linear1`, `to_rgb.1`,
`conv_img`, `DBlocks.i.conv_r.0`, `joint_conv.0`) so released state dicts map onto ours unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.nn.interfaces import Discriminator, FusionBlock, Generator, SharedFusionState
from t2igan.nn.layers import (
    LEAKY_SLOPE,
    Affine,
    ConcatConditionalHead,
    ResidualDownBlock,
    channel_pyramid,
    consecutive_pairs,
    pyramid_levels,
    to_rgb,
    upsample2x,
)
from t2igan.specs import FusionBlockSpec

MAX_CHANNEL_MULT = 8  # DF-GAN get_G_in_out_chs / get_D_in_out_chs: nf * min(2**i, 8)


class DFBlock(FusionBlock):
    """DF-GAN's deep fusion block (`DFBLK`): (affine → LeakyReLU 0.2) × `num_affines` (2 in DF-GAN).

    Stateless: the condition (noise ⊕ sentence in DF-GAN) feeds every affine; `state` is passed on.
    """

    def __init__(self, cond_dim: int, channels: int, shared: nn.Module | None = None, num_affines: int = 2):
        super().__init__(cond_dim, channels)
        self.num_affines = num_affines
        for index in range(num_affines):
            self.add_module(f"affine{index}", Affine(cond_dim, channels))

    def affines(self) -> list[Affine]:
        return [getattr(self, f"affine{i}") for i in range(self.num_affines)]

    def forward(self, h: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        for affine in self.affines():  # in place on the affine's fresh output, as DFBLK's LeakyReLU
            h = F.leaky_relu(affine(h, cond), LEAKY_SLOPE, inplace=True)
        return h, state


def dfblock_spec() -> FusionBlockSpec:
    return FusionBlockSpec(
        name="dfblock",
        block=DFBlock,
        description="DF-GAN deep fusion block: two stacked affines (MLP-predicted γ, β) with LeakyReLU",
    )


class GBlock(nn.Module):
    """`G_Block`: upsample ×2, then `shortcut(x) + c2(fuse2(c1(fuse1(x))))`; no learnable gain."""

    def __init__(
        self,
        fusion: FusionBlockSpec,
        cond_dim: int,
        in_ch: int,
        out_ch: int,
        shared: SharedFusionState | None,
        options: Mapping[str, Any],
    ):
        super().__init__()
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = fusion.block(cond_dim, in_ch, shared=shared, **options)
        self.fuse2 = fusion.block(cond_dim, out_ch, shared=shared, **options)
        if in_ch != out_ch:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: Tensor, cond: Tensor, state: Any) -> tuple[Tensor, Any]:
        x = upsample2x(x)
        shortcut = self.c_sc(x) if hasattr(self, "c_sc") else x
        h, state = self.fuse1(x, cond, state)
        h, state = self.fuse2(self.c1(h), cond, state)
        return shortcut + self.c2(h), state


class DFGANGenerator(Generator):
    """`NetG`: fc(noise) → (8nf, 4, 4) → GBlocks up to `image_size` → to_rgb (tanh).

    Every fusion block sees `cond = noise ⊕ sentence`. A fusion family with a shared module (RAT's LSTM)
    gets it built once here (`fusion_shared`) and its initial state from (noise, cond) per forward.
    """

    def __init__(
        self,
        nf: int,
        noise_dim: int,
        sentence_dim: int,
        image_size: int,
        fusion: FusionBlockSpec,
        fusion_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.nf, self.noise_dim, self.image_size = nf, noise_dim, image_size
        options = dict(fusion_options or {})
        cond_dim = noise_dim + sentence_dim
        self.fc = nn.Linear(noise_dim, nf * 8 * 4 * 4)
        self.fusion_shared = fusion.shared(cond_dim, noise_dim) if fusion.shared is not None else None
        channels = channel_pyramid(nf, pyramid_levels(image_size), MAX_CHANNEL_MULT)[::-1]
        self.GBlocks = nn.ModuleList(
            GBlock(fusion, cond_dim, c_in, c_out, self.fusion_shared, options)
            for c_in, c_out in consecutive_pairs(channels)
        )
        self.to_rgb = to_rgb(channels[-1])

    def forward(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        h = self.fc(noise).view(noise.shape[0], 8 * self.nf, 4, 4)
        cond = torch.cat([noise, sentence], dim=1)
        state = None if self.fusion_shared is None else self.fusion_shared.initial_state(noise, cond)
        for block in self.GBlocks:
            h, state = block(h, cond, state)
        return self.to_rgb(h)


class DFGANBackbone(nn.Module):
    """`NetD`: conv_img, then residual down blocks from `image_size` to 4x4 (8nf channels)."""

    def __init__(self, nf: int, image_size: int):
        super().__init__()
        channels = channel_pyramid(nf, pyramid_levels(image_size), MAX_CHANNEL_MULT)
        self.conv_img = nn.Conv2d(3, nf, 3, 1, 1)
        self.DBlocks = nn.ModuleList(
            ResidualDownBlock(c_in, c_out) for c_in, c_out in consecutive_pairs(channels)
        )

    def forward(self, images: Tensor) -> Tensor:
        h = self.conv_img(images)
        for block in self.DBlocks:
            h = block(h)
        return h


class DFGANDiscriminator(Discriminator):
    """NetD as `backbone` (features) and NetC as `head` (logits of features ⊕ tiled sentence)."""

    def __init__(self, nf: int, sentence_dim: int, image_size: int):
        super().__init__()
        self.backbone = DFGANBackbone(nf, image_size)
        self.head = ConcatConditionalHead(nf * 8, sentence_dim, nf * 2)

    def features(self, images: Tensor) -> Tensor:
        return self.backbone(images)

    def logits(self, features: Tensor, sentence: Tensor) -> Tensor:
        return self.head(features, sentence)
