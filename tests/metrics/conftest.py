"""Shared fixtures of the metric tests: Inception weights made here (random, saved in the real key layouts:
torch-fidelity's weights-inception-2015-12-05-6726825d.pth and torchvision's inception_v3 state dict), a
stand-in for clean-fid's TorchScript Inception, fixed small image sets, and stand-in CLIP/DAMSM encoders."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from t2igan.nn.interfaces import TextFeatures
from tests.standins import write_cleanfid_inception, write_fidelity_inception, write_torchvision_inception

RANDOM_NOTE = "random weights (test)"


@pytest.fixture(scope="session")
def fidelity_weights(tmp_path_factory) -> Path:
    """Random weights in torch-fidelity's Inception key layout (test only, not the real TF-FID weights)."""
    return write_fidelity_inception(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def torchvision_weights(tmp_path_factory) -> Path:
    """Random weights in torchvision's inception_v3 state-dict layout (with AuxLogits, as the release has)."""
    return write_torchvision_inception(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def standard64(fidelity_weights):
    """torch-fidelity's extractor at its 64-d layer: the FID pipeline at a fraction of the cost."""
    from t2igan.metrics.inception import build_extractor

    return build_extractor("standard", fidelity_weights, feature="64")


@pytest.fixture(scope="session")
def clean_weights_2048(tmp_path_factory) -> Path:
    """A stand-in TorchScript file in clean-fid's interface with 2048 features (128 channels x 4 x 4)."""
    return write_cleanfid_inception(tmp_path_factory.mktemp("clean2048"), 128, 4)


@pytest.fixture(scope="session")
def clean_weights_small(tmp_path_factory) -> Path:
    """The same interface with 32 features: small enough for a fast Fréchet distance."""
    return write_cleanfid_inception(tmp_path_factory.mktemp("clean32"), 8, 2)


def real_images(count: int = 12, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 (N, H, W, 3): smooth colour gradients plus noise, like a data cache holds."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None, None] * rng.uniform(0.3, 1, (count, 1, 1, 3))
    noise = rng.normal(0, 0.1, (count, size, size, 3))
    return (np.clip(ramp.transpose(0, 2, 1, 3) + ramp + noise, 0, 1.99) / 2 * 255).astype(np.uint8)


def fake_images(count: int = 12, size: int = 32, seed: int = 1) -> torch.Tensor:
    """float (N, 3, H, W) in [-1, 1], another distribution than `real_images`."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 3, size, size, generator=generator) * 2 - 1).mul(0.8).clamp(-1, 1)


def direct_frechet(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """An independent Fréchet distance: symmetric PSD square roots by eigendecomposition (numpy only)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def word_vector(word: str, dim: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(zlib.crc32(word.encode("utf-8")))
    return torch.randn(dim, generator=generator)


class StandInCLIP(nn.Module):
    """CLIP's duck-typed interface with a random linear image tower and hashed bag-of-words text tower."""

    weights_note = RANDOM_NOTE
    stand_in = True
    name = "stand-in clip"

    def __init__(self, dim: int = 16, image_size: int = 16, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.dim, self.image_size = dim, image_size
        self.proj = nn.Linear(3 * 4 * 4, dim)
        self.seen_inputs: list[torch.Tensor] = []

    @torch.no_grad()
    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        self.seen_inputs.append(images)
        return self.proj(nn.functional.adaptive_avg_pool2d(images, 4).flatten(1))

    @torch.no_grad()
    def encode_captions(self, captions: list[str]) -> TextFeatures:
        sentence = torch.stack([sum(word_vector(w, self.dim) for w in c.lower().split()) for c in captions])
        return TextFeatures(sentence=sentence)


class StandInDAMSM:
    """The DAMSM pair's interface: `image_encoder(images) -> (regions, code)`, `text_encoder.encode_captions`."""

    weights_note = RANDOM_NOTE
    stand_in = True

    def __init__(self, dim: int = 16):
        clip = StandInCLIP(dim)
        self.text_encoder = clip
        self.image_encoder = lambda images: (None, clip.image_embedding(images))


def make_records(count: int, captions_per_image: int = 3, classes: int | None = None) -> list[dict]:
    words = ["red", "green", "blue", "small", "large", "circle", "square", "top", "bottom", "left", "right"]
    rng = np.random.default_rng(5)
    records = []
    for i in range(count):
        captions = [" ".join(rng.choice(words, 4)) + f" {i}" for _ in range(captions_per_image)]
        attributes = {} if classes is None else {"class_id": i % classes}
        records.append({"captions": captions, "attributes": attributes})
    return records


SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 230), "yellow": (235, 220, 40)}
BACKGROUNDS = {"black": (15, 15, 15), "grey": (128, 128, 128), "white": (240, 240, 240)}
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "center",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)


def _mask(shape: str, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] + 0.5
    if shape == "circle":
        return (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
    if shape == "square":
        return (np.abs(y - cy) <= radius * 0.85) & (np.abs(x - cx) <= radius * 0.85)
    return (y >= cy - radius) & (y <= cy + radius) & (np.abs(x - cx) <= (y - (cy - radius)) / 2)


def synthetic_shapes(count: int, size: int = 32, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """A miniature `shapes`: one object (shape, colour, size, 3x3 position) on a background, with labels."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), np.uint8)
    labels = []
    for i in range(count):
        label = {
            "shape": SHAPES[rng.integers(3)],
            "colour": list(COLOURS)[rng.integers(4)],
            "size": ("small", "large")[rng.integers(2)],
            "position": POSITIONS[rng.integers(9)],
            "background": list(BACKGROUNDS)[rng.integers(3)],
            "heldout_combo": bool(rng.integers(2)),
        }
        cell = POSITIONS.index(label["position"])
        cy, cx = (cell // 3 + 0.5) * size / 3, (cell % 3 + 0.5) * size / 3
        radius = size * (0.11 if label["size"] == "small" else 0.17)
        image = np.empty((size, size, 3), np.float64)
        image[:] = BACKGROUNDS[label["background"]]
        image[_mask(label["shape"], size, cy, cx, radius)] = COLOURS[label["colour"]]
        images[i] = np.clip(image + rng.normal(0, 6, image.shape), 0, 255)
        labels.append(label)
    return images, labels
