"""Shuffle Attention (Zhang & Yang, "SA-Net", ICASSP 2021, arXiv:2102.00240): channel groups, each split into
a channel branch and a spatial branch, then a channel shuffle. RATLIP puts it after its generator convs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError

# fightingcv-attention ShuffleAttention(channel=512, reduction=16, G=8): RATLIP builds it with the default
# G=8 (OxygenLu/RATLIP code/models/RATLIP.py Conv_shuffle: `ShuffleAttention(channel=c2)`); `reduction` is
# accepted there but never used, so it is not a parameter here.
DEFAULT_GROUPS = 8


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """(B, g·k, H, W) viewed as (B, g, k, H, W), the two channel axes swapped, flattened back."""
    batch, channels, height, width = x.shape
    return x.reshape(batch, groups, channels // groups, height, width).transpose(1, 2).reshape_as(x)


class ShuffleAttention(nn.Module):
    """Shuffle Attention over `channels` split into `groups` groups.

    Each group (channels/groups) is halved. The channel half is gated by
    sigmoid(cweight · avgpool(x) + cbias); the spatial half by sigmoid(sweight · GN(x) + sbias), where GN
    normalises every channel over its own H×W (GroupNorm with one channel per group, affine). Both halves
    share their per-channel weights across groups. The halves are concatenated, the groups put back, and
    the channels shuffled across the two halves. Learnable: cweight, cbias, sweight, sbias and GN's
    affine, channels/(2·groups) each (6·channels/16 at G=8). cweight/sweight start at 0 and
    cbias/sbias at 1, so a fresh module scales its input by sigmoid(1) before the shuffle.
    """

    def __init__(self, channels: int, groups: int = DEFAULT_GROUPS):
        super().__init__()
        if channels % (2 * groups):
            raise ConfigError(
                f"ShuffleAttention(channels={channels}, groups={groups}): channels must be divisible by "
                f"2·groups = {2 * groups}"
            )
        self.channels, self.groups = channels, groups
        half = channels // (2 * groups)
        self.gn = nn.GroupNorm(half, half)
        self.cweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, half, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        if channels != self.channels:
            raise ConfigError(f"ShuffleAttention built for {self.channels} channels got {channels}")
        grouped = x.reshape(batch * self.groups, channels // self.groups, height, width)
        x_channel, x_spatial = grouped.chunk(2, dim=1)
        channel_gate = self.cweight * F.adaptive_avg_pool2d(x_channel, 1) + self.cbias
        spatial_gate = self.sweight * self.gn(x_spatial) + self.sbias
        out = torch.cat([x_channel * torch.sigmoid(channel_gate), x_spatial * torch.sigmoid(spatial_gate)], 1)
        return channel_shuffle(out.reshape(batch, channels, height, width), 2)
