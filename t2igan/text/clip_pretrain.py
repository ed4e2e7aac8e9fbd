"""Pre-training a small CLIP (one of t2igan/text/clip_configs) with the symmetric contrastive loss, and the
text-to-image retrieval accuracy that says whether it is good enough to stand in for OpenAI's on `shapes`.

Takes plain arrays (uint8 images, captions per image) so it needs nothing from the data room.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from t2igan.errors import ConfigError
from t2igan.progress import progress_bar
from t2igan.text.clip import CLIPSource, CLIPTextImageEncoder, build_open_clip_model, model_config

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP paper §2.5: the temperature is clipped to keep logits ≤ 100


@dataclass
class CLIPPretrainConfig:
    """Hyper-parameters of contrastive pre-training; optimiser settings follow the CLIP paper (Radford et
    al. 2021, §2.5 and Table 19: AdamW, decoupled weight decay on weights only, cosine schedule with warm-up,
    β2 = 0.98, ε = 1e-6); sizes, epochs and learning rate are ours, for a small model on a small dataset.
    The runs that chose them and the `shapes` recipe (`t2igan.text.pretrained.DEFAULT_CONFIGS`): docs/
    measurements.md, "The small CLIP's pre-training recipe".
    """

    model: str = "clip-small"
    epochs: int = 25
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 30
    # each image meets this many of its captions per step (distinct while it has as many); the loss averages
    # the caption sets (`contrastive_loss`; why it pays: docs/measurements.md, "The small CLIP's pre-training
    # recipe")
    captions_per_image: int = 1
    # the starting logit scale (1 / temperature); None keeps open_clip's 1/0.07
    logit_scale_init: float | None = None
    input_mode: str = "clean"  # how [-1, 1] images are mapped to CLIP input, recorded in the checkpoint
    layers: tuple[int, ...] | None = None  # GALIP feature blocks; default per clip.default_layers
    max_seconds: float | None = None  # stop after the step that crosses this wall-clock budget
    eval_candidates: int = 100  # retrieval: 1 true image + 99 others
    eval_images: int = 1000  # training images scored for the stats

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> CLIPPretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ConfigError(f"unknown CLIP pre-training keys {unknown}; known: {sorted(known)}")
        values = dict(values or {})
        for key in ("betas", "layers"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if isinstance(self.captions_per_image, bool) or not isinstance(self.captions_per_image, int):
            raise ConfigError(
                f"captions_per_image must be a whole number ≥ 1, got {self.captions_per_image!r}"
            )
        if self.captions_per_image < 1:
            raise ConfigError(f"captions_per_image must be ≥ 1, got {self.captions_per_image}")
        scale = self.logit_scale_init
        if scale is not None and not 1.0 <= scale <= math.exp(MAX_LOGIT_SCALE):
            raise ConfigError(f"logit_scale_init must be in [1, 100] (1 / temperature), got {scale}")


@dataclass
class CLIPPretrainStats:
    """What pre-training did: mean loss per epoch, steps, seconds, and retrieval on training images."""

    epoch_losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    images: int = 0
    logit_scale: float = 0.0
    train_retrieval_top1: float | None = None
    retrieval_candidates: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_data(images: Any, captions: Sequence[Sequence[str]]) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ConfigError(f"images must be a uint8 array (N, H, W, 3), got {images.dtype} {images.shape}")
    if len(images) != len(captions):
        raise ConfigError(
            f"{len(images)} images but {len(captions)} caption lists: expected one list per image"
        )
    if any(len(c) == 0 for c in captions):
        raise ConfigError("every image needs at least one caption")
    return images


def images_to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1], the range generators produce."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def contrastive_loss(image_emb: Tensor, text_emb: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE over the batch (CLIP paper Figure 3): matching pairs on the diagonal.

    `text_emb` may hold k caption sets for the same B images (k·B rows, set after set): the loss is then the
    mean of the k symmetric losses, each set scored against the B images only."""
    count = len(image_emb)
    if count == 0 or len(text_emb) % count:
        raise ValueError(f"{len(text_emb)} text embeddings for {count} images: expected a multiple")
    image_emb, text_emb = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = logit_scale.exp() * text_emb.view(-1, count, text_emb.shape[-1]) @ image_emb.t()  # (k, B, B)
    labels = torch.arange(count, device=logits.device).repeat(len(logits))
    text_to_image = F.cross_entropy(logits.reshape(-1, count), labels)
    image_to_text = F.cross_entropy(logits.transpose(1, 2).reshape(-1, count), labels)
    return (text_to_image + image_to_text) / 2


def _optimizer(encoder: CLIPTextImageEncoder, config: CLIPPretrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in encoder.model.named_parameters():
        # gains, biases, embeddings of positions/CLS and the temperature are not decayed (open_clip main.py)
        exclude = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if exclude else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def pretrain_clip(
    images: Any,
    captions: Sequence[Sequence[str]],
    config: CLIPPretrainConfig | Mapping[str, Any] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> tuple[CLIPTextImageEncoder, CLIPPretrainStats]:
    """Train a small CLIP from scratch on (N, H, W, 3) uint8 images, each seen once per epoch with
    `captions_per_image` of its captions drawn at random. Returns the encoder (eval mode, trainable) and its
    stats; save it with `save_clip_checkpoint`."""
    if isinstance(config, CLIPPretrainConfig):
        config.check()
    else:
        config = CLIPPretrainConfig.from_mapping(config)  # checks the values
    images = _check_data(images, captions)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_cfg = model_config(config.model)
    source = CLIPSource(name=config.model, pretrained="random", model_config=model_cfg)
    encoder = CLIPTextImageEncoder(build_open_clip_model(model_cfg), config.layers, config.input_mode, source)
    if config.logit_scale_init is not None:
        with torch.no_grad():
            encoder.model.logit_scale.fill_(math.log(config.logit_scale_init))
    encoder.to(device).train()
    tokens, offsets = _tokenize_all(encoder, captions)
    stats = CLIPPretrainStats(images=len(images), config=_plain(asdict(config)))
    start = time.perf_counter()
    with _used_rows_only(encoder.model, tokens):
        _run_epochs(encoder, images, tokens, offsets, config, device, rng, stats, progress)
    stats.seconds = time.perf_counter() - start
    stats.logit_scale = encoder.model.logit_scale.exp().item()
    encoder.eval()
    _final_retrieval(encoder, images, captions, config, seed, stats)
    return encoder, stats


def _run_epochs(
    encoder: CLIPTextImageEncoder,
    images: np.ndarray,
    tokens: Tensor,
    offsets: np.ndarray,
    config: CLIPPretrainConfig,
    device: torch.device | str,
    rng: np.random.Generator,
    stats: CLIPPretrainStats,
    progress: bool,
) -> None:
    optimizer = _optimizer(encoder, config)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    total = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _schedule(s, total, config.warmup_steps)
    )
    deadline = None if config.max_seconds is None else time.perf_counter() + config.max_seconds
    bar = progress_bar(range(config.epochs), show=progress, desc=f"pretrain {config.model}")
    for _ in bar:
        losses = []
        order = rng.permutation(len(images))
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            choice = _captions_of(offsets, batch, config.captions_per_image, rng)
            losses.append(_train_step(encoder, images[batch], tokens[choice], optimizer, device))
            scheduler.step()
            stats.steps += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        stats.epoch_losses.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{stats.epoch_losses[-1]:.3f}")
        if deadline is not None and time.perf_counter() > deadline:
            break


class _CompactEmbedding(torch.nn.Module):
    """The rows of a token-embedding table that the captions use, looked up by token id."""

    def __init__(self, rows: Tensor, lookup: Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(rows)
        self.register_buffer("lookup", lookup)

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(self.lookup[ids], self.weight)


@contextmanager
def _used_rows_only(model: Any, tokens: Tensor) -> Iterator[None]:
    """Train only the embedding rows of tokens that occur: rows never seen get zero gradients, so AdamW (no
    decay on embeddings) never moves them; the updates are the same, without a dense 49,408-row gradient and
    optimiser step each batch (a third of a clip-small step on CPU)."""
    full = model.token_embedding
    used = torch.unique(tokens).to(full.weight.device)
    lookup = torch.zeros(full.num_embeddings, dtype=torch.long, device=full.weight.device)
    lookup[used] = torch.arange(len(used), device=full.weight.device)
    compact = _CompactEmbedding(full.weight.detach()[used].clone(), lookup)
    model.token_embedding = compact
    try:
        yield
    finally:
        with torch.no_grad():
            full.weight[used] = compact.weight.detach()
        model.token_embedding = full


def _tokenize_all(
    encoder: CLIPTextImageEncoder, captions: Sequence[Sequence[str]]
) -> tuple[Tensor, np.ndarray]:
    flat = [caption for per_image in captions for caption in per_image]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in captions])])
    return encoder.tokenize(flat)["tokens"], offsets


def _captions_of(
    offsets: np.ndarray, batch: np.ndarray, per_image: int, rng: np.random.Generator
) -> np.ndarray:
    """Row indices into the flat token table: `per_image` random captions of each image in `batch`, set
    after set (row j·B + i is caption j of image i), distinct for an image that has as many; one that has
    fewer repeats its captions in a random order."""
    counts = offsets[batch + 1] - offsets[batch]
    keys = rng.random((len(batch), int(counts.max())))
    keys[np.arange(keys.shape[1])[None, :] >= counts[:, None]] = np.inf  # captions the image lacks sort last
    order = np.argsort(keys, axis=1)  # a random permutation of each image's own captions first
    picks = np.take_along_axis(order, np.arange(per_image)[None, :] % counts[:, None], axis=1)
    return (offsets[batch][:, None] + picks).T.reshape(-1)


def _train_step(
    encoder: CLIPTextImageEncoder,
    images: np.ndarray,
    tokens: Tensor,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str,
) -> float:
    image_emb = encoder.image_embedding(images_to_tensor(images, device))
    text_emb = encoder.encode({"tokens": encoder.trim_tokens(tokens).to(device)}).sentence
    loss = contrastive_loss(image_emb, text_emb, encoder.model.logit_scale)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        encoder.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
    return loss.item()


def _final_retrieval(
    encoder: CLIPTextImageEncoder,
    images: np.ndarray,
    captions: Sequence[Sequence[str]],
    config: CLIPPretrainConfig,
    seed: int,
    stats: CLIPPretrainStats,
) -> None:
    count = min(len(images), config.eval_images)
    candidates = min(config.eval_candidates, count)
    if candidates < 2:
        return
    pick = np.random.default_rng(seed + 1).permutation(len(images))[:count]
    stats.train_retrieval_top1 = retrieval_accuracy(
        encoder, images[pick], [captions[i] for i in pick], candidates, seed
    )
    stats.retrieval_candidates = candidates


@torch.no_grad()
def embed_images(encoder: CLIPTextImageEncoder, images: Any, batch_size: int = 256) -> Tensor:
    """L2-normalised image embeddings of uint8 (N, H, W, 3) images."""
    device = next(encoder.parameters()).device
    chunks = [
        encoder.image_embedding(images_to_tensor(np.asarray(images[i : i + batch_size]), device))
        for i in range(0, len(images), batch_size)
    ]
    return F.normalize(torch.cat(chunks).float(), dim=-1)


@torch.no_grad()
def embed_texts(encoder: CLIPTextImageEncoder, captions: Sequence[str], batch_size: int = 512) -> Tensor:
    """L2-normalised sentence embeddings."""
    chunks = [
        encoder.encode_captions(list(captions[i : i + batch_size])).sentence
        for i in range(0, len(captions), batch_size)
    ]
    return F.normalize(torch.cat(chunks).float(), dim=-1)


def retrieval_accuracy(
    model: CLIPTextImageEncoder,
    images: Any,
    captions: Sequence[Sequence[str]],
    n_candidates: int = 100,
    seed: int = 0,
) -> float:
    """Top-1 text-to-image accuracy: one random caption per image ranks its image against
    `n_candidates - 1` other random images by cosine similarity (a tie counts as a miss)."""
    images = _check_data(images, captions)
    count = len(images)
    if not 2 <= n_candidates <= count:
        raise ConfigError(f"n_candidates must be in 2..{count} (the number of images), got {n_candidates}")
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    queries = [c[rng.integers(len(c))] for c in captions]
    others = np.stack([rng.choice(count - 1, n_candidates - 1, replace=False) for _ in range(count)])
    others += others >= np.arange(count)[:, None]  # skip the true image
    image_emb, text_emb = embed_images(model, images), embed_texts(model, queries)
    true_score = (image_emb * text_emb).sum(-1)
    other_scores = torch.einsum(
        "nd,nkd->nk", text_emb, image_emb[torch.from_numpy(others).to(image_emb.device)]
    )
    model.train(was_training)
    return float((true_score > other_scores.max(dim=1).values).float().mean())


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
