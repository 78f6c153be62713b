"""DeepLab v3+ (Chen, Zhu, Papandreou, Schroff, Adam, "Encoder-Decoder with Atrous Separable
Convolution for Semantic Image Segmentation", ECCV 2018, arXiv:1802.02611).

Implements the parts of the paper's Fig. 2 and Sec. 3:
- Atrous Spatial Pyramid Pooling (ASPP, from DeepLab v3, arXiv:1706.05587 Sec. 3.3): a 1×1 branch,
  three 3×3 atrous branches at rates (6, 12, 18) for output_stride 16 (doubled to (12, 24, 36) for
  output_stride 8), and an image-level pooling branch; concatenated and projected to 256 channels.
- Atrous *separable* convolution (Sec. 3.2): depthwise 3×3 atrous + pointwise 1×1, each with BN+ReLU,
  in ASPP and decoder.
- Decoder (Sec. 3.1): low-level features (stride 4) reduced to 48 channels by 1×1 conv, concatenated with
  the ×4 up-sampled ASPP output, refined by two 3×3 (separable) convs, classified, up-sampled ×4.

Deviation: the image-pooling branch uses a biased 1×1 conv without BatchNorm so batch size 1 trains
(BN over a 1×1 map of one image is undefined).
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ASPP, SeparableConvBNReLU
from segstudio.models.common import resize
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model

__all__ = ["ASPP", "DeepLabV3Plus", "SeparableConvBNReLU"]


@register_model(
    "deeplabv3plus",
    paper="Chen et al., Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation, ECCV 2018",
    encoders=ENCODERS,
)
class DeepLabV3Plus(EncoderDecoder):
    """DeepLab v3+ : encoder + ASPP + low-level decoder.

    Args:
        num_classes: K.
        encoder: backbone name (see :mod:`segstudio.models.encoders`).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 or 16.
        aspp_channels: channels of ASPP and decoder (paper: 256).
        low_level_channels: reduction of the stride-4 features (paper: 48).

    forward: float32 (N, 3, H, W) → ``{"out": logits float32 (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("deeplabv3plus", num_classes=11, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 11, 64, 96])
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "mobilenet_v2",
        pretrained: bool = True,
        output_stride: int = 16,
        aspp_channels: int = 256,
        low_level_channels: int = 48,
    ) -> None:
        super().__init__()
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        chans = self.encoder.out_channels
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.aspp = self.make_context(chans[-1], aspp_channels, rates)
        self.low_level = nn.Sequential(
            nn.Conv2d(chans[1], low_level_channels, 1, bias=False),
            nn.BatchNorm2d(low_level_channels),
            nn.ReLU(inplace=True),
        )
        self.decoder = nn.Sequential(
            SeparableConvBNReLU(aspp_channels + low_level_channels, aspp_channels),
            SeparableConvBNReLU(aspp_channels, aspp_channels),
        )
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def make_context(self, cin: int, cout: int, rates: tuple[int, ...]) -> nn.Module:
        """The multi-scale context module on the deepest features: (N, cin, h, w) → (N, cout, h, w).

        Separable ASPP here; a subclass may swap it (KSAC does) while keeping the decoder.
        """
        return ASPP(cin, cout, rates=rates, separable=True)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        low = self.low_level(feats[1])
        high = resize(self.aspp(feats[-1]), low.shape[-2:])
        return self.classifier(self.decoder(torch.cat([high, low], dim=1)))
