"""Backbones that return a pyramid of feature maps, built from torchvision with its weights API.

An encoder's ``forward(x)`` returns a list of feature maps at strides 2, 4, 8, 16, 32 (deeper stages
are dilated instead of strided when an output stride of 8 or 16 is asked for), and ``out_channels``
lists their channel counts.
"""

from __future__ import annotations

import logging

import torch
import torchvision
from torch import nn

log = logging.getLogger(__name__)

ENCODERS = ("mobilenet_v2",)


def _dilate(module: nn.Module, dilation: int) -> None:
    """Turn the strided 3×3 convs of ``module`` into stride-1 convs with the given dilation (atrous)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            m.stride = (1, 1)
            m.dilation = (dilation, dilation)
            m.padding = (dilation, dilation)


def load_torchvision_weights(builder, weights: str | None, name: str):
    """Build a torchvision model with ``weights`` (e.g. ``"IMAGENET1K_V1"``), offline-tolerant.

    torchvision looks in ``$TORCH_HOME/hub/checkpoints`` first and downloads otherwise. When the
    weights are neither on disk nor downloadable, the model is built with random initialisation and a
    warning is logged.

    Returns:
        ``(model, pretrained_loaded: bool)``.
    """
    if weights is None:
        return builder(weights=None), False
    try:
        return builder(weights=weights), True
    except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError
        log.warning("%s: ImageNet weights %s not available offline (%s); using random initialisation", name, weights, exc)
        return builder(weights=None), False


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 feature pyramid (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
    Bottlenecks", CVPR 2018), torchvision's ``features`` without the final 1×1 conv to 1280 channels.

    Args:
        pretrained: load ImageNet weights (``MobileNet_V2_Weights.IMAGENET1K_V1``) when available.
        output_stride: 8, 16 or 32; stages beyond it use dilated convolutions.

    Shapes:
        input float32 (N, 3, H, W) → features with channels (16, 24, 32, 96, 320) at strides
        (2, 4, 8, 16, 32) — capped at ``output_stride``.
    """

    out_channels = (16, 24, 32, 96, 320)

    def __init__(self, pretrained: bool = True, output_stride: int = 16) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        net, self.pretrained = load_torchvision_weights(
            torchvision.models.mobilenet_v2, "IMAGENET1K_V1" if pretrained else None, "mobilenet_v2"
        )
        f = net.features
        self.stages = nn.ModuleList([f[0:2], f[2:4], f[4:7], f[7:14], f[14:18]])
        self.output_stride = output_stride
        if output_stride <= 16:
            _dilate(self.stages[4], 2 if output_stride == 16 else 4)
        if output_stride == 8:
            _dilate(self.stages[3], 2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def get_encoder(name: str, pretrained: bool = True, output_stride: int = 16) -> nn.Module:
    """Build encoder ``name``.

    Raises:
        ValueError: for an unknown encoder (message lists the known ones).
    """
    if name == "mobilenet_v2":
        return MobileNetV2Encoder(pretrained=pretrained, output_stride=output_stride)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")
