"""Text embeddings of a split are computed once per (encoder, split) and rebuilt when stale or cut."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from t2igan.nn import TextEncoder, TextFeatures
from t2igan.text.embedding_cache import load_or_build


class CharEncoder(TextEncoder):
    """Sentence = letter counts; words = one-hot first letters; counts calls so reuse is visible."""

    sentence_dim, word_dim, max_words = 26, 26, 6

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.calls = 0

    def tokenize(self, captions):
        words = [c.split()[: self.max_words] for c in captions]
        longest = max(len(w) for w in words)
        ids = torch.zeros(len(captions), longest, dtype=torch.long)
        for i, ws in enumerate(words):
            for j, w in enumerate(ws):
                ids[i, j] = ord(w[0]) - 96
        counts = torch.tensor(
            [[c.count(chr(97 + k)) for k in range(26)] for c in captions], dtype=torch.float
        )
        return {"ids": ids, "counts": counts}

    def encode(self, tokens):
        self.calls += 1
        ids = tokens["ids"]
        words = torch.nn.functional.one_hot(ids.clamp(min=1) - 1, 26).float().permute(0, 2, 1)
        words = words * (ids != 0).unsqueeze(1)  # padding positions are zero
        return TextFeatures(tokens["counts"] + self.anchor, words, ids == 0)


def split(captions_per_image=2, sha="1" * 64, first="a red circle"):
    records = [
        SimpleNamespace(key="k0", captions=(first, "big blue box")),
        SimpleNamespace(key="k1", captions=("tiny star", "a green small triangle here")),
    ]
    return SimpleNamespace(
        dataset="toy", name="test", sha256=sha, captions_per_image=captions_per_image, records=records
    )


def test_built_once_and_reused(tmp_path):
    encoder = CharEncoder()
    table = load_or_build(encoder, "char-1", split(), tmp_path, with_words=True, batch_size=3, progress=False)
    assert encoder.calls == 2  # 4 captions in batches of 3
    assert table.sentence.shape == (4, 26) and table.words.shape == (4, 26, 6) and table.mask.shape == (4, 6)
    features = table.features(torch.tensor([1, 0]), torch.tensor([1, 0]))
    expected = CharEncoder().encode_captions(["a green small triangle here", "a red circle"])
    assert torch.equal(features.sentence, expected.sentence)
    assert torch.equal(features.words[:, :, :5], expected.words)
    assert bool(features.mask[0, 5]) and not bool(features.mask[0, 4])  # padded to max_words
    again = load_or_build(encoder, "char-1", split(), tmp_path, with_words=True, progress=False)
    assert encoder.calls == 2
    np.testing.assert_array_equal(again.sentence, table.sentence)


def test_new_split_hash_or_encoder_key_gets_its_own_table(tmp_path):
    encoder = CharEncoder()
    load_or_build(encoder, "char-1", split(), tmp_path, progress=False)
    changed = load_or_build(encoder, "char-1", split(sha="2" * 64, first="zzz"), tmp_path, progress=False)
    assert changed.sentence[0, 25] == 3
    load_or_build(encoder, "char-2", split(), tmp_path, progress=False)
    assert encoder.calls == 3


def test_truncated_table_is_rebuilt(tmp_path):
    encoder = CharEncoder()
    table = load_or_build(encoder, "char-1", split(), tmp_path, progress=False)
    path = table.folder / "sentence.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rebuilt = load_or_build(encoder, "char-1", split(), tmp_path, progress=False)
    assert encoder.calls == 2
    assert rebuilt.sentence.shape == (4, 26)


def test_builtin_text_encoders_are_registered_and_build_offline_errors_name_the_file(monkeypatch, tmp_path):
    from t2igan.errors import WeightsNotFoundError
    from t2igan.registry import get_registry

    registry = get_registry()
    assert registry.plugins["text"].status == "ok"
    assert {"damsm", "clip"} <= set(registry.text_encoders)
    monkeypatch.setenv("T2IGAN_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="text_encoder"):
        registry.text_encoder("damsm").build({"tag": "cub"}, None)
