"""ALR-GAN's AttnGAN-style backbone: conditioning augmentation, the initial feature transformation, the
later stages with word attention (AttnGAN's, or the ALR text-vision matrix), and one discriminator per scale.

Layer shapes follow AttnGAN (taoxugit/AttnGAN code/model.py: CA_NET, INIT_STAGE_G, NEXT_STAGE_G,
GET_IMAGE_G, D_NET64/128/256, D_GET_LOGITS; code/GlobalAttention.py GlobalAttentionGeneral), since
ALR-GAN builds on AttnGAN and publishes no code. The sizes are generalised so the `tiny` preset can
start at 32 px; at the paper sizes the layers are AttnGAN's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Discriminator, Generator

from .alr import ALRModule, region_word_similarity, text_vision_matrix

LEAKY_SLOPE = 0.2  # AttnGAN code/model.py: every LeakyReLU of the D nets
LOGIT_GRID = 4  # AttnGAN D_GET_LOGITS: Conv2d(ndf*8, 1, kernel_size=4, stride=4) on 4x4 features
INIT_GRID = 4  # AttnGAN INIT_STAGE_G: fc to ngf x 4 x 4


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False)


class GLU(nn.Module):
    """Gated linear unit over channels: first half times sigmoid(second half)."""

    def forward(self, x: Tensor) -> Tensor:
        half = x.shape[1] // 2
        return x[:, :half] * torch.sigmoid(x[:, half:])


def up_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """AttnGAN upBlock: nearest x2, conv3x3 to 2·out, BN, GLU."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_ch, out_ch * 2),
        nn.BatchNorm2d(out_ch * 2),
        GLU(),
    )


class ResBlock(nn.Module):
    """AttnGAN ResBlock: conv3x3(c, 2c), BN, GLU, conv3x3(c, c), BN, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channels, channels * 2),
            nn.BatchNorm2d(channels * 2),
            GLU(),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x) + x


class ConditioningAugmentation(nn.Module):
    """AttnGAN CA_NET: Linear(sentence, 4·cond) → GLU gives μ and log σ²; c = μ + σ·ε (also at test time)."""

    def __init__(self, sentence_dim: int, condition_dim: int):
        super().__init__()
        self.condition_dim = condition_dim
        self.fc = nn.Linear(sentence_dim, condition_dim * 4)
        self.glu = GLU()

    def forward(self, sentence: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.glu(self.fc(sentence))
        mu, logvar = x[:, : self.condition_dim], x[:, self.condition_dim :]
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp(), mu, logvar


class InitialStage(nn.Module):
    """The Initial Feature Transformation Module: (c ⊕ z) → fc → 4×4 → up-blocks → ngf × base × base.

    At base 64 this is AttnGAN's INIT_STAGE_G (fc to ngf·16 channels, four up-blocks); a smaller base
    starts with fewer channels so that the output always has `ngf` channels.
    """

    def __init__(self, in_dim: int, ngf: int, base_size: int):
        super().__init__()
        ups = math.log2(base_size / INIT_GRID)
        if ups < 1 or ups != int(ups):
            raise ConfigError(f"base_size={base_size}: expected 4 times a power of 2, at least 8")
        self.start_channels = ngf * 2 ** int(ups)
        self.fc = nn.Sequential(
            nn.Linear(in_dim, self.start_channels * INIT_GRID**2 * 2, bias=False),
            nn.BatchNorm1d(self.start_channels * INIT_GRID**2 * 2),
            GLU(),
        )
        channels = [self.start_channels // 2**k for k in range(int(ups) + 1)]
        self.upsample = nn.Sequential(
            *(up_block(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True))
        )

    def forward(self, noise: Tensor, condition: Tensor) -> Tensor:
        x = self.fc(torch.cat([condition, noise], dim=1))
        return self.upsample(x.view(-1, self.start_channels, INIT_GRID, INIT_GRID))


class WordAttention(nn.Module):
    """Words projected to the feature width (AttnGAN `conv_context`), then attended per sub-region.

    `over="words"`: AttnGAN's GlobalAttentionGeneral (each region's weights sum to 1 over the words).
    `over="regions"`: ALR-GAN's semantic similarity matrix θ (each word's weights sum to 1 over the
    regions) and its text-vision matrix Q, q^k = Σ_j θ_{k,j} w_j.
    """

    def __init__(self, channels: int, word_dim: int, over: str):
        super().__init__()
        if over not in ("words", "regions"):
            raise ConfigError(f"attention over {over!r}: expected 'words' or 'regions'")
        self.over = over
        self.conv_context = nn.Conv2d(word_dim, channels, 1, bias=False)

    def project(self, words: Tensor) -> Tensor:
        return self.conv_context(words.unsqueeze(3)).squeeze(3)

    def forward(self, h: Tensor, words: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """(context (B, C, H, W), weights θ (B, H·W, T), projected words (B, C, T))."""
        projected = self.project(words)
        if self.over == "regions":
            theta = region_word_similarity(h, projected, mask)
        else:
            scores = h.flatten(2).transpose(1, 2) @ projected
            if mask is not None:
                scores = scores.masked_fill(mask[:, None, :], float("-inf"))
            theta = torch.softmax(scores, dim=-1)
        return text_vision_matrix(theta, projected, h.shape[-2:]), theta, projected


class NextStage(nn.Module):
    """AttnGAN NEXT_STAGE_G: word context ⊕ h → R residual blocks (2·ngf) → up-block to ngf."""

    def __init__(self, ngf: int, word_dim: int, residual_blocks: int, attention_over: str):
        super().__init__()
        self.att = WordAttention(ngf, word_dim, attention_over)
        self.residual = nn.Sequential(*(ResBlock(ngf * 2) for _ in range(residual_blocks)))
        self.upsample = up_block(ngf * 2, ngf)

    def forward(self, h: Tensor, words: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        context, theta, projected = self.att(h, words, mask)
        return self.upsample(self.residual(torch.cat([h, context], dim=1))), theta, projected


def image_head(ngf: int) -> nn.Sequential:
    """AttnGAN GET_IMAGE_G: conv3x3 to RGB, tanh. ALR-GAN also uses it as the real-image decoder."""
    return nn.Sequential(conv3x3(ngf, 3), nn.Tanh())


@dataclass(frozen=True)
class GeneratorConfig:
    ngf: int
    noise_dim: int
    sentence_dim: int
    word_dim: int
    condition_dim: int
    base_size: int
    stages: int
    residual_blocks: int
    alr: bool  # the ALR module: θ over regions, real-image encoders, α/β nets
    max_words: int
    alr_hidden: int

    @property
    def sizes(self) -> list[int]:
        return [self.base_size * 2**i for i in range(self.stages)]


@dataclass
class GeneratorOutput:
    """One training forward: images (coarse → fine), CA statistics, and per later stage i ≥ 1 the input
    features H_{i-1}, the word weights θ_i and the projected words they were computed with."""

    images: list[Tensor]
    mu: Tensor
    logvar: Tensor
    features: list[Tensor] = field(default_factory=list)
    thetas: list[Tensor] = field(default_factory=list)
    words: list[Tensor] = field(default_factory=list)


class ALRGenerator(Generator):
    """The multi-stage generator; `forward` returns every stage's image, finest last."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        if config.stages < 1:
            raise ConfigError(f"stages={config.stages}: expected at least 1")
        self.config = config
        self.noise_dim, self.image_size = config.noise_dim, config.sizes[-1]
        ngf = config.ngf
        self.ca_net = ConditioningAugmentation(config.sentence_dim, config.condition_dim)
        self.initial = InitialStage(config.noise_dim + config.condition_dim, ngf, config.base_size)
        over = "regions" if config.alr else "words"
        self.next_stages = nn.ModuleList(
            NextStage(ngf, config.word_dim, config.residual_blocks, over) for _ in range(config.stages - 1)
        )
        self.image_heads = nn.ModuleList(image_head(ngf) for _ in range(config.stages))
        # one ALR module per later stage; its encoder reads the real image at the previous stage's size
        self.alr = (
            nn.ModuleList(
                ALRModule(ngf, config.max_words, config.alr_hidden) for _ in range(config.stages - 1)
            )
            if config.alr
            else None
        )

    def run(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None, mask: Tensor | None
    ) -> GeneratorOutput:
        condition, mu, logvar = self.ca_net(sentence)
        h = self.initial(noise, condition)
        out = GeneratorOutput([self.image_heads[0](h)], mu, logvar)
        if len(self.next_stages) and words is None:
            raise ConfigError(
                "alrgan: the later stages attend over words; the text encoder gave no word features"
            )
        for stage, head in zip(self.next_stages, self.image_heads[1:], strict=True):
            out.features.append(h)
            h, theta, projected = stage(h, words, mask)
            out.thetas.append(theta)
            out.words.append(projected)
            out.images.append(head(h))
        return out

    def forward(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None = None, mask: Tensor | None = None
    ) -> list[Tensor]:
        return self.run(noise, sentence, words, mask).images


# ----------------------------------------------------------------------------------- discriminators
def leaky_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """AttnGAN Block3x3_leakRelu: conv3x3, BN, LeakyReLU."""
    return nn.Sequential(
        conv3x3(in_ch, out_ch), nn.BatchNorm2d(out_ch), nn.LeakyReLU(LEAKY_SLOPE, inplace=True)
    )


def down_block(in_ch: int, out_ch: int, norm: bool = True) -> nn.Sequential:
    """AttnGAN downBlock: conv 4×4 stride 2, BN, LeakyReLU (the first layer of encode_image_by_16times has
    no BN)."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
    return nn.Sequential(*layers)


class StageLogits(nn.Module):
    """AttnGAN D_GET_LOGITS: conditional heads join the tiled sentence first; logits before the sigmoid
    (the official Sigmoid + BCELoss is computed as BCE-with-logits)."""

    def __init__(self, ndf: int, sentence_dim: int, conditional: bool):
        super().__init__()
        self.sentence_dim = sentence_dim
        self.joint_conv = leaky_block(ndf * 8 + sentence_dim, ndf * 8) if conditional else None
        self.out_logits = nn.Conv2d(ndf * 8, 1, kernel_size=LOGIT_GRID, stride=LOGIT_GRID)

    def forward(self, features: Tensor, sentence: Tensor | None = None) -> Tensor:
        if self.joint_conv is not None:
            if sentence is None:
                raise ValueError("the conditional logits need a sentence")
            tiled = sentence[:, :, None, None].expand(-1, -1, *features.shape[-2:])
            features = self.joint_conv(torch.cat([features, tiled], dim=1))
        return self.out_logits(features).view(-1)


class StageDiscriminator(nn.Module):
    """D_NET64/128/256 generalised: 4 down-blocks to ndf·8 (encode_image_by_16times), then per further
    halving a down-block doubling the width, then 3×3 blocks halving it back to ndf·8; 4×4 at the end."""

    def __init__(self, ndf: int, sentence_dim: int, image_size: int):
        super().__init__()
        downs = math.log2(image_size / LOGIT_GRID)
        if downs < 2 or downs != int(downs):
            raise ConfigError(
                f"discriminator image size {image_size}: expected 4 times a power of 2, at least 16"
            )
        downs = int(downs)
        first = min(downs, 4)
        widths = [ndf * 2**k for k in range(first)]
        layers = [down_block(3, ndf, norm=False)]
        layers += [down_block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        if first < 4:  # below 64 px: one 3×3 block widens to ndf·8, where the heads expect it
            layers.append(leaky_block(widths[-1], ndf * 8))
        self.encode = nn.Sequential(*layers)
        extra = [ndf * 8 * 2**k for k in range(downs - first + 1)]
        self.down = nn.Sequential(*(down_block(a, b) for a, b in zip(extra[:-1], extra[1:], strict=True)))
        back = extra[::-1]
        self.narrow = nn.Sequential(*(leaky_block(a, b) for a, b in zip(back[:-1], back[1:], strict=True)))
        self.uncond = StageLogits(ndf, sentence_dim, conditional=False)
        self.cond = StageLogits(ndf, sentence_dim, conditional=True)

    def forward(self, images: Tensor) -> Tensor:
        return self.narrow(self.down(self.encode(images)))


def image_pyramid(images: Tensor, sizes: list[int]) -> list[Tensor]:
    """The real image at every stage size (antialiased bilinear; AttnGAN's loader resizes with PIL)."""
    out = []
    for size in sizes:
        if images.shape[-1] == size and images.shape[-2] == size:
            out.append(images)
        else:
            out.append(
                F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            )
    return out


class MultiStageDiscriminator(Discriminator):
    """One discriminator per stage. `features` takes the list of stage images (or the finest image,
    resized to every stage); `logits` gives the conditional logits, one row per stage."""

    def __init__(self, ndf: int, sentence_dim: int, sizes: list[int]):
        super().__init__()
        self.sizes = list(sizes)
        self.stages = nn.ModuleList(StageDiscriminator(ndf, sentence_dim, size) for size in sizes)

    def features(self, images: Tensor | list[Tensor]) -> list[Tensor]:
        if isinstance(images, Tensor):
            images = image_pyramid(images, self.sizes)
        return [stage(x) for stage, x in zip(self.stages, images, strict=True)]

    def logits(self, features: list[Tensor], sentence: Tensor) -> Tensor:
        return torch.stack([stage.cond(f, sentence) for stage, f in zip(self.stages, features, strict=True)])
