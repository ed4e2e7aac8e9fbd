"""RAT-GAN's released checkpoints (plain `netG_*.pth` / `netD_*.pth` state dicts, code/main.py) mapped
onto our modules and back.

The official netG repeats its one LSTM in every block (`lstm.*` and `block{i}.lstm.*`, 8 copies): they
are checked to be equal and kept once as `fusion_shared.*`. model.py's unused `affine4`/`affine5`,
`fea_l`, `fea_ll` go to `blocks.i.unused.*` (bird/coco, 4 affines per block); with model_flower.py
(6 per block) affine4/affine5 are the third affine of `fuse1`/`fuse2`. Some released files lack the
unused layers (they were saved from a model without them: docs/official-code.md, RAT-GAN): they are
filled with zeros (they take no part in any computation). COCO was saved from nn.DataParallel, so a
`module.` prefix is stripped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from t2igan.errors import T2IGanError, T2IGanWarning
from t2igan.nn.interfaces import GANModel
from t2igan.weights import check_state_dict_keys, load_state_dict_file

DDP_PREFIX = "module."
StateDict = dict[str, Tensor]
Source = str | os.PathLike | Mapping[str, Any]


def block_names(affines_per_block: int) -> dict[str, str]:
    """Official name inside `block{i}` -> our name inside `blocks.i`, for the affines and unused layers."""
    names = {
        "affine0": "fuse1.affine0",
        "affine1": "fuse1.affine1",
        "affine2": "fuse2.affine0",
        "affine3": "fuse2.affine1",
        "fea_l": "unused.fea_l",
        "fea_ll": "unused.fea_ll",
    }
    if affines_per_block == 6:  # model_flower.py: affine4 after affine1, affine5 after affine3
        names.update(affine4="fuse1.affine2", affine5="fuse2.affine2")
    elif affines_per_block == 4:
        names.update(affine4="unused.affine4", affine5="unused.affine5")
    else:
        raise T2IGanError(f"affines_per_block={affines_per_block}: RAT-GAN releases have 4 or 6")
    return names


def strip_ddp_prefix(state: Mapping[str, Tensor]) -> StateDict:
    if state and all(key.startswith(DDP_PREFIX) for key in state):
        return {key[len(DDP_PREFIX) :]: value for key, value in state.items()}
    return dict(state)


def _split_block(key: str) -> tuple[int, str, str] | None:
    """`block3.affine0.fc_gamma...` -> (3, "affine0", "fc_gamma..."); `block3.gamma` -> (3, "gamma", "")."""
    head, _, rest = key.partition(".")
    if not head.startswith("block") or not head[5:].isdigit():
        return None
    name, _, tail = rest.partition(".")
    return int(head[5:]), name, tail


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def _shared_lstm(state: Mapping[str, Tensor], source: str) -> StateDict:
    """The LSTM once, after checking that every copy in the file holds the same values."""
    copies: dict[str, Tensor] = {}
    for key, value in state.items():
        split = _split_block(key)
        suffix = (
            key[len("lstm.") :]
            if key.startswith("lstm.")
            else (split[2] if split and split[1] == "lstm" else None)
        )
        if suffix is None:
            continue
        if suffix in copies and not torch.equal(copies[suffix], value):
            raise T2IGanError(f"{source}: {key} differs from the other copies of the shared LSTM")
        copies.setdefault(suffix, value)
    return {f"fusion_shared.{k}": v for k, v in copies.items()}


def generator_from_official(
    state: Mapping[str, Tensor],
    affines_per_block: int = 4,
    unused_layers: bool = True,
    source: str = "RAT-GAN netG",
) -> StateDict:
    names = block_names(affines_per_block)
    out = _shared_lstm(state, source)
    for key, value in state.items():
        split = _split_block(key)
        if key.startswith("lstm.") or (split and split[1] == "lstm"):
            continue
        if split is None:
            head, _, tail = key.partition(".")
            out[_join("to_rgb" if head == "conv_img" else head, tail)] = value
        else:
            index, name, tail = split
            out[_join(f"blocks.{index}", names.get(name, name), tail)] = value
    if unused_layers:
        _fill_unused(out, affines_per_block, source)
    else:
        out = {k: v for k, v in out.items() if ".unused." not in k}
    return out


def _fill_unused(out: StateDict, affines_per_block: int, source: str) -> None:
    """Zeros for unused layers absent from the file, shaped after their used twins."""
    templates = {"unused.affine4": "fuse1.affine0", "unused.affine5": "fuse2.affine0"}
    if affines_per_block == 6:
        templates = {}
    filled = []
    blocks = sorted({int(k.split(".")[1]) for k in out if k.startswith("blocks.")})
    for index in blocks:
        prefix = f"blocks.{index}."
        for unused, twin in templates.items():
            for key in [k for k in out if k.startswith(prefix + twin + ".")]:
                target = prefix + unused + key[len(prefix + twin) :]
                if target not in out:
                    out[target] = torch.zeros_like(out[key])
                    filled.append(target)
        for name, twin in (("fea_l", "fuse1.affine0"), ("fea_ll", "fuse2.affine0")):
            channels = out.get(f"{prefix}{twin}.fc_gamma.linear2.weight")
            if channels is not None and f"{prefix}unused.{name}.weight" not in out:
                out[f"{prefix}unused.{name}.weight"] = channels.new_zeros(256, channels.shape[0])
                out[f"{prefix}unused.{name}.bias"] = channels.new_zeros(256)
                filled += [f"{prefix}unused.{name}.weight", f"{prefix}unused.{name}.bias"]
    if filled:
        warnings.warn(
            f"{source}: {len(filled)} keys of layers the forward never uses were absent and are "
            f"filled with zeros (e.g. {filled[0]})",
            T2IGanWarning,
            stacklevel=3,
        )


def discriminator_from_official(state: Mapping[str, Tensor]) -> StateDict:
    out = {}
    for key, value in state.items():
        split = _split_block(key)
        if split is not None:
            out[_join(f"blocks.{split[0]}", split[1], split[2])] = value
        elif key.startswith("COND_DNET."):
            out["head." + key[len("COND_DNET.") :]] = value
        else:
            out[key] = value
    return out


def _load(item: Source) -> tuple[Mapping[str, Any], str]:
    if isinstance(item, Mapping):
        return item, "RAT-GAN state dict"
    return load_state_dict_file(item, "RAT-GAN checkpoint"), f"RAT-GAN checkpoint {item}"


def _kind(state: Mapping[str, Any], source: str) -> str:
    if any(k.startswith("COND_DNET.") for k in state):
        return "netD"
    if "fc.weight" in state or any(k.startswith("lstm.") for k in state):
        return "netG"
    raise T2IGanError(
        f"{source}: neither a RAT-GAN netG (fc.*, lstm.*) nor a netD (COND_DNET.*); "
        f"first keys {sorted(state)[:5]}"
    )


def convert_official(
    path_or_state: Source | Sequence[Source],
    affines_per_block: int | None = None,
    unused_layers: bool | None = None,
    model: Any = None,
) -> dict[str, StateDict]:
    """`{"generator": ..., "discriminator": ...}` from netG/netD files, their loaded dicts, a list of
    them, or `{"netG": ..., "netD": ...}`. Each file is recognised by its keys. The layout (4 or 6 affines
    per block, unused layers kept) is read from `model` when given, else 4 and True (bird, coco)."""
    if affines_per_block is None:
        affines_per_block = getattr(model, "affines_per_block", 4)
    if unused_layers is None:
        unused_layers = getattr(model, "official_unused_layers", True)
    items = list(path_or_state) if isinstance(path_or_state, (list, tuple)) else [path_or_state]
    converted: dict[str, StateDict] = {}
    for item in items:
        loaded, source = _load(item)
        nets = (
            {k: loaded[k] for k in ("netG", "netD") if k in loaded}
            if any(k in loaded for k in ("netG", "netD"))
            else {None: loaded}
        )
        for name, raw in nets.items():
            state = strip_ddp_prefix(raw)
            kind = name or _kind(state, source)
            if kind == "netG":
                converted["generator"] = generator_from_official(
                    state, affines_per_block, unused_layers, f"{source} (netG)"
                )
            else:
                converted["discriminator"] = discriminator_from_official(state)
    return converted


def _block_key_to_official(inner: str, back: Mapping[str, str]) -> str:
    """`fuse2.affine1.fc_beta...` -> `affine3.fc_beta...`; keys of c1/c2/c_sc/gamma keep their names."""
    for ours, official in back.items():
        if inner.startswith(ours + "."):
            return official + inner[len(ours) :]
    return inner


def generator_to_official(state: Mapping[str, Tensor], affines_per_block: int = 4) -> StateDict:
    back = {ours: official for official, ours in block_names(affines_per_block).items()}
    prefix = "fusion_shared."
    shared = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    netg: StateDict = {}
    for owner in ["lstm"] + [f"block{i}.lstm" for i in blocks]:  # the official G repeats its LSTM
        netg.update({f"{owner}.{k}": v for k, v in shared.items()})
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head == "blocks":
            index, _, inner = rest.partition(".")
            netg[f"block{index}.{_block_key_to_official(inner, back)}"] = value
        elif head == "to_rgb":
            netg[f"conv_img.{rest}"] = value
        elif head != "fusion_shared":
            netg[key] = value
    return netg


def discriminator_to_official(state: Mapping[str, Tensor]) -> StateDict:
    netd: StateDict = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if head == "blocks":
            index, _, inner = rest.partition(".")
            netd[f"block{index}.{inner}"] = value
        elif head == "head":
            netd[f"COND_DNET.{rest}"] = value
        else:
            netd[key] = value
    return netd


def to_official(
    states: Mapping[str, Mapping[str, Tensor]], affines_per_block: int = 4
) -> dict[str, StateDict]:
    """Our state dicts in the official layout: `{"netG": ..., "netD": ...}`, the LSTM in all 8 places."""
    result: dict[str, StateDict] = {}
    if "generator" in states:
        result["netG"] = generator_to_official(states["generator"], affines_per_block)
    if "discriminator" in states:
        result["netD"] = discriminator_to_official(states["discriminator"])
    return result


def load_official(model: GANModel, path_or_state: Source | Sequence[Source]) -> None:
    """Load official netG/netD strictly into a RAT-GAN model; errors list missing/extra/mis-shaped keys."""
    converted = convert_official(path_or_state, model=model)
    for part, state in converted.items():
        module = getattr(model, part)
        check_state_dict_keys(module.state_dict(), state, f"RAT-GAN checkpoint ({part})")
        module.load_state_dict(state)
