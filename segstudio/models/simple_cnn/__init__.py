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

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ConvBNReLU
from segstudio.models.common import check_output_stride
from segstudio.models.registry import register_model


@register_model(
    "simple_cnn",
    paper="Baseline: same-resolution conv stack + 1×1 classifier (cf. Long et al., FCN, CVPR 2015, Sec. 3)",
    output_stride=1,
)
class SimpleCNN(EncoderDecoder):
    """Same-resolution conv stack + 1×1 classifier.

    Args:
        num_classes: K.
        depth: number of 3×3 conv + BN + ReLU layers.
        width: channels of every hidden layer.
        in_channels: input channels (3 for RGB).

        pretrained, encoder, output_stride: accepted for the common builder interface: ``pretrained`` is
            ignored (no encoder), ``encoder`` must be unset, ``output_stride`` ``None`` or 1.

    forward: float32 (N, in_channels, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("simple_cnn", num_classes=5, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    output_fit = "none"  # logits are at the input resolution

    def __init__(
        self,
        num_classes: int,
        depth: int = 6,
        width: int = 64,
        in_channels: int = 3,
        pretrained: bool = False,
        encoder: str | None = None,
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        check_output_stride("simple_cnn", output_stride, 1)
        if encoder not in (None, "none"):
            raise ValueError(f"simple_cnn has no encoder; got encoder={encoder!r}")
        if depth < 1:
            raise ValueError(f"simple_cnn depth must be >= 1, got {depth}")
        self.features = nn.Sequential(*(ConvBNReLU(in_channels if i == 0 else width, width) for i in range(depth)))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def decode(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(feats)
