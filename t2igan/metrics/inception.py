"""Inception feature extractors, one per FID mode, with their weights resolved like every other weights
file: `standard` (torch-fidelity, TF-FID Inception), `clean` (clean-fid), `paper` (torchvision ImageNet
Inception with the DF-GAN/GALIP pre-processing)."""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError, T2IGanError
from t2igan.metrics.images import to_float, to_uint8, to_uint8_nhwc
from t2igan.weights import (
    WeightsRef,
    check_official,
    check_state_dict_keys,
    flag_setting,
    hub_hash_prefix,
    load_state_dict_file,
    resolve_weights,
    sha256_file,
)

MODES = ("standard", "clean", "paper")
WEIGHTS_FLAG = "--inception-weights"

# torch_fidelity/feature_extractor_inceptionv3.py URL_INCEPTION_V3 (torch-fidelity 0.4.0)
FIDELITY_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
# cleanfid/downloads_helper.py inception_url (clean-fid 0.1.35)
CLEANFID_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
)
# torchvision/models/inception.py Inception_V3_Weights.IMAGENET1K_V1 — what `inception_v3(pretrained=True)`
# loads in DF-GAN/GALIP code/models/inception.py
TORCHVISION_URL = "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"

WEIGHTS_REFS: dict[str, WeightsRef] = {
    "standard": WeightsRef(
        "inception",
        "torch-fidelity",
        "2015-12-05",
        "inception/weights-inception-2015-12-05-6726825d.pth",
        flag_setting(WEIGHTS_FLAG),
        FIDELITY_URL,
    ),
    "clean": WeightsRef(
        "inception",
        "clean-fid",
        "2015-12-05",
        "inception/inception-2015-12-05.pt",
        flag_setting(WEIGHTS_FLAG),
        CLEANFID_URL,
    ),
    "paper": WeightsRef(
        "inception",
        "torchvision",
        "imagenet1k_v1",
        "inception/inception_v3_google-0cc3c7bd.pth",
        flag_setting(WEIGHTS_FLAG),
        TORCHVISION_URL,
    ),
}

# DF-GAN code/models/inception.py BLOCK_INDEX_BY_DIM: feature size -> last block of the official extractor
PAPER_BLOCK_BY_DIM = {64: 0, 192: 1, 768: 2, 2048: 3}
FIDELITY_FEATURES = ("64", "192", "768", "2048")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"FID mode {mode!r} is not one of {', '.join(MODES)} (config key 'mode')")
    return mode


def _hub_download(url: str) -> Path:
    """torch.hub's checkpoint folder, where torch-fidelity and torchvision put these files themselves."""
    target = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hub_hash_prefix(target.name))
    return target


def _cleanfid_download() -> Path:
    from cleanfid.downloads_helper import check_download_inception

    from t2igan.metrics.stats_cache import cache_root

    folder = cache_root() / "weights" / "clean-fid"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(check_download_inception(fpath=str(folder)))


def resolve_inception_weights(mode: str, path: str | os.PathLike | None = None) -> Path:
    """A local weights file for `mode`: `path`, `$T2IGAN_WEIGHTS/<file>`, a plugin, or the library's download."""
    check_mode(mode)
    download = {
        "standard": lambda: _hub_download(FIDELITY_URL),
        "clean": _cleanfid_download,
        "paper": lambda: _hub_download(TORCHVISION_URL),
    }[mode]
    return resolve_weights(WEIGHTS_REFS[mode], path=path, download=download)


def package_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ExtractorInfo:
    """What identifies an extractor's numbers: the provenance fields of every value computed with it."""

    name: str
    mode: str
    backend: str
    backend_version: str
    weights_file: str
    sha256: str
    resize: str
    feature: str
    weights_note: str = ""
    stand_in: bool = False

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "backend_version": self.backend_version,
            "extractor": self.name,
            "extractor_sha256": self.sha256,
            "resize": self.resize,
            "mode": self.mode,
            "feature": self.feature,
            "weights_note": self.weights_note,
            "stand_in": self.stand_in,
        }


class FeatureExtractor(ABC):
    """`extract(images)` -> {"pool": (B, D) CPU tensor, "logits": (B, K) when the extractor has them}.

    Pool features are float64 where the official code stores them so (paper, clean), float32 in standard
    mode as torch-fidelity keeps them; statistics are always computed in float64.
    """

    info: ExtractorInfo
    device: torch.device

    @abstractmethod
    def extract(self, images: Any) -> dict[str, Tensor]: ...

    @property
    def has_logits(self) -> bool:
        return False


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Make every torch.load inside (torch-fidelity's own, which passes weights_only=False) weights-only."""
    names = ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    previous = {name: os.environ.pop(name, None) for name in names}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class FidelityInception(FeatureExtractor):
    """torch-fidelity's `inception-v3-compat`: uint8 input, TF1-style bilinear resize to 299 inside."""

    def __init__(self, path: Path, device: torch.device, feature: str = "2048"):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        if feature not in FIDELITY_FEATURES:
            raise ConfigError(f"feature {feature!r} is not one of torch-fidelity's {FIDELITY_FEATURES}")
        # IS needs the logits; they cost one matmul once the pool features exist, nothing before
        self.features = [feature, "logits_unbiased"] if feature == "2048" else [feature]
        try:
            with _weights_only_loads():
                model = FeatureExtractorInceptionV3(
                    "inception-v3-compat", self.features, feature_extractor_weights_path=str(path)
                )
        except Exception as exc:
            raise T2IGanError(
                f"{WEIGHTS_FLAG} {path}: not torch-fidelity's Inception weights "
                f"(expected the key layout of {WEIGHTS_REFS['standard'].filename}): {type(exc).__name__}: {exc}"
            ) from exc
        self.device = torch.device(device)
        self.model = model.to(self.device)

    @property
    def has_logits(self) -> bool:
        return "logits_unbiased" in self.features

    @torch.no_grad()
    def extract(self, images: Any) -> dict[str, Tensor]:
        out = self.model(to_uint8(images).to(self.device))
        # float32 as torch-fidelity keeps them, so KID/PR match its own computation bit for bit
        result = {"pool": out[0].cpu()}
        if self.has_logits:
            result["logits"] = out[1].cpu()
        return result


class CleanFidInception(FeatureExtractor):
    """clean-fid's `clean` mode: PIL bicubic resize of the uint8 image to 299 (float, not re-quantised),
    then its TorchScript Inception on (x - 128) / 128 (cleanfid/inception_torchscript.py, resize_inside=False).

    The TorchScript archive is read with torch.jit.load, which runs TorchScript, not pickled Python objects.
    """

    def __init__(self, path: Path, device: torch.device):
        from cleanfid.resize import build_resizer

        self.device = torch.device(device)
        try:
            model = torch.jit.load(str(path), map_location=self.device).eval()
            self.layers = model.layers
        except Exception as exc:
            raise T2IGanError(
                f"{WEIGHTS_FLAG} {path}: not clean-fid's TorchScript Inception "
                f"(expected {WEIGHTS_REFS['clean'].filename} with a `layers` module): {type(exc).__name__}: {exc}"
            ) from exc
        self.model = model
        self.resize = build_resizer("clean")

    @torch.no_grad()
    def extract(self, images: Any) -> dict[str, Tensor]:
        resized = np.stack([self.resize(image) for image in to_uint8_nhwc(images)]).astype(np.float32)
        x = torch.from_numpy(resized).permute(0, 3, 1, 2).to(self.device)
        features = self.layers((x - 128) / 128)
        return {"pool": features.reshape(len(x), -1).double().cpu()}


def _paper_blocks(net: nn.Module, last_block: int) -> nn.ModuleList:
    """The four blocks of DF-GAN code/models/inception.py, cut from torchvision's Inception3."""
    stages = [
        [net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(kernel_size=3, stride=2)],
        [net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)],
        [
            net.Mixed_5b,
            net.Mixed_5c,
            net.Mixed_5d,
            net.Mixed_6a,
            net.Mixed_6b,
            net.Mixed_6c,
            net.Mixed_6d,
            net.Mixed_6e,
        ],
        [net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1))],
    ]
    return nn.ModuleList(nn.Sequential(*stage) for stage in stages[: last_block + 1])


# ImageNet mean/std as DF-GAN code/models/inception.py `normalize_input` uses them
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def paper_preprocess(images: Any) -> Tensor:
    """The official FID input: clamp to [-1, 1] (GALIP code/lib/modules.py), (x + 1) / 2
    (`Normalize((-1,-1,-1),(2,2,2))`), `Resize((299, 299))` on the tensor (bilinear, no antialias as in
    torchvision 0.10), then `normalize_input`: x_c * (std_c / 0.5) + (mean_c - 0.5) / 0.5.

    The model's own `F.upsample(..., 299, bilinear, align_corners=True)` is the identity at 299 and is skipped.
    """
    x = (to_float(images).clamp(-1, 1) + 1) / 2
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=False)
    scale = torch.tensor([s / 0.5 for s in IMAGENET_STD], dtype=x.dtype).view(1, 3, 1, 1)
    shift = torch.tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN], dtype=x.dtype).view(1, 3, 1, 1)
    return x * scale + shift


class PaperInception(FeatureExtractor):
    """torchvision's ImageNet Inception-v3 pool features as DF-GAN/GALIP/RATLIP compute FID."""

    def __init__(self, path: Path, device: torch.device, dims: int = 2048):
        from torchvision.models import Inception3

        if dims not in PAPER_BLOCK_BY_DIM:
            raise ConfigError(f"paper-mode feature size {dims} is not one of {sorted(PAPER_BLOCK_BY_DIM)}")
        net = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
        state = load_state_dict_file(path, "Inception weights (torchvision inception_v3)")
        check_state_dict_keys(net.state_dict(), state, f"{WEIGHTS_FLAG} {path}")
        net.load_state_dict(state)
        self.device = torch.device(device)
        self.blocks = _paper_blocks(net, PAPER_BLOCK_BY_DIM[dims]).eval().to(self.device)

    @torch.no_grad()
    def extract(self, images: Any) -> dict[str, Tensor]:
        x = paper_preprocess(images).to(self.device)
        for block in self.blocks:
            x = block(x)
        # DF-GAN calculate_fid: adaptive_avg_pool2d when the block output is not 1x1, float64 storage
        x = F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)
        return {"pool": x.double().cpu()}


RESIZE_DESCRIPTIONS = {
    "standard": "torch-fidelity: uint8, TF1-compatible bilinear to 299 inside the extractor",
    "clean": "clean-fid clean: uint8 -> PIL bicubic to 299 in float (no re-quantisation)",
    "paper": "official DF-GAN/GALIP: clamp, (x+1)/2, tensor bilinear Resize((299,299)) without antialias, "
    "ImageNet normalize_input",
}
BACKENDS = {"standard": "torch-fidelity", "clean": "clean-fid", "paper": "torchvision"}
EXTRACTOR_NAMES = {
    "standard": "inception-v3-compat (TF 2015-12-05)",
    "clean": "inception-2015-12-05 torchscript",
    "paper": "torchvision inception_v3 IMAGENET1K_V1",
}


def build_extractor(
    mode: str,
    weights: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    feature: str | int | None = None,
    weights_note: str | None = None,
    stand_in: bool | None = None,
) -> FeatureExtractor:
    """The extractor of `mode` with resolved weights; `feature` picks the layer ("2048" by default).

    `weights_note`/`stand_in` label values made with random or stand-in weights; by default they come from
    comparing the file's sha256 with the official file's (`check_official`).
    """
    check_mode(mode)
    path = resolve_inception_weights(mode, weights)
    sha256 = sha256_file(path)
    device = torch.device(device)
    # clean-fid's TorchScript gives pool3 only; the other modes can stop at an earlier layer
    feature = "pool3" if mode == "clean" else str(feature or "2048")
    if mode == "standard":
        extractor: FeatureExtractor = FidelityInception(path, device, feature)
    elif mode == "clean":
        extractor = CleanFidInception(path, device)
    else:
        extractor = PaperInception(path, device, int(feature))
    check = check_official(WEIGHTS_REFS[mode], sha256)
    backend = BACKENDS[mode]
    extractor.info = ExtractorInfo(
        name=EXTRACTOR_NAMES[mode],
        mode=mode,
        backend=backend,
        backend_version=package_version(backend),
        weights_file=str(path),
        sha256=sha256,
        resize=RESIZE_DESCRIPTIONS[mode],
        feature=feature,
        weights_note=check.note if weights_note is None else weights_note,
        stand_in=check.stand_in if stand_in is None else bool(stand_in),
    )
    return extractor
