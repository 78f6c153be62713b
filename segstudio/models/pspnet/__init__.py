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

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ConvBNReLU, FCNHead, PyramidPoolingModule
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model

__all__ = ["FCNHead", "PSPNet", "PyramidPoolingModule"]



@register_model("pspnet", paper="Zhao et al., Pyramid Scene Parsing Network, CVPR 2017", encoders=ENCODERS)
class PSPNet(EncoderDecoder):
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

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("pspnet", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
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
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        chans = self.encoder.out_channels
        self.ppm = PyramidPoolingModule(chans[4], bins)
        self.head = nn.Sequential(ConvBNReLU(self.ppm.out_channels, head_channels, 3), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)
        self.aux = FCNHead(chans[3], aux_channels, num_classes) if aux_channels else None

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.head(self.ppm(feats[4])))

    def auxiliary(self, feats: list[torch.Tensor]) -> torch.Tensor | None:
        return None if self.aux is None else self.aux(feats[3])
