"""ALR-GAN's loss terms on cases small enough to compute by hand: θ and Q, the easy/hard split, the ALR
loss with its regulariser, layout masks, the Gram matrix, the masked perceptual and style terms, the
adversarial BCE terms and the KL term."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from t2igan.errors import ConfigError
from t2igan_plugins.alrgan.alr import (
    ALRModule,
    alr_loss,
    as_channel_map,
    pad_channels,
    region_word_similarity,
    split_residual,
    text_vision_matrix,
)
from t2igan_plugins.alrgan.lvr import (
    gram_matrix,
    layout_mask,
    masked_lvr,
    perceptual_refinement,
    small_extractor,
    style_refinement,
)
from t2igan_plugins.alrgan.model import bce, kl_loss, stage_d_loss, stage_g_loss


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_theta_is_a_softmax_over_regions_and_padding_words_are_zero():
    # one channel, two regions with features 0 and ln 3; the word vector is 1: scores (0, ln 3)
    regions = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    words = torch.tensor([[[1.0, 1.0]]])  # (B=1, C=1, T=2)
    mask = torch.tensor([[False, True]])  # the second word is padding
    theta = region_word_similarity(regions, words, mask)
    assert theta.shape == (1, 2, 2)
    assert torch.allclose(theta[0, :, 0], torch.tensor([0.25, 0.75]))
    assert torch.equal(theta[0, :, 1], torch.zeros(2))
    g = torch.Generator().manual_seed(0)
    theta = region_word_similarity(torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 7, generator=g))
    assert torch.allclose(theta.sum(dim=1), torch.ones(3, 7))  # each word's weights sum to one


def test_text_vision_matrix_weights_the_words_per_region():
    theta = torch.tensor([[[0.25], [0.75]]])  # (1, K=2, T=1)
    words = torch.tensor([[[2.0], [-4.0]]])  # (1, C=2, T=1)
    q = text_vision_matrix(theta, words, (1, 2))
    assert torch.allclose(q, torch.tensor([[[[0.5, 1.5]], [[-1.0, -3.0]]]]))


def test_residual_split_at_the_threshold_keeps_values():
    residual = torch.tensor([0.1, 0.5, 0.3, 0.9])
    easy, hard = split_residual(residual, 0.3)
    assert torch.equal(easy, torch.tensor([0.1, 0.0, 0.0, 0.0]))
    assert torch.equal(hard, torch.tensor([0.0, 0.5, 0.3, 0.9]))  # r = γ is hard (r ≥ γ)


def test_pad_channels_appends_zeros_and_refuses_to_truncate():
    x = torch.ones(1, 2, 1, 1)
    assert torch.equal(pad_channels(x, 3)[0, :, 0, 0], torch.tensor([1.0, 1.0, 0.0]))
    with pytest.raises(ConfigError):
        pad_channels(x, 1)


def test_alr_loss_by_hand():
    easy = torch.tensor([[0.3, 0.0], [0.0, 0.4]]).view(1, 1, 2, 2)
    hard = torch.tensor([[0.0, 2.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    alpha = torch.full((1, 1, 2, 2), 0.5)
    beta = torch.tensor([[1.0, 0.25], [0.5, 0.5]]).view(1, 1, 2, 2)
    # ‖α⊙easy‖ = 0.5·√(0.09+0.16) = 0.25; ‖β⊙hard‖ = 0.25·2 = 0.5; max α − min β = 0.25; N·D = 4
    expected = (0.25 + 0.5 + softplus(0.25)) / 4
    assert alr_loss(easy, hard, alpha, beta).item() == pytest.approx(expected, rel=1e-6)
    # a batch is the mean of its samples
    zero = torch.zeros_like(easy)
    both = alr_loss(
        torch.cat([easy, zero]), torch.cat([hard, zero]), alpha.repeat(2, 1, 1, 1), beta.repeat(2, 1, 1, 1)
    )
    assert both.item() == pytest.approx((expected + softplus(0.25) / 4) / 2, rel=1e-6)


def test_regulariser_pushes_beta_above_alpha():
    zero = torch.zeros(1, 1, 1, 2)
    alpha = torch.tensor([0.9, 0.2]).view(1, 1, 1, 2).requires_grad_(True)
    beta = torch.tensor([0.1, 0.6]).view(1, 1, 1, 2).requires_grad_(True)
    loss = alr_loss(zero, zero, alpha, beta)
    assert loss.item() == pytest.approx(softplus(0.9 - 0.1) / 2, rel=1e-6)
    loss.backward()
    sigmoid = 1 / (1 + math.exp(-0.8))
    # only the largest α and the smallest β receive gradient: down for α, up for β
    assert alpha.grad.flatten().tolist() == pytest.approx([sigmoid / 2, 0.0], rel=1e-5)
    assert beta.grad.flatten().tolist() == pytest.approx([-sigmoid / 2, 0.0], rel=1e-5)


def _real_layout(module: ALRModule, real, words, mask):
    h_star = module.encoder(real)
    return h_star, region_word_similarity(h_star, words, mask)


def test_alr_module_splits_the_residual_at_gamma_over_regions():
    torch.manual_seed(0)
    module = ALRModule(ngf=4, max_words=6, hidden=3).eval()
    real, words = torch.rand(2, 3, 4, 4) * 2 - 1, torch.randn(2, 4, 5)
    mask = torch.tensor([[False] * 5, [False, False, False, True, True]])
    theta = region_word_similarity(torch.randn(2, 4, 4, 4), words, mask)
    gamma = 1.5
    terms = module.terms(real, nn.Sequential(nn.Conv2d(4, 3, 1), nn.Tanh()), theta, words, mask, gamma)
    _, theta_star = _real_layout(module, real, words, mask)
    residual = as_channel_map((theta_star - theta).abs(), (4, 4))
    threshold = gamma / 16  # γ in units of the uniform weight 1/K, K = 16 regions
    assert terms.easy.shape == (2, 6, 4, 4)  # padded to max(ngf, max_words) = 6 channels
    assert torch.allclose(terms.easy[:, :5] + terms.hard[:, :5], residual)
    assert terms.easy[:, 5:].abs().sum() == 0 and terms.hard[:, 5:].abs().sum() == 0
    assert (terms.hard[terms.hard > 0] >= threshold).all() and (terms.easy < threshold).all()
    assert terms.hard.count_nonzero() > 0 and terms.easy.count_nonzero() > 0
    assert terms.hard[1, 3:5].abs().sum() == 0  # padded words have no residual
    assert terms.loss.item() == pytest.approx(
        alr_loss(terms.easy, terms.hard, terms.alpha, terms.beta).item(), rel=1e-6
    )
    with pytest.raises(ConfigError, match="max_words"):
        module.terms(real, nn.Conv2d(4, 3, 1), theta.repeat(1, 1, 2), words.repeat(1, 1, 2), None, gamma)


def test_phi_alpha_sees_the_easy_part_and_phi_beta_the_hard_part_of_r_times_h_star():
    torch.manual_seed(1)
    module = ALRModule(ngf=4, max_words=6, hidden=3).eval()
    seen = {}
    for name in ("phi_alpha", "phi_beta"):
        getattr(module, name).register_forward_hook(
            lambda m, args, out, name=name: seen.update({name: args[0]})
        )
    real, words = torch.rand(2, 3, 4, 4) * 2 - 1, torch.randn(2, 4, 5)
    theta = region_word_similarity(torch.randn(2, 4, 4, 4), words)
    terms = module.terms(real, nn.Sequential(nn.Conv2d(4, 3, 1), nn.Tanh()), theta, words, None, 1.0)
    h_star = torch.cat([terms.h_star, torch.zeros(2, 2, 4, 4)], dim=1)  # H* padded to 6 channels with R
    assert torch.equal(seen["phi_alpha"], terms.easy * h_star) and torch.equal(
        seen["phi_beta"], terms.hard * h_star
    )
    assert not torch.equal(terms.easy, terms.hard)  # both parts present: a swap would be seen


def test_reconstruction_is_l1_through_the_given_decoder():
    torch.manual_seed(0)
    module = ALRModule(ngf=4, max_words=4, hidden=3).eval()
    real, words = torch.rand(1, 3, 4, 4), torch.randn(1, 4, 2)
    decoder = nn.Conv2d(4, 3, 1)
    theta = region_word_similarity(torch.randn(1, 4, 4, 4), words)
    terms = module.terms(real, decoder, theta, words, None, 1.0)
    h_star, _ = _real_layout(module, real, words, None)
    assert terms.reconstruction.item() == pytest.approx(
        (decoder(h_star) - real).abs().mean().item(), rel=1e-6
    )


def test_layout_mask_thresholds_the_received_word_weight():
    # 4 regions (2×2), 2 words; received weight per region: 0.7, 0.1, 0.6, 0.6 (mean 0.5)
    theta = torch.tensor([[[0.5, 0.2], [0.1, 0.0], [0.2, 0.4], [0.2, 0.4]]])
    mask = layout_mask(theta, (4, 4))
    expected = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(mask[0, 0], expected)
    assert torch.equal(
        layout_mask(theta, (2, 2), threshold=1.3)[0, 0], torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    )


def test_gram_matrix_by_hand():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # D = 2 channels, N = 2 positions
    assert torch.equal(gram_matrix(x)[0], torch.tensor([[5.0, 11.0], [11.0, 25.0]]))


def test_masked_perceptual_term_by_hand():
    features, real = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2), torch.tensor([3.0, 5.0]).view(1, 1, 1, 2)
    mask, real_mask = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    # M⊙F − M*⊙F* = (1 − 3, 0 − 5): norm √29, N·D = 2
    value = perceptual_refinement(features, real, mask, real_mask)
    assert value.item() == pytest.approx(math.sqrt(29) / 2, rel=1e-6)


def test_masked_style_term_by_hand():
    features, real = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    mask, real_mask = torch.ones(1, 1, 1, 2), torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    # G(F) = 1 + 4 = 5, G(M*⊙F*) = 1: |5 − 1| / (N·D = 2)
    assert style_refinement(features, real, mask, real_mask).item() == pytest.approx(2.0, rel=1e-6)


def test_masked_lvr_on_stage_features_by_hand_and_the_real_side_is_a_target():
    """The paper's LVR on (H, H*): 2x2 grid, one channel, every region in both layouts (uniform θ)."""
    features = torch.ones(1, 1, 2, 2, requires_grad=True)
    real = torch.zeros(1, 1, 2, 2, requires_grad=True)
    theta = torch.full((1, 4, 3), 0.25)  # every region receives the mean word weight: mask all ones
    terms = masked_lvr(features, real, theta, theta, threshold=1.0)
    # L_PR = ‖1 − 0‖_F / (N·D = 4) = 2/4; L_SR = |G(1) − G(0)| / 4 = |4 − 0| / 4
    assert terms.perceptual.item() == pytest.approx(0.5) and terms.style.item() == pytest.approx(1.0)
    assert terms.loss.item() == pytest.approx(1.5)
    terms.loss.backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    assert real.grad is None  # H* is a target: the encoder learns from L_REC only


def test_bce_matches_sigmoid_then_bce_loss():
    logits = torch.tensor([-2.0, 0.3, 4.0])
    for real in (True, False):
        target = torch.full_like(logits, 1.0 if real else 0.0)
        assert bce(logits, real).item() == pytest.approx(nn.BCELoss()(torch.sigmoid(logits), target).item())


class _StubStage(nn.Module):
    """features = images; unconditional logit = x[:, 0]; conditional = x[:, 0] + s[:, 0]."""

    def forward(self, x):
        return x

    def uncond(self, f):
        return f[:, 0]

    def cond(self, f, s):
        return f[:, 0] + s[:, 0]


def _nll_real(x: float) -> float:
    return softplus(-x)  # −log σ(x)


def _nll_fake(x: float) -> float:
    return softplus(x)  # −log(1 − σ(x))


def test_stage_d_and_g_losses_by_hand():
    real, fake, sentence = (
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([[-1.0], [0.5]]),
        torch.tensor([[0.5], [-1.0]]),
    )
    d = stage_d_loss(_StubStage(), real, fake, sentence, mismatch=False)

    def mean(f, xs):
        return sum(f(x) for x in xs) / len(xs)

    expected = 0.5 * (
        mean(_nll_real, [1.0, 2.0])
        + mean(_nll_fake, [-1.0, 0.5])
        + mean(_nll_real, [1.5, 1.0])
        + mean(_nll_fake, [-0.5, -0.5])
    )
    assert d.item() == pytest.approx(expected, rel=1e-6)
    # AttnGAN's form adds the wrong pair (real image 0, sentence 1): logit 1 − 1 = 0
    d_wrong = stage_d_loss(_StubStage(), real, fake, sentence, mismatch=True)
    attn = (mean(_nll_real, [1.0, 2.0]) + mean(_nll_real, [1.5, 1.0])) / 2 + (
        mean(_nll_fake, [-1.0, 0.5]) + mean(_nll_fake, [-0.5, -0.5]) + _nll_fake(0.0)
    ) / 3
    assert d_wrong.item() == pytest.approx(attn, rel=1e-6)
    g = stage_g_loss(_StubStage(), fake, sentence)
    assert g.item() == pytest.approx(
        0.5 * (mean(_nll_real, [-1.0, 0.5]) + mean(_nll_real, [-0.5, -0.5])), rel=1e-6
    )


def test_kl_term_by_hand():
    assert kl_loss(torch.zeros(2, 3), torch.zeros(2, 3)).item() == 0.0
    # μ = 1, log σ² = 0: −½(1 + 0 − 1 − 1) = ½ per element
    assert kl_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == pytest.approx(0.5)
    # μ = 0, log σ² = ln 2: −½(1 + ln 2 − 2)
    logvar = torch.full((1, 1), math.log(2.0))
    assert kl_loss(torch.zeros(1, 1), logvar).item() == pytest.approx(-0.5 * (math.log(2.0) - 1), rel=1e-6)


def test_small_extractor_is_frozen_deterministic_and_passes_gradients():
    first, second = small_extractor(), small_extractor()
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b) and not a.requires_grad
    first.train()
    assert not first.training
    images = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = first(images)
    assert out.shape == (2, 64, 8, 8)
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
