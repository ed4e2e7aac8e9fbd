"""RATLIP's own pieces of the shared CLIP-GAN (t2igan.nn.clip_gan): the batch-as-sequence recurrent affine
of its M_Blocks and the Conv_shuffle of its generator convs. Module and key names follow OxygenLu/RATLIP
code/models/RATLIP.py so the official state dicts load unchanged."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.nn.interfaces import FusionBlock
from t2igan.nn.layers import LEAKY_SLOPE

from .shuffle_attention import DEFAULT_GROUPS, ShuffleAttention

CONV_SHUFFLE_SLOPE = 0.01  # RATLIP.py Conv_shuffle: nn.LeakyReLU() with PyTorch's default slope
RATLIP_RNN_HIDDEN = 64  # RATLIP.py NetG: CLIP_Adapter(..., hidden_size=64)


class BatchSequenceAffine(nn.Module):
    """RATLIP's `Affine_rnn`: its own LSTM(cond_dim, hidden, batch_first=True) fed `cond.unsqueeze(0)`.

    That input is one sequence whose steps are the samples of the batch, so the final hidden state, and
    with it γ and β, is one vector for the whole batch, computed from all samples in batch order. This
    is what the official code computes (and what its checkpoints were trained with); it is kept exactly.
    `fc_gamma`/`fc_beta`: Linear(hidden, C) → ReLU → Linear(C, C), the last starting at γ ≡ 1, β ≡ 0.
    """

    def __init__(self, cond_dim: int, channels: int, hidden: int = RATLIP_RNN_HIDDEN):
        super().__init__()
        self.rnn = nn.LSTM(cond_dim, hidden, batch_first=True)
        self.fc_gamma = nn.Sequential(
            nn.Linear(hidden, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels)
        )
        self.fc_beta = nn.Sequential(
            nn.Linear(hidden, channels), nn.ReLU(inplace=True), nn.Linear(channels, channels)
        )
        with torch.no_grad():
            self.fc_gamma[2].weight.zero_()
            self.fc_gamma[2].bias.fill_(1.0)
            self.fc_beta[2].weight.zero_()
            self.fc_beta[2].bias.zero_()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        _, (hidden, _) = self.rnn(cond.unsqueeze(0))  # (1, 1, hidden): the batch is the sequence
        gamma, beta = self.fc_gamma(hidden[0]), self.fc_beta(hidden[0])
        return gamma[:, :, None, None] * x + beta[:, :, None, None]


class BatchSequenceFusion(FusionBlock):
    """RATLIP's `DFBLK_rnn`: two `BatchSequenceAffine`s, each followed by LReLU 0.2."""

    def __init__(self, cond_dim: int, channels: int, hidden: int = RATLIP_RNN_HIDDEN):
        super().__init__(cond_dim, channels)
        self.affine0 = BatchSequenceAffine(cond_dim, channels, hidden)
        self.affine1 = BatchSequenceAffine(cond_dim, channels, hidden)

    def forward(self, h: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        h = F.leaky_relu(self.affine0(h, cond), LEAKY_SLOPE, inplace=True)  # the affine's fresh output
        return F.leaky_relu(self.affine1(h, cond), LEAKY_SLOPE, inplace=True), state


class ConvShuffle(nn.Module):
    """RATLIP's `Conv_shuffle`: Conv2d (no bias) → BatchNorm2d → LeakyReLU(0.01) → ShuffleAttention(G=8).

    `attention=False` drops the shuffle attention (the `shuffle_attention=false` ablation) and keeps the
    rest, so the ablation changes one thing."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        padding: int,
        attention: bool = True,
        groups: int = DEFAULT_GROUPS,
    ):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.LeakyReLU(CONV_SHUFFLE_SLOPE)
        self.se = ShuffleAttention(out_ch, groups) if attention else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.se(self.act(self.bn(self.conv(x))))
