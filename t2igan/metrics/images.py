"""Image conventions at the metrics boundary: generated images are float (B, 3, H, W) in [-1, 1]; real
images come as uint8 (N, H, W, 3) arrays (the data cache), uint8 tensors or PIL images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from t2igan.errors import ConfigError


def _from_pil(images: Sequence[Any]) -> Tensor:
    from t2igan.data.split import to_rgb

    arrays = [
        np.asarray(to_rgb(image, f"{index} of the images given"), dtype=np.uint8)
        for index, image in enumerate(images)
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def as_nchw(images: Any) -> Tensor:
    """A (B, 3, H, W) tensor (uint8 or float) from any of the accepted forms, without changing values."""
    if isinstance(images, (list, tuple)) and images and hasattr(images[0], "convert"):
        return _from_pil(images)
    if isinstance(images, Tensor):
        tensor = images
    else:
        array = np.asarray(images)
        # a read-only memmap slice is copied; torch must not wrap (and warn about) a non-writable array
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    if tensor.ndim == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4:
        raise ConfigError(f"images must be 4-d (B, 3, H, W) or (B, H, W, 3), got shape {tuple(tensor.shape)}")
    if tensor.shape[1] != 3 and tensor.shape[-1] == 3:
        tensor = tensor.permute(0, 3, 1, 2)
    if tensor.shape[1] != 3:
        raise ConfigError(f"images must have 3 colour channels, got shape {tuple(tensor.shape)}")
    return tensor


def to_float(images: Any) -> Tensor:
    """float32 (B, 3, H, W) in [-1, 1]; uint8 input maps 0 -> -1 and 255 -> 1."""
    tensor = as_nchw(images)
    if tensor.dtype == torch.uint8:
        return tensor.float().div(127.5).sub(1.0)
    return tensor.float()


def to_uint8(images: Any) -> Tensor:
    """uint8 (B, 3, H, W), quantised as `torchvision.utils.save_image` writes a PNG of a [-1, 1] image."""
    tensor = as_nchw(images)
    if tensor.dtype == torch.uint8:
        return tensor
    # save_image: normalise to [0, 1], then mul(255).add_(0.5).clamp_(0, 255) and truncate to uint8
    unit = (tensor.float().clamp(-1, 1) + 1) / 2
    return unit.mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


def to_uint8_nhwc(images: Any) -> np.ndarray:
    return to_uint8(images).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def batches(images: Any, batch_size: int) -> Any:
    """Slices of `images` (array, memmap, tensor or list) of at most `batch_size`, in order."""
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]
