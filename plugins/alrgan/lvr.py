"""ALR-GAN's Layout Visual Refinement (LVR) loss: perceptual and Gram-matrix style refinement of features
inside the layout masks given by θ (generated) and θ* (real).

The paper compares the stage features themselves: L_PR = 1/(N·D)‖Mask_Θ ⊙ H − Mask_Θ* ⊙ H*‖_F and L_SR the
same on Gram matrices, H the generator's features and H* the real-image encoder's (docs/official-code.md,
ALR-GAN). That is `lvr_features="hidden"`, every preset's default: H is the stage input
H_{i-1} that θ was computed from and H* the ALR encoder's features of the real image, on the same grid as θ
and θ* (the paper indexes them H_i / H*_i, but R = |Θ* − Θ| already puts θ and θ* on one grid, and the masks
live on it). H* is a target (no gradient), as θ* is in the ALR loss.

Two image-feature variants of ours stay as options for comparison: "vgg16" (ImageNet VGG-16 up to
relu2_2, the usual perceptual/style network; weights through t2igan.weights, never downloaded in tests)
and "small" (a frozen 3-layer conv net with fixed-seed random weights), each applied to the generated and
the real image of the stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from t2igan.errors import ConfigError
from t2igan.weights import (
    WeightsRef,
    check_state_dict_keys,
    load_state_dict_file,
    override_setting,
    resolve_weights,
    sha256_file,
)

FEATURE_CHOICES = ("hidden", "small", "vgg16")  # "hidden": the paper's H / H*; the others are ours
SMALL_SEED = 20230117  # fixed: the small extractor is not checkpointed, so every build must be identical
SMALL_WIDTHS = (32, 32, 64)
VGG_RELU2_2 = 9  # torchvision vgg16().features[:9] ends at relu2_2 (conv1_1 … relu2_2)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision VGG16_Weights.IMAGENET1K_V1 transforms
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_REF = WeightsRef(
    kind="vgg",
    name="vgg16",
    tag="imagenet",
    filename="vgg16-397923af.pth",  # torchvision VGG16_Weights.IMAGENET1K_V1 file name
    setting=override_setting("lvr_vgg_weights"),
    origin="https://download.pytorch.org/models/vgg16-397923af.pth",
)


def layout_mask(theta: Tensor, size: tuple[int, int], threshold: float = 1.0) -> Tensor:
    """(B, K, T) word weights → (B, 1, H, W) binary layout mask at `size` (nearest resize).

    A sub-region is in the layout when the word weight it receives, Σ_j θ_{k,j}, is at least
    `threshold` times its mean over the regions. The paper does not say how θ becomes a mask; this
    rule (no gradient through the mask) is ours.
    """
    with torch.no_grad():
        received = theta.sum(dim=2)  # (B, K)
        mean = received.mean(dim=1, keepdim=True)
        side = int(round(theta.shape[1] ** 0.5))
        if side * side != theta.shape[1]:
            raise ValueError(f"θ has {theta.shape[1]} regions: expected a square grid")
        mask = (received >= threshold * mean).to(theta.dtype).view(-1, 1, side, side)
        return F.interpolate(mask, size=size, mode="nearest")


def gram_matrix(features: Tensor) -> Tensor:
    """G(X) = X Xᵀ for X the (D, N) reshaped features: (B, D, H, W) → (B, D, D), unnormalised."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2)


def _per_sample_norm(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).norm(dim=1)


def perceptual_refinement(features: Tensor, real: Tensor, mask: Tensor, real_mask: Tensor) -> Tensor:
    """L_PR = 1/(N·D) ‖M ⊙ F − M* ⊙ F*‖_F (N = H·W positions, D channels), batch mean."""
    normaliser = features[0].numel()
    return (_per_sample_norm(mask * features - real_mask * real) / normaliser).mean()


def style_refinement(features: Tensor, real: Tensor, mask: Tensor, real_mask: Tensor) -> Tensor:
    """L_SR = 1/(N·D) ‖G(M ⊙ F) − G(M* ⊙ F*)‖_F, batch mean."""
    normaliser = features[0].numel()
    difference = gram_matrix(mask * features) - gram_matrix(real_mask * real)
    return (_per_sample_norm(difference) / normaliser).mean()


@dataclass
class LVRTerms:
    loss: Tensor
    perceptual: Tensor
    style: Tensor


def masked_lvr(
    features: Tensor, real_features: Tensor, theta: Tensor, theta_star: Tensor, threshold: float
) -> LVRTerms:
    """L_PR + L_SR of generated `features` against `real_features` (a target: no gradient), each masked by
    its own layout (θ for the generated side, θ* for the real one)."""
    real_features = real_features.detach()
    size = tuple(features.shape[-2:])
    mask = layout_mask(theta, size, threshold)
    real_mask = layout_mask(theta_star, size, threshold)
    perceptual = perceptual_refinement(features, real_features, mask, real_mask)
    style = style_refinement(features, real_features, mask, real_mask)
    return LVRTerms(perceptual + style, perceptual, style)


def lvr_terms(
    extractor: nn.Module, fake: Tensor, real: Tensor, theta: Tensor, theta_star: Tensor, threshold: float
) -> LVRTerms:
    """LVR for one stage on image features (the "small" / "vgg16" variants): the extractor's features of
    the generated and the real image, each masked by its own layout."""
    with torch.no_grad():
        real_features = extractor(real)
    return masked_lvr(extractor(fake), real_features, theta, theta_star, threshold)


class FrozenExtractor(nn.Module):
    """A frozen feature network on images in [-1, 1]; `source` names its weights for run records."""

    def __init__(self, layers: nn.Sequential, imagenet_input: bool, source: str):
        super().__init__()
        self.layers = layers
        self.imagenet_input = imagenet_input
        self.source = source
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenExtractor:
        return super().train(False)  # frozen: never in training mode, whatever the model around it is

    def forward(self, images: Tensor) -> Tensor:
        x = images
        if self.imagenet_input:
            x = ((x + 1) / 2 - self.mean) / self.std
        return self.layers(x)


def small_extractor() -> FrozenExtractor:
    """Three 3×3 convs (32, 32 stride 2, 64) with ReLU, Kaiming-normal from a fixed seed, frozen."""
    layers: list[nn.Module] = []
    in_ch = 3
    for index, width in enumerate(SMALL_WIDTHS):
        layers += [nn.Conv2d(in_ch, width, 3, 2 if index == 1 else 1, 1), nn.ReLU()]
        in_ch = width
    module = nn.Sequential(*layers)
    if next(module.parameters()).device.type != "meta":
        generator = torch.Generator().manual_seed(SMALL_SEED)
        with torch.no_grad():
            for layer in module:
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
                    layer.bias.zero_()
    return FrozenExtractor(module, imagenet_input=False, source=f"random, seed {SMALL_SEED}")


def _vgg_layers() -> nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"], batch_norm=False)[:VGG_RELU2_2]


def _download_vgg() -> Path:
    target = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_REF.filename
    if not target.is_file():  # torchvision's own cache: a file it downloaded before is used as is
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(VGG16_REF.origin, os.fspath(target), progress=False)
    return target


def vgg16_extractor(path: str | os.PathLike | None = None, load: bool = True) -> FrozenExtractor:
    """VGG-16 (ImageNet) up to relu2_2. Weights: `lvr_vgg_weights`, then $T2IGAN_WEIGHTS/vgg16-397923af.pth,
    then torchvision's cache or download; `load=False` builds the layers only (meta-device counting)."""
    layers = _vgg_layers()
    if not load:
        return FrozenExtractor(layers, imagenet_input=True, source="not loaded")
    file = resolve_weights(VGG16_REF, path, download=_download_vgg)
    state = load_state_dict_file(file, "VGG-16 weights")
    wanted = {f"features.{k}": v for k, v in layers.state_dict().items()}
    found = {k: v for k, v in state.items() if k in wanted}
    check_state_dict_keys(wanted, found, os.fspath(file))
    layers.load_state_dict({k.removeprefix("features."): v for k, v in found.items()})
    return FrozenExtractor(
        layers, imagenet_input=True, source=f"vgg16 {file.name} sha256 {sha256_file(file)}"
    )


def build_extractor(
    choice: str, vgg_path: str | os.PathLike | None = None, load: bool = True
) -> FrozenExtractor | None:
    """The LVR feature extractor named by config key `lvr_features` (None for "hidden": no extractor)."""
    if choice == "hidden":
        return None
    if choice == "small":
        return small_extractor()
    if choice == "vgg16":
        return vgg16_extractor(vgg_path, load=load)
    raise ConfigError(f"lvr_features={choice!r}: expected one of {', '.join(FEATURE_CHOICES)}")
