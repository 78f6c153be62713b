"""A plain fully convolutional baseline: the simplest per-pixel classifier one can train end to end.

Not from a single paper: the "stack of convolutions + 1×1 classifier" baseline every segmentation
paper beats (cf. Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation",
CVPR 2015, Sec. 3, which makes any conv stack a dense predictor).

Implements: ``depth`` 3×3 convolutions (stride 1, 'same' padding) each followed by BatchNorm and ReLU,
all at the input resolution (no pooling, no stride, no dilation; receptive field 2·depth + 1), and a
1×1 convolution mapping to K class scores. It is the reference a real architecture must clearly beat.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.common import ConvBNReLU, check_output_stride
from segstudio.models.registry import ModelSpec, register_model


class SimpleCNN(nn.Module):
    """Same-resolution conv stack + 1×1 classifier.

    Args:
        num_classes: K.
        depth: number of 3×3 conv + BN + ReLU layers.
        width: channels of every hidden layer.
        in_channels: input channels (3 for RGB).

    forward: float32 (N, in_channels, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.
    """

    def __init__(self, num_classes: int, depth: int = 6, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"simple_cnn depth must be >= 1, got {depth}")
        self.features = nn.Sequential(*(ConvBNReLU(in_channels if i == 0 else width, width) for i in range(depth)))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.classifier(self.features(x))}


SPEC = ModelSpec(
    name="simple_cnn",
    paper="Baseline: same-resolution conv stack + 1×1 classifier (cf. Long et al., FCN, CVPR 2015, Sec. 3)",
    default_encoder=None,
    output_stride=1,
    input_multiple=1,
    default_loss="ce",
    defaults={"depth": 6, "width": 64},
)


@register_model(SPEC)
def simple_cnn(
    num_classes: int, pretrained: bool = False, encoder: str | None = None, output_stride: int | None = None, **kwargs
) -> SimpleCNN:
    """Build :class:`SimpleCNN` (no encoder; ``pretrained`` is accepted and ignored, ``encoder`` must be unset)."""
    check_output_stride("simple_cnn", output_stride, 1)
    if encoder not in (None, "none"):
        raise ValueError(f"simple_cnn has no encoder; got encoder={encoder!r}")
    return SimpleCNN(num_classes, **kwargs)
