"""What a plugin registers: frozen specs of models, fusion blocks, text encoders, datasets, metrics.

Specs are data. A model's presets, licence, citation and paper-reported numbers live here, next
to the function that builds it; nothing in core branches on a model's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from t2igan.errors import RegistrationError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_\-]*$")


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise RegistrationError(
            f"{kind} name {name!r} is invalid: expected lower-case letters, digits, '_' or '-', "
            "starting with a letter"
        )


def _check_callable(kind: str, name: str, field_name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not callable(value):
        raise RegistrationError(f"{kind} {name!r}: field {field_name!r} must be callable, got {value!r}")


def _check_text(kind: str, name: str, field_name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise RegistrationError(f"{kind} {name!r}: field {field_name!r} is required (a non-empty string)")


def _freeze(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class PaperResult:
    """A number a paper (or an official README) reports, with where it comes from."""

    dataset: str
    metric: str
    value: float
    source: str  # e.g. "DF-GAN paper (CVPR 2022) Table 1" or "tobran/DF-GAN README.md"
    note: str = ""

    def __post_init__(self) -> None:
        _check_text("paper result", f"{self.dataset}/{self.metric}", "source", self.source)
        if not isinstance(self.value, (int, float)):
            raise RegistrationError(f"paper result {self.dataset}/{self.metric}: value must be a number")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Optimizer:
    """How a preset trains: Adam for the generator (`lr_g`) and the discriminator (`lr_d`) with the same
    `betas`, for `epochs` epochs (the paper's length; None: the preset has none, a budget decides).

    On the command line and in run records these are the keys `lr_g`, `lr_d`, `beta1`, `beta2` and
    `max_epoch` (`CONFIG_KEYS`), overridden like any other (`dfgan:lr_g=2e-4,max_epoch=5`).
    """

    lr_g: float
    lr_d: float
    betas: tuple[float, float] = (0.0, 0.9)
    epochs: int | None = None

    CONFIG_KEYS = ("lr_g", "lr_d", "beta1", "beta2", "max_epoch")

    def __post_init__(self) -> None:
        for key in ("lr_g", "lr_d"):
            value = getattr(self, key)
            if not _is_number(value) or not value > 0:
                raise RegistrationError(f"optimizer {key}: expected a positive number, got {value!r}")
            object.__setattr__(self, key, float(value))
        betas = tuple(self.betas)
        if len(betas) != 2 or not all(_is_number(b) and 0 <= b < 1 for b in betas):
            raise RegistrationError(f"optimizer betas: expected two numbers in [0, 1), got {self.betas!r}")
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        if self.epochs is not None and (
            not isinstance(self.epochs, int) or isinstance(self.epochs, bool) or self.epochs <= 0
        ):
            raise RegistrationError(
                f"optimizer epochs (max_epoch): expected a positive int or None, got {self.epochs!r}"
            )

    def as_config(self) -> dict[str, Any]:
        """The settings under their `CONFIG_KEYS`, as overrides name them and run records keep them."""
        beta1, beta2 = self.betas
        return {
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "beta1": beta1,
            "beta2": beta2,
            "max_epoch": self.epochs,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], default: Optimizer) -> Optimizer:
        """The settings `config` gives under `CONFIG_KEYS`, `default`'s for the keys it lacks."""
        merged = {**default.as_config(), **{k: v for k, v in config.items() if k in cls.CONFIG_KEYS}}
        return cls(merged["lr_g"], merged["lr_d"], (merged["beta1"], merged["beta2"]), merged["max_epoch"])


TINY_LR_SCALE = 4.0
"""The one learning-rate rule of the `tiny` presets: every built-in model trains at `tiny` with its released
learning rates (`lr_g`, `lr_d`) times 4, so that the short CPU budgets compare models that have learnt
something (the figures: docs/measurements.md, "The `tiny` learning-rate rule"). Paper presets keep the
released rates."""


def tiny_learning_rates(optimizer: Optimizer) -> Optimizer:
    """`optimizer` with both learning rates scaled by TINY_LR_SCALE and no paper length (a `tiny` preset)."""
    return replace(
        optimizer, lr_g=optimizer.lr_g * TINY_LR_SCALE, lr_d=optimizer.lr_d * TINY_LR_SCALE, epochs=None
    )


@dataclass(frozen=True)
class Preset:
    """A named configuration of a model: a paper preset for one dataset, or `tiny` for CPU.

    `config` holds every hyper-parameter the builder reads, `optimizer` how the Trainer trains it; the
    keys of both are the keys a user may override on the command line (`dfgan:fusion=rat,lr_g=2e-4`).
    """

    name: str
    config: Mapping[str, Any]
    optimizer: Optimizer
    image_size: int
    batch_size: int
    text_encoder: str
    dataset: str | None = None  # the dataset this is the paper preset of; None for generic presets
    description: str = ""
    source: str = ""  # the official file the values come from

    def __post_init__(self) -> None:
        _check_name("preset", self.name)
        object.__setattr__(self, "config", _freeze(self.config))
        if not isinstance(self.optimizer, Optimizer):
            raise RegistrationError(
                f"preset {self.name!r}: optimizer must be a t2igan.specs.Optimizer, got {self.optimizer!r}"
            )
        in_config = sorted(set(self.config) & set(Optimizer.CONFIG_KEYS))
        if in_config:
            raise RegistrationError(
                f"preset {self.name!r}: config keys {', '.join(in_config)} belong in its optimizer "
                "(t2igan.specs.Optimizer)"
            )
        if not isinstance(self.image_size, int) or self.image_size <= 0:
            raise RegistrationError(f"preset {self.name!r}: image_size must be a positive int")
        if not isinstance(self.batch_size, int) or self.batch_size <= 0:
            raise RegistrationError(f"preset {self.name!r}: batch_size must be a positive int")
        _check_text("preset", self.name, "text_encoder", self.text_encoder)


@dataclass(frozen=True)
class ModelSpec:
    """A text-to-image GAN: how to build it, its presets, licence, citation and reported numbers.

    `build(config, context)` returns a `t2igan.nn.GANModel`; `config` is a preset's config with the
    user's overrides applied, `context` a `t2igan.nn.BuildContext` (registry, text encoder, device).
    """

    name: str
    build: Callable[..., Any]
    presets: Mapping[str, Preset]
    license: str
    citation: str
    default_preset: str = "tiny"
    description: str = ""
    url: str = ""
    paper_results: tuple[PaperResult, ...] = ()
    # Metrics whose quantity the model's own loss optimises under its text encoder (GALIP and RATLIP: the
    # CLIP similarity behind `clip_score`); a table scoring it under the same encoder says so.
    optimises: tuple[str, ...] = ()
    # convert(path_or_state, model=None) -> {"generator": sd, "discriminator": sd, ...}: one official release
    # file (or its loaded dict) mapped onto our modules; `model` is the built model the states are for (a
    # converter reads layout facts from it, e.g. RAT-GAN's affines per block). None when none was released.
    convert: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        _check_name("model", self.name)
        _check_callable("model", self.name, "convert", self.convert, optional=True)
        _check_callable("model", self.name, "build", self.build)
        _check_text("model", self.name, "license", self.license)
        _check_text("model", self.name, "citation", self.citation)
        presets = dict(self.presets or {})
        if not presets:
            raise RegistrationError(f"model {self.name!r}: at least one preset is required")
        for key, preset in presets.items():
            if not isinstance(preset, Preset) or preset.name != key:
                raise RegistrationError(f"model {self.name!r}: preset {key!r} must be a Preset named {key!r}")
        if self.default_preset not in presets:
            raise RegistrationError(
                f"model {self.name!r}: default_preset {self.default_preset!r} is not one of {sorted(presets)}"
            )
        object.__setattr__(self, "presets", _freeze(presets))
        object.__setattr__(self, "paper_results", tuple(self.paper_results))
        if isinstance(self.optimises, str) or not all(isinstance(m, str) and m for m in self.optimises):
            raise RegistrationError(f"model {self.name!r}: optimises must be a tuple of metric names")
        object.__setattr__(self, "optimises", tuple(self.optimises))

    def preset(self, name: str | None = None) -> Preset:
        from t2igan.errors import UnknownNameError

        name = name or self.default_preset
        if name not in self.presets:
            raise UnknownNameError(f"preset of {self.name}", name, self.presets)
        return self.presets[name]


@dataclass(frozen=True)
class FusionBlockSpec:
    """A way to fuse the text condition into generator features.

    `block(cond_dim, channels, shared=None, **options)` returns a `t2igan.nn.FusionBlock`.
    `shared(cond_dim, noise_dim, **options)`, when given, builds one module per generator that all
    its blocks share (RAT's LSTM); the generator passes it to every block and asks it for the
    initial recurrent state.
    """

    name: str
    block: Callable[..., Any]
    description: str
    shared: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        _check_name("fusion block", self.name)
        _check_callable("fusion block", self.name, "block", self.block)
        _check_callable("fusion block", self.name, "shared", self.shared, optional=True)
        _check_text("fusion block", self.name, "description", self.description)


@dataclass
class LoadedText:
    """A text encoder as a run holds it: the module, what the run record keeps about its weights, and
    what metrics get under the encoder's name (`view`: the module itself when None, or a zero-argument
    loader that is called only when a metric asks)."""

    encoder: Any
    info: dict[str, Any] = field(default_factory=dict)
    view: Any = None


@dataclass
class TrainedText:
    """What an encoder recipe's `train` returns: the encoder ready to measure (as `load` would give it),
    the training figures, and `save(path, stats)`, which writes one checkpoint that `load` reads."""

    encoder: Any
    stats: dict[str, Any]
    save: Callable[[Any, dict[str, Any]], None]


DATA_IMAGE_SIZE = "data_image_size"  # recipe key: the image-cache resolution an encoder learns from


@dataclass(frozen=True)
class EncoderRecipe:
    """How the project trains a text encoder on a dataset that ships no weights (`shapes`), then loads
    and measures it. t2igan.text.pretrained caches the result by a hash of everything that changes it.

    - `defaults`: recipe values over the trainer's own defaults, DATA_IMAGE_SIZE among them (else 64).
    - `config(values)`: the trainer's complete config as a plain mapping; raises ConfigError on bad keys.
    - `train(images, captions, config, device, seed, progress) -> TrainedText`; images uint8 (N, H, W, 3).
    - `load(path, device) -> LoadedText`: a checkpoint `TrainedText.save` wrote.
    - `retrieval(encoder, images, captions, candidates, seed) -> float`: text->image top-1.
    - `key_extra(config)`: more that changes the weights and is not in the config (an architecture file).
    """

    label: str  # for messages: "DAMSM encoder"
    defaults: Mapping[str, Any]
    config: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    train: Callable[..., TrainedText]
    load: Callable[..., LoadedText]
    retrieval: Callable[..., float]
    key_extra: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        _check_text("encoder recipe", self.label, "label", self.label)
        for name in ("config", "train", "load", "retrieval"):
            _check_callable("encoder recipe", self.label, name, getattr(self, name))
        _check_callable("encoder recipe", self.label, "key_extra", self.key_extra, optional=True)
        object.__setattr__(self, "defaults", _freeze(self.defaults))


@dataclass(frozen=True)
class TextEncoderSpec:
    """A text encoder (DAMSM, CLIP, ...): `build(config, context)` returns a `t2igan.nn.TextEncoder`.

    A run on a real dataset loads it with `load(config, context) -> LoadedText` when given, else with
    `build` (its `describe()`, `stand_in` and `weights_note` go into the record). `context` has `device`,
    `dataset` (the dataset's name) and `root` (its folder, or None). On a dataset that ships no weights the
    project trains it with `recipe`; an encoder without one cannot run there.
    """

    name: str
    build: Callable[..., Any]
    description: str
    license: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    load: Callable[..., LoadedText] | None = None
    recipe: EncoderRecipe | None = None
    # The keys of a plan's [encoders.NAME] table that `load`/`build` read besides `config`'s (DAMSM:
    # weights, image_weights, vocab). Declared, any key that neither they nor the recipe know is refused
    # before a run starts (a misspelt `weights` would otherwise be ignored); empty: nothing is checked.
    settings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name("text encoder", self.name)
        _check_callable("text encoder", self.name, "build", self.build)
        _check_callable("text encoder", self.name, "load", self.load, optional=True)
        _check_text("text encoder", self.name, "description", self.description)
        if self.recipe is not None and not isinstance(self.recipe, EncoderRecipe):
            raise RegistrationError(
                f"text encoder {self.name!r}: field 'recipe' must be an EncoderRecipe, got {self.recipe!r}"
            )
        object.__setattr__(self, "config", _freeze(self.config))


@dataclass(frozen=True)
class Protocol:
    """How a dataset is evaluated: what to generate and which metrics to compute on it."""

    name: str
    metrics: tuple[str, ...]
    images_per_caption: int = 1  # generated images per selected test caption
    sample_times: int = 1  # passes over the test split, one random caption per image per pass
    batch_size: int = 32
    drop_last: bool = False
    max_images: int | None = None  # cap for `quick` protocols
    seed: int = 100
    source: str = ""

    def __post_init__(self) -> None:
        _check_name("protocol", self.name)
        object.__setattr__(self, "metrics", tuple(self.metrics))


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset in its official on-disk layout (or generated, like `shapes`).

    `load_split(root, split, **options)` returns a `t2igan.data.Split`. `root` is None for datasets
    that need nothing on disk.
    """

    name: str
    load_split: Callable[..., Any]
    splits: tuple[str, ...]
    captions_per_image: int
    description: str
    license: str = ""
    citation: str = ""
    needs_root: bool = True
    root_env: str = ""  # environment variable giving the default root, e.g. T2IGAN_CUB_ROOT
    protocols: Mapping[str, Protocol] = field(default_factory=dict)
    augmentation: str = "none"  # "none" or "crop_flip" (the official Resize 76/64 + RandomCrop + flip)
    official_counts: Mapping[str, int] = field(
        default_factory=dict
    )  # images per split; `data check` compares

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)
        _check_callable("dataset", self.name, "load_split", self.load_split)
        _check_text("dataset", self.name, "description", self.description)
        if not self.splits:
            raise RegistrationError(f"dataset {self.name!r}: splits must not be empty")
        if self.augmentation not in ("none", "crop_flip"):
            raise RegistrationError(
                f"dataset {self.name!r}: augmentation must be 'none' or 'crop_flip', "
                f"got {self.augmentation!r}"
            )
        object.__setattr__(self, "splits", tuple(self.splits))
        object.__setattr__(self, "protocols", _freeze(self.protocols))
        object.__setattr__(self, "official_counts", _freeze(self.official_counts))


@dataclass(frozen=True)
class MetricSpec:
    """A metric: `build(config, context)` returns an object with `compute(...) -> list[MetricValue]`."""

    name: str
    build: Callable[..., Any]
    description: str
    higher_is_better: bool
    needs: tuple[str, ...] = ()  # what it consumes: "images", "captions", "real_images", ...

    def __post_init__(self) -> None:
        _check_name("metric", self.name)
        _check_callable("metric", self.name, "build", self.build)
        _check_text("metric", self.name, "description", self.description)
        object.__setattr__(self, "needs", tuple(self.needs))


SPEC_KINDS: dict[type, str] = {
    ModelSpec: "model",
    FusionBlockSpec: "fusion block",
    TextEncoderSpec: "text encoder",
    DatasetSpec: "dataset",
    MetricSpec: "metric",
}
