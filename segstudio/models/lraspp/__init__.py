"""LR-ASPP, Lite Reduced Atrous Spatial Pyramid Pooling (Howard et al., "Searching for MobileNetV3",
ICCV 2019, arXiv:1905.02244, Sec. 6.3 and Fig. 10).

Implements the segmentation head of Fig. 10 on a light encoder (default MobileNetV2 at output stride 16,
its last stage atrous as in the paper):
- high-level branch on the deepest (stride-16) features: 1×1 conv (128) + BN + ReLU, multiplied by a
  squeeze-and-excitation-like gate: average pooling → 1×1 conv (128) → sigmoid;
- the gated features are bilinearly up-sampled to the stride-8 features and classified by a 1×1 conv;
- a low-level 1×1 classifier on the stride-8 features; the two class maps are summed and up-sampled ×8.

Deviation (as torchvision's ``lraspp_mobilenet_v3_large``): the gate pools globally instead of the
paper's 49×49 stride-(16, 20) pooling tuned to 1024×2048 Cityscapes crops, so any input size works.
The encoder is MobileNetV2 (ImageNet weights available offline) rather than MobileNetV3.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ConvBNReLU
from segstudio.models.common import resize
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model


class LRASPPHead(nn.Module):
    """The gated high-level branch of LR-ASPP: ``cbr(x) * sigmoid(conv1×1(avgpool(x)))``.

    Shapes: (N, cin, h, w) → (N, channels, h, w).
    """

    def __init__(self, cin: int, channels: int = 128) -> None:
        super().__init__()
        self.cbr = ConvBNReLU(cin, channels, 1)
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x) * self.scale(x)


@register_model(
    "lraspp", paper="Howard et al., Searching for MobileNetV3, ICCV 2019 (LR-ASPP segmentation head)", encoders=ENCODERS
)
class LRASPP(EncoderDecoder):
    """LR-ASPP segmentation model.

    Args:
        num_classes: K.
        encoder: backbone (default ``mobilenet_v2``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 16 (paper) or 8; the low-level branch uses the stride-8 features.
        inter_channels: width of the high-level branch (paper: 128).

    ``classifier["low"]`` / ``classifier["high"]`` are the two 1×1 class-score convs.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("lraspp", num_classes=5, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "mobilenet_v2",
        pretrained: bool = True,
        output_stride: int = 16,
        inter_channels: int = 128,
    ) -> None:
        super().__init__()
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        chans = self.encoder.out_channels
        self.head = LRASPPHead(chans[4], inter_channels)
        self.classifier = nn.ModuleDict(
            {"low": nn.Conv2d(chans[2], num_classes, 1), "high": nn.Conv2d(inter_channels, num_classes, 1)}
        )

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        low, high = feats[2], self.head(feats[4])
        return self.classifier["low"](low) + self.classifier["high"](resize(high, low.shape[-2:]))
