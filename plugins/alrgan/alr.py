"""The Adaptive Layout Refinement (ALR) module of ALR-GAN (Tan et al., IEEE TMM 2023): the
semantic similarity matrix θ between sub-regions and words, the text-vision matrix Q, the real-image
encoder (decoded by the generator), and the ALR loss with its easy/hard split and learned α/β weights.

The paper gives no code; where it is silent the choice is ours and is said so next to the code. The
formulas as we read them are summarised in docs/official-code.md, ALR-GAN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError

LEAKY_SLOPE = 0.2  # our choice for the α/β nets and the encoder (the AttnGAN family's LeakyReLU slope)


def region_word_similarity(regions: Tensor, words: Tensor, mask: Tensor | None = None) -> Tensor:
    """θ (B, K, T): S'_{k,j} = h_kᵀ w_j, softmax over the K = H·W sub-regions for each word (paper Eq. for
    the SSM). Padded words (`mask` True) get all-zero columns, so they neither attend nor count.

    regions (B, C, H, W); words (B, C, T), already projected to C channels.
    """
    scores = regions.flatten(2).transpose(1, 2) @ words  # (B, K, T)
    theta = torch.softmax(scores, dim=1)
    if mask is not None:
        theta = theta.masked_fill(mask[:, None, :], 0.0)
    return theta


def text_vision_matrix(theta: Tensor, words: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Q (B, C, H, W): q^k = Σ_j θ_{k,j} w_j, the word context of every sub-region.

    The notes form Q "with the refined θ"; no refinement step besides the ALR loss is described, so Q
    takes the generator's θ, which that loss refines as training goes."""
    return (words @ theta.transpose(1, 2)).view(words.shape[0], words.shape[1], *size)


def as_channel_map(theta: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """(B, K, T) → (B, T, H, W): one map per word, the layout the residual is weighted in."""
    return theta.transpose(1, 2).reshape(theta.shape[0], theta.shape[2], *size)


def pad_channels(x: Tensor, channels: int) -> Tensor:
    """Zero channels appended up to `channels` (the paper zero-pads R to the shape of H*)."""
    if x.shape[1] > channels:
        raise ConfigError(f"{x.shape[1]} channels do not fit in {channels}")
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


def split_residual(residual: Tensor, threshold: float | Tensor) -> tuple[Tensor, Tensor]:
    """Easy elements r < threshold and hard ones r ≥ threshold; each keeps its values, zeros elsewhere."""
    hard = residual >= threshold
    return residual.masked_fill(hard, 0.0), residual.masked_fill(~hard, 0.0)


def alr_loss(easy: Tensor, hard: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:
    """L_ALR = 1/(N·D) (‖α ⊙ R_easy‖_F + ‖β ⊙ R_hard‖_F + ‖softplus(max α − min β)‖_F), batch mean.

    easy, hard (B, D, H, W) are the residual halves zero-padded to H*'s shape, so N·D = H·W·D; α, β
    (B, 1 or D, H, W) broadcast over them. max/min are taken per sample over all of α (β).
    """
    batch = easy.shape[0]
    normaliser = easy[0].numel()
    first = (alpha * easy).reshape(batch, -1).norm(dim=1)
    second = (beta * hard).reshape(batch, -1).norm(dim=1)
    gap = alpha.reshape(batch, -1).amax(dim=1) - beta.reshape(batch, -1).amin(dim=1)
    return ((first + second + F.softplus(gap)) / normaliser).mean()


class LayoutWeightNet(nn.Module):
    """φ_α or φ_β: conv3x3 → LeakyReLU → conv3x3 → sigmoid, one weight per sub-region.

    The paper says "a few convolutions and activations"; the depth, the width, the single output channel
    (one weight per sub-region, shared by the words) and the sigmoid (weights in (0, 1), the same scale for
    α and β) are our choices.
    """

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, 1, 1),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(hidden, 1, 3, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class RealImageEncoder(nn.Module):
    """Real image I*_{i-1} → H*_{i-1} with the shape of the generator's H_{i-1} (ngf channels, same size).

    "A stack of conv blocks" in the paper: here three 3×3 convs (BN + LeakyReLU between), our choice. The
    generator's own image head of that stage is its decoder (L_REC), so H* lives in the space where the
    generator's θ is computed and θ* compares with θ.
    """

    def __init__(self, ngf: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ngf, 3, 1, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(ngf, ngf, 3, 1, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.Conv2d(ngf, ngf, 3, 1, 1),
        )

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


@dataclass
class ALRTerms:
    """One stage's ALR results: the loss, L_REC, the real layout θ* and the split (for logging/tests)."""

    loss: Tensor
    reconstruction: Tensor
    theta_star: Tensor
    h_star: Tensor  # the real image's features θ* came from (the LVR target)
    easy: Tensor
    hard: Tensor
    alpha: Tensor
    beta: Tensor


class ALRModule(nn.Module):
    """The trainable parts of one stage's ALR: the real-image encoder and φ_α, φ_β.

    R is a T-channel map over the sub-regions, zero-padded to `channels = max(ngf, max_words)` together
    with H* (the paper pads R to H*'s shape; when a caption has more words than H* has channels we pad
    both, so N·D is H·W·max(ngf, max_words)).

    φ_α and φ_β are trained with the generator, minimising L_G as the paper's total writes it (the paper
    names no other objective for them). Minimised, L_ALR is smallest with α = 0 and a β that balances
    ‖β ⊙ R_hard‖ against softplus(−min β), and that is what training finds: after 6,000 steps on `shapes`
    (`tiny`, the paper's LVR) α is 0 everywhere (the sigmoid saturated), β is a constant
    whatever the input (0.058 with seed 0, 0.001 with seed 1), 11-16 % of the residuals are hard, and
    L_ALR ≈ 3.8e-5 beside an adversarial term of 10-18 (logged as alr_alpha, alr_beta, alr_hard_share). The learned weights thus switch the easy
    term off and leave the hard one too small to move the generator: in practice ALR acts through Q and
    L_REC. We keep the formula as written; `alr_weight` scales it for ablations.
    """

    def __init__(self, ngf: int, max_words: int, hidden: int):
        super().__init__()
        self.ngf, self.max_words = ngf, max_words
        self.channels = max(ngf, max_words)
        self.encoder = RealImageEncoder(ngf)
        self.phi_alpha = LayoutWeightNet(self.channels, hidden)
        self.phi_beta = LayoutWeightNet(self.channels, hidden)

    def terms(
        self,
        real: Tensor,
        decoder: nn.Module,
        theta: Tensor,
        words: Tensor,
        mask: Tensor | None,
        gamma: float,
    ) -> ALRTerms:
        """ALR for one stage: `real` is I*_{i-1}, `decoder` the generator's image head of stage i-1, θ the
        generated layout from H_{i-1} and `words` the projected words it used.

        γ is expressed in units of the uniform weight 1/K (K sub-regions): the paper's γ is not in the
        text we hold, and θ's scale shrinks with K, so one relative γ serves every stage size.
        Scale: the paper takes θ* from H*_i of I*_i while θ comes from H_{i-1}; R = |Θ* − Θ| needs both on
        one grid, so the real image enters at stage i−1's scale (I*_{i-1}) and H*, θ* share θ's grid.
        L_REC is the mean absolute error (‖·‖₁ over the number of values): with λ1 = 1 (our choice) a sum
        would outweigh every other term by a factor 3·H·W.
        θ* is a target: computed without gradient (the encoder learns from L_REC only, which keeps it a
        faithful encoder of the real image rather than one pulled towards the generated layout).
        """
        h_star = self.encoder(real)
        reconstruction = (decoder(h_star) - real).abs().mean()
        size = h_star.shape[-2:]
        if words.shape[2] > self.max_words:
            raise ConfigError(
                f"max_words={self.max_words} but the batch has captions of {words.shape[2]} words; "
                "raise max_words (the ALR residual is padded to max(ngf, max_words) channels)"
            )
        with torch.no_grad():
            theta_star = region_word_similarity(h_star.detach(), words.detach(), mask)
        residual = as_channel_map((theta_star - theta).abs(), size)
        easy, hard = split_residual(residual, gamma / size.numel())
        easy, hard = pad_channels(easy, self.channels), pad_channels(hard, self.channels)
        features = pad_channels(h_star.detach(), self.channels)
        alpha, beta = self.phi_alpha(easy * features), self.phi_beta(hard * features)
        return ALRTerms(
            alr_loss(easy, hard, alpha, beta), reconstruction, theta_star, h_star, easy, hard, alpha, beta
        )
