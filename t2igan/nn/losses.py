"""Adversarial losses the one-stage text-to-image GANs share: hinge with a mismatched-text term and the
matching-aware gradient penalty (MA-GP), written once against `Discriminator.features`/`logits`.

The discriminator input may be pixels (DF-GAN, RAT-GAN) or frozen CLIP features (GALIP, RATLIP); the
mismatch pairs are built in one of the official ways (`MISMATCH_MODES`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from t2igan.errors import ConfigError
from t2igan.nn.interfaces import Discriminator, LossDict

MismatchMode = Literal["roll_features", "roll_sentences", "shift"]
MISMATCH_MODES: tuple[str, ...] = ("roll_features", "roll_sentences", "shift")

MAGP_WEIGHT = 2.0  # DF-GAN code/lib/modules.py MA_GP: 2.0 * mean(||grad||^6)
MAGP_POWER = 6.0  # same line; RAT-GAN code/main.py and GALIP code/lib/modules.py use the same k=2, p=6

LogitsFn = Callable[[Tensor, Tensor], Tensor]


def hinge_real(logits: Tensor) -> Tensor:
    """mean(relu(1 - logits)): a real, matching pair should score above 1."""
    return F.relu(1.0 - logits).mean()


def hinge_fake(logits: Tensor) -> Tensor:
    """mean(relu(1 + logits)): a fake or mismatched pair should score below -1."""
    return F.relu(1.0 + logits).mean()


def generator_hinge_loss(logits: Tensor) -> Tensor:
    """-mean(logits) on generated images with their own sentences (DF-GAN, RAT-GAN, GALIP)."""
    return -logits.mean()


def mismatched_pairs(features: Tensor, sentence: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Real features paired with sentences of other samples.

    - `roll_features` (DF-GAN `train`): features rolled by one, `cat(f[1:], f[:1])`, with the sentences.
    - `roll_sentences` (GALIP `train`): sentences rolled by one (detached), with the features.
    - `shift` (RAT-GAN `main.py`): the B-1 pairs `(f[:B-1], s[1:])`.
    """
    if mode == "roll_features":
        return torch.cat([features[1:], features[:1]], dim=0), sentence
    if mode == "roll_sentences":
        return features, torch.cat([sentence[1:], sentence[:1]], dim=0).detach()
    if mode == "shift":
        return features[:-1], sentence[1:]
    raise ConfigError(f"mismatch={mode!r}: expected one of {', '.join(MISMATCH_MODES)}")


def ma_gp(
    logits: Tensor, inputs: Sequence[Tensor], weight: float = MAGP_WEIGHT, power: float = MAGP_POWER
) -> Tensor:
    """Matching-aware gradient penalty: `weight · mean_i ||[∇_x logits_i, ∇_s logits_i]||^power`.

    `inputs` (each with `requires_grad`, e.g. real images or CLIP features and their sentences) are
    flattened per sample and their gradients concatenated before the L2 norm, as the official code
    does. The graph is kept (`create_graph`) so the penalty trains the discriminator.
    """
    grads = torch.autograd.grad(
        outputs=logits,
        inputs=list(inputs),
        grad_outputs=torch.ones_like(logits),
        create_graph=True,
    )
    flat = torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)
    # ||g||^p computed as (||g||^2)^(p/2): the same value, without sqrt's infinite slope at g = 0.
    return weight * flat.pow(2).sum(dim=1).pow(power / 2).mean()


def discriminator_hinge_loss(
    logits_fn: LogitsFn,
    real_features: Tensor,
    fake_features: Tensor,
    sentence: Tensor,
    mismatch: str = "roll_features",
    gp_inputs: Sequence[Tensor] | None = None,
    gp_weight: float = MAGP_WEIGHT,
    gp_power: float = MAGP_POWER,
) -> LossDict:
    """`hinge_real + (hinge_fake + hinge_mismatch) / 2 [+ MA-GP]`, the D loss of DF-GAN/GALIP/RAT-GAN.

    `logits_fn(features, sentence)` is the discriminator's conditional head. With `gp_inputs` (the
    tensors `real_features` was computed from, plus `sentence`, all requiring grad) the MA-GP is taken
    on the real logits in the same step, as DF-GAN and GALIP do; RAT-GAN steps it separately
    (`ma_gp_loss`). `fake_features` should come from detached fakes.
    """
    real_logits = logits_fn(real_features, sentence)
    mis_features, mis_sentence = mismatched_pairs(real_features, sentence, mismatch)
    real = hinge_real(real_logits)
    fake = hinge_fake(logits_fn(fake_features, sentence))
    mis = hinge_fake(logits_fn(mis_features, mis_sentence))
    losses = {"real": real, "fake": fake, "mismatch": mis}
    loss = real + (fake + mis) / 2.0
    if gp_inputs is not None:
        losses["magp"] = ma_gp(real_logits, gp_inputs, gp_weight, gp_power)
        loss = loss + losses["magp"]
    return {"loss": loss, **losses}


def ma_gp_loss(
    discriminator: Discriminator,
    inputs: Tensor,
    sentence: Tensor,
    weight: float = MAGP_WEIGHT,
    power: float = MAGP_POWER,
) -> Tensor:
    """MA-GP on a fresh discriminator pass over real inputs (pixels or CLIP features) and sentences.

    Both are detached and made leaves first, as RAT-GAN's separate penalty step does
    (`imgs.data.requires_grad_()`, `sent_emb.data.requires_grad_()`).
    """
    inputs = inputs.detach().requires_grad_(True)
    sentence = sentence.detach().requires_grad_(True)
    logits = discriminator.logits(discriminator.features(inputs), sentence)
    return ma_gp(logits, (inputs, sentence), weight, power)
