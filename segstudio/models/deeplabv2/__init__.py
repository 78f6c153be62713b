"""DeepLab v2 (Chen, Papandreou, Kokkinos, Murphy, Yuille, "DeepLab: Semantic Image Segmentation with
Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018, arXiv:1606.00915).

Implements Sec. 3.2 and Fig. 4 of the paper, Atrous Spatial Pyramid Pooling as in v2:
- An atrous encoder with output stride 8 (paper: ResNet-101; default here ResNet-50).
- ASPP: parallel 3×3 atrous convolutions with rates 6, 12, 18, 24 ("ASPP-L") on the deepest features,
  each producing K class scores; the branch scores are **summed** (not concatenated) — the v2 fusion.
  For ResNet (the paper's released model) each branch is a single 3×3 conv to K; with a VGG-16 encoder
  (or ``branch_channels`` set) each branch is the paper's Fig. 4 ASPP-L branch: 3×3 atrous fc6 (1024) →
  1×1 fc7 (1024) → 1×1 fc8 (K), ReLU + dropout 0.5 in between.
- Logits bilinearly up-sampled ×8; DenseCRF post-processing as in v1 is available from ``segstudio.postprocess``.

Not implemented: the multi-scale input fusion (MSC) and the CRF inside the model.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model


@register_model(
    "deeplabv2",
    paper="Chen et al., DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, "
    "and Fully Connected CRFs, TPAMI 2018",
    encoders=ENCODERS,
)
class DeepLabV2(EncoderDecoder):
    """DeepLab v2: atrous encoder + ASPP with summed class-score branches.

    Args:
        num_classes: K.
        encoder: backbone (paper: ResNet-101; default ``resnet50``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 (paper) or 16.
        rates: atrous rates of the branches (paper: 6, 12, 18, 24).
        branch_channels: ``None`` = per encoder as in the paper (1024-wide ASPP-L branches for VGG, direct
            3×3 → K for the others); 0 = direct; N > 0 = fc6/fc7 of width N in each branch.

    ``classifier[i]`` is the K-channel output conv of branch i (dilation ``rates[i]`` in the direct form).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("deeplabv2", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    def __init__(
        self,
        num_classes: int,
        encoder: str = "resnet50",
        pretrained: bool = True,
        output_stride: int = 8,
        rates=(6, 12, 18, 24),
        branch_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.rates = tuple(rates)
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        cin = self.encoder.out_channels[-1]
        if branch_channels is None:
            branch_channels = 1024 if encoder.startswith("vgg") else 0
        if branch_channels:
            self.aspp = nn.ModuleList(
                nn.Sequential(
                    nn.Conv2d(cin, branch_channels, 3, padding=r, dilation=r),
                    nn.ReLU(inplace=True),
                    nn.Dropout(0.5),
                    nn.Conv2d(branch_channels, branch_channels, 1),
                    nn.ReLU(inplace=True),
                    nn.Dropout(0.5),
                )
                for r in self.rates
            )
            self.classifier = nn.ModuleList(nn.Conv2d(branch_channels, num_classes, 1) for _ in self.rates)
        else:
            self.aspp = None
            self.classifier = nn.ModuleList(
                nn.Conv2d(cin, num_classes, 3, padding=r, dilation=r) for r in self.rates
            )
        for conv in self.classifier:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        f = feats[-1]
        if self.aspp is None:
            return sum(cls(f) for cls in self.classifier)
        return sum(cls(branch(f)) for branch, cls in zip(self.aspp, self.classifier))
