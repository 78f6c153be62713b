"""Helpers shared by the architectures: padding, resizing, bilinear up-sampler init, stride checks.

Layer blocks (conv-BN-ReLU, ASPP, PPM, ...) live in :mod:`segstudio.models.blocks`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def check_output_stride(model: str, output_stride: int | None, fixed: int) -> None:
    """For architectures with one output stride: accept ``None`` or ``fixed``.

    Raises:
        ValueError: naming the architecture and the stride it has.
    """
    if output_stride not in (None, fixed):
        raise ValueError(f"{model} has a fixed output stride of {fixed}; got output_stride={output_stride}")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (N, C, H, W) at the bottom/right to H, W multiples of ``multiple`` (reflect, or replicate
    when the image is too small to reflect). Crop the result back with ``[..., :H, :W]``.

    Written for export too: there is no branch on the pad amounts (a zero pad is a no-op), so torch.export
    (ONNX, symbolic H, W >= ``multiple``) and torch.jit.trace record the padding arithmetic instead of baking
    the example's pad into the graph.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if isinstance(ph, int) and isinstance(pw, int) and not (ph or pw):
        return x
    reflect = min(h, w) >= multiple or min(h, w) > max(ph, pw)  # the first test alone decides symbolic sizes
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if reflect else "replicate")


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) to ``size`` = (H, W) (align_corners=False)."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Weights (channels, channels, k, k) making a ``ConvTranspose2d`` a per-channel bilinear up-sampler
    (FCN's ``upsample_filt``: a separable triangle on the diagonal, zeros between channels)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel_size, kernel_size, dtype=torch.float64)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight.float()


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable ×``factor`` up-sampling (kernel 2·factor, stride factor, padding factor/2, no bias)
    initialised to bilinear interpolation: (N, C, h, w) → (N, C, h·factor, w·factor)."""
    up = nn.ConvTranspose2d(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * factor))
    return up
