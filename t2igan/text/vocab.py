"""The AttnGAN/DF-GAN word vocabulary and tokeniser that DAMSM text encoders index into.

A vocabulary travels with the weights it was trained with: JSON inside our checkpoints or beside
them, or read from an official `captions.pickle` / `captions_DAMSM.pickle`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2igan.atomic import write_text_atomic
from t2igan.errors import T2IGanError

END_TOKEN = "<end>"  # index 0: padding, never inside a caption (DF-GAN code/lib/datasets.py build_dictionary)
VOCAB_FORMAT = "t2igan-damsm-vocab"
_WORD = re.compile(r"\w+")


def tokenize_caption(caption: str) -> list[str]:
    """Split a caption the way the official preprocessing does (DF-GAN code/lib/datasets.py load_captions).

    NLTK's `RegexpTokenizer(r'\\w+')` on the lower-cased text after replacing the two-character
    U+FFFD sequence with a space; non-ASCII characters are then dropped from each token.
    """
    tokens = _WORD.findall(caption.replace("\ufffd\ufffd", " ").lower())
    ascii_tokens = (t.encode("ascii", "ignore").decode("ascii") for t in tokens)
    return [t for t in ascii_tokens if t]


@dataclass
class Vocabulary:
    """Index -> word list with '<end>' at index 0; words in first-seen order, as the official code builds it."""

    words: list[str]
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.words = list(self.words)
        if not self.words or self.words[0] != END_TOKEN:
            raise T2IGanError(f"vocabulary must start with {END_TOKEN!r} at index 0, got {self.words[:1]}")
        self._index = {}
        for ix, word in enumerate(self.words):
            if not isinstance(word, str) or not word:
                raise T2IGanError(f"vocabulary entry {ix} is {word!r}, expected a non-empty string")
            if word in self._index:
                raise T2IGanError(
                    f"vocabulary word {word!r} appears twice (indices {self._index[word]}, {ix})"
                )
            self._index[word] = ix

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def index(self, word: str) -> int | None:
        return self._index.get(word)

    def encode(self, caption: str) -> list[int]:
        """Word ids of a caption; unknown words are dropped, as the official code does (it has no UNK)."""
        return [self._index[w] for w in tokenize_caption(caption) if w in self._index]

    def unknown_words(self, caption: str) -> list[str]:
        """The words of a caption that `encode` drops, each once, in caption order."""
        return list(dict.fromkeys(w for w in tokenize_caption(caption) if w not in self._index))

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[int(i)] for i in ids if int(i) != 0]

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(self.words).encode("utf-8")).hexdigest()

    @classmethod
    def build(cls, captions: Iterable[str]) -> Vocabulary:
        """Every word of `captions` (threshold 0, as the official `build_dictionary`), first-seen order."""
        words = [END_TOKEN]
        seen = {END_TOKEN}
        for caption in captions:
            for word in tokenize_caption(caption):
                if word not in seen:
                    seen.add(word)
                    words.append(word)
        return cls(words)

    def to_dict(self) -> dict[str, Any]:
        return {"format": VOCAB_FORMAT, "version": 1, "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "vocabulary") -> Vocabulary:
        if not isinstance(data, Mapping) or data.get("format") != VOCAB_FORMAT:
            raise T2IGanError(
                f"{source}: not a t2igan vocabulary (expected a 'format': {VOCAB_FORMAT!r} entry)"
            )
        words = data.get("words")
        if not isinstance(words, list):
            raise T2IGanError(f"{source}: 'words' must be a list of strings")
        return cls(words)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON, atomically."""
        return write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary JSON we wrote, or an official captions pickle (by its .pickle/.pkl suffix)."""
        path = Path(path)
        if not path.is_file():
            raise T2IGanError(f"vocabulary {path}: no such file")
        if path.suffix in (".pickle", ".pkl"):
            return read_captions_pickle(path).vocab
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise T2IGanError(f"vocabulary {path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def from_official(
        cls, ixtoword: Mapping[Any, Any], wordtoix: Mapping[Any, Any], source: str
    ) -> Vocabulary:
        """The vocabulary of an official pickle's `ixtoword` / `wordtoix` (entries 2 and 3)."""
        words_by_index = {int(ix): _text(word) for ix, word in ixtoword.items()}
        if sorted(words_by_index) != list(range(len(words_by_index))):
            raise T2IGanError(f"{source}: ixtoword indices are not 0..{len(words_by_index) - 1}")
        vocab = cls([words_by_index[i] for i in range(len(words_by_index))])
        for word, ix in wordtoix.items():
            if vocab.index(_text(word)) != int(ix):
                raise T2IGanError(
                    f"{source}: wordtoix[{_text(word)!r}] = {ix} disagrees with ixtoword "
                    f"({vocab.index(_text(word))})"
                )
        if len(wordtoix) != len(vocab):
            raise T2IGanError(f"{source}: wordtoix has {len(wordtoix)} words, ixtoword {len(vocab)}")
        return vocab


def _text(value: Any) -> str:
    # Python 2 pickles may hold byte strings
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclass
class CaptionsPickle:
    """An official `[train_captions, test_captions, ixtoword, wordtoix]` pickle: word ids per caption."""

    train: list[list[int]]
    test: list[list[int]]
    vocab: Vocabulary


def parse_captions_pickle(obj: Any, source: str = "captions pickle") -> CaptionsPickle:
    """Check and convert the object an official captions pickle holds."""
    if not isinstance(obj, Sequence) or isinstance(obj, (str, bytes)) or len(obj) < 4:
        raise T2IGanError(
            f"{source}: expected a list [train_captions, test_captions, ixtoword, wordtoix], "
            f"got {type(obj).__name__}"
        )
    train, test, ixtoword, wordtoix = obj[:4]
    if not isinstance(ixtoword, Mapping) or not isinstance(wordtoix, Mapping):
        raise T2IGanError(f"{source}: entries 2 and 3 must be the ixtoword and wordtoix dicts")
    vocab = Vocabulary.from_official(ixtoword, wordtoix, source)
    splits = []
    for name, captions in (("train", train), ("test", test)):
        try:
            ids = [[int(i) for i in caption] for caption in captions]
        except (TypeError, ValueError) as exc:
            raise T2IGanError(f"{source}: {name} captions must be lists of word ids ({exc})") from exc
        bad = next((i for c in ids for i in c if not 0 < i < len(vocab)), None)
        if bad is not None:
            raise T2IGanError(f"{source}: {name} captions hold word id {bad}, outside 1..{len(vocab) - 1}")
        splits.append(ids)
    return CaptionsPickle(splits[0], splits[1], vocab)


def _safe_load(path: Path) -> Any:
    from t2igan.data.safe_pickle import safe_load

    return safe_load(path)


def read_captions_pickle(path: str | os.PathLike) -> CaptionsPickle:
    """Read an official captions pickle through the restricted unpickler (plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise T2IGanError(f"captions pickle {path}: no such file")
    return parse_captions_pickle(_safe_load(path), str(path))
