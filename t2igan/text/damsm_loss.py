"""The DAMSM matching loss (AttnGAN): words attend over image regions, and sentences match images,
both scored as classification over the batch in both directions (image -> caption, caption -> image).

Same computation as AttnGAN's `words_loss` / `sent_loss` / `func_attention`, vectorised over all
caption-image pairs; padded word positions are excluded as the official per-caption slicing does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from t2igan.nn.interfaces import TextFeatures

# AttnGAN code/cfg/DAMSM/bird.yml and coco.yml, TRAIN.SMOOTH
GAMMA1 = 4.0  # word -> region attention sharpness (paper Eq. 9)
GAMMA2 = 5.0  # importance of the best-matching word-context pair (Eq. 10)
GAMMA3 = 10.0  # smoothing of the matching posterior (Eq. 11)
COSINE_EPS = 1e-8  # AttnGAN code/miscc/losses.py cosine_similarity / sent_loss eps


@dataclass(frozen=True)
class DAMSMGammas:
    gamma1: float = GAMMA1
    gamma2: float = GAMMA2
    gamma3: float = GAMMA3


@dataclass
class DAMSMLoss:
    """The four terms of the official DAMSM loss; `total` is their sum, as pretrain_DAMSM.py adds them."""

    word_image_to_text: Tensor
    word_text_to_image: Tensor
    sentence_image_to_text: Tensor
    sentence_text_to_image: Tensor

    @property
    def total(self) -> Tensor:
        return (
            self.word_image_to_text
            + self.word_text_to_image
            + self.sentence_image_to_text
            + self.sentence_text_to_image
        )

    def as_floats(self) -> dict[str, float]:
        values = {
            "loss": self.total,
            "word_i2t": self.word_image_to_text,
            "word_t2i": self.word_text_to_image,
            "sent_i2t": self.sentence_image_to_text,
            "sent_t2i": self.sentence_text_to_image,
        }
        return {k: float(v.detach()) for k, v in values.items()}


def same_class_mask(class_ids: Sequence[int] | Tensor | None, device: torch.device) -> Tensor | None:
    """(B, B) True where two different batch entries share a class: those pairs are not negatives."""
    if class_ids is None:
        return None
    ids = torch.as_tensor(class_ids, device=device).reshape(-1)
    mask = ids[:, None] == ids[None, :]
    mask.fill_diagonal_(False)
    return mask


def word_similarity(
    regions: Tensor, words: Tensor, word_mask: Tensor | None, gamma1: float = GAMMA1, gamma2: float = GAMMA2
) -> tuple[Tensor, Tensor]:
    """R(caption, image) = log sum_words exp(gamma2 * cos(word, its attended region context)) for every
    (image, caption) pair: (B_i, B_t) scores, plus each caption's attention over its own image (B, T, H, W).

    regions (B_i, D, H, W); words (B_t, D, T); word_mask (B_t, T) True at padding.
    """
    images, dim = regions.shape[:2]
    context = regions.flatten(2)  # (B_i, D, L)
    captions, _, length = words.shape
    # one matmul for all pairs, laid out (B_i, L, B_t, T) so that the matmuls below need no copies
    scores = (context.transpose(1, 2).reshape(-1, dim) @ words.permute(1, 0, 2).reshape(dim, -1)).view(
        images, -1, captions, length
    )
    pad = None if word_mask is None else word_mask[None, None, :, :]
    # Eq. 8: normalise over the caption's words for each region, then Eq. 9: over regions (gamma1)
    attention = torch.softmax(scores if pad is None else scores.masked_fill(pad, float("-inf")), dim=-1)
    attention = torch.softmax(attention * gamma1, dim=1)
    # word . context = sum_l attention * score; |context|^2 = a^T (C^T C) a: no (B_i, B_t, D, T) tensor
    dot = (attention * scores).sum(dim=1)  # (B_i, B_t, T)
    gram = context.transpose(1, 2) @ context  # (B_i, L, L)
    flat = attention.reshape(images, attention.shape[1], -1)
    context_sq = (flat * (gram @ flat)).sum(dim=1).view(images, captions, length)
    norms = words.norm(dim=1)[None] * context_sq.clamp(min=0).sqrt()
    logits = gamma2 * dot / norms.clamp(min=COSINE_EPS)
    if word_mask is not None:
        logits = logits.masked_fill(word_mask[None], float("-inf"))
    similarity = torch.logsumexp(logits, dim=-1)  # (B_i, B_t); Eq. 10 without 1/gamma2, as the code
    own = min(images, captions)
    own_attention = torch.diagonal(attention[:own, :, :own], dim1=0, dim2=2)  # (L, T, B)
    return similarity, own_attention.permute(2, 1, 0).unflatten(-1, regions.shape[2:])


def _both_directions(scores: Tensor, class_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if class_mask is not None:
        scores = scores.masked_fill(class_mask, float("-inf"))
    labels = torch.arange(scores.shape[0], device=scores.device)
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.transpose(0, 1), labels)


def words_loss(
    regions: Tensor,
    words: Tensor,
    word_mask: Tensor | None,
    class_ids: Sequence[int] | Tensor | None = None,
    gammas: DAMSMGammas = DAMSMGammas(),
) -> tuple[Tensor, Tensor, Tensor]:
    """Word-level DAMSM loss for a batch of matching (image i, caption i) pairs.

    Returns (image -> caption loss, caption -> image loss, attention maps (B, T, H, W)).
    """
    similarity, attention = word_similarity(regions, words, word_mask, gammas.gamma1, gammas.gamma2)
    loss0, loss1 = _both_directions(similarity * gammas.gamma3, same_class_mask(class_ids, regions.device))
    return loss0, loss1, attention


def sentence_loss(
    image_codes: Tensor,
    sentences: Tensor,
    class_ids: Sequence[int] | Tensor | None = None,
    gamma3: float = GAMMA3,
) -> tuple[Tensor, Tensor]:
    """Sentence-level DAMSM loss: gamma3 * cosine(image code, sentence), cross-entropy both ways."""
    dot = image_codes @ sentences.transpose(0, 1)
    norms = image_codes.norm(dim=1, keepdim=True) * sentences.norm(dim=1)[None, :]
    scores = dot / norms.clamp(min=COSINE_EPS) * gamma3
    return _both_directions(scores, same_class_mask(class_ids, image_codes.device))


def damsm_loss(
    regions: Tensor,
    image_codes: Tensor,
    text: TextFeatures,
    class_ids: Sequence[int] | Tensor | None = None,
    gammas: DAMSMGammas = DAMSMGammas(),
) -> DAMSMLoss:
    """All four DAMSM terms for matching (image i, caption i) pairs; `class_ids` masks same-class negatives."""
    if text.words is None:
        raise ValueError("the DAMSM loss needs word features (TextFeatures.words)")
    w0, w1, _ = words_loss(regions, text.words, text.mask, class_ids, gammas)
    s0, s1 = sentence_loss(image_codes, text.sentence, class_ids, gammas.gamma3)
    return DAMSMLoss(w0, w1, s0, s1)
