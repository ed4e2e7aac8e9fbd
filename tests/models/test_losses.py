"""The shared adversarial losses: hinge terms, mismatched pairs, MA-GP against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from t2igan.errors import ConfigError
from t2igan.nn import Discriminator
from t2igan.nn.losses import (
    discriminator_hinge_loss,
    generator_hinge_loss,
    hinge_fake,
    hinge_real,
    ma_gp,
    ma_gp_loss,
    mismatched_pairs,
)


def test_hinge_terms_match_their_definitions():
    logits = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0])
    # relu(1 - x): 3, 1.5, 1, 0.5, 0 -> mean 1.2 ; relu(1 + x): 0, 0.5, 1, 1.5, 4 -> mean 1.4
    assert hinge_real(logits).item() == pytest.approx(1.2)
    assert hinge_fake(logits).item() == pytest.approx(1.4)
    assert generator_hinge_loss(logits).item() == pytest.approx(-0.2)


def test_mismatched_pairs_follow_each_official_recipe():
    features = torch.arange(4.0).view(4, 1)
    sentence = torch.arange(4.0).view(4, 1) * 10
    f, s = mismatched_pairs(features, sentence, "roll_features")
    assert f.flatten().tolist() == [1, 2, 3, 0] and s.flatten().tolist() == [0, 10, 20, 30]
    f, s = mismatched_pairs(features, sentence, "roll_sentences")
    assert f.flatten().tolist() == [0, 1, 2, 3] and s.flatten().tolist() == [10, 20, 30, 0]
    f, s = mismatched_pairs(features, sentence, "shift")
    assert f.flatten().tolist() == [0, 1, 2] and s.flatten().tolist() == [10, 20, 30]
    with pytest.raises(ConfigError, match="roll_features"):
        mismatched_pairs(features, sentence, "roll")


def test_ma_gp_equals_a_hand_computation():
    # logits_i = w * sum(x_i^2) + v . s_i  =>  grad_x = 2 w x_i, grad_s = v
    # ||g_i||^2 = 4 w^2 |x_i|^2 + |v|^2 ; MA-GP = 2 * mean(||g_i||^6)
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    s = torch.randn(3, 5, requires_grad=True)
    w = torch.tensor(0.3, requires_grad=True)
    v = torch.randn(5)
    logits = w * x.pow(2).flatten(1).sum(1) + s @ v
    penalty = ma_gp(logits, (x, s), weight=2.0, power=6.0)

    sq_norm = 4 * w.detach() ** 2 * x.detach().pow(2).flatten(1).sum(1) + v.pow(2).sum()
    expected = 2.0 * sq_norm.pow(3).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)

    # the penalty trains D: d/dw = 2 * mean(3 ||g||^4 * 8 w |x|^2)
    (grad_w,) = torch.autograd.grad(penalty, w)
    expected_grad = 2.0 * (3 * sq_norm.pow(2) * 8 * w.detach() * x.detach().pow(2).flatten(1).sum(1)).mean()
    assert grad_w.item() == pytest.approx(expected_grad.item(), rel=1e-4)


def test_ma_gp_matches_the_sqrt_formulation_of_the_official_code():
    torch.manual_seed(1)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    s = torch.randn(4, 6, requires_grad=True)
    conv = nn.Conv2d(3, 2, 3)
    logits = torch.tanh(conv(x)).flatten(1).sum(1) * (s.sum(1).sigmoid())
    penalty = ma_gp(logits, (x, s), weight=2.0, power=6.0)
    gx, gs = torch.autograd.grad(logits.sum(), (x, s), retain_graph=True)
    norms = torch.sqrt(torch.cat([gx.flatten(1), gs.flatten(1)], dim=1).pow(2).sum(1))
    assert penalty.item() == pytest.approx((2.0 * norms.pow(6).mean()).item(), rel=1e-5)


class _Toy(Discriminator):
    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 + 5, 1)

    def features(self, images):
        return torch.tanh(self.body(images)).mean(dim=(2, 3))

    def logits(self, features, sentence):
        return self.head(torch.cat([features, sentence], dim=1)).flatten()


def test_discriminator_hinge_loss_composes_the_terms():
    torch.manual_seed(2)
    d = _Toy()
    images = torch.randn(4, 3, 8, 8, requires_grad=True)
    fakes = torch.randn(4, 3, 8, 8)
    sentence = torch.randn(4, 5, requires_grad=True)
    real_f, fake_f = d.features(images), d.features(fakes)
    losses = discriminator_hinge_loss(d.logits, real_f, fake_f, sentence, "roll_features", (images, sentence))
    real = torch.relu(1 - d.logits(real_f, sentence)).mean()
    fake = torch.relu(1 + d.logits(fake_f, sentence)).mean()
    mis = torch.relu(1 + d.logits(real_f.roll(-1, 0), sentence)).mean()
    gp = ma_gp(d.logits(real_f, sentence), (images, sentence))
    assert losses["loss"].item() == pytest.approx((real + (fake + mis) / 2 + gp).item(), rel=1e-5)
    assert set(losses) == {"loss", "real", "fake", "mismatch", "magp"}
    # rolling features or rolling sentences forms the same set of pairs: the same mean
    rolled = discriminator_hinge_loss(d.logits, real_f, fake_f, sentence, "roll_sentences")
    assert rolled["mismatch"].item() == pytest.approx(losses["mismatch"].item(), rel=1e-6)
    assert "magp" not in rolled


def test_ma_gp_loss_uses_detached_leaf_copies():
    torch.manual_seed(3)
    d = _Toy()
    images, sentence = torch.randn(2, 3, 8, 8), torch.randn(2, 5)
    penalty = ma_gp_loss(d, images, sentence)
    x, s = images.clone().requires_grad_(), sentence.clone().requires_grad_()
    assert penalty.item() == pytest.approx(ma_gp(d(x, s), (x, s)).item(), rel=1e-6)
    assert not images.requires_grad and not sentence.requires_grad
    penalty.backward()
    assert d.body.weight.grad is not None and d.body.weight.grad.abs().sum() > 0
