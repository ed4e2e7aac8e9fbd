"""The DAMSM loss: equal to a literal per-caption transcription of AttnGAN's words_loss/sent_loss,
hand-checkable on orthogonal codes, and lower for matching than for shuffled pairs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from t2igan.nn.interfaces import TextFeatures
from t2igan.text.damsm_loss import DAMSMGammas, damsm_loss, sentence_loss, words_loss


def reference_words_loss(regions, words, lengths, class_ids, g1, g2, g3):
    """AttnGAN code/miscc/losses.py words_loss + GlobalAttention.func_attention, one caption at a time."""
    batch = regions.shape[0]
    context = regions.view(batch, regions.shape[1], -1)
    columns = []
    for i in range(batch):
        word = words[i, :, : lengths[i]].unsqueeze(0).repeat(batch, 1, 1)  # batch x D x n_i
        attn = torch.bmm(context.transpose(1, 2), word)  # batch x L x n_i
        attn = torch.softmax(attn.reshape(-1, lengths[i]), dim=1).view(batch, -1, lengths[i])  # over words
        attn = attn.transpose(1, 2).reshape(-1, context.shape[2]) * g1
        attn = torch.softmax(attn, dim=1).view(batch, lengths[i], -1)  # over regions
        weighted = torch.bmm(context, attn.transpose(1, 2))  # batch x D x n_i
        w, c = (
            word.transpose(1, 2).reshape(-1, word.shape[1]),
            weighted.transpose(1, 2).reshape(-1, word.shape[1]),
        )
        cos = (w * c).sum(1) / (w.norm(dim=1) * c.norm(dim=1)).clamp(min=1e-8)
        columns.append(torch.log(torch.exp(cos.view(batch, lengths[i]) * g2).sum(1, keepdim=True)))
    similarities = torch.cat(columns, 1) * g3
    if class_ids is not None:
        same = torch.tensor(
            [[a == b and r != c for c, b in enumerate(class_ids)] for r, a in enumerate(class_ids)]
        )
        similarities = similarities.masked_fill(same, -math.inf)
    labels = torch.arange(batch)
    return F.cross_entropy(similarities, labels), F.cross_entropy(similarities.t(), labels)


def test_words_loss_equals_the_official_per_caption_computation():
    torch.manual_seed(0)
    regions, words = torch.randn(5, 16, 3, 3), torch.randn(5, 16, 6)
    lengths = [6, 2, 4, 1, 5]
    mask = torch.arange(6)[None, :] >= torch.tensor(lengths)[:, None]
    words = words.masked_fill(mask[:, None, :], 0.0)
    for class_ids in (None, [0, 1, 0, 2, 1]):
        loss0, loss1, attention = words_loss(regions, words, mask, class_ids)
        ref0, ref1 = reference_words_loss(regions, words, lengths, class_ids, 4.0, 5.0, 10.0)
        torch.testing.assert_close(loss0, ref0, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loss1, ref1, rtol=1e-5, atol=1e-5)
    assert attention.shape == (5, 6, 3, 3)
    valid = attention[~mask]  # each real word's attention is a distribution over the 9 regions
    torch.testing.assert_close(valid.sum(dim=(1, 2)), torch.ones(len(valid)))


def test_sentence_loss_by_hand():
    codes = torch.eye(3, 8)  # orthonormal: cosine 1 on the diagonal, 0 elsewhere
    loss0, loss1 = sentence_loss(codes, codes * 2.0, gamma3=1.0)
    expected = math.log(1 + 2 * math.exp(-1.0))  # -log softmax(1, 0, 0)[0]
    assert math.isclose(float(loss0), expected, rel_tol=1e-6) and math.isclose(
        float(loss1), expected, rel_tol=1e-6
    )
    default0, _ = sentence_loss(codes, codes)  # gamma3 = 10 scales the cosines
    assert math.isclose(float(default0), math.log(1 + 2 * math.exp(-10.0)), abs_tol=1e-6)
    # images 0 and 1 share a class: each stops being the other's negative
    masked0, _ = sentence_loss(codes, codes, class_ids=[7, 7, 3], gamma3=1.0)
    by_hand = (2 * math.log(1 + math.exp(-1.0)) + math.log(1 + 2 * math.exp(-1.0))) / 3
    assert math.isclose(float(masked0), by_hand, rel_tol=1e-6)


def test_matching_pairs_score_lower_than_shuffled_pairs():
    torch.manual_seed(1)
    regions = torch.randn(6, 32, 4, 4)
    codes = regions.mean(dim=(2, 3))
    # each caption's words are copies of three of its image's regions
    words = regions.flatten(2)[:, :, [0, 5, 10]] + 0.05 * torch.randn(6, 32, 3)
    mask = torch.zeros(6, 3, dtype=torch.bool)
    aligned = damsm_loss(regions, codes, TextFeatures(codes.clone(), words, mask))
    shuffled_order = torch.tensor([1, 2, 3, 4, 5, 0])
    shuffled = damsm_loss(
        regions, codes, TextFeatures(codes[shuffled_order], words[shuffled_order], mask), gammas=DAMSMGammas()
    )
    for name in (
        "word_image_to_text",
        "word_text_to_image",
        "sentence_image_to_text",
        "sentence_text_to_image",
    ):
        assert getattr(aligned, name) < getattr(shuffled, name) - 1.0, name
    assert float(aligned.total) < 0.1 * float(shuffled.total)


def test_loss_gives_finite_gradients_through_padding():
    torch.manual_seed(2)
    regions = torch.randn(4, 16, 2, 2, requires_grad=True)
    codes = torch.randn(4, 16, requires_grad=True)
    words = torch.randn(4, 16, 5, requires_grad=True)
    mask = torch.tensor(
        [[False] * 5, [False, False, True, True, True], [False] * 4 + [True], [False] + [True] * 4]
    )
    sentence = torch.randn(4, 16, requires_grad=True)
    loss = damsm_loss(regions, codes, TextFeatures(sentence, words, mask), class_ids=[0, 0, 1, 2])
    loss.total.backward()
    for tensor in (regions, codes, words, sentence):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    assert torch.all(words.grad[1, :, 2:] == 0)  # padded word positions do not take part
    assert set(loss.as_floats()) == {"loss", "word_i2t", "word_t2i", "sent_i2t", "sent_t2i"}
