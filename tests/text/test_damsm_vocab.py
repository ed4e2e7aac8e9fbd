"""The official tokeniser and vocabulary: first-seen order, '<end>' at 0, JSON and captions-pickle I/O."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from t2igan.errors import T2IGanError
from t2igan.text.vocab import (
    Vocabulary,
    parse_captions_pickle,
    read_captions_pickle,
    tokenize_caption,
)


def test_tokeniser_follows_the_official_rules():
    assert tokenize_caption("A Red-square, at the TOP left!") == [
        "a",
        "red",
        "square",
        "at",
        "the",
        "top",
        "left",
    ]
    # \w+ keeps digits and underscores; non-ASCII letters are dropped from inside tokens
    assert tokenize_caption("big_bird 2 café naïve") == ["big_bird", "2", "caf", "nave"]
    assert tokenize_caption("wing\ufffd\ufffdtip") == ["wing", "tip"]
    assert tokenize_caption("日本 ...") == []


def test_vocabulary_is_first_seen_order_with_end_at_zero():
    vocab = Vocabulary.build(["The red bird", "a bird, red and small", "THE end"])
    assert vocab.words == ["<end>", "the", "red", "bird", "a", "and", "small", "end"]
    assert vocab.index("<end>") == 0 and len(vocab) == 8
    # unknown words are dropped, as the official code has no UNK token
    assert vocab.encode("the blue bird") == [1, 3]
    assert vocab.decode([1, 3, 0, 0]) == ["the", "bird"]


def test_vocabulary_rejects_malformed_word_lists():
    with pytest.raises(T2IGanError, match="<end>"):
        Vocabulary(["bird"])
    with pytest.raises(T2IGanError, match="twice"):
        Vocabulary(["<end>", "bird", "bird"])


def test_vocabulary_json_round_trip(tmp_path):
    vocab = Vocabulary.build(["a small yellow bird", "ein Vogel"])
    path = vocab.save(tmp_path / "sub" / "vocab.json")
    loaded = Vocabulary.load(path)
    assert loaded.words == vocab.words and loaded.sha256 == vocab.sha256
    assert sorted(p.name for p in path.parent.iterdir()) == ["vocab.json"]  # no temp file left behind
    path.write_text(json.dumps({"words": ["<end>"]}), encoding="utf-8")
    with pytest.raises(T2IGanError, match="vocab.json"):
        Vocabulary.load(path)


def _official_pickle_object():
    ixtoword = {0: "<end>", 1: "this", 2: "bird", 3: "is", 4: "red"}
    wordtoix = {w: i for i, w in ixtoword.items()}
    return [[[1, 2, 3, 4]], [[2, 3, 4]], ixtoword, wordtoix]


def test_official_captions_pickle_object_parses():
    parsed = parse_captions_pickle(_official_pickle_object())
    assert parsed.vocab.words == ["<end>", "this", "bird", "is", "red"]
    assert parsed.train == [[1, 2, 3, 4]] and parsed.test == [[2, 3, 4]]


def test_inconsistent_captions_pickle_is_refused():
    obj = _official_pickle_object()
    obj[3]["red"] = 2
    with pytest.raises(T2IGanError, match="wordtoix"):
        parse_captions_pickle(obj, "captions.pickle")
    obj = _official_pickle_object()
    obj[0] = [[1, 9]]
    with pytest.raises(T2IGanError, match="word id 9"):
        parse_captions_pickle(obj, "captions.pickle")
    with pytest.raises(T2IGanError, match="expected a list"):
        parse_captions_pickle({"a": 1}, "captions.pickle")


def test_captions_pickle_file_goes_through_the_restricted_loader(tmp_path):
    path = tmp_path / "captions_DAMSM.pickle"
    path.write_bytes(pickle.dumps(_official_pickle_object(), protocol=2))  # as DF-GAN writes it
    assert Vocabulary.load(path).words == ["<end>", "this", "bird", "is", "red"]
    assert read_captions_pickle(path).test == [[2, 3, 4]]
    # a pickle that would run code is refused by t2igan.data.safe_pickle, naming the file
    evil = tmp_path / "captions.pickle"
    evil.write_bytes(pickle.dumps([[], [], {0: "<end>"}, {"<end>": 0}, Path("x")], protocol=2))
    with pytest.raises(T2IGanError, match="captions.pickle"):
        Vocabulary.load(evil)
    with pytest.raises(T2IGanError, match="no such file"):
        read_captions_pickle(tmp_path / "missing.pickle")


def test_package_exports_resolve_lazily():
    import t2igan.text as text_package

    assert text_package.Vocabulary is Vocabulary
    for name in text_package.__all__:
        assert getattr(text_package, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        text_package.no_such_name  # noqa: B018
