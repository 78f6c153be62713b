"""DeepLab v3 (Chen, Papandreou, Schroff, Adam, "Rethinking Atrous Convolution for Semantic Image
Segmentation", arXiv:1706.05587, 2017).

Implements Sec. 3.3 and Fig. 5 of the paper:
- An atrous encoder at output stride 16 (or 8), paper: ResNet-50/101 (default ``resnet50``).
- Atrous Spatial Pyramid Pooling with batch normalisation: one 1×1 conv and three 3×3 atrous convs with
  rates (6, 12, 18) at output stride 16 — doubled to (12, 24, 36) at output stride 8 — each 256 channels
  + BN + ReLU, plus the image-level feature (global average pooling → 1×1 conv → bilinear up-sampling);
  concatenated and projected by a 1×1 conv (256, BN); then the final 1×1 conv to K logits, bilinearly
  up-sampled to the input size. The ASPP module (:mod:`segstudio.models.blocks`) is shared with DeepLab v3+
  (with dense, not separable, 3×3 branches here).

Deviations: the image-pooling branch has a biased 1×1 conv without BN so batch size 1 trains (see
``deeplabv3plus``), and the ASPP projection is followed by dropout 0.1. Multi-grid rates inside the
last ResNet block (Sec. 3.2) are not applied (torchvision's dilated ResNet uses a constant rate).
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ASPP
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model


@register_model(
    "deeplabv3",
    paper="Chen et al., Rethinking Atrous Convolution for Semantic Image Segmentation, arXiv:1706.05587, 2017",
    encoders=ENCODERS,
)
class DeepLabV3(EncoderDecoder):
    """DeepLab v3: atrous encoder + ASPP (with image pooling, BN) + 1×1 classifier.

    Args:
        num_classes: K.
        encoder: backbone (paper: ResNet-50/101; default ``resnet50``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 16 (paper's training setting) or 8 (rates doubled).
        aspp_channels: channels of each ASPP branch and of its projection (paper: 256).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("deeplabv3", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "resnet50",
        pretrained: bool = True,
        output_stride: int = 16,
        aspp_channels: int = 256,
    ) -> None:
        super().__init__()
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.aspp = ASPP(self.encoder.out_channels[-1], aspp_channels, rates=rates, separable=False)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.aspp(feats[-1]))
