"""The CLIP-based GAN that GALIP and RATLIP share: the CLIP adapter of the generator (Mate-G), its
up-sampling blocks with pluggable convs and fusion, Mate-D on frozen CLIP features, the losses
(building from a config and the official-checkpoint split: t2igan.nn.clip_gan_build). Module and key
names follow tobran/GALIP code/models/GALIP.py so the official state dicts load unchanged; RATLIP's own
fusion and convs come from its plugin through the fusion and conv factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Batch, Discriminator, FusionBlock, GANModel, Generator, LossDict
from t2igan.nn.layers import LEAKY_SLOPE, Affine, channel_pyramid, consecutive_pairs, pyramid_levels, to_rgb
from t2igan.nn.losses import discriminator_hinge_loss, generator_hinge_loss

G_MAX_MULT = 8  # GALIP.py get_G_in_out_chs: nf * min(2**idx, 8)
MAPPER_RESIDUAL = 0.1  # GALIP.py CLIP_Adapter.forward: conv(fuse_feat + 0.1 * map_feat)
FIRST_BLOCK_SIZE = 8  # GALIP.py NetG: imsize starts at 4 and doubles before the first G_Block

FusionFactory = Callable[[int, int], FusionBlock]  # (cond_dim, channels) -> block
ConvFactory = Callable[[int, int, int, int, int], nn.Module]  # (in, out, kernel, stride, padding)


# ------------------------------------------------------------------------------------ fusion blocks


class DeepFusion(FusionBlock):
    """GALIP's `DFBLK`: affine0 → LReLU 0.2 → affine1 → LReLU 0.2, γ/β from MLP(cond) per sample."""

    def __init__(self, cond_dim: int, channels: int, shared: nn.Module | None = None):
        super().__init__(cond_dim, channels)
        self.affine0 = Affine(cond_dim, channels)
        self.affine1 = Affine(cond_dim, channels)

    def forward(self, h: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        h = F.leaky_relu(self.affine0(h, cond), LEAKY_SLOPE, inplace=True)  # the affine's fresh output
        return F.leaky_relu(self.affine1(h, cond), LEAKY_SLOPE, inplace=True), state


# ---------------------------------------------------------------------------------------------- convs


def plain_conv(in_ch: int, out_ch: int, kernel: int, stride: int, padding: int) -> nn.Module:
    """GALIP's convs: Conv2d with bias."""
    return nn.Conv2d(in_ch, out_ch, kernel, stride, padding)


# ------------------------------------------------------------------------------------------ generator


class MBlock(nn.Module):
    """`M_Block` / `M_Block_RAT`: shortcut(x) + fuse2(conv2(fuse1(conv1(x)))); conv1 is always plain."""

    def __init__(
        self, in_ch: int, mid_ch: int, out_ch: int, cond_dim: int, fusion: FusionFactory, conv2: ConvFactory
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 3, 1, 1)
        self.fuse1 = fusion(cond_dim, mid_ch)
        self.conv2 = conv2(mid_ch, out_ch, 3, 1, 1)
        self.fuse2 = fusion(cond_dim, out_ch)
        if in_ch != out_ch:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        h, state = self.fuse1(self.conv1(x), cond, state)
        h, state = self.fuse2(self.conv2(h), cond, state)
        shortcut = self.c_sc(x) if hasattr(self, "c_sc") else x
        return shortcut + h, state


class GBlock(nn.Module):
    """`G_Block`: nearest resize to `size`, then shortcut(x) + c2(fuse2(c1(fuse1(x))))."""

    def __init__(
        self, cond_dim: int, in_ch: int, out_ch: int, size: int, fusion: FusionFactory, conv: ConvFactory
    ):
        super().__init__()
        self.size = size
        self.c1 = conv(in_ch, out_ch, 3, 1, 1)
        self.c2 = conv(out_ch, out_ch, 3, 1, 1)
        self.fuse1 = fusion(cond_dim, in_ch)
        self.fuse2 = fusion(cond_dim, out_ch)
        if in_ch != out_ch:
            self.c_sc = nn.Conv2d(in_ch, out_ch, 1, 1, 0)

    def forward(self, x: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        x = F.interpolate(x, size=(self.size, self.size))
        h, state = self.fuse1(x, cond, state)
        h, state = self.fuse2(self.c1(h), cond, state)
        shortcut = self.c_sc(x) if hasattr(self, "c_sc") else x
        return shortcut + self.c2(h), state


class CLIPMapper(nn.Module):
    """`CLIP_Mapper`: the frozen CLIP ViT run on a bridge map with text-predicted prompt tokens.

    It registers exactly the visual parts the official module holds (conv1, unused but stored; the class
    and positional embeddings; ln_pre; the transformer), so the G parameter count and the official
    `mapping.CLIP_ViT.*` keys match; the computation is `encoder.map_with_prompts`.
    """

    def __init__(self, encoder: Any):
        super().__init__()
        visual = encoder.model.visual
        self.conv1 = visual.conv1
        self.class_embedding = visual.class_embedding
        self.positional_embedding = visual.positional_embedding
        self.ln_pre = visual.ln_pre
        self.transformer = visual.transformer
        object.__setattr__(self, "encoder", encoder)  # not a submodule: the model registers it once
        self.requires_grad_(False)

    def forward(self, grid_map: Tensor, prompts: Tensor) -> Tensor:
        return self.encoder.map_with_prompts(grid_map, prompts)


class CLIPAdapter(nn.Module):
    """`CLIP_Adapter` (Mate-G's mapping): M_Blocks on the noise code, `conv_fuse` to the bridge feature,
    `fc_prompt` for the prompts, the frozen ViT mapping, `conv(fuse + 0.1·map)` to the G channels."""

    def __init__(
        self,
        encoder: Any,
        code_ch: int,
        mid_ch: int,
        g_ch: int,
        cond_dim: int,
        map_blocks: int,
        fusion: FusionFactory,
        conv2: ConvFactory,
    ):
        super().__init__()
        self.width, self.num_prompts = encoder.image_width, len(encoder.prompt_blocks)
        self.FBlocks = nn.ModuleList(
            MBlock(code_ch, mid_ch, code_ch, cond_dim, fusion, conv2) for _ in range(map_blocks)
        )
        self.conv_fuse = nn.Conv2d(code_ch, self.width, 5, 1, 2)
        self.CLIP_ViT = CLIPMapper(encoder)
        self.conv = nn.Conv2d(self.width, g_ch, 5, 1, 2)
        self.fc_prompt = nn.Linear(cond_dim, self.width * self.num_prompts)

    def forward(self, code: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        prompts = self.fc_prompt(cond).view(cond.shape[0], self.num_prompts, self.width)
        for block in self.FBlocks:
            code, state = block(code, cond, state)
        fuse = self.conv_fuse(code)
        return self.conv(fuse + MAPPER_RESIDUAL * self.CLIP_ViT(fuse, prompts)), state


def block_sizes(num_blocks: int, output_size: int) -> list[int]:
    """8, 16, ... doubling, the last block jumping to `output_size` (8..128 then 224 in GALIP.py NetG)."""
    sizes = [FIRST_BLOCK_SIZE * 2**i for i in range(num_blocks - 1)] + [output_size]
    if num_blocks > 1 and output_size <= sizes[-2]:
        raise ConfigError(f"output_size={output_size}: must exceed the previous block's size {sizes[-2]}")
    return sizes


class CLIPGANGenerator(Generator):
    """`NetG`: fc_code(noise) → (code_ch, grid, grid) → CLIP adapter → G_Blocks → to_rgb (no tanh).

    The condition of every fusion block is noise ⊕ sentence. A fusion family with a module shared by
    all blocks (RAT's LSTM, `fusion_shared`) gets its initial state from (noise, cond) per forward.
    """

    def __init__(
        self,
        encoder: Any,
        nf: int,
        noise_dim: int,
        sentence_dim: int,
        image_size: int,
        output_size: int,
        code_ch: int,
        mid_ch: int,
        map_blocks: int,
        mapper_fusion: FusionFactory,
        g_fusion: FusionFactory,
        mapper_conv2: ConvFactory,
        g_conv: ConvFactory,
        fusion_shared: nn.Module | None = None,
    ):
        super().__init__()
        self.noise_dim, self.image_size, self.code_ch = noise_dim, output_size, code_ch
        self.grid = encoder.grid_size
        cond_dim = noise_dim + sentence_dim
        pairs = consecutive_pairs(channel_pyramid(nf, pyramid_levels(image_size), G_MAX_MULT)[::-1])
        self.fc_code = nn.Linear(noise_dim, self.grid * self.grid * code_ch)
        self.fusion_shared = fusion_shared
        self.mapping = CLIPAdapter(
            encoder, code_ch, mid_ch, pairs[0][0], cond_dim, map_blocks, mapper_fusion, mapper_conv2
        )
        self.GBlocks = nn.ModuleList(
            GBlock(cond_dim, c_in, c_out, size, g_fusion, g_conv)
            for (c_in, c_out), size in zip(pairs, block_sizes(len(pairs), output_size), strict=True)
        )
        self.to_rgb = to_rgb(pairs[-1][1], tanh=False)  # GALIP.py: the Tanh is commented out

    def forward(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        cond = torch.cat([noise, sentence], dim=1)
        state = None if self.fusion_shared is None else self.fusion_shared.initial_state(noise, cond)
        code = self.fc_code(noise).view(noise.shape[0], self.code_ch, self.grid, self.grid)
        out, state = self.mapping(code, cond, state)
        for block in self.GBlocks:
            out, state = block(out, cond, state)
        return self.to_rgb(out)


# -------------------------------------------------------------------------------------- discriminator


class MateDBlock(nn.Module):
    """`D_Block(res=True)`: x' + γ·conv_r(x) [+ β·CLIP feature], γ, β scalars from 0; no down-sampling.

    conv_r = Conv3x3 → LReLU → Conv3x3 → LReLU (no biases); `conv_s` (1x1, biased) always exists, as
    in the official block, but is applied only when the channel count changes."""

    def __init__(self, in_ch: int, out_ch: int, clip_feature: bool):
        super().__init__()
        self.conv_r = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        )
        self.conv_s = nn.Conv2d(in_ch, out_ch, 1, 1, 0)
        self.learned_shortcut = in_ch != out_ch
        self.gamma = nn.Parameter(torch.zeros(1))
        if clip_feature:
            self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, clip_feature: Tensor | None = None) -> Tensor:
        residual = self.conv_r(x)
        out = (self.conv_s(x) if self.learned_shortcut else x) + self.gamma * residual
        return out + self.beta * clip_feature if clip_feature is not None else out


class MateD(nn.Module):
    """`NetD`: on CLIP maps (B, L, width, g, g) of L layers: layer 0 through D_Blocks that add layers
    1..L-1 (β-weighted), then `main` to `out_ch` channels (512 in GALIP)."""

    def __init__(self, width: int, num_layers: int, out_ch: int):
        super().__init__()
        self.DBlocks = nn.ModuleList(MateDBlock(width, width, True) for _ in range(num_layers - 1))
        self.main = MateDBlock(width, out_ch, False)

    def forward(self, maps: Tensor) -> Tensor:
        out = maps[:, 0]
        for index, block in enumerate(self.DBlocks):
            out = block(out, maps[:, index + 1])
        return self.main(out)


class MateC(nn.Module):
    """`NetC`: the sentence tiled over the grid, concatenated → Conv(k1) → LReLU → Conv(k2) to 1×1, no
    biases. GALIP: 7×7 grid, kernels 4 and 4; other grids: k1 = ⌈g/2⌉, k2 = g - k1 + 1. Logits (B,)."""

    def __init__(self, in_ch: int, cond_dim: int, hidden: int, grid: int):
        super().__init__()
        k1 = (grid + 1) // 2
        self.joint_conv = nn.Sequential(
            nn.Conv2d(in_ch + cond_dim, hidden, k1, 1, 0, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, 1, grid - k1 + 1, 1, 0, bias=False),
        )

    def forward(self, features: Tensor, sentence: Tensor) -> Tensor:
        tiled = sentence[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        return self.joint_conv(torch.cat([features, tiled], dim=1)).flatten()


class CLIPGANDiscriminator(Discriminator):
    """Frozen CLIP features → Mate-D (`backbone`, NetD) → conditional head (`head`, NetC)."""

    def __init__(self, encoder: Any, backbone: MateD, head: MateC):
        super().__init__()
        self.backbone, self.head = backbone, head
        object.__setattr__(self, "encoder", encoder)  # shared with G; registered once, by the model

    def features(self, images: Tensor) -> Tensor:
        return self.backbone(self.encoder.image_features(images)[0])

    def logits(self, features: Tensor, sentence: Tensor) -> Tensor:
        return self.head(features, sentence)


# ---------------------------------------------------------------------------------------------- model


class CLIPGANModel(GANModel):
    """GALIP's losses (code/lib/modules.py `train`).

    D: hinge(real) + (hinge(fake) + hinge(mismatch))/2 + MA-GP, the mismatch pairing real features with
    the sentences rolled by one, MA-GP taken on the real CLIP feature maps and the sentences. G:
    -mean(C(D(CLIP(fake)), s)) - sim_weight·mean(cos(CLIP image embedding of fake, s)), on the fakes of
    the D step (one generator forward per iteration, as the official loop does). The frozen CLIP is
    registered once (`clip`), kept in eval mode, and left out of our checkpoints.
    """

    excluded_state_prefixes = ("clip.", "generator.mapping.CLIP_ViT.")

    def verify_official_clip_copy(self, summary: dict[str, list[float]], source: str) -> None:
        """Raise unless our CLIP is the one a converted official netG was trained with."""
        from t2igan.nn.clip_gan_build import check_clip_summary

        check_clip_summary(summary, self.clip, source)

    def __init__(
        self,
        generator: CLIPGANGenerator,
        discriminator: CLIPGANDiscriminator,
        encoder: Any,
        sim_weight: float,
        magp_weight: float,
        magp_power: float,
        text_encoder_name: str = "clip",
    ):
        super().__init__()
        self.generator, self.discriminator, self.clip = generator, discriminator, encoder
        self.text_encoder_name = text_encoder_name
        self.sim_weight, self.magp_weight, self.magp_power = sim_weight, magp_weight, magp_power

    def parameter_groups(self) -> dict[str, nn.Module]:
        """G, D (Mate-D), C (the conditional head) as the official counts split them, and the whole frozen
        CLIP (image and text towers) that G's mapper, D's features and the text features share; G's frozen
        count is the part of it inside G's mapper, so it is counted in both."""
        return {
            "G": self.generator,
            "D": self.discriminator.backbone,
            "C": self.discriminator.head,
            "CLIP": self.clip,
        }

    def train(self, mode: bool = True) -> CLIPGANModel:
        super().train(mode)
        self.clip.eval()  # frozen: never in training mode, whatever the Trainer asks
        return self

    def d_step(self, batch: Batch) -> LossDict:
        sentence = batch.text.sentence.detach().requires_grad_(True)
        with torch.no_grad():  # the penalty needs gradients at the CLIP maps, not at the pixels
            real_maps = self.clip.image_features(batch.images)[0]
        real_maps.requires_grad_(True)
        fake = self.generator(self.sample_noise(len(sentence)), batch.text.sentence.detach())
        fake_maps, fake_embedding = self.clip.image_features(fake)
        self.keep_fakes(batch, (fake_maps, fake_embedding) if fake_maps.requires_grad else None)
        backbone = self.discriminator.backbone
        return discriminator_hinge_loss(
            self.discriminator.logits,
            backbone(real_maps),
            backbone(fake_maps.detach()),
            sentence,
            mismatch="roll_sentences",
            gp_inputs=(real_maps, sentence),
            gp_weight=self.magp_weight,
            gp_power=self.magp_power,
        )

    def g_step(self, batch: Batch) -> LossDict:
        sentence = batch.text.sentence
        kept = self.take_fakes(batch)
        if kept is not None:
            fake_maps, fake_embedding = kept
        else:
            fake = self.generator(self.sample_noise(len(sentence)), sentence.detach())
            fake_maps, fake_embedding = self.clip.image_features(fake)
        sentence = sentence.detach()
        adversarial = generator_hinge_loss(
            self.discriminator.logits(self.discriminator.backbone(fake_maps), sentence)
        )
        similarity = F.cosine_similarity(fake_embedding, sentence).mean()
        loss = adversarial - self.sim_weight * similarity
        return {"loss": loss, "adversarial": adversarial, "clip_similarity": similarity}

    @torch.no_grad()
    def generate_stages(self, noise: Tensor, text: Any) -> list[Tensor]:
        """As the official test: the unbounded output clamped to [-1, 1], NaNs zeroed (one stage)."""
        return [torch.nan_to_num(self.generator(noise, text.sentence).clamp(-1, 1))]
