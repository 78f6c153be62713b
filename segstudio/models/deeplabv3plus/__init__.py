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
import torch.nn.functional as F
from torch import nn

from segstudio.models.encoders import ENCODERS, get_encoder
from segstudio.models.registry import ModelSpec, register_model


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise 3×3 (atrous) conv + BN + ReLU, then pointwise 1×1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling with image-level features (DeepLab v3, Sec. 3.3).

    Args:
        cin: input channels.
        cout: channels of each branch and of the output.
        rates: atrous rates of the three 3×3 branches.
        separable: use depthwise-separable 3×3 branches (v3+) instead of dense ones (v3).

    Shapes: (N, cin, h, w) → (N, cout, h, w).
    """

    def __init__(self, cin: int, cout: int = 256, rates=(6, 12, 18), separable: bool = True, dropout: float = 0.1):
        super().__init__()
        self.rates = tuple(rates)
        branches = [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))]
        for r in self.rates:
            if separable:
                branches.append(SeparableConvBNReLU(cin, cout, dilation=r))
            else:
                branches.append(
                    nn.Sequential(
                        nn.Conv2d(cin, cout, 3, padding=r, dilation=r, bias=False),
                        nn.BatchNorm2d(cout),
                        nn.ReLU(inplace=True),
                    )
                )
        self.branches = nn.ModuleList(branches)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(
            nn.Conv2d(cout * (len(branches) + 1), cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        pooled = self.pool(x)
        outs.append(pooled.expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLab v3+ : encoder + ASPP + low-level decoder.

    Args:
        num_classes: K.
        encoder: backbone name (see :mod:`segstudio.models.encoders`).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 or 16.
        aspp_channels: channels of ASPP and decoder (paper: 256).
        low_level_channels: reduction of the stride-4 features (paper: 48).

    forward: float32 (N, 3, H, W) → ``{"out": logits float32 (N, K, H, W)}`` for any H, W.
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
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLab v3+ needs output_stride 8 or 16, got {output_stride}")
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=output_stride)
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

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        feats = self.encoder(x)
        low = self.low_level(feats[1])
        high = self.aspp(feats[-1])
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        y = self.classifier(self.decoder(torch.cat([high, low], dim=1)))
        return {"out": F.interpolate(y, size=size, mode="bilinear", align_corners=False)}


SPEC = ModelSpec(
    name="deeplabv3plus",
    paper="Chen et al., Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation, ECCV 2018",
    default_encoder="mobilenet_v2",
    encoders=ENCODERS,
    output_stride=16,
    input_multiple=1,
    default_loss="ce",
    defaults={"encoder": "mobilenet_v2", "output_stride": 16},
)


@register_model(SPEC)
def deeplabv3plus(num_classes: int, **kwargs) -> DeepLabV3Plus:
    """Build :class:`DeepLabV3Plus`."""
    return DeepLabV3Plus(num_classes, **kwargs)
