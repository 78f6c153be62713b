"""KSAC: Kernel-Sharing Atrous Convolution (Huang, Wang, Jia, He, "See More Than Once — Kernel-Sharing
Atrous Convolution for Semantic Segmentation", arXiv:1908.09443, 2019; Neurocomputing 2021).

Implements Sec. 3 of the paper: the DeepLab v3+ network (encoder, decoder fusing 48-channel stride-4
features, separable convs — :mod:`segstudio.models.deeplabv3plus`) with ASPP replaced by a KSAC module:
- ONE 3×3 kernel (a single weight tensor, ``KSAC.weight``) applied at several atrous rates
  (6, 12, 18 at output stride 16, doubled at 8) through ``F.conv2d(x, weight, dilation=r)``, so the
  kernel "sees the input more than once" with different receptive fields; each rate keeps its own
  BatchNorm (statistics differ per rate) followed by ReLU;
- as in ASPP, a 1×1 conv branch and an image-level pooling branch;
- the branch outputs concatenated and projected by a 1×1 conv + BN + ReLU.
The atrous branches therefore cost the parameters of one 3×3 conv instead of ``len(rates)``.

Deviations: the paper's Xception-65 backbone is not available (MobileNetV2, which the paper also reports,
is the default); the image-pooling branch has no BN (batch size 1, as in our ASPP). Public
re-implementations differ on whether the shared-kernel branches are summed or concatenated before the
projection; this one concatenates, i.e. KSAC is ASPP with its atrous kernels tied.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.deeplabv3plus import DeepLabV3Plus
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model


class KSAC(nn.Module):
    """Kernel-sharing atrous convolution module (drop-in for ASPP).

    Args:
        cin: input channels.
        cout: channels of each branch and of the output.
        rates: atrous rates at which the one shared 3×3 kernel is applied.
        dropout: dropout after the projection.

    Shapes: (N, cin, h, w) → (N, cout, h, w).
    """

    def __init__(self, cin: int, cout: int = 256, rates=(6, 12, 18), dropout: float = 0.1) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.conv1x1 = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))  # the shared kernel
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.bns = nn.ModuleList(nn.BatchNorm2d(cout) for _ in self.rates)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(
            nn.Conv2d(cout * (len(self.rates) + 2), cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.conv1x1(x)]
        for r, bn in zip(self.rates, self.bns):
            outs.append(F.relu(bn(F.conv2d(x, self.weight, padding=r, dilation=r))))
        outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))


@register_model(
    "ksac",
    paper="Huang et al., See More Than Once — Kernel-Sharing Atrous Convolution for Semantic Segmentation, "
    "arXiv:1908.09443, 2019",
    encoders=ENCODERS,
)
class KSACNet(DeepLabV3Plus):
    """DeepLab v3+ with its ASPP (attribute ``aspp``) replaced by :class:`KSAC`.

    Args:
        num_classes: K.
        encoder: backbone (default ``mobilenet_v2``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 or 16.
        aspp_channels: channels of the KSAC module and decoder (256).
        low_level_channels: reduction of the stride-4 features (48).
        rates: KSAC rates at output stride 16 (doubled at 8); default (6, 12, 18).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("ksac", num_classes=5, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    def __init__(self, num_classes: int, rates=(6, 12, 18), **kwargs) -> None:
        self._ksac_rates = tuple(rates)
        super().__init__(num_classes, **kwargs)

    def make_context(self, cin: int, cout: int, rates: tuple[int, ...]) -> nn.Module:
        scale = 16 // self.encoder.output_stride  # rates are given for output stride 16
        return KSAC(cin, cout, rates=tuple(r * scale for r in self._ksac_rates))


