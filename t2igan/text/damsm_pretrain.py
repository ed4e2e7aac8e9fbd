"""Pre-training a DAMSM pair (text bi-LSTM + image encoder) with the DAMSM loss, as AttnGAN's
pretrain_DAMSM.py does, and the retrieval accuracy that says whether the pair is good enough to use.

Takes plain arrays (uint8 images, captions per image) so it needs nothing from the data room.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.text.damsm import DAMSMTextEncoder, build_image_encoder, images_to_input
from t2igan.text.damsm_loss import DAMSMGammas, damsm_loss
from t2igan.text.vocab import Vocabulary


@dataclass
class DAMSMPretrainConfig:
    """Hyper-parameters; the official values come from AttnGAN code/cfg/DAMSM/bird.yml and pretrain_DAMSM.py.

    The `shapes` recipe (t2igan.text.pretrained.DEFAULT_CONFIGS: 32 px, 4x4 regions, width 16, batch 64,
    dropout 0, 16 epochs; official lr, decay, clipping and gammas) reaches 0.892 text->image top-1 among 100
    on the default test split (mean of 3 draws; 0.941 on test images whose main colour-shape pair is seen in
    train, 0.845 on held-out pairs; 0.979 retrieve the right main colour and shape) in 379 s on one thread,
    0.884 in 272 s on two (the thread count changes float sums, hence the run). The ground-truth oracle
    reaches only 0.922 on that split: captions omit attributes, so some candidates cannot be told apart
    (benchmarks/encoder_retrieval.py). Steps that led there, all 32 px, 1 thread: batch 48, dropout 0.5,
    10 epochs 0.848; dropout 0 0.873; batch 64 0.871; 16 epochs 0.892; lr 0.004 0.882.
    """

    image_encoder: str = "small"  # "inception" is the official one (frozen ImageNet trunk, 299 px)
    image_size: int = 64  # small variant: input size
    grid: int = 8  # small variant: regions per side
    width: int = 16  # small variant: channels of the first conv
    embedding_dim: int = 256  # bird.yml TEXT.EMBEDDING_DIM
    epochs: int = 30
    batch_size: int = 48  # bird.yml TRAIN.BATCH_SIZE
    lr: float = 0.002  # bird.yml TRAIN.ENCODER_LR
    betas: tuple[float, float] = (0.5, 0.999)  # pretrain_DAMSM.py optim.Adam(betas=(0.5, 0.999))
    lr_decay: float = 0.98  # pretrain_DAMSM.py: lr *= 0.98 per epoch while lr > ENCODER_LR / 10
    grad_clip: float = 0.25  # bird.yml TRAIN.RNN_GRAD_CLIP, on the text encoder's parameters only
    reset_optimizer_each_epoch: bool = True  # pretrain_DAMSM.py builds a new Adam every epoch
    gamma1: float = 4.0  # bird.yml TRAIN.SMOOTH.GAMMA1
    gamma2: float = 5.0  # bird.yml TRAIN.SMOOTH.GAMMA2
    gamma3: float = 10.0  # bird.yml TRAIN.SMOOTH.GAMMA3
    max_words: int = 18  # DF-GAN code/cfg/bird.yml TEXT.WORDS_NUM
    dropout: float = 0.5  # AttnGAN code/model.py RNN_ENCODER(drop_prob=0.5), on the word vectors
    max_seconds: float | None = None  # stop after the epoch that crosses this wall-clock budget
    eval_candidates: int = 100  # R-precision: 1 true + 99 mismatched (DM-GAN trainer.py sampling)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> DAMSMPretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ConfigError(f"unknown DAMSM pre-training keys {unknown}; known: {sorted(known)}")
        values = dict(values or {})
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        return cls(**values)


@dataclass
class DAMSMPretrainStats:
    """What pre-training did: mean loss per epoch, steps, time, and the final retrieval accuracy."""

    epoch_losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    retrieval_top1: float | None = None
    retrieval_candidates: int = 0
    images: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_data(images: Any, captions: Sequence[Sequence[str]]) -> np.ndarray | Tensor:
    if len(images) != len(captions):
        raise ConfigError(
            f"{len(images)} images but {len(captions)} caption lists: expected one list per image"
        )
    if any(len(c) == 0 for c in captions):
        raise ConfigError("every image needs at least one caption")
    images_to_input(images[:1])  # checks dtype and layout early
    return images


def _batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(count))
    rng.shuffle(order)
    size = min(batch_size, count)
    # drop_last=True as the official loader, but never zero batches on a tiny set
    return [order[i : i + size] for i in range(0, count - size + 1, size)]


def pretrain_damsm(
    images: Any,
    captions: Sequence[Sequence[str]],
    config: DAMSMPretrainConfig | Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
    class_ids: Sequence[int] | None = None,
    eval_images: Any = None,
    eval_captions: Sequence[Sequence[str]] | None = None,
    eval_class_ids: Sequence[int] | None = None,
) -> tuple[DAMSMTextEncoder, nn.Module, Vocabulary, DAMSMPretrainStats]:
    """Train a DAMSM pair on `images` (uint8 (N, H, W, 3)) and `captions` (a list of captions per image).

    One random caption per image per epoch; Adam, lr decay and text-side gradient clipping as the
    official script. `class_ids` masks same-class negatives in the loss. The retrieval accuracy is
    measured on `eval_images`/`eval_captions` (and `eval_class_ids`) if given, else on the training
    images; mismatched candidates come from other classes when class ids are given. Both encoders
    are returned in eval mode. The caller's global RNG state is left untouched.
    """
    cfg = config if isinstance(config, DAMSMPretrainConfig) else DAMSMPretrainConfig.from_mapping(config)
    _check_data(images, captions)
    vocab = Vocabulary.build(c for caps in captions for c in caps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = DAMSMTextEncoder(
            vocab, cfg.embedding_dim, dropout=cfg.dropout, max_words=cfg.max_words, subsample_seed=seed
        )
        image = build_image_encoder(asdict(cfg)).to(device)
        text = text.to(device)
        stats = _train(text, image, images, captions, cfg, device, seed, progress, class_ids)
    text.eval()
    image.eval()
    if eval_images is None:
        eval_images, eval_captions, eval_class_ids = images, captions, class_ids
    stats.retrieval_top1 = retrieval_accuracy(
        text, image, eval_images, eval_captions, cfg.eval_candidates, seed, eval_class_ids
    )
    stats.retrieval_candidates = cfg.eval_candidates
    return text, image, vocab, stats


def _train(
    text: DAMSMTextEncoder,
    image: nn.Module,
    images: Any,
    captions: Sequence[Sequence[str]],
    cfg: DAMSMPretrainConfig,
    device: torch.device | str,
    seed: int,
    progress: bool,
    class_ids: Sequence[int] | None,
) -> DAMSMPretrainStats:
    from t2igan.progress import progress_bar

    rng = random.Random(seed)
    gammas = DAMSMGammas(cfg.gamma1, cfg.gamma2, cfg.gamma3)
    params = [p for p in (*text.parameters(), *image.parameters()) if p.requires_grad]
    stats, lr, start = DAMSMPretrainStats(images=len(images)), cfg.lr, time.perf_counter()
    optimizer = torch.optim.Adam(params, lr=lr, betas=cfg.betas)
    bar = progress_bar(range(cfg.epochs), show=progress, desc="DAMSM pre-training", unit="epoch")
    for epoch in bar:
        if cfg.reset_optimizer_each_epoch and epoch > 0:
            optimizer = torch.optim.Adam(params, lr=lr, betas=cfg.betas)
        text.train()
        image.train()
        losses = []
        for batch in _batches(len(images), cfg.batch_size, rng):
            chosen = [captions[i][rng.randrange(len(captions[i]))] for i in batch]
            tokens = {k: v.to(device) for k, v in text.tokenize(chosen, rng=rng).items()}
            regions, codes = image(images_to_input(images[batch]).to(device))
            batch_classes = None if class_ids is None else [class_ids[i] for i in batch]
            loss = damsm_loss(regions, codes, text.encode(tokens), batch_classes, gammas).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(text.parameters(), cfg.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            stats.steps += 1
        stats.epoch_losses.append(sum(losses) / len(losses))
        bar.set_postfix(loss=f"{stats.epoch_losses[-1]:.3f}")
        if lr > cfg.lr / 10.0:
            lr *= cfg.lr_decay
            for group in optimizer.param_groups:
                group["lr"] = lr
        if cfg.max_seconds is not None and time.perf_counter() - start > cfg.max_seconds:
            break
    stats.seconds = time.perf_counter() - start
    return stats


@torch.no_grad()
def encode_images(image_encoder: nn.Module, images: Any, batch_size: int = 64) -> Tensor:
    """Global codes (N, D) of uint8 (N, H, W, 3) images."""
    device = next(image_encoder.parameters()).device
    codes = [
        image_encoder(images_to_input(images[i : i + batch_size]).to(device))[1]
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(codes)


@torch.no_grad()
def encode_sentences(
    text_encoder: DAMSMTextEncoder, captions: Sequence[str], batch_size: int = 256
) -> Tensor:
    out = [
        text_encoder.encode_captions(list(captions[i : i + batch_size])).sentence
        for i in range(0, len(captions), batch_size)
    ]
    return torch.cat(out)


def _mismatches(
    index: int, count: int, pool: np.ndarray, classes: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    allowed = pool[pool != index] if classes is None else pool[classes != classes[index]]
    if len(allowed) == 0:
        raise ConfigError(f"image {index} has no candidate of another image (or class) to compare against")
    # independent draws, as the official get_mis_caption draws each mismatch on its own
    return rng.choice(allowed, size=count, replace=len(allowed) < count)


def retrieval_accuracy(
    text_encoder: DAMSMTextEncoder,
    image_encoder: nn.Module,
    images: Any,
    captions: Sequence[Sequence[str]],
    n_candidates: int = 100,
    seed: int = 0,
    class_ids: Sequence[int] | None = None,
    direction: str = "text_to_image",
) -> float:
    """Top-1 accuracy among `n_candidates` (1 true + the rest mismatched) by cosine similarity.

    "text_to_image": one random caption per image ranks its image against other images;
    "image_to_text": each image ranks its caption against captions of other images (the official
    R-precision direction). Mismatches come from other classes when `class_ids` is given.
    """
    if direction not in ("text_to_image", "image_to_text"):
        raise ConfigError(f"direction must be 'text_to_image' or 'image_to_text', got {direction!r}")
    if n_candidates < 2:
        raise ConfigError(f"n_candidates must be at least 2, got {n_candidates}")
    was_training = text_encoder.training, image_encoder.training
    text_encoder.eval()
    image_encoder.eval()
    rng = np.random.default_rng(seed)
    count = len(images)
    pool = np.arange(count)
    classes = None if class_ids is None else np.asarray(class_ids)
    true_caps = [captions[i][rng.integers(len(captions[i]))] for i in range(count)]
    others = np.stack([_mismatches(i, n_candidates - 1, pool, classes, rng) for i in range(count)])
    codes = nn.functional.normalize(encode_images(image_encoder, images), dim=1)
    if direction == "text_to_image":
        queries = nn.functional.normalize(encode_sentences(text_encoder, true_caps), dim=1)
        candidates = codes[torch.from_numpy(np.concatenate([pool[:, None], others], axis=1))]
        scores = torch.einsum("nd,ncd->nc", queries, candidates)
    else:
        mis_caps = [captions[j][rng.integers(len(captions[j]))] for j in others.reshape(-1)]
        sentences = encode_sentences(text_encoder, true_caps + mis_caps)
        sentences = nn.functional.normalize(sentences, dim=1)
        candidates = torch.cat(
            [sentences[:count, None], sentences[count:].view(count, n_candidates - 1, -1)], 1
        )
        scores = torch.einsum("nd,ncd->nc", codes, candidates)
    text_encoder.train(was_training[0])
    image_encoder.train(was_training[1])
    return float((scores.argmax(dim=1) == 0).float().mean())
