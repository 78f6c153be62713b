"""ParseNet (Liu, Rabinovich, Berg, "ParseNet: Looking Wider to See Better", ICLR 2016 workshop,
arXiv:1506.04579).

Implements Sec. 3 and Fig. 1 of the paper on its VOC baseline (DeepLab-LargeFOV's atrous VGG-16 with
the reduced fc6 (3×3, rate 12, 1024) and fc7 (1×1, 1024), output stride 8):
- Global context (Sec. 3.1): global average pooling of the fc7 features into one vector per image.
- L2 normalisation layer (Sec. 3.2, Eq. 2–6): each feature vector (per pixel for the local map, the
  pooled vector for the context) is divided by its L2 norm over channels and multiplied by a learned
  per-channel scale γ (initialised to ``norm_scale``), because features of different layers have very
  different magnitudes.
- Early fusion: the normalised context vector is "unpooled" (replicated to the spatial size of the
  local map) and concatenated with the normalised local features; a 1×1 classifier gives K scores,
  bilinearly up-sampled to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import large_fov_for
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model


class L2Norm(nn.Module):
    """ParseNet's L2 normalisation with learned scale: ``y = γ · x / ‖x‖₂`` over the channel axis.

    Args:
        channels: C (one scale γ_c per channel).
        scale: initial value of every γ_c.
        eps: lower bound of the norm (all-zero vectors stay zero).

    Shapes: (N, C, h, w) → (N, C, h, w); with all γ_c = s every output vector has norm s.
    """

    def __init__(self, channels: int, scale: float = 10.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=2.0, dim=1, eps=self.eps) * self.weight.view(1, -1, 1, 1)


@register_model(
    "parsenet",
    paper="Liu, Rabinovich, Berg, ParseNet: Looking Wider to See Better, arXiv:1506.04579, 2015",
    encoders=ENCODERS,
)
class ParseNet(EncoderDecoder):
    """ParseNet: LargeFOV features + L2-normalised global context, unpooled and concatenated.

    Args:
        num_classes: K.
        encoder: backbone (paper: ``vgg16``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 (paper's VOC baseline) or 16.
        fc_channels: width of fc6/fc7 (paper: 1024).
        rate: dilation of fc6 (12 at output stride 8).
        norm_scale: initial γ of both L2 normalisation layers.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("parsenet", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "vgg16",
        pretrained: bool = True,
        output_stride: int = 8,
        fc_channels: int = 1024,
        rate: int = 12,
        norm_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        self.fc = large_fov_for(self.encoder, encoder, fc_channels, rate)
        self.local_norm = L2Norm(fc_channels, norm_scale)
        self.global_norm = L2Norm(fc_channels, norm_scale)
        self.classifier = nn.Conv2d(2 * fc_channels, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        local = self.fc(feats[-1])
        context = self.global_norm(local.mean(dim=(2, 3), keepdim=True)).expand_as(local)  # pool, norm, unpool
        return self.classifier(torch.cat([self.local_norm(local), context], dim=1))
