"""DAMSM encoders (AttnGAN's RNN_ENCODER and CNN_ENCODER): the bi-LSTM text encoder DF-GAN and RAT-GAN
condition on, its Inception-v3 image partner used by R-precision, and a small image variant for `shapes`.

Parameter names and shapes match the official modules so that released `text_encoder*.pth` /
`image_encoder*.pth` state dicts load strictly (`load_damsm`); encoders the project trains are saved
with their vocabulary, config and retrieval accuracy in one checkpoint (`save_damsm_checkpoint`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from t2igan.atomic import torch_save_atomic
from t2igan.errors import ConfigError, T2IGanError, WeightsNotFoundError
from t2igan.nn.interfaces import TextEncoder, TextFeatures
from t2igan.specs import LoadedText
from t2igan.text.vocab import Vocabulary
from t2igan.weights import (
    CheckedWeights,
    WeightsCheck,
    WeightsRef,
    check_official,
    check_state_dict_keys,
    load_state_dict_file,
    plan_setting,
    resolve_weights,
    sha256_file,
)

EMBEDDING_DIM = 256  # DF-GAN code/cfg/bird.yml TEXT.EMBEDDING_DIM
WORD_VECTOR_DIM = 300  # AttnGAN code/model.py RNN_ENCODER(ninput=300)
DROPOUT = 0.5  # AttnGAN code/model.py RNN_ENCODER(drop_prob=0.5)
WORDS_NUM = 18  # DF-GAN code/cfg/bird.yml TEXT.WORDS_NUM
INCEPTION_INPUT = 299  # DF-GAN code/models/DAMSM.py CNN_ENCODER.forward resizes to 299x299
IMAGE_VARIANTS = ("inception", "small")


class DAMSMTextEncoder(TextEncoder):
    """AttnGAN's bi-LSTM text encoder: word vectors (300) -> LSTM, 128 units per direction.

    `sentence` is the final hidden state of both directions (forward first), `words` the LSTM outputs
    (B, 256, T), zero at padding. Captions longer than `max_words` keep `max_words` of their words in
    order, chosen at random as the official loader does; without an `rng` the choice is a fixed
    function of (`subsample_seed`, caption), so evaluation and embedding caches are reproducible.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        embedding_dim: int = EMBEDDING_DIM,
        word_vector_dim: int = WORD_VECTOR_DIM,
        dropout: float = DROPOUT,
        max_words: int = WORDS_NUM,
        subsample_seed: int = 0,
    ):
        super().__init__()
        if embedding_dim % 2:
            raise ConfigError(f"DAMSM embedding_dim must be even (two LSTM directions), got {embedding_dim}")
        self.vocab = vocab
        self.sentence_dim = self.word_dim = embedding_dim
        self.max_words = max_words
        self.subsample_seed = subsample_seed
        self.weights_id: str | None = None  # set by the loaders: names the weights in cache keys
        self.encoder = nn.Embedding(len(vocab), word_vector_dim)
        self.drop = nn.Dropout(dropout)
        # The official LSTM also gets dropout=0.5, a no-op with one layer; 0 avoids torch's warning.
        self.rnn = nn.LSTM(word_vector_dim, embedding_dim // 2, 1, batch_first=True, bidirectional=True)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)  # AttnGAN RNN_ENCODER.init_weights

    def tokenize(self, captions: list[str], rng: random.Random | None = None) -> dict[str, Tensor]:
        """Word ids (B, T) padded with 0 ('<end>') and lengths (B,); T = longest kept caption <= max_words.

        A caption with no known word becomes the single token '<end>' (the official loader would fail).
        """
        rows = [self._select(self.vocab.encode(c), c, rng) for c in captions]
        rows = [r or [0] for r in rows]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        ids = torch.zeros(len(rows), int(lengths.max()) if rows else 1, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return {"ids": ids, "lengths": lengths}

    def unknown_words(self, caption: str) -> list[str]:
        return self.vocab.unknown_words(caption)

    def _select(self, ids: list[int], caption: str, rng: random.Random | None) -> list[int]:
        if len(ids) <= self.max_words:
            return ids
        chooser = rng if rng is not None else random.Random(f"{self.subsample_seed}\x00{caption}")
        keep = sorted(chooser.sample(range(len(ids)), self.max_words))
        return [ids[k] for k in keep]

    def encode(self, tokens: Mapping[str, Tensor]) -> TextFeatures:
        ids, lengths = tokens["ids"], tokens["lengths"]
        vectors = self.drop(self.encoder(ids))
        # enforce_sorted=False does the official sort by length and restores the order afterwards
        packed = pack_padded_sequence(vectors, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, (hidden, _) = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=ids.shape[1])
        words = output.transpose(1, 2)
        sentence = hidden.transpose(0, 1).reshape(ids.shape[0], -1)
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] >= lengths.to(ids.device)[:, None]
        return TextFeatures(sentence=sentence, words=words, mask=mask)

    def freeze(self) -> DAMSMTextEncoder:
        """Eval mode and no gradients, as the GANs use it."""
        self.eval()
        self.requires_grad_(False)
        return self


class DAMSMImageEncoder(nn.Module):
    """AttnGAN's CNN_ENCODER: the Inception-v3 trunk (torchvision blocks and names) plus two projections.

    Input: images in [-1, 1] of any size, resized to 299 (bilinear) as the official forward does.
    Output: region features (B, 256, 17, 17) from Mixed_6e and a global code (B, 256) from Mixed_7c.
    The trunk is frozen, as in the official pre-training (only the projections learn).
    """

    variant = "inception"

    def __init__(self, embedding_dim: int = EMBEDDING_DIM, trainable_trunk: bool = False):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.input_size = INCEPTION_INPUT
        # Shapes of torchvision's Inception3 (models/inception.py), whose attribute names the official
        # CNN_ENCODER copies.
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        if not trainable_trunk:
            self.requires_grad_(False)
        self.emb_features = nn.Conv2d(768, embedding_dim, kernel_size=1, bias=False)
        self.emb_cnn_code = nn.Linear(2048, embedding_dim)
        # AttnGAN CNN_ENCODER.init_trainable_weights: uniform(-0.1, 0.1) on both projection weights
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def config(self) -> dict[str, Any]:
        """What `build_image_encoder` needs to rebuild this module."""
        return {"image_encoder": self.variant, "embedding_dim": self.embedding_dim}

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        # DF-GAN code/models/DAMSM.py: bilinear, align_corners=False
        x = F.interpolate(
            images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
        )
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a):
            x = block(x)
        for block in (self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        regions = x  # 17 x 17 x 768
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = F.avg_pool2d(x, kernel_size=8).flatten(1)
        return self.emb_features(regions), self.emb_cnn_code(x)


def _conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    )


class SmallDAMSMImageEncoder(nn.Module):
    """A few conv layers with the DAMSM image interface, for small images (`shapes`, `tiny` presets).

    Input: images in [-1, 1], resized to `input_size`. Output: regions (B, 256, grid, grid) and a
    global code (B, 256), through projections named like the official ones.
    """

    variant = "small"

    def __init__(
        self, embedding_dim: int = EMBEDDING_DIM, input_size: int = 64, grid: int = 8, width: int = 16
    ):
        super().__init__()
        steps = math.log2(input_size / grid) if input_size >= grid > 0 else -1
        if steps < 0 or steps != int(steps):
            raise ConfigError(
                f"small DAMSM image encoder: input_size {input_size} must be grid {grid} times a power of 2"
            )
        self.embedding_dim, self.input_size, self.grid, self.width = embedding_dim, input_size, grid, width
        layers = [_conv_block(3, width, 1)]
        channels = width
        for _ in range(int(steps)):
            layers.append(_conv_block(channels, min(channels * 2, width * 4), 2))
            channels = min(channels * 2, width * 4)
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Sequential(
            _conv_block(channels, channels * 2, 2), _conv_block(channels * 2, channels * 2, 1)
        )
        self.emb_features = nn.Conv2d(channels, embedding_dim, kernel_size=1, bias=False)
        # flattened, not pooled: the global code keeps where things are ("at the top left")
        self.emb_cnn_code = nn.Linear(channels * 2 * ((grid + 1) // 2) ** 2, embedding_dim)

    def config(self) -> dict[str, Any]:
        """What `build_image_encoder` needs to rebuild this module."""
        return {
            "image_encoder": self.variant,
            "embedding_dim": self.embedding_dim,
            "image_size": self.input_size,
            "grid": self.grid,
            "width": self.width,
        }

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = images
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        regions = self.trunk(x)
        code = self.head(regions).flatten(1)
        return self.emb_features(regions), self.emb_cnn_code(code)


def image_encoder_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The image-encoder keys of a DAMSM config, with defaults: what a checkpoint stores to rebuild it."""
    variant = str(config.get("image_encoder", "inception"))
    if variant not in IMAGE_VARIANTS:
        raise ConfigError(f"image_encoder={variant!r}: expected one of {', '.join(IMAGE_VARIANTS)}")
    out: dict[str, Any] = {
        "image_encoder": variant,
        "embedding_dim": int(config.get("embedding_dim", EMBEDDING_DIM)),
    }
    if variant == "small":
        out.update(
            image_size=int(config.get("image_size", 64)),
            grid=int(config.get("grid", 8)),
            width=int(config.get("width", 16)),
        )
    return out


def build_image_encoder(config: Mapping[str, Any]) -> nn.Module:
    """`image_encoder`: "inception" (official, 299 px, 17x17 regions) or "small" (`image_size`, `grid`, `width`)."""
    cfg = image_encoder_config(config)
    if cfg["image_encoder"] == "inception":
        return DAMSMImageEncoder(
            cfg["embedding_dim"], trainable_trunk=bool(config.get("trainable_trunk", False))
        )
    return SmallDAMSMImageEncoder(cfg["embedding_dim"], cfg["image_size"], cfg["grid"], cfg["width"])


def images_to_input(images: Any) -> Tensor:
    """uint8 (N, H, W, 3) array or tensor -> float (N, 3, H, W) in [-1, 1], the range the encoders expect."""
    # a read-only memmap slice is copied: torch warns on (and must not write through) non-writable arrays
    tensor = images if isinstance(images, Tensor) else torch.from_numpy(np.array(images))
    if tensor.dtype != torch.uint8 or tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ConfigError(
            f"images must be uint8 of shape (N, H, W, 3), got {tuple(tensor.shape)} {tensor.dtype}"
        )
    return tensor.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# ---------------------------------------------------------------------------------------------------
# Loading official weights and our own checkpoints

DAMSM_FORMAT = "t2igan-damsm"
# Where the DF-GAN README publishes the metadata archives that hold DAMSMencoder/ (README "Preparation")
BIRDS_METADATA = "https://drive.google.com/file/d/1I6ybkR7L64K8hZOraEZDuHh0cCJw5OUj/view?usp=sharing"
COCO_METADATA = "https://drive.google.com/file/d/15Fw-gErCEArOFykW3YTnLKpRcPgI_3AB/view?usp=sharing"


@dataclass(frozen=True)
class OfficialDAMSM:
    """One released DAMSM pair: the epoch in its file names and where it is published."""

    epoch: int
    origin: str


OFFICIAL_DAMSM: dict[str, OfficialDAMSM] = {
    # DF-GAN code/cfg/bird.yml DAMSM_NAME ../data/birds/DAMSMencoder/text_encoder200.pth
    "cub": OfficialDAMSM(200, f"the DF-GAN README's birds metadata archive ({BIRDS_METADATA})"),
    # DF-GAN code/cfg/coco.yml DAMSM_NAME ../data/coco/DAMSMencoder/text_encoder100.pth
    "coco": OfficialDAMSM(100, f"the DF-GAN README's coco metadata archive ({COCO_METADATA})"),
    # DF-GAN code/cfg/flower.yml names text_encoder100.pth; no flower metadata is published
    "flower": OfficialDAMSM(100, ""),
}


def damsm_weights_ref(tag: str, part: str = "text") -> WeightsRef:
    """The weights reference of a DAMSM `part` ("text" or "image") for a dataset tag.

    Official tags (cub, coco, flower) name the released files; any other tag (e.g. "shapes") names
    one checkpoint of ours holding both encoders and the vocabulary.
    """
    if part not in ("text", "image"):
        raise ConfigError(f"DAMSM part must be 'text' or 'image', got {part!r}")
    official = OFFICIAL_DAMSM.get(tag)
    filename = f"damsm/{tag}/{part}_encoder{official.epoch}.pth" if official else f"damsm/{tag}/damsm.pt"
    return WeightsRef(
        kind=f"{part}_encoder",
        name="damsm",
        tag=tag,
        filename=filename,
        setting=plan_setting("damsm", "weights" if part == "text" else "image_weights"),
        origin=official.origin if official else "",
    )


@dataclass
class DAMSMEncoders(CheckedWeights):
    """A loaded DAMSM pair, its vocabulary, and (for our checkpoints) its config and training stats."""

    text_encoder: DAMSMTextEncoder
    image_encoder: nn.Module | None
    vocab: Vocabulary
    config: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    text_file: Path | None = None
    image_file: Path | None = None
    # official-layout files are checked against the released ones by sha256; a checkpoint of ours is itself
    # the encoder its dataset's protocol names (`shapes`), so it is no stand-in
    check: WeightsCheck = field(default_factory=lambda: WeightsCheck(True))

    @property
    def weights_check(self) -> WeightsCheck:
        return self.check


def text_encoder_config(encoder: DAMSMTextEncoder) -> dict[str, Any]:
    return {
        "embedding_dim": encoder.sentence_dim,
        "word_vector_dim": encoder.encoder.embedding_dim,
        "dropout": encoder.drop.p,
        "max_words": encoder.max_words,
        "subsample_seed": encoder.subsample_seed,
    }


def _text_factory(vocab: Vocabulary, config: Mapping[str, Any]) -> Callable[[], DAMSMTextEncoder]:
    keys = ("embedding_dim", "word_vector_dim", "dropout", "max_words", "subsample_seed")
    return lambda: DAMSMTextEncoder(vocab, **{k: config[k] for k in keys if k in config})


def _clean_state(state: Any, source: str) -> dict[str, Tensor]:
    if not isinstance(state, Mapping):
        raise T2IGanError(f"{source}: expected a state dict (name -> tensor), got {type(state).__name__}")
    clean: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise T2IGanError(f"{source}: entry {key!r} is {type(value).__name__}, expected a tensor")
        # DDP-trained files carry a 'module.' prefix, which the official load_model_weights strips
        name = key[len("module.") :] if key.startswith("module.") else key
        clean[name] = value.float() if value.is_floating_point() else value
    return clean


def _load_module(factory: Callable[[], nn.Module], state: Any, source: str, device: Any) -> nn.Module:
    """Build on the meta device (no init cost), check every key and shape, then take the file's tensors."""
    with torch.device("meta"):
        module = factory()
    expected = module.state_dict()
    state = _clean_state(state, source)
    for key in expected:
        # files from torch < 0.4.1 have no BatchNorm step counters
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    check_state_dict_keys(expected, state, source)
    module.load_state_dict(state, strict=True, assign=True)
    return module.to(device)


def _vocabulary(vocab: Vocabulary | str | os.PathLike | None, weights_file: Path) -> Vocabulary:
    if isinstance(vocab, Vocabulary):
        return vocab
    if vocab is None:
        raise ConfigError(
            f"DAMSM text encoder weights {weights_file} need the vocabulary they were trained with: "
            "pass the dataset's captions.pickle / captions_DAMSM.pickle or a vocabulary JSON (config key 'vocab')"
        )
    return Vocabulary.load(vocab)


def _load_official_text(raw: Any, vocab: Vocabulary, source: str, device: Any) -> DAMSMTextEncoder:
    raw = _clean_state(raw, source)
    rows = raw.get("encoder.weight")
    if rows is not None and rows.shape[0] != len(vocab):
        raise T2IGanError(
            f"{source}: encoder.weight has {rows.shape[0]} words but the vocabulary has {len(vocab)}; "
            "pass the captions pickle these weights were trained with"
        )
    return _load_module(_text_factory(vocab, {}), raw, source, device)


def _image_file(tag: str, text_file: Path, explicit: str | os.PathLike | None) -> Path:
    ref = damsm_weights_ref(tag, "image")
    if explicit is None:
        # the official code finds the image encoder beside the text encoder (DF-GAN lib/perpare.py)
        sibling = text_file.with_name(text_file.name.replace("text_encoder", "image_encoder"))
        if sibling != text_file and sibling.is_file():
            return sibling
    return resolve_weights(ref, explicit)


def load_damsm(
    text_path: str | os.PathLike | None = None,
    image_path: str | os.PathLike | None = None,
    vocab: Vocabulary | str | os.PathLike | None = None,
    tag: str = "cub",
    with_image: bool = True,
    device: torch.device | str = "cpu",
) -> DAMSMEncoders:
    """Load a DAMSM pair: official `text_encoder*.pth` (+ `image_encoder*.pth`, + the vocabulary), or a
    checkpoint of ours. Files resolve through `t2igan.weights.resolve_weights`; every key is checked."""
    text_file = resolve_weights(damsm_weights_ref(tag, "text"), text_path)
    raw = load_state_dict_file(text_file, what="DAMSM text encoder weights")
    if isinstance(raw, Mapping) and raw.get("format") == DAMSM_FORMAT:
        encoders = _from_checkpoint(raw, text_file, with_image, device)
        if vocab is not None and _vocabulary(vocab, text_file).sha256 != encoders.vocab.sha256:
            raise ConfigError(
                f"{text_file}: the vocabulary given differs from the one saved in the checkpoint"
            )
        return encoders
    vocabulary = _vocabulary(vocab, text_file)
    text = _load_official_text(raw, vocabulary, str(text_file), device)
    text.weights_id = f"damsm-{sha256_file(text_file)[:16]}"
    image, image_file = None, None
    if with_image:
        image_file = _image_file(tag, text_file, image_path)
        image_raw = load_state_dict_file(image_file, what="DAMSM image encoder weights")
        image = _load_module(DAMSMImageEncoder, image_raw, str(image_file), device)
    config = {**text_encoder_config(text), **image_encoder_config({"image_encoder": "inception"}), "tag": tag}
    check = _official_check(tag, text_file, image_file)
    return DAMSMEncoders(text.freeze(), _frozen(image), vocabulary, config, {}, text_file, image_file, check)


def _official_check(tag: str, text_file: Path, image_file: Path | None) -> WeightsCheck:
    """The released pair's check: a file that is not the released one makes the pair a stand-in."""
    checks = [
        check_official(damsm_weights_ref(tag, part), sha256_file(file))
        for part, file in (("text", text_file), ("image", image_file))
        if file is not None
    ]
    failed = [c for c in checks if c.official is not True]
    if not failed:
        return WeightsCheck(True)
    official = False if any(c.official is False for c in failed) else None
    return WeightsCheck(official, "; ".join(c.note for c in failed))


def _frozen(module: nn.Module | None) -> nn.Module | None:
    if module is not None:
        module.eval()
        module.requires_grad_(False)
    return module


def _from_checkpoint(raw: Mapping[str, Any], path: Path, with_image: bool, device: Any) -> DAMSMEncoders:
    for key in ("text_encoder", "vocab", "config"):
        if key not in raw:
            raise T2IGanError(f"DAMSM checkpoint {path}: missing entry {key!r}")
    vocab = Vocabulary.from_dict(raw["vocab"], f"{path} (vocab)")
    config = dict(raw["config"])
    text = _load_module(_text_factory(vocab, config), raw["text_encoder"], f"{path} (text_encoder)", device)
    text.weights_id = f"damsm-{sha256_file(path)[:16]}"
    image = None
    if with_image:
        if raw.get("image_encoder") is None:
            # a missing part, like a missing file: a caller that can do without the image encoder goes on
            raise WeightsNotFoundError(f"DAMSM checkpoint {path}: holds no image encoder")
        factory = functools.partial(build_image_encoder, config)
        image = _load_module(factory, raw["image_encoder"], f"{path} (image_encoder)", device)
    stats = dict(raw.get("stats") or {})
    return DAMSMEncoders(
        text.freeze(), _frozen(image), vocab, config, stats, path, path if with_image else None
    )


def save_damsm_checkpoint(
    path: str | os.PathLike,
    text_encoder: DAMSMTextEncoder,
    image_encoder: nn.Module | None = None,
    stats: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """One file with both state dicts, the vocabulary, the config that rebuilds them and training stats
    (e.g. retrieval accuracy); readable with `weights_only=True`; written atomically."""
    path = Path(path)
    full_config = {**dict(config or {}), **text_encoder_config(text_encoder)}
    if image_encoder is not None:
        if not callable(getattr(image_encoder, "config", None)):
            raise T2IGanError(f"cannot save a DAMSM image encoder of type {type(image_encoder).__name__}")
        full_config.update(image_encoder.config())
    stats = dict(stats or {})
    try:
        json.dumps({"config": full_config, "stats": stats})
    except TypeError as exc:
        raise T2IGanError(
            f"DAMSM checkpoint {path}: config and stats must be plain JSON values ({exc})"
        ) from exc
    payload = {
        "format": DAMSM_FORMAT,
        "version": 1,
        "text_encoder": {k: v.detach().cpu() for k, v in text_encoder.state_dict().items()},
        "image_encoder": None
        if image_encoder is None
        else {k: v.detach().cpu() for k, v in image_encoder.state_dict().items()},
        "vocab": text_encoder.vocab.to_dict(),
        "config": full_config,
        "stats": stats,
    }
    return torch_save_atomic(payload, path)


# ---------------------------------------------------------------------------------------------------
# Builders for the registry


def _load_from_config(config: Mapping[str, Any], context: Any, with_image: bool) -> DAMSMEncoders:
    device = getattr(context, "device", None) or "cpu"
    encoders = load_damsm(
        text_path=config.get("weights"),
        image_path=config.get("image_weights"),
        vocab=config.get("vocab"),
        tag=str(config.get("tag", "cub")),
        with_image=with_image,
        device=device,
    )
    wanted = config.get("image_encoder")
    if with_image and wanted is not None and wanted != encoders.config.get("image_encoder"):
        raise ConfigError(
            f"image_encoder={wanted!r} but {encoders.image_file} holds a "
            f"{encoders.config.get('image_encoder')!r} image encoder"
        )
    return encoders


# dataset name -> the tag of its official DAMSM weights, where the two differ
OFFICIAL_TAGS = {"flowers": "flower"}
# AttnGAN's metadata layout keeps the vocabulary in the dataset folder's captions pickle
CAPTION_PICKLES = ("captions_DAMSM.pickle", "captions.pickle")


def load_for_run(config: Mapping[str, Any], context: Any) -> LoadedText:
    """The DAMSM pair for a run on a real dataset (`TextEncoderSpec.load`). The image encoder comes too
    when its file is there (R-precision and ALR-GAN's DAMSM loss use it); else metrics get a loader that
    asks for it, with the loader's own error, only when one needs it."""
    root = getattr(context, "root", None)
    vocab = config.get("vocab") or next(
        (Path(root) / n for n in CAPTION_PICKLES if root is not None and (Path(root) / n).is_file()), None
    )
    dataset = str(getattr(context, "dataset", "") or "")
    arguments = dict(
        text_path=config.get("weights"),
        image_path=config.get("image_weights"),
        vocab=vocab,  # None: the loader's error asks for config key 'vocab'
        tag=str(config.get("tag") if "weights" in config else OFFICIAL_TAGS.get(dataset, dataset)),
        device=context.device,
    )
    try:
        pair = load_damsm(**arguments, with_image=True)
    except WeightsNotFoundError:
        pair = load_damsm(**arguments, with_image=False)
    encoder = pair.text_encoder
    if pair.image_encoder is not None:
        object.__setattr__(encoder, "image_encoder", pair.image_encoder)  # not a submodule
    view: Any = pair if pair.image_encoder is not None else functools.partial(load_damsm, **arguments)
    info = {
        "weights_file": str(pair.text_file),
        "weights_sha256": sha256_file(pair.text_file) if pair.text_file else "",
        "stand_in": pair.stand_in,
        "weights_note": pair.weights_note,
    }
    return LoadedText(encoder, info, view)


def load_ours(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedText:
    """One of our DAMSM checkpoints, the image encoder attached as a plain attribute (so the text
    encoder's state dict keeps the official layout); metrics get the two as a pair."""
    pair = load_damsm(text_path=path, with_image=True, device=device)
    object.__setattr__(pair.text_encoder, "image_encoder", pair.image_encoder)
    view = SimpleNamespace(text_encoder=pair.text_encoder, image_encoder=pair.image_encoder)
    return LoadedText(pair.text_encoder, {}, view)


def build_damsm(config: Mapping[str, Any], context: Any = None) -> DAMSMTextEncoder:
    """The frozen DAMSM text encoder for `TextEncoderSpec(name="damsm", build=build_damsm)`.

    Config keys: `weights` (official text_encoder*.pth or our checkpoint; else resolved by `tag`),
    `tag` (cub, coco, flower, or the name of one of ours, e.g. shapes), `vocab` (captions pickle or
    vocabulary JSON; official weights only), `image_weights`, `image_encoder` (inception | small).
    """
    return _load_from_config(config, context, with_image=False).text_encoder


def build_damsm_image_encoder(config: Mapping[str, Any], context: Any = None) -> nn.Module:
    """The frozen DAMSM image encoder matching `build_damsm(config)` (R-precision needs both)."""
    return _load_from_config(config, context, with_image=True).image_encoder
