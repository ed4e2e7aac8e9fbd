"""Shuffle Attention: the fightingcv parameters (G=8, 6·C/16 learnables), its initial behaviour, and the
forward against a sample-by-sample, group-by-group computation written out here."""

from __future__ import annotations

import pytest
import torch

from t2igan.errors import ConfigError
from t2igan_plugins.ratlip.shuffle_attention import ShuffleAttention, channel_shuffle


def reference(module: ShuffleAttention, x: torch.Tensor) -> torch.Tensor:
    """Per sample and group: channel half gated by its mean, spatial half by its per-channel normalised
    map; halves concatenated, groups re-stacked, then output channel 2j+i taken from channel i·C/2+j."""
    batch, channels, height, width = x.shape
    per_group, half = channels // module.groups, channels // (2 * module.groups)
    cw, cb = module.cweight.view(-1), module.cbias.view(-1)
    sw, sb = module.sweight.view(-1), module.sbias.view(-1)
    gn_w, gn_b = module.gn.weight, module.gn.bias
    stacked = torch.empty_like(x)
    for b in range(batch):
        for g in range(module.groups):
            block = x[b, g * per_group : (g + 1) * per_group]
            for k in range(half):
                a = block[k]
                stacked[b, g * per_group + k] = a * torch.sigmoid(cw[k] * a.mean() + cb[k])
                s = block[half + k]
                normed = (s - s.mean()) / torch.sqrt(s.var(unbiased=False) + module.gn.eps)
                gate = torch.sigmoid(sw[k] * (normed * gn_w[k] + gn_b[k]) + sb[k])
                stacked[b, g * per_group + half + k] = s * gate
    out = torch.empty_like(x)
    for i in range(2):
        for j in range(channels // 2):
            out[:, 2 * j + i] = stacked[:, i * channels // 2 + j]
    return out


def test_parameters_are_six_per_sixteen_channels_with_the_fightingcv_names():
    module = ShuffleAttention(64)  # RATLIP.py Conv_shuffle: ShuffleAttention(channel=c2), G=8 by default
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert shapes == {
        "gn.weight": (4,),
        "gn.bias": (4,),
        "cweight": (1, 4, 1, 1),
        "cbias": (1, 4, 1, 1),
        "sweight": (1, 4, 1, 1),
        "sbias": (1, 4, 1, 1),
    }
    assert sum(p.numel() for p in ShuffleAttention(512).parameters()) == 6 * 512 // 16


def test_forward_matches_the_written_out_computation():
    torch.manual_seed(0)
    module = ShuffleAttention(32, groups=4)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    x = torch.randn(3, 32, 5, 6)
    assert torch.allclose(module(x), reference(module, x), atol=1e-5)


def test_a_fresh_module_scales_by_sigmoid_one_then_shuffles():
    x = torch.randn(2, 16, 4, 4)
    out = ShuffleAttention(16)(x)
    assert torch.allclose(out, channel_shuffle(x * torch.sigmoid(torch.tensor(1.0)), 2), atol=1e-6)
    assert not torch.allclose(out, x * torch.sigmoid(torch.tensor(1.0)))  # the shuffle moved channels


def test_channel_counts_that_do_not_split_fail_naming_the_numbers():
    with pytest.raises(ConfigError, match="channels=24"):
        ShuffleAttention(24)
    with pytest.raises(ConfigError, match="built for 32"):
        ShuffleAttention(32)(torch.randn(1, 16, 2, 2))
