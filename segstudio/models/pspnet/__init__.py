"""PSPNet (Zhao, Shi, Qi, Wang, Jia, "Pyramid Scene Parsing Network", CVPR 2017, arXiv:1612.01105).

Implements Fig. 3 and Sec. 3–4 of the paper:
- A dilated (atrous) encoder with output stride 8 (paper: ResNet with dilated ``layer3``/``layer4``).
- Pyramid Pooling Module (Sec. 3.2): adaptive average pooling to 1×1, 2×2, 3×3 and 6×6 bins, each
  followed by a 1×1 conv reducing the channels to C/N (N = 4 levels) + BN + ReLU, bilinearly up-sampled
  to the feature size and concatenated with the input features (C + 4·C/4 = 2C channels).
- Head: 3×3 conv (512) + BN + ReLU + dropout 0.1, then a 1×1 classifier; logits bilinearly up-sampled ×8.
- Deep supervision (Sec. 3.3): an auxiliary FCN head (3×3 conv 256 + BN + ReLU + dropout + 1×1
  classifier) on the stage-3 features (``res4b22`` for ResNet), returned as ``"aux"`` in training mode
  only (paper weight 0.4 in the loss).

Deviations: torchvision's ResNet stem (one 7×7 conv) instead of the paper's three 3×3 convs, and the
1×1-bin branch has a biased conv without BatchNorm so batch size 1 trains (as in our ASPP).
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.common import ConvBNReLU, resize
from segstudio.models.encoders import ENCODERS, get_encoder
from segstudio.models.registry import ModelSpec, register_model


class PyramidPoolingModule(nn.Module):
    """PSPNet's pyramid pooling module.

    Args:
        cin: input channels C.
        bins: output sizes of the adaptive average pools (paper: 1, 2, 3, 6).
        reduction: channels of each level (default C / len(bins)).

    Shapes: (N, C, h, w) → (N, C + len(bins)·reduction, h, w).
    """

    def __init__(self, cin: int, bins=(1, 2, 3, 6), reduction: int | None = None) -> None:
        super().__init__()
        self.bins = tuple(bins)
        cr = reduction or cin // len(self.bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(cin, cr, 1), nn.ReLU(inplace=True))
            if b == 1
            else nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvBNReLU(cin, cr, 1))
            for b in self.bins
        )
        self.out_channels = cin + cr * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        return torch.cat([x] + [resize(stage(x), size) for stage in self.stages], dim=1)


class FCNHead(nn.Module):
    """3×3 conv + BN + ReLU + dropout, then the 1×1 ``classifier``: (N, cin, h, w) → (N, K, h, w)."""

    def __init__(self, cin: int, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNReLU(cin, channels, 3), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


class PSPNet(nn.Module):
    """PSPNet: dilated encoder + pyramid pooling + head, with an auxiliary head while training.

    Args:
        num_classes: K.
        encoder: backbone (paper: ResNet; default ``resnet50``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 (paper) or 16.
        bins: pyramid levels (paper: 1, 2, 3, 6).
        head_channels: channels of the 3×3 head conv (paper: 512).
        aux_channels: channels of the auxiliary head (paper code: 256); 0 disables it.

    forward: float32 (N, 3, H, W) → ``{"out": (N, K, H, W)}``, plus ``"aux": (N, K, H, W)`` in training mode.
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "resnet50",
        pretrained: bool = True,
        output_stride: int = 8,
        bins=(1, 2, 3, 6),
        head_channels: int = 512,
        aux_channels: int = 256,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"PSPNet needs output_stride 8 or 16, got {output_stride}")
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=output_stride)
        chans = self.encoder.out_channels
        self.ppm = PyramidPoolingModule(chans[4], bins)
        self.head = nn.Sequential(ConvBNReLU(self.ppm.out_channels, head_channels, 3), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)
        self.aux = FCNHead(chans[3], aux_channels, num_classes) if aux_channels else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        feats = self.encoder(x)
        out = {"out": resize(self.classifier(self.head(self.ppm(feats[4]))), size)}
        if self.training and self.aux is not None:
            out["aux"] = resize(self.aux(feats[3]), size)
        return out


SPEC = ModelSpec(
    name="pspnet",
    paper="Zhao et al., Pyramid Scene Parsing Network, CVPR 2017",
    default_encoder="resnet50",
    encoders=ENCODERS,
    output_stride=8,
    input_multiple=1,
    default_loss="ce",
    defaults={"encoder": "resnet50", "output_stride": 8},
)


@register_model(SPEC)
def pspnet(num_classes: int, **kwargs) -> PSPNet:
    """Build :class:`PSPNet`."""
    return PSPNet(num_classes, **kwargs)
