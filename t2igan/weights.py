"""Where weights come from: a path in config, then $T2IGAN_WEIGHTS, then plugins, then the owning
library's own download when online. Offline and missing gives one error that says what to do.

Also the one safe way to read a checkpoint a user hands us (`load_state_dict_file`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from t2igan.errors import T2IGanError, WeightsNotFoundError
from t2igan.hashing import sha256_file  # noqa: F401  (imported from here by the encoders and metrics)

WEIGHTS_ENV = "T2IGAN_WEIGHTS"


PLAN_COMMANDS = "`t2igan bench PLAN`, or `--plan PLAN` with train, eval and sample"


@dataclass(frozen=True)
class WeightsSetting:
    """Where a user gives a weights file's path instead of placing it under $T2IGAN_WEIGHTS: a command
    flag (`--inception-weights`), a key of an encoder's table in a plan file (`[encoders.damsm] weights`)
    or a model override (`alrgan:lvr_vgg_weights=PATH`). Errors name it, and a test checks that each one
    the code names exists and sets the path."""

    kind: str  # "flag", "plan" or "override"
    key: str  # "--inception-weights", "weights", "lvr_vgg_weights"
    table: str = ""  # the plan table of a "plan" setting: "encoders.damsm"

    @property
    def name(self) -> str:
        return f"[{self.table}] {self.key}" if self.kind == "plan" else self.key

    @property
    def advice(self) -> str:
        """How to give the path, as the end of a sentence."""
        if self.kind == "flag":
            return f"pass its path with {self.key} FILE"
        if self.kind == "plan":
            return f'set {self.key} = "FILE" under [{self.table}] in a plan file ({PLAN_COMMANDS})'
        return f"give its path with the model override {self.key}=FILE"


def flag_setting(flag: str) -> WeightsSetting:
    return WeightsSetting("flag", flag)


def plan_setting(encoder: str, key: str) -> WeightsSetting:
    return WeightsSetting("plan", key, f"encoders.{encoder}")


def override_setting(key: str) -> WeightsSetting:
    return WeightsSetting("override", key)


@dataclass(frozen=True)
class WeightsRef:
    """Identifies one weights file: `kind`/`name`/`tag` for plugins, `filename` for the search path."""

    kind: str  # "text_encoder", "image_encoder", "inception", "clip", "checkpoint", ...
    name: str  # "damsm", "ViT-B-32", ...
    tag: str  # "cub", "openai", ...
    filename: str  # file name looked up under $T2IGAN_WEIGHTS, e.g. "damsm/text_encoder200.pth"
    setting: WeightsSetting | None = None  # where a user gives the path instead; None: a path of a caller's
    origin: str = ""  # where the official file is published, for the error message


# The full sha256 of official files, where one is published: the clean-fid and torch-fidelity Inception
# files as the libraries that pin them record it (docs/weights.md gives the sources), OpenAI's ViT-B/32 from
# the path of its own download URL, torchvision's VGG16 as the DISTS metric pins it. Keyed by the file name
# under $T2IGAN_WEIGHTS.
OFFICIAL_SHA256: dict[str, str] = {
    "inception/weights-inception-2015-12-05-6726825d.pth": (
        "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    ),
    "inception/inception-2015-12-05.pt": "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
    "clip/ViT-B-32.pt": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    "vgg16-397923af.pth": "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
}


@dataclass(frozen=True)
class WeightsCheck:
    """Whether a file is the official one, by its content: `official` is True (its sha256 is the official
    file's), False (it is not), or None (no sha256 of the official file is known to check against)."""

    official: bool | None
    note: str = ""

    @property
    def stand_in(self) -> bool:
        """A number made with these weights is marked unless they are verified as the official file."""
        return self.official is not True


class CheckedWeights:
    """An encoder whose `weights_check` says whether its file is the official one: gives the `stand_in` and
    `weights_note` attributes that every metric's provenance reads (`metrics.values.weights_provenance`)."""

    weights_check: WeightsCheck  # each encoder defines it (a property of what it loaded)

    @property
    def stand_in(self) -> bool:
        return self.weights_check.stand_in

    @property
    def weights_note(self) -> str:
        return self.weights_check.note


def hub_hash_prefix(filename: str) -> str | None:
    """The sha256 prefix of a torch.hub file name (`inception_v3_google-0cc3c7bd.pth` -> `0cc3c7bd`)."""
    match = re.search(r"-([a-f0-9]{8,})\.[a-z]+$", Path(filename).name)
    return match.group(1) if match else None


def check_official(ref: WeightsRef, sha256: str) -> WeightsCheck:
    """Compare a file's sha256 with the official file's: the full sha256 where `OFFICIAL_SHA256` knows it,
    else the sha256 prefix that torch.hub file names carry (`name-<prefix>.pth`, what torch.hub itself
    checks on download), else unverifiable. Never by the file's name alone."""
    short = sha256[:12]
    full = OFFICIAL_SHA256.get(ref.filename)
    if full is not None:
        if sha256 == full:
            return WeightsCheck(True)
        return WeightsCheck(
            False, f"not the official {ref.name} weights: sha256 {short}… is not {full[:12]}…"
        )
    prefix = hub_hash_prefix(ref.filename)
    if prefix is not None:
        if sha256.startswith(prefix):
            return WeightsCheck(True)
        return WeightsCheck(
            False, f"not the official {ref.name} weights: sha256 {short}… does not start with {prefix}"
        )
    return WeightsCheck(
        None,
        f"{ref.name} weights not verified: sha256 {short}…, and no sha256 of the official "
        f"{Path(ref.filename).name} is published to check it against",
    )


def weights_dirs() -> list[Path]:
    value = os.environ.get(WEIGHTS_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def resolve_weights(
    ref: WeightsRef,
    path: str | os.PathLike | None = None,
    download: Callable[[], str | os.PathLike] | None = None,
) -> Path:
    """Return a local file for `ref`, or raise WeightsNotFoundError naming file, place and flag.

    Order: explicit `path` (must exist), `$T2IGAN_WEIGHTS/<filename>` (each directory of the
    os.pathsep-separated list), the `t2igan_resolve_weights` hook, then `download()` (the owning
    library's own download, which fails offline).
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if not candidate.is_file():
            given = ref.setting.name if ref.setting else f"{ref.kind} weights file"
            raise WeightsNotFoundError(
                f"{given} {candidate}: no such file (expected the {ref.kind} weights {ref.filename!r})"
            )
        return candidate
    for directory in weights_dirs():
        candidate = directory / ref.filename
        if candidate.is_file():
            return candidate
    from t2igan.registry import get_plugin_manager

    found = get_plugin_manager().hook.t2igan_resolve_weights(kind=ref.kind, name=ref.name, tag=ref.tag)
    if found:
        return Path(found)
    download_error = ""
    if download is not None:
        try:
            return Path(download())
        except Exception as exc:  # offline, blocked, corrupt download: all end in the same advice
            download_error = f" The download failed: {type(exc).__name__}: {exc}."
    searched = ", ".join(str(d / ref.filename) for d in weights_dirs()) or f"(${WEIGHTS_ENV} is not set)"
    origin = f" The official file is published at {ref.origin}." if ref.origin else ""
    raise WeightsNotFoundError(
        f"{ref.kind} weights {ref.name}/{ref.tag} not found: expected a file named {ref.filename!r}. "
        f"Place it at ${WEIGHTS_ENV}/{ref.filename}{', or ' + ref.setting.advice if ref.setting else ''}. "
        f"Searched: {searched}.{download_error}{origin}"
    )


def load_state_dict_file(path: str | os.PathLike, what: str = "checkpoint") -> Mapping[str, Any]:
    """Load a user-supplied .pth safely (`weights_only=True`), with an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise T2IGanError(f"{what} {path}: no such file")
    try:
        with warnings.catch_warnings():  # torch's note on a plain pickle's protocol: the error below says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # our words, never torch's: its message advises retrying with weights_only=False, which runs code
        raise T2IGanError(f"{what} {path}: {_unreadable_reason(exc)}") from None


def _unreadable_reason(exc: Exception) -> str:
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if refused:
        return (
            f"refused: it holds pickled Python objects ({refused.group(1)}) besides tensors and plain values, "
            "and loading those could run code; t2igan reads only tensors and plain values "
            "(torch.load with weights_only=True)"
        )
    # a cut archive fails in miniz ("central directory"), at its end (EOFError) or seeking past it (OSError)
    if "zip archive" in text or "central directory" in text or isinstance(exc, (EOFError, OSError)):
        return "truncated or damaged: not a complete torch.save archive (an interrupted copy or download?)"
    return (
        f"cannot be read as a PyTorch weights file ({type(exc).__name__}); expected a file written by "
        "torch.save holding tensors and plain values"
    )


def check_state_dict_keys(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, Any], source: str
) -> None:
    """Raise one error listing missing, unexpected and shape-mismatched keys (if any)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(found[k].shape)}"
        for k in set(expected) & set(found)
        if hasattr(found[k], "shape") and tuple(found[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                shown = ", ".join(keys[:20]) + (f", … ({len(keys) - 20} more)" if len(keys) > 20 else "")
                parts.append(f"{label} ({len(keys)}): {shown}")
        raise T2IGanError(f"{source} does not match the expected layout: " + "; ".join(parts))
