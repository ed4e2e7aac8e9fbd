"""Model references as users write them (`dfgan`, `dfgan.tiny`, `dfgan:fusion=rat`), resolved to a
config and built through the registry; parameter counts without allocating weights."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from t2igan.errors import ConfigError, RegistrationError
from t2igan.nn.interfaces import BuildContext, GANModel, count_parameters
from t2igan.specs import ModelSpec, Optimizer, Preset

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry


@dataclass(frozen=True)
class ModelRef:
    """`name[.preset][:key=value,key=value]`: a model, an optional preset, and overrides."""

    name: str
    preset: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """The row name in tables: the reference as written, canonicalised."""
        text = self.name + (f".{self.preset}" if self.preset else "")
        if self.overrides:
            text += ":" + ",".join(f"{k}={_format_value(v)}" for k, v in self.overrides)
        return text

    @property
    def variant(self) -> str:
        """The row name without the preset (a bench fixes the preset by its budget and dataset)."""
        text = self.name
        if self.overrides:
            text += ":" + ",".join(f"{k}={_format_value(v)}" for k, v in self.overrides)
        return text

    def overrides_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_value(text: str) -> Any:
    """Override values: true/false, int, float, or the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_model_ref(text: str) -> ModelRef:
    text = text.strip()
    if not text:
        raise ConfigError("empty model name in --models")
    head, _, tail = text.partition(":")
    name, _, preset = head.partition(".")
    overrides: list[tuple[str, Any]] = []
    for item in filter(None, (part.strip() for part in tail.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--models {text!r}: override {item!r} must look like key=value")
        if key.strip() in dict(overrides):
            raise ConfigError(f"--models {text!r}: override {key.strip()!r} is given twice; give it once")
        overrides.append((key.strip(), parse_value(value)))
    return ModelRef(name.strip(), preset.strip() or None, tuple(sorted(overrides, key=lambda pair: pair[0])))


def parse_model_list(text: str) -> list[ModelRef]:
    """Split `--models` on commas; a `key=value` piece with no `:` continues the previous model's
    overrides, so `alrgan:alr=false,lvr=false,dfgan` is two models."""
    pieces: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part and ":" not in part and pieces:
            pieces[-1] += "," + part
        else:
            pieces.append(part)
    if not pieces:
        raise ConfigError("--models is empty: give at least one model name (see `t2igan models`)")
    return [parse_model_ref(p) for p in pieces]


@dataclass
class ResolvedModel:
    """A model reference with its spec, preset, final build config and optimiser settings."""

    ref: ModelRef
    spec: ModelSpec
    preset: Preset
    config: dict[str, Any] = field(default_factory=dict)  # what the builder reads
    optimizer: Optimizer | None = None  # None: the preset's

    def __post_init__(self) -> None:
        if self.optimizer is None:
            self.optimizer = self.preset.optimizer

    @property
    def label(self) -> str:
        return self.ref.variant

    @property
    def settings(self) -> dict[str, Any]:
        """Config and optimiser under one set of keys, as overrides name them and run records and
        checkpoints keep them."""
        return {**self.config, **self.optimizer.as_config()}

    def with_settings(self, settings: Mapping[str, Any]) -> ResolvedModel:
        """This model with `settings` (a record's or a checkpoint's) as its config and optimiser."""
        keys = Optimizer.CONFIG_KEYS
        config = {k: v for k, v in settings.items() if k not in keys}
        return ResolvedModel(
            self.ref, self.spec, self.preset, config, Optimizer.from_config(settings, self.preset.optimizer)
        )


def resolve(ref: ModelRef, registry: Registry, preset: str | None = None) -> ResolvedModel:
    """Look the model up and apply overrides to its preset; unknown keys fail with the allowed ones."""
    spec: ModelSpec = registry.model(ref.name)
    chosen = spec.preset(ref.preset or preset)
    base = ResolvedModel(ref, spec, chosen, dict(chosen.config))
    nullable = frozenset(
        key
        for other in spec.presets.values()
        for key, value in {**other.config, **other.optimizer.as_config()}.items()
        if value is None
    )
    settings = apply_overrides(base.settings, ref.overrides_dict(), where=f"{ref.label}", nullable=nullable)
    try:
        return base.with_settings(settings)
    except RegistrationError as exc:  # an override of lr_g, beta1, max_epoch … out of range
        raise ConfigError(f"{ref.label}: {exc}") from None


def choose_preset(spec: ModelSpec, dataset: str, explicit: str | None = None) -> str:
    """`explicit`, else the model's paper preset for this dataset if it has one, else its default (`tiny`)."""
    if explicit:
        return explicit
    for name, preset in spec.presets.items():
        if preset.dataset == dataset:
            return name
    return spec.default_preset


def resolve_for_dataset(
    ref: ModelRef, registry: Registry, dataset: str, preset: str | None = None
) -> ResolvedModel:
    """`ref` resolved for a run on `dataset`: the preset it names (or `preset`), else the one for that
    dataset. A reference and `preset` that name two different presets are an error."""
    if preset and ref.preset and preset != ref.preset:
        raise ConfigError(
            f"model {ref.label!r} names preset {ref.preset!r} but --preset (preset=) says {preset!r}"
        )
    spec: ModelSpec = registry.model(ref.name)
    return resolve(ref, registry, preset=choose_preset(spec, dataset, ref.preset or preset))


def apply_overrides(
    base: Mapping[str, Any],
    overrides: Mapping[str, Any],
    where: str,
    nullable: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`base` with `overrides` applied, each of the type of the value it replaces (the preset declares the
    types): a wrong type fails here, naming the key, before anything is built. A key whose preset value
    is a string keeps a string: the words `parse_value` reads as None, booleans or numbers
    (`rat_mode=none`, `name=1`) stay as written. None replaces a value only for the keys in `nullable`
    (None in some preset of the model) and those that are None already."""
    config = dict(base)
    for key, value in overrides.items():
        if key not in config:
            close = difflib.get_close_matches(key, list(config), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{where}: unknown override {key!r}.{hint} Allowed keys: {', '.join(sorted(config))}"
            )
        config[key] = _typed_override(key, value, config[key], key in nullable, where)
    return config


def _typed_override(key: str, value: Any, current: Any, nullable: bool, where: str) -> Any:
    if isinstance(current, str):
        return value if isinstance(value, str) else "none" if value is None else _format_value(value)
    if value is None and (current is None or nullable):
        return None
    if current is None:  # sized elsewhere (from the text encoder) or unset: the builder checks it
        return value
    expected = _expected_kind(current)
    given = "none" if value is None else _format_value(value)
    problem = f"{where}: override {key}={given}: expected {expected} (the preset's {key} is {_format_value(current)})"
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(problem)
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(problem)
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(problem)
        return float(value)
    if isinstance(current, (tuple, list)) and isinstance(
        value, (tuple, list)
    ):  # from Python, not a reference
        return type(current)(value)
    raise ConfigError(
        f"{where}: override {key}={given}: {key} is {expected} and cannot be set in a model reference"
    )


def _expected_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return f"a {type(value).__name__}"


def build_model(resolved: ResolvedModel, context: BuildContext) -> GANModel:
    model = resolved.spec.build(resolved.config, context)
    if not isinstance(model, GANModel):
        raise ConfigError(
            f"model {resolved.spec.name!r}: its build function returned {type(model).__name__}, not a GANModel"
        )
    return model


def parameter_counts(resolved: ResolvedModel, registry: Registry) -> dict[str, dict[str, int]]:
    """Counts per part (G, D, and e.g. C) built on the meta device: no memory, no weights needed."""
    with torch.device("meta"):
        model = build_model(resolved, BuildContext(registry=registry, device=torch.device("meta")))
    return {part: count_parameters(module) for part, module in model.parameter_groups().items()}
