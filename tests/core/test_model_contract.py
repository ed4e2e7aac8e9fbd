"""What `GANModel` and `TextEncoder` declare: the fakes shared between the D and G steps, and the
attributes core reads, with their defaults."""

from __future__ import annotations

import pytest
import torch

from t2igan.errors import T2IGanError
from t2igan.nn.interfaces import Batch, GANModel, TextEncoder, TextFeatures


class Minimal(GANModel):
    def d_step(self, batch):
        return {"loss": torch.zeros(())}

    def g_step(self, batch):
        return {"loss": torch.zeros(())}


def batch() -> Batch:
    return Batch(torch.zeros(2, 3, 8, 8), TextFeatures(torch.zeros(2, 4)), ["a", "b"])


def test_kept_fakes_are_taken_once_and_only_for_the_same_batch():
    model, first, second = Minimal(), batch(), batch()
    model.keep_fakes(first, "fakes of the first batch")
    assert model.take_fakes(second) is None  # another batch: the G step generates its own
    model.keep_fakes(first, "fakes of the first batch")
    assert model.take_fakes(first) == "fakes of the first batch"
    assert model.take_fakes(first) is None  # once
    model.keep_fakes(first, "old")
    model.keep_fakes(first, None)  # a D step without a graph keeps nothing, and clears what was kept
    assert model.take_fakes(first) is None


def test_the_attributes_core_reads_have_declared_defaults():
    model = Minimal()
    assert (model.uses_words, model.eval_noise, model.channels_last, model.official_clip_copy) == (
        False,
        None,
        True,
        None,
    )
    with pytest.raises(T2IGanError, match="holds no CLIP"):
        model.verify_official_clip_copy({}, "release.pth")


class MinimalText(TextEncoder):
    sentence_dim = word_dim = 4

    def tokenize(self, captions):
        return {"n": torch.tensor([len(captions)])}

    def encode(self, tokens):
        return TextFeatures(torch.zeros(int(tokens["n"]), 4))


def test_what_core_reads_from_a_text_encoder_has_declared_defaults():
    encoder = MinimalText()
    assert (encoder.stand_in, encoder.weights_note, encoder.describe()) == (False, "", {})
    encoder.stand_in, encoder.weights_note = True, "random weights"  # an encoder states its own
    assert (encoder.stand_in, encoder.weights_note) == (True, "random weights")
