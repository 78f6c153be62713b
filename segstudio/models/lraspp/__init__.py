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

from segstudio.models.common import ConvBNReLU, resize
from segstudio.models.encoders import ENCODERS, get_encoder
from segstudio.models.registry import ModelSpec, register_model


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


class LRASPP(nn.Module):
    """LR-ASPP segmentation model.

    Args:
        num_classes: K.
        encoder: backbone (default ``mobilenet_v2``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 16 (paper) or 8; the low-level branch uses the stride-8 features.
        inter_channels: width of the high-level branch (paper: 128).

    ``classifier["low"]`` / ``classifier["high"]`` are the two 1×1 class-score convs.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.
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
        if output_stride not in (8, 16):
            raise ValueError(f"LR-ASPP needs output_stride 8 or 16, got {output_stride}")
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=output_stride)
        chans = self.encoder.out_channels
        self.head = LRASPPHead(chans[4], inter_channels)
        self.classifier = nn.ModuleDict(
            {"low": nn.Conv2d(chans[2], num_classes, 1), "high": nn.Conv2d(inter_channels, num_classes, 1)}
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encoder(x)
        low, high = feats[2], self.head(feats[4])
        y = self.classifier["low"](low) + self.classifier["high"](resize(high, low.shape[-2:]))
        return {"out": resize(y, x.shape[-2:])}


SPEC = ModelSpec(
    name="lraspp",
    paper="Howard et al., Searching for MobileNetV3, ICCV 2019 (LR-ASPP segmentation head)",
    default_encoder="mobilenet_v2",
    encoders=ENCODERS,
    output_stride=16,
    input_multiple=1,
    default_loss="ce",
    defaults={"encoder": "mobilenet_v2", "output_stride": 16},
)


@register_model(SPEC)
def lraspp(num_classes: int, **kwargs) -> LRASPP:
    """Build :class:`LRASPP`."""
    return LRASPP(num_classes, **kwargs)
