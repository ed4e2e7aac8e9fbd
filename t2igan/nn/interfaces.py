"""The contract a model plugin writes against: generator, discriminator, fusion block, text encoder,
and the GANModel that bundles them for the one Trainer every model shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

LossDict = dict[str, Tensor]


@dataclass
class TextFeatures:
    """What a text encoder gives for a batch of captions.

    `sentence` (B, D_s); `words` (B, D_w, T) channels-first as AttnGAN/DF-GAN use them, or None for
    encoders whose word features no model here consumes; `mask` (B, T) True at padding positions.
    """

    sentence: Tensor
    words: Tensor | None = None
    mask: Tensor | None = None


@dataclass
class Batch:
    """One training batch: real images in [-1, 1] and the text features of one caption per image."""

    images: Tensor
    text: TextFeatures
    captions: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Batch:
        text = TextFeatures(
            self.text.sentence.to(device),
            None if self.text.words is None else self.text.words.to(device),
            None if self.text.mask is None else self.text.mask.to(device),
        )
        extras = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in self.extras.items()}
        return Batch(self.images.to(device), text, list(self.captions), extras)


class FusionBlock(nn.Module, ABC):
    """Fuses a text condition into feature maps: `forward(h, cond, state) -> (h, state)`.

    `cond` (B, cond_dim) is whatever the generator conditions on (DF-GAN: noise ⊕ sentence).
    `state` carries recurrent state from block to block (RAT's LSTM (h, c)); stateless blocks
    return it unchanged. Constructed as `Block(cond_dim, channels, shared=None, **options)`.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.cond_dim = cond_dim
        self.channels = channels

    @abstractmethod
    def forward(self, h: Tensor, cond: Tensor, state: Any = None) -> tuple[Tensor, Any]: ...


class SharedFusionState(nn.Module, ABC):
    """A module shared by all fusion blocks of one generator (RAT's LSTM); gives the initial state."""

    @abstractmethod
    def initial_state(self, noise: Tensor, cond: Tensor) -> Any: ...


class Generator(nn.Module, ABC):
    """`forward(noise, sentence, words=None, mask=None)` -> image in [-1, 1], (B, 3, S, S).

    Multi-stage generators return a list of images, finest last.
    """

    noise_dim: int
    image_size: int

    @abstractmethod
    def forward(
        self, noise: Tensor, sentence: Tensor, words: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor | list[Tensor]: ...


class Discriminator(nn.Module, ABC):
    """Image features `features(x)` and a conditional head `logits(features, sentence)`.

    Splitting the two lets core write MA-GP and the mismatched-text term once for every model.
    """

    @abstractmethod
    def features(self, images: Tensor) -> Tensor: ...

    @abstractmethod
    def logits(self, features: Tensor, sentence: Tensor) -> Tensor: ...

    def forward(self, images: Tensor, sentence: Tensor) -> Tensor:
        return self.logits(self.features(images), sentence)


class TextEncoder(nn.Module, ABC):
    """Encodes captions. `tokenize(captions)` -> tensors; `encode(tokens)` -> TextFeatures.

    Frozen during GAN training; `sentence_dim` and `word_dim` tell models what to expect.
    """

    sentence_dim: int
    word_dim: int
    # What a run record says about the weights: numbers made with a stand-in are marked, with the note.
    # Encoders that check their file against the released one override both (t2igan.weights.CheckedWeights).
    stand_in: bool = False
    weights_note: str = ""

    def describe(self) -> dict[str, Any]:
        """Everything that changes a number computed with this encoder, for records (weights_sha256, ...)."""
        return {}

    def unknown_words(self, caption: str) -> list[str]:
        """The words of `caption` that this encoder drops (a word-level vocabulary has no entry for them);
        sampling warns about them. A subword tokenizer drops none."""
        return []

    @abstractmethod
    def tokenize(self, captions: list[str]) -> dict[str, Tensor]: ...

    @abstractmethod
    def encode(self, tokens: dict[str, Tensor]) -> TextFeatures: ...

    @torch.no_grad()
    def encode_captions(self, captions: list[str]) -> TextFeatures:
        device = next(self.parameters()).device
        tokens = {k: v.to(device) for k, v in self.tokenize(captions).items()}
        return self.encode(tokens)


class GANModel(nn.Module, ABC):
    """A generator, a discriminator and the model's own losses.

    The Trainer owns optimisers, devices, checkpoints and logging; a model only says how one D step
    and one G step compute their losses. Each returns a dict whose "loss" entry is what the Trainer
    back-propagates; the other entries are logged. A D step that the official code splits into
    several optimiser steps (RAT-GAN steps MA-GP separately) is written as a generator yielding one
    dict per optimiser step: the Trainer steps after each, before the next is computed.
    """

    generator: Generator
    discriminator: Discriminator
    text_encoder_name: str

    @abstractmethod
    def d_step(self, batch: Batch) -> LossDict | Iterator[LossDict]: ...

    @abstractmethod
    def g_step(self, batch: Batch) -> LossDict: ...

    # True when the generator reads word features (attention over words, as AttnGAN's): the batches
    # then carry the words and their mask as well as the sentence.
    uses_words: bool = False

    # Evaluation and sampling noise for `n` images, drawn from `generator` (DF-GAN's release truncates
    # it); None draws N(0, I) with `sample_noise`.
    eval_noise: Callable[[int, torch.Generator | None], Tensor] | None = None

    # Set when converted from an official netG that carried its own CLIP copy (GALIP, RATLIP): a summary
    # of that copy, checked against the CLIP found when the checkpoint is loaded.
    official_clip_copy: dict[str, list[float]] | None = None

    def verify_official_clip_copy(self, summary: dict[str, list[float]], source: str) -> None:
        """Raise unless this model's CLIP is the one the official netG was trained with."""
        from t2igan.errors import T2IGanError

        raise T2IGanError(f"{source}: records a CLIP copy, but {type(self).__name__} holds no CLIP to check")

    # The D step's fakes, kept for the G step on the same batch: the official loops generate once per
    # iteration and score the same fakes in both steps.
    _kept_fakes: tuple[Tensor, Any] | None = None

    def keep_fakes(self, batch: Batch, fakes: Any) -> None:
        """Keep `fakes` (None: keep nothing) for the G step on this very `batch` to reuse."""
        self._kept_fakes = None if fakes is None else (batch.text.sentence, fakes)

    def take_fakes(self, batch: Batch) -> Any:
        """What the D step kept for this batch, once; None when it kept nothing for it (the G step then
        generates its own)."""
        kept, self._kept_fakes = self._kept_fakes, None
        return kept[1] if kept is not None and kept[0] is batch.text.sentence else None

    def parameter_groups(self) -> dict[str, nn.Module]:
        """The parts whose parameters are reported separately (`t2igan models`, run records).

        Models with a separate conditional head (DF-GAN's netC) add it as "C"."""
        return {"G": self.generator, "D": self.discriminator}

    # The Trainer keeps 4-D weights and batch images in channels_last (NHWC) memory, which oneDNN's and
    # cuDNN's convolutions run faster on. Code that calls `.view` on feature maps (rather than `.reshape`
    # or `.flatten`) fails on NHWC tensors; such a model sets this False and trains in NCHW.
    channels_last: bool = True

    # State-dict prefixes never written to our checkpoints: frozen pretrained parts (GALIP's CLIP)
    # that are loaded from their own weights file and named in the run record by sha256.
    excluded_state_prefixes: tuple[str, ...] = ()

    def checkpoint_states(self) -> dict[str, dict[str, Tensor]]:
        state = self.state_dict()
        return {"model": {k: v for k, v in state.items() if not k.startswith(self.excluded_state_prefixes)}}

    def load_checkpoint_states(
        self, states: dict[str, dict[str, Tensor]], source: str = "checkpoint"
    ) -> None:
        """Strict on everything we store; the excluded (frozen, separately loaded) parts stay as they are. One
        error lists the missing, unexpected and mis-shaped keys, naming `source`."""
        from t2igan.errors import T2IGanError
        from t2igan.weights import check_state_dict_keys

        if "model" not in states:
            raise T2IGanError(f"{source}: holds {sorted(states)}, expected a 'model' entry")
        expected = {
            k: v for k, v in self.state_dict().items() if not k.startswith(self.excluded_state_prefixes)
        }
        check_state_dict_keys(expected, states["model"], f"{source} ({type(self).__name__})")
        self.load_state_dict(states["model"], strict=False)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.generator.parameters() if p.requires_grad]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.discriminator.parameters() if p.requires_grad]

    def sample_noise(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """N(0, I) noise on the model's device; with a seeded `generator`, drawn on the generator's device
        and moved, so a seed gives the same noise on CPU and CUDA."""
        device = next(self.generator.parameters()).device
        if generator is not None and generator.device != device:
            return torch.randn(
                batch_size, self.generator.noise_dim, generator=generator, device=generator.device
            ).to(device)
        return torch.randn(batch_size, self.generator.noise_dim, generator=generator, device=device)

    @torch.no_grad()
    def generate(self, noise: Tensor, text: TextFeatures) -> Tensor:
        """Images in [-1, 1] from the finest stage, for evaluation and sampling."""
        return self.generate_stages(noise, text)[-1]

    @torch.no_grad()
    def generate_stages(self, noise: Tensor, text: TextFeatures) -> list[Tensor]:
        """Images in [-1, 1] of every stage, coarsest first (one entry for a single-stage generator)."""
        out = self.generator(noise, text.sentence, text.words, text.mask)
        stages = list(out) if isinstance(out, (list, tuple)) else [out]
        return [stage.clamp(-1, 1) for stage in stages]


@dataclass
class BuildContext:
    """What a builder may use besides its config: the registry (to look components up by name), the
    loaded text encoder (GALIP reuses CLIP's modules), and the device."""

    registry: Registry
    text_encoder: TextEncoder | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def count_parameters(module: nn.Module) -> dict[str, int]:
    """Unique parameters of a module, split into trainable and frozen."""
    seen: set[int] = set()
    trainable = frozen = 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return {"trainable": trainable, "frozen": frozen, "total": trainable + frozen}
