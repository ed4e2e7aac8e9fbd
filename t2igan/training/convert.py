"""Official released checkpoints into ours: each file through its plugin's converter, loaded strictly
into a paper preset's model, and written with the sha256 of every file it came from."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from t2igan.errors import ConfigError, T2IGanError
from t2igan.models import ModelRef, ResolvedModel, build_model, parse_model_ref, resolve
from t2igan.nn.interfaces import BuildContext, GANModel
from t2igan.training.checkpoint import make_checkpoint
from t2igan.training.session import image_size
from t2igan.weights import load_state_dict_file, sha256_file

if TYPE_CHECKING:  # annotations only: the registry imports every spec
    from t2igan.registry import Registry

logger = logging.getLogger(__name__)


def convert_official(
    files: Sequence[str | os.PathLike], model: str | ModelRef, registry: Registry
) -> dict[str, Any]:
    """The checkpoint (as `make_checkpoint` lays it out) of the official release `files` for `model`,
    e.g. "dfgan.bird256" (the preset may be left out when the model has one paper preset only)."""
    ref = parse_model_ref(model) if isinstance(model, str) else model
    spec = registry.model(ref.name)
    if spec.convert is None:
        raise ConfigError(f"model {spec.name!r} has no converter for official checkpoints")
    resolved = paper_preset(ref, spec, registry)
    paths = [Path(path) for path in files]
    repeated = sorted({str(path) for path in paths if paths.count(path) > 1})
    if repeated:
        raise ConfigError(f"{', '.join(repeated)} given more than once; give each network's file once")
    loaded = {path: load_state_dict_file(path, f"{spec.name} checkpoint") for path in paths}
    built = build_model(resolved, BuildContext(registry, None, torch.device("cpu")))
    states = _convert_files(spec, loaded, built)
    ours = built.checkpoint_states()["model"]
    parts = sorted({key.split(".")[0] for key in ours})
    unknown = sorted(set(states) - set(parts))
    if unknown:
        raise T2IGanError(
            f"{spec.name} converter returned states for {unknown}, parts the model does not have"
        )
    named = ", ".join(map(str, paths))
    if "generator" not in states:
        raise T2IGanError(
            f"{named}: no generator in the file(s); the release's netG file (or entry) holds it"
        )
    for part in sorted(set(parts) - set(states)):  # a G-only release: D keeps the built model's weights
        logger.warning(
            "no %s in %s: it keeps random weights (sampling and evaluation use the generator only; "
            "training on from this checkpoint would not)",
            part,
            named,
        )
    whole = {key: value for key, value in ours.items() if key.split(".")[0] not in states}
    whole.update({f"{part}.{key}": value for part, state in states.items() for key, value in state.items()})
    # strict on everything our checkpoints hold; frozen parts (GALIP's CLIP) load from their own weights
    built.load_checkpoint_states({"model": whole}, f"{named} as {spec.name}.{resolved.preset.name}")
    info = {
        "name": spec.name,
        "variant": resolved.label,
        "preset": resolved.preset.name,
        "config": resolved.settings,
        "image_size": image_size(resolved),
        "dataset": resolved.preset.dataset,
        "text_encoder": {"name": resolved.preset.text_encoder, "official": True},
        "converted_from": [{"file": str(path), "sha256": sha256_file(path)} for path in paths],
    }
    if built.official_clip_copy:  # checked against the CLIP when the file is loaded
        info["official_clip_copy"] = built.official_clip_copy
    return make_checkpoint(model_info=info, states=built.checkpoint_states())


def _convert_files(spec: Any, loaded: dict[Path, Any], model: GANModel) -> dict[str, dict[str, Any]]:
    """Each file through the plugin's converter; two files holding the same part is an error."""
    states: dict[str, dict[str, Any]] = {}
    for path, content in loaded.items():
        try:
            converted = spec.convert(content, model=model)
        except T2IGanError as exc:
            raise T2IGanError(f"{path}: {exc}") from exc
        twice = sorted(set(converted) & set(states))
        if twice:
            raise ConfigError(f"{path}: holds {twice} again; give each network's file once")
        states.update(converted)
    return states


def paper_preset(ref: ModelRef, spec: Any, registry: Registry) -> ResolvedModel:
    """The preset named in the reference; without one, the model's only paper preset. A release's file
    does not say which dataset it was trained on (DF-GAN's bird, coco and flower files have one layout),
    so with several the user names it."""
    if ref.preset:
        return resolve(ref, registry)
    papers = [name for name, preset in spec.presets.items() if preset.dataset is not None]
    if len(papers) == 1:
        return resolve(ref, registry, preset=papers[0])
    raise ConfigError(
        f"--model {ref.label}: name the paper preset the release was trained with: "
        + ", ".join(f"{spec.name}.{name}" for name in papers)
    )
