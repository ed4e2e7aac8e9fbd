"""DF-GAN's released checkpoints (`{'model': {'netG', 'netD', 'netC'}, ...}`, tobran/DF-GAN
code/lib/utils.py `save_models`) mapped onto our modules and back.

Our generator uses the official key names as they are; the discriminator holds NetD as `backbone.*`
and NetC as `head.*`. DDP-trained files carry a `module.` prefix, which is stripped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from t2igan.errors import T2IGanError
from t2igan.nn.interfaces import GANModel
from t2igan.weights import check_state_dict_keys, load_state_dict_file

# official network -> (our part, prefix of its keys inside that part)
PARTS: dict[str, tuple[str, str]] = {
    "netG": ("generator", ""),
    "netD": ("discriminator", "backbone."),
    "netC": ("discriminator", "head."),
}
DDP_PREFIX = "module."

StateDict = dict[str, Tensor]


def strip_ddp_prefix(state: Mapping[str, Tensor]) -> StateDict:
    """Drop the `module.` prefix DistributedDataParallel/DataParallel put on every key, if present."""
    if state and all(key.startswith(DDP_PREFIX) for key in state):
        return {key[len(DDP_PREFIX) :]: value for key, value in state.items()}
    return dict(state)


def _read(path_or_state: str | os.PathLike | Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if isinstance(path_or_state, Mapping):
        return path_or_state, "DF-GAN state dict"
    return load_state_dict_file(path_or_state, "DF-GAN checkpoint"), f"DF-GAN checkpoint {path_or_state}"


def convert_official(
    path_or_state: str | os.PathLike | Mapping[str, Any], model: Any = None
) -> dict[str, StateDict]:
    """`{"generator": ..., "discriminator": ...}` from an official file or its loaded dict (`model`, the
    model the states are for, changes nothing here: every DF-GAN release has the same layout).

    Accepts the saved layout (`{'model': {'netG', 'netD', 'netC'}}`) or the inner dict; any of the
    three networks may be absent (a generator-only file converts to a generator state dict).
    """
    checkpoint, source = _read(path_or_state)
    nets = checkpoint.get("model", checkpoint)
    if not isinstance(nets, Mapping) or not any(name in nets for name in PARTS):
        found = sorted(nets) if isinstance(nets, Mapping) else type(nets).__name__
        raise T2IGanError(
            f"{source}: expected {{'model': {{'netG', 'netD', 'netC'}}}} as tobran/DF-GAN saves it, found {found}"
        )
    converted: dict[str, StateDict] = {}
    for name, (part, prefix) in PARTS.items():
        if name in nets:
            state = strip_ddp_prefix(nets[name])
            converted.setdefault(part, {}).update({prefix + key: value for key, value in state.items()})
    return converted


def to_official(states: Mapping[str, Mapping[str, Tensor]]) -> dict[str, dict[str, StateDict]]:
    """Our `{"generator", "discriminator"}` state dicts in the official `{'model': {netG, netD, netC}}`."""
    nets: dict[str, StateDict] = {}
    for name, (part, prefix) in PARTS.items():
        state = states.get(part, {})
        nets[name] = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    leftover = {
        f"discriminator.{k}"
        for k in states.get("discriminator", {})
        if not k.startswith((PARTS["netD"][1], PARTS["netC"][1]))
    }
    if leftover:
        raise T2IGanError(f"DF-GAN export: keys with no official counterpart: {sorted(leftover)[:20]}")
    return {"model": nets}


def load_official(model: GANModel, path_or_state: str | os.PathLike | Mapping[str, Any]) -> None:
    """Load an official checkpoint strictly into `model`; an error lists missing/extra/mis-shaped keys."""
    converted = convert_official(path_or_state)
    label = path_or_state if not isinstance(path_or_state, Mapping) else "state dict"
    for part, state in converted.items():
        module = getattr(model, part)
        check_state_dict_keys(module.state_dict(), state, f"DF-GAN checkpoint {label} ({part})")
        module.load_state_dict(state)
