"""Mask-aware transforms built from torchvision.transforms.v2.

Images travel as ``tv_tensors.Image`` (uint8 → float32 normalised at the end) and label maps as
``tv_tensors.Mask`` (resized with nearest neighbour, padded with the ignore index).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segstudio.core.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _MaskToLong(torch.nn.Module):
    def forward(self, image, mask):
        return image, mask.to(torch.long)


def train_transforms(
    crop_size: tuple[int, int] = (256, 256),
    scale_range: tuple[float, float] = (0.5, 2.0),
    base_short_side: int = 360,
    hflip: bool = True,
    color_jitter: float = 0.2,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> v2.Compose:
    """Random scale, random crop (padded with ignore), horizontal flip, colour jitter, normalise.

    Args:
        crop_size: ``(h, w)`` of the training crops, pixels.
        scale_range: random rescale factor range applied relative to ``base_short_side``.
        base_short_side: short side (pixels) that scale 1.0 maps to.
        hflip: random horizontal flip with p = 0.5.
        color_jitter: brightness/contrast/saturation strength (0 disables).

    Call as ``t(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask uint8 (H, W))`` →
    ``(float32 (3, h, w) normalised, int64 (h, w))``.
    """
    lo = max(8, int(base_short_side * scale_range[0]))
    hi = max(lo + 1, int(base_short_side * scale_range[1]))
    ops: list = [v2.RandomResize(lo, hi, antialias=True)]
    ops.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill={tv_tensors.Mask: IGNORE_INDEX, "others": 0}))
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    if color_jitter > 0:
        ops.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    ops += [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std), _MaskToLong()]
    return v2.Compose(ops)


def eval_transforms(mean=IMAGENET_MEAN, std=IMAGENET_STD) -> v2.Compose:
    """Full-size evaluation: only dtype conversion and normalisation."""
    return v2.Compose(
        [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std), _MaskToLong()]
    )


def to_model_input(image: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (H, W, 3) RGB → float32 (3, H, W) normalised tensor ``(x / 255 - mean) / std``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s
