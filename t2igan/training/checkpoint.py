"""Our checkpoint format: model identity + state dicts + optimiser and RNG state, written atomically,
read back with `weights_only=True`, so a resumed run continues with the same numbers."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan.atomic import torch_save_atomic, write_text_atomic
from t2igan.errors import T2IGanError
from t2igan.hashing import sha256_file
from t2igan.weights import load_state_dict_file

FORMAT = "t2igan-checkpoint"
VERSION = 1
STEP_FILE = re.compile(r"^step(\d+)\.pt$")
FINAL_FILE = "final.pt"
CHECKSUM_SUFFIX = ".sha256"


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may draw from, as tensors and plain values (weights_only-safe)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    np_state = np.random.get_state()
    state["numpy"] = {
        "name": np_state[0],
        "keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "pos": int(np_state[2]),
        "has_gauss": int(np_state[3]),
        "cached_gaussian": float(np_state[4]),
    }
    py_version, py_internal, py_gauss = random.getstate()
    state["python"] = {"version": py_version, "internal": list(py_internal), "gauss": py_gauss}
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))


def make_checkpoint(
    *,
    model_info: Mapping[str, Any],
    states: Mapping[str, Mapping[str, torch.Tensor]],
    optimizers: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Mapping[str, int] | None = None,
    include_rng: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": dict(model_info),
        "states": {k: dict(v) for k, v in states.items()},
        "optimizers": dict(optimizers or {}),
        "progress": dict(progress or {}),
        "rng": rng_state() if include_rng else None,
        "extra": dict(extra or {}),
    }


def checksum_path(path: str | os.PathLike) -> Path:
    """`step00000100.pt.sha256` beside `step00000100.pt`, in `sha256sum` format (`sha256sum -c` reads it)."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a checkpoint atomically, then its sha256 beside it. The old checksum goes first: a process
    killed between the two writes leaves a checkpoint without one (read unverified), never one that a
    stale checksum calls damaged."""
    path = Path(path)
    checksum_path(path).unlink(missing_ok=True)
    torch_save_atomic(checkpoint, path)
    write_text_atomic(checksum_path(path), f"{sha256_file(path)}  {path.name}\n")
    return path


def verify_checkpoint(path: str | os.PathLike) -> None:
    """A flipped byte inside a tensor loads without complaint, so a checkpoint is checked against the
    sha256 written beside it at save time (when there is one: older checkpoints and copies carry none)."""
    path, side = Path(path), checksum_path(path)
    if not side.is_file() or not path.is_file():
        return
    recorded = (side.read_text(encoding="utf-8", errors="replace").split() or [""])[0]
    actual = sha256_file(path)
    if actual != recorded:
        raise DamagedCheckpoint(
            f"checkpoint {path}: damaged: its sha256 {actual[:12]} is not the {recorded[:12]} written in "
            f"{side.name} when it was saved"
        )


class DamagedCheckpoint(T2IGanError):
    """A checkpoint whose bytes changed after it was saved."""


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read one of our checkpoints, verified against its checksum; a foreign file gets an error saying
    what to do with it."""
    verify_checkpoint(path)
    data = load_state_dict_file(path, what="checkpoint")
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise T2IGanError(
            f"checkpoint {path}: not a t2igan checkpoint (no format={FORMAT!r} entry). An official release's "
            "file is converted first: `t2igan convert --model NAME.PRESET FILE --out OUT.pt`."
        )
    if data.get("version", 0) > VERSION:
        raise T2IGanError(f"checkpoint {path}: format version {data['version']} is newer than this t2igan")
    for key in ("model", "states"):
        if key not in data:
            raise T2IGanError(f"checkpoint {path}: missing entry {key!r}")
    return dict(data)


def step_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of `stepNNNNNNN.pt` files in a run folder, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_FILE.match(p.name))]
    return sorted(found)


def prune_checkpoints(folder: str | os.PathLike, keep_last: int) -> None:
    for _, path in step_checkpoints(folder)[:-keep_last] if keep_last > 0 else []:
        path.unlink(missing_ok=True)
        checksum_path(path).unlink(missing_ok=True)


def text_encoder_sha(info: Any) -> str | None:
    """The weights sha256 a text-encoder entry (of a record or checkpoint) names: `weights_sha256`, or
    `sha256` in entries of t2igan-pretrained encoders written before the key was unified."""
    info = info if isinstance(info, Mapping) else {}
    return info.get("weights_sha256") or info.get("sha256")


def check_text_encoder(recorded: Any, current: Any, source: str, remedy: str) -> None:
    """The text encoder at hand must be the one `source` was trained with (same weights sha256, when both
    entries name one): its features would otherwise not mean what they meant in training."""
    want, have = text_encoder_sha(recorded), text_encoder_sha(current)
    if want and have and want != have:
        name = recorded.get("name", "text encoder")
        raise T2IGanError(
            f"{source} was trained with {name} weights sha256 {want[:12]}, but the encoder found now has "
            f"{have[:12]}; {remedy}"
        )
