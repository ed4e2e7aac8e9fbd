"""Layers several text-to-image GANs share: the text-conditioned affine transformation (DF-GAN, RAT-GAN,
GALIP), the residual down-sampling block of their discriminators, the sentence-concat logits head."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError

LEAKY_SLOPE = 0.2  # every LeakyReLU of DF-GAN code/models/GAN.py and RAT-GAN code/model.py


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    # The names linear1/relu1/linear2 are the official ones (DF-GAN Affine, RAT-GAN affine), so the
    # released state-dict keys map onto ours unchanged.
    return nn.Sequential(
        OrderedDict(
            linear1=nn.Linear(in_dim, hidden),
            relu1=nn.ReLU(inplace=True),
            linear2=nn.Linear(hidden, out_dim),
        )
    )


class Affine(nn.Module):
    """`γ(c) · x + β(c)` with per-channel γ and β predicted from a condition by two MLPs.

    `fc_gamma` and `fc_beta` are Linear(cond_dim, hidden) → ReLU → Linear(hidden, channels); `hidden`
    defaults to `channels` (DF-GAN); RAT-GAN uses a fixed 256. The last layers start at γ ≡ 1, β ≡ 0,
    so a fresh affine is the identity on its input (DF-GAN code/models/GAN.py `Affine._initialize`).
    """

    def __init__(self, cond_dim: int, channels: int, hidden: int | None = None):
        super().__init__()
        hidden = channels if hidden is None else hidden
        self.fc_gamma = _mlp(cond_dim, hidden, channels)
        self.fc_beta = _mlp(cond_dim, hidden, channels)
        self.reset_identity()

    def reset_identity(self) -> None:
        with torch.no_grad():
            self.fc_gamma.linear2.weight.zero_()
            self.fc_gamma.linear2.bias.fill_(1.0)
            self.fc_beta.linear2.weight.zero_()
            self.fc_beta.linear2.bias.zero_()

    def modulation(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """γ and β, each (B, channels)."""
        return self.fc_gamma(cond), self.fc_beta(cond)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.modulation(cond)
        return gamma[:, :, None, None] * x + beta[:, :, None, None]


class ResidualDownBlock(nn.Module):
    """Discriminator block: `avg_pool(shortcut(x)) + γ · conv_r(x)`, halving the resolution.

    `conv_r` is Conv4x4 s2 → LReLU → Conv3x3 → LReLU (no biases); the 1x1 `conv_s` shortcut is applied
    only when the channel count changes, and `γ` is a scalar starting at 0 (DF-GAN `D_Block`, RAT-GAN
    `resD`). The official blocks create `conv_s` even when it is not applied; `keep_unused_shortcut`
    keeps it so that parameter counts and released checkpoints match.
    """

    def __init__(self, in_ch: int, out_ch: int, keep_unused_shortcut: bool = True):
        super().__init__()
        self.learned_shortcut = in_ch != out_ch
        self.conv_r = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )
        if self.learned_shortcut or keep_unused_shortcut:
            self.conv_s = nn.Conv2d(in_ch, out_ch, 1, 1, 0)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        # the shortcut first, as RAT-GAN's resD orders it (DF-GAN's D_Block computes the residual first):
        # the same values; an MA-GP pass measured 2-6 % faster on CPU this way (bird presets at nf 16)
        shortcut = F.avg_pool2d(self.conv_s(x) if self.learned_shortcut else x, 2)
        return shortcut + self.gamma * self.conv_r(x)


def tile_sentence(sentence: Tensor, features: Tensor) -> Tensor:
    """The sentence (B, S) repeated over the spatial grid of `features` (B, C, H, W): (B, S, H, W)."""
    return sentence[:, :, None, None].expand(-1, -1, *features.shape[-2:])


class ConcatConditionalHead(nn.Module):
    """Logits from image features and the sentence tiled over their grid, concatenated.

    `joint_conv` = Conv3x3(C + S → hidden) → LReLU → Conv(hidden → 1, kernel = grid), no biases
    (DF-GAN `NetC`, RAT-GAN `D_GET_LOGITS`). Returns one logit per sample, (B,).
    """

    def __init__(self, in_ch: int, cond_dim: int, hidden: int, grid: int = 4):
        super().__init__()
        self.cond_dim = cond_dim
        self.joint_conv = nn.Sequential(
            nn.Conv2d(in_ch + cond_dim, hidden, 3, 1, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, 1, grid, 1, 0, bias=False),
        )

    def forward(self, features: Tensor, sentence: Tensor) -> Tensor:
        joint = torch.cat([features, tile_sentence(sentence, features)], dim=1)
        return self.joint_conv(joint).flatten()


def to_rgb(in_ch: int, tanh: bool = True) -> nn.Sequential:
    """LReLU → Conv3x3(in_ch → 3) [→ Tanh]: the generators' output layer (index 1 holds the weights)."""
    layers: list[nn.Module] = [nn.LeakyReLU(LEAKY_SLOPE, inplace=True), nn.Conv2d(in_ch, 3, 3, 1, 1)]
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def upsample2x(x: Tensor) -> Tensor:
    """Nearest-neighbour ×2, as `F.interpolate(x, scale_factor=2)` in the official generators."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def pyramid_levels(image_size: int, min_size: int = 32, where: str = "image_size") -> int:
    """log2(image_size) - 1: the number of resolutions from 4x4 up to the image, both included."""
    if image_size < min_size or image_size & (image_size - 1):
        raise ConfigError(f"{where}={image_size}: expected a power of two ≥ {min_size}")
    return image_size.bit_length() - 2


def channel_pyramid(nf: int, levels: int, max_mult: int) -> list[int]:
    """`nf · min(2^i, max_mult)` for i < levels, finest resolution first (DF-GAN `get_G_in_out_chs`)."""
    return [nf * min(2**i, max_mult) for i in range(levels)]


def consecutive_pairs(channels: list[int]) -> list[tuple[int, int]]:
    """(in, out) channels of the blocks between consecutive levels of a pyramid."""
    return list(zip(channels[:-1], channels[1:], strict=True))
