"""RAT-GAN's networks (senmaoy/Recurrent-Affine-Transformation-for-Text-to-image-Synthesis code/model.py,
model_flower.py, DAMSM.py): the recurrent affine (`rat`) fusion block with its shared LSTM, the
generator, and the discriminator with the released concat head or the paper's spatial-attention head.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Discriminator, FusionBlock, Generator, SharedFusionState
from t2igan.nn.layers import (
    LEAKY_SLOPE,
    Affine,
    ConcatConditionalHead,
    ResidualDownBlock,
    channel_pyramid,
    consecutive_pairs,
    pyramid_levels,
    tile_sentence,
    to_rgb,
    upsample2x,
)
from t2igan.specs import FusionBlockSpec

# main.py builds CustomLSTM(256, 256) (DAMSM.py); model.py affine: Linear(256, 256) -> Linear(256, C)
RAT_HIDDEN = 256
G_MAX_MULT = 8  # model.py NetG: ngf*8 at 4x4 down to ngf at the output
D_MAX_MULT = 16  # model.py NetD: ndf -> ndf*2 ... ndf*16, then ndf*16 twice


class LSTMState(NamedTuple):
    """(h, c) of the shared LSTM, with the condition's input projection `cond @ W` computed once per
    generator forward: every block gets the same condition, so the projection is the same at every step."""

    h: Tensor
    c: Tensor
    cond: Tensor
    cond_proj: Tensor


class RecurrentAffineLSTM(SharedFusionState):
    """The one LSTM all `rat` blocks of a generator share (`CustomLSTM` in DAMSM.py).

    One step: `gates = x W + h U + bias`, sliced i, f, g, o. The initial state comes from the noise,
    `h0 = noise2h(z)`, `c0 = noise2c(z)`. W, U and bias are drawn from U(±1/√hidden) before noise2h and
    noise2c exist, so those two keep PyTorch's Linear init, as in the official `__init__`.
    """

    def __init__(self, cond_dim: int, noise_dim: int, hidden: int = RAT_HIDDEN):
        super().__init__()
        self.hidden = hidden
        self.W = nn.Parameter(torch.empty(cond_dim, hidden * 4))
        self.U = nn.Parameter(torch.empty(hidden, hidden * 4))
        self.bias = nn.Parameter(torch.empty(hidden * 4))
        bound = 1.0 / math.sqrt(hidden)
        for weight in (self.W, self.U, self.bias):
            nn.init.uniform_(weight, -bound, bound)
        self.noise2h = nn.Linear(noise_dim, hidden)
        self.noise2c = nn.Linear(noise_dim, hidden)

    def initial_state(self, noise: Tensor, cond: Tensor) -> LSTMState:
        return LSTMState(self.noise2h(noise), self.noise2c(noise), cond, cond @ self.W)

    def step(self, x: Tensor, state: LSTMState) -> LSTMState:
        """One step with input `x`; the projection cached in `state` is reused when `x` is its condition
        (same arithmetic in the same order as `x @ W + h @ U + bias`, so the outputs are bit-identical)."""
        x_proj = state.cond_proj if x is state.cond else x @ self.W
        gates = x_proj + state.h @ self.U + self.bias
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * state.c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return LSTMState(h, c, state.cond, state.cond_proj)


class RecurrentAffineBlock(FusionBlock):
    """RAT: before each of its `num_affines` affines, one step of the shared LSTM with the condition as
    input; γ and β are MLPs of the new hidden state h_t. The (h, c) state goes on to the next block.

    The shared LSTM is held without registering it as a submodule, so a generator's state dict holds it
    once (the official one repeats it in every block).
    """

    def __init__(
        self, cond_dim: int, channels: int, shared: RecurrentAffineLSTM | None = None, num_affines: int = 2
    ):
        super().__init__(cond_dim, channels)
        if not isinstance(shared, RecurrentAffineLSTM):
            raise ConfigError(
                "the `rat` fusion block needs its shared LSTM (FusionBlockSpec.shared); "
                f"got shared={type(shared).__name__}"
            )
        object.__setattr__(self, "lstm", shared)  # deliberately not a registered submodule
        self.num_affines = num_affines
        for index in range(num_affines):
            self.add_module(f"affine{index}", Affine(shared.hidden, channels, hidden=shared.hidden))

    def affines(self) -> list[Affine]:
        return [getattr(self, f"affine{i}") for i in range(self.num_affines)]

    def forward(self, h: Tensor, cond: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        if state is None:
            raise ConfigError(
                "the `rat` block got no LSTM state: call shared.initial_state(noise, cond) first"
            )
        for affine in self.affines():
            state = self.lstm.step(cond, state)
            h = F.leaky_relu(affine(h, state.h), LEAKY_SLOPE, inplace=True)
        return h, state


def rat_spec() -> FusionBlockSpec:
    return FusionBlockSpec(
        name="rat",
        block=RecurrentAffineBlock,
        shared=RecurrentAffineLSTM,
        description="RAT-GAN recurrent affine: one LSTM shared by all blocks (state from the noise) "
        "predicts γ, β for every affine",
    )


def unused_official_layers(in_ch: int, out_ch: int, affines_per_block: int) -> nn.ModuleDict:
    """Layers model.py's G_Block defines but its forward never calls: `affine4`, `affine5` (used only by
    model_flower.py), `fea_l`, `fea_ll`. Held at the paper presets so that the parameter count equals
    the official one and released checkpoints load strictly; they take no part in any computation."""
    layers = nn.ModuleDict()
    if affines_per_block == 4:
        layers["affine4"] = Affine(RAT_HIDDEN, in_ch, hidden=RAT_HIDDEN)
        layers["affine5"] = Affine(RAT_HIDDEN, out_ch, hidden=RAT_HIDDEN)
    layers["fea_l"] = nn.Linear(in_ch, 256)
    layers["fea_ll"] = nn.Linear(out_ch, 256)
    return layers


class RATGBlock(nn.Module):
    """`G_Block`: `shortcut(x) + γ · c2(fuse2(c1(fuse1(x))))`, γ a scalar starting at 0."""

    def __init__(
        self,
        fusion: FusionBlockSpec,
        cond_dim: int,
        in_ch: int,
        out_ch: int,
        shared: SharedFusionState | None,
        options: Mapping[str, Any],
        keep_unused: bool,
    ):
        super().__init__()
        self.c1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.c2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = fusion.block(cond_dim, in_ch, shared=shared, **options)
        self.fuse2 = fusion.block(cond_dim, out_ch, shared=shared, **options)
        self.gamma = nn.Parameter(torch.zeros(1))
        if in_ch != out_ch:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)
        if keep_unused:
            self.unused = unused_official_layers(in_ch, out_ch, 2 * options.get("num_affines", 2))

    def forward(self, x: Tensor, cond: Tensor, state: Any) -> tuple[Tensor, Any]:
        # the shortcut first, in the official order (`G_Block.forward`): measured faster on CPU
        shortcut = self.c_sc(x) if hasattr(self, "c_sc") else x
        h, state = self.fuse1(x, cond, state)
        h, state = self.fuse2(self.c1(h), cond, state)
        return shortcut + self.gamma * self.c2(h), state


class RATGANGenerator(Generator):
    """`NetG`: fc(noise) → (8nf, 4, 4) → a block at 4x4, then (upsample ×2 → block) up to `image_size`.

    The condition is the sentence alone; with the `rat` fusion the noise enters the blocks only through
    the LSTM's initial state.
    """

    def __init__(
        self,
        nf: int,
        noise_dim: int,
        sentence_dim: int,
        image_size: int,
        fusion: FusionBlockSpec,
        affines_per_block: int = 4,
        keep_unused: bool = False,
    ):
        super().__init__()
        if affines_per_block % 2:
            raise ConfigError(f"affines_per_block={affines_per_block}: expected an even number (4 or 6)")
        self.nf, self.noise_dim, self.image_size = nf, noise_dim, image_size
        options = {"num_affines": affines_per_block // 2}
        self.fc = nn.Linear(noise_dim, nf * 8 * 4 * 4)
        self.fusion_shared = fusion.shared(sentence_dim, noise_dim) if fusion.shared is not None else None
        outs = channel_pyramid(nf, pyramid_levels(image_size), G_MAX_MULT)[::-1]
        ins = [outs[0], *outs[:-1]]
        self.blocks = nn.ModuleList(
            RATGBlock(fusion, sentence_dim, c_in, c_out, self.fusion_shared, options, keep_unused)
            for c_in, c_out in zip(ins, outs, strict=True)
        )
        self.to_rgb = to_rgb(outs[-1])

    def forward(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        h = self.fc(noise).view(noise.shape[0], 8 * self.nf, 4, 4)
        state = None if self.fusion_shared is None else self.fusion_shared.initial_state(noise, sentence)
        for index, block in enumerate(self.blocks):
            if index:
                h = upsample2x(h)
            h, state = block(h, sentence, state)
        return self.to_rgb(h)


class SpatialAttentionHead(nn.Module):
    """The paper's spatial-attention conditional head, on features one level before 4x4 (8x8 at 256 px).

    A map `a = sigmoid(att(f ⊕ s))` is soft-thresholded by dividing by its sum over positions (the
    paper's normalisation; the released `D_GET_LOGITS_att` uses a softmax instead and is never called).
    The attended sentence map `s · a` is concatenated to the features, reduced to 4x4 by a residual
    down block, and scored with the sentence like the plain head.
    """

    def __init__(self, in_ch: int, out_ch: int, sentence_dim: int, hidden: int):
        super().__init__()
        self.joint_conv_att = nn.Sequential(
            nn.Conv2d(in_ch + sentence_dim, hidden, 3, 1, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, 1, 1, 1, 0, bias=False),
        )
        self.block = ResidualDownBlock(in_ch + sentence_dim, out_ch)
        self.head = ConcatConditionalHead(out_ch, sentence_dim, hidden)

    def attention(self, features: Tensor, sentence: Tensor) -> Tensor:
        """(B, 1, H, W), non-negative, summing to 1 over positions."""
        tiled = tile_sentence(sentence, features)
        scores = torch.sigmoid(self.joint_conv_att(torch.cat([features, tiled], dim=1)))
        return scores / scores.sum(dim=(2, 3), keepdim=True)

    def forward(self, features: Tensor, sentence: Tensor) -> Tensor:
        attended = tile_sentence(sentence, features) * self.attention(features, sentence)
        reduced = self.block(torch.cat([features, attended], dim=1))
        return self.head(reduced, sentence)


class RATGANDiscriminator(Discriminator):
    """`NetD`: conv_img and residual down blocks to 4x4, with the conditional head inside (`COND_DNET`).

    With `attention`, the last down block is replaced by the spatial-attention head, which does its own
    reduction to 4x4 from the features one level up.
    """

    def __init__(self, nf: int, sentence_dim: int, image_size: int, attention: bool = False):
        super().__init__()
        channels = channel_pyramid(nf, pyramid_levels(image_size), D_MAX_MULT)
        pairs = consecutive_pairs(channels)
        self.conv_img = nn.Conv2d(3, nf, 3, 1, 1)
        if attention:
            last_in, last_out = pairs.pop()
            self.head = SpatialAttentionHead(last_in, last_out, sentence_dim, nf * 2)
        else:
            self.head = ConcatConditionalHead(channels[-1], sentence_dim, nf * 2)
        self.blocks = nn.ModuleList(ResidualDownBlock(c_in, c_out) for c_in, c_out in pairs)

    def features(self, images: Tensor) -> Tensor:
        h = self.conv_img(images)
        for block in self.blocks:
            h = block(h)
        return h

    def logits(self, features: Tensor, sentence: Tensor) -> Tensor:
        return self.head(features, sentence)
