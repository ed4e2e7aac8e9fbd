"""Stand-ins for every external weights file, written by tests in the official file format and under the
official file name below a `$T2IGAN_WEIGHTS` folder, with random values: torchvision's and torch-fidelity's
Inception (state dicts in their key layouts), clean-fid's TorchScript Inception (its interface, a few
random layers), OpenAI's CLIP ViT-B/32 (a TorchScript archive of OpenAI's own model class, fp16 as
released) and the AttnGAN DAMSM text and image encoders (state dicts in the official layout)."""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from unittest import mock

import packaging
import torch
from torch import nn

from t2igan.metrics.inception import WEIGHTS_REFS
from t2igan.text.clip import clip_weights_ref
from t2igan.text.damsm import damsm_weights_ref


def kaiming(module: nn.Module, seed: int) -> None:
    """Random weights that keep activations O(1) through the network (BN left at identity statistics)."""
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            fan_in = layer.weight[0].numel()
            with torch.no_grad():
                layer.weight.copy_(
                    torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                )
                if layer.bias is not None:
                    layer.bias.zero_()


def _target(folder: Path, filename: str) -> Path:
    path = folder / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_fidelity_inception(folder: Path, seed: int = 1) -> Path:
    """torch-fidelity's `weights-inception-2015-12-05-6726825d.pth` key layout."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with (
        mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None),
        mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", return_value={}),
    ):
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    kaiming(model, seed)
    path = _target(folder, WEIGHTS_REFS["standard"].filename)
    torch.save(model.state_dict(), path)
    return path


def write_torchvision_inception(folder: Path, seed: int = 2) -> Path:
    """torchvision's `inception_v3_google-0cc3c7bd.pth` state-dict layout (with AuxLogits, as released)."""
    from torchvision.models import Inception3

    model = Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
    kaiming(model, seed)
    path = _target(folder, WEIGHTS_REFS["paper"].filename)
    torch.save(model.state_dict(), path)
    return path


class CleanFidStandIn(nn.Module):
    """The interface of clean-fid's TorchScript Inception (`layers` on (x-128)/128 at 299 px, and
    `forward(x, return_features)`), with a few random layers instead of Inception."""

    def __init__(self, out_channels: int = 128, grid: int = 4):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, out_channels, 9, stride=6), nn.ReLU(), nn.AdaptiveAvgPool2d(grid)
        )

    def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
        return self.layers((x - 128) / 128).flatten(1)


def write_cleanfid_inception(
    folder: Path, out_channels: int = 128, grid: int = 4, seed: int = 3, filename: str | None = None
) -> Path:
    """A TorchScript archive with clean-fid's interface, `out_channels * grid**2` features (2048 by default)."""
    torch.manual_seed(seed)
    model = CleanFidStandIn(out_channels, grid).eval()
    scripted = torch.jit.trace(model, torch.rand(1, 3, 299, 299) * 255)
    path = _target(folder, filename or WEIGHTS_REFS["clean"].filename)
    scripted.save(str(path))
    return path


def openai_clip_package() -> types.ModuleType:
    """OpenAI's `clip` package (test extra `openai-clip`); its `clip.py` imports `pkg_resources.packaging`,
    gone from recent setuptools, so a stand-in is given while it imports."""
    if "pkg_resources" not in sys.modules:
        try:
            importlib.import_module("pkg_resources")
        except ImportError:
            stub = types.ModuleType("pkg_resources")
            stub.packaging = packaging
            sys.modules["pkg_resources"] = stub
    clip = importlib.import_module("clip")
    importlib.import_module("clip.model")
    return clip


def write_openai_clip(folder: Path) -> Path:
    """`clip/ViT-B-32.pt`: OpenAI's ViT-B/32 model class with random weights, traced and saved in fp16 as
    OpenAI's archive is."""
    from t2igan.text.clip import to_clip_input
    from tests.text.test_clip_openai_layout import VIT_B_32, _random_openai_state

    clip = openai_clip_package()
    model = clip.model.build_model(_random_openai_state(clip, **VIT_B_32)).float().eval()
    images = to_clip_input(torch.rand(1, 3, 224, 224) * 2 - 1, "paper")
    with torch.no_grad(), mock.patch("warnings.warn"):
        traced = torch.jit.trace(model, (images, clip.tokenize(["a bird"])), check_trace=False)
    path = _target(folder, clip_weights_ref("ViT-B-32", "openai").filename)
    torch.jit.save(traced.half(), str(path))
    return path


def _scaled(layout: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Values for a state-dict layout that keep a deep convolutional trunk's activations finite: He-scaled
    weights, BatchNorm at identity statistics."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        name = key.rsplit(".", 1)[-1]
        if name == "num_batches_tracked":
            state[key] = torch.tensor(0)
        elif name == "running_var" or (name == "weight" and len(shape) == 1):
            state[key] = torch.ones(shape)
        elif name in ("running_mean", "bias"):
            state[key] = torch.zeros(shape)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=generator) * (2.0 / fan_in) ** 0.5
    return state


def write_damsm(folder: Path, tag: str, vocab_size: int, seed: int = 4) -> tuple[Path, Path]:
    """AttnGAN's `text_encoder<epoch>.pth` (RNN_ENCODER over `vocab_size` words) and `image_encoder<epoch>.pth`
    (CNN_ENCODER on torchvision's Inception trunk) for an official DAMSM tag (cub, coco, flower)."""
    from tests.text.test_damsm_encoders import official_image_layout, official_text_layout, random_state

    text = _target(folder, damsm_weights_ref(tag, "text").filename)
    torch.save(random_state(official_text_layout(vocab_size), seed), text)
    image = _target(folder, damsm_weights_ref(tag, "image").filename)
    torch.save(_scaled(official_image_layout(), seed + 1), image)
    return text, image
