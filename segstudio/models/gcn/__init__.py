"""Global Convolutional Network (Peng, Zhang, Yu, Luo, Sun, "Large Kernel Matters — Improve Semantic
Segmentation by Global Convolutional Network", CVPR 2017, arXiv:1703.02719).

Implements Sec. 3 and Fig. 2 of the paper:
- Global Convolutional Network block (Fig. 2B): two branches, (k×1 conv → 1×k conv) and (1×k conv →
  k×1 conv), summed; no BN or non-linearity after the convs; k = 15 by default. It maps each encoder
  stage directly to K-channel score maps (dense connections within a k×k region at O(k) cost).
- Boundary Refinement block (Fig. 2C): a residual branch 3×3 conv → ReLU → 3×3 conv added to its
  input, on the score maps.
- The pipeline of Fig. 2A on a multi-scale encoder pyramid (res-2 … res-5 at strides 4, 8, 16, 32):
  GCN + BR per stage; from the deepest stage, ×2 deconvolution (transposed conv, bilinear init), sum
  with the next stage's scores, BR, …; after the stride-4 fusion: BR → deconv → BR → deconv → BR at
  full resolution.

The paper uses ResNet-152; the default here is ResNet-50. As every decoder layer works on K-channel score
maps, the whole decoder depends on K and lives under ``classifier``. H, W are padded to a multiple of 32
inside ``forward`` (exact ×2 deconvolutions) and the output cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.common import bilinear_upsampler, check_output_stride
from segstudio.models.encoders import ENCODERS, get_encoder
from segstudio.models.registry import register_model


class GlobalConv(nn.Module):
    """GCN block: (k×1 → 1×k) + (1×k → k×1), 'same' padding.

    Shapes: (N, cin, h, w) → (N, cout, h, w).
    """

    def __init__(self, cin: int, cout: int, k: int = 15) -> None:
        super().__init__()
        if k < 1 or k % 2 == 0:
            raise ValueError(f"GCN kernel size must be odd and positive, got {k}")
        p = k // 2
        self.left = nn.Sequential(
            nn.Conv2d(cin, cout, (k, 1), padding=(p, 0)), nn.Conv2d(cout, cout, (1, k), padding=(0, p))
        )
        self.right = nn.Sequential(
            nn.Conv2d(cin, cout, (1, k), padding=(0, p)), nn.Conv2d(cout, cout, (k, 1), padding=(p, 0))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)


class BoundaryRefine(nn.Module):
    """Boundary Refinement: ``x + conv3×3(relu(conv3×3(x)))``. Shapes: (N, C, h, w) → (N, C, h, w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


class GCNDecoder(nn.Module):
    """Fig. 2A's score-map pipeline on four encoder stages (strides 4, 8, 16, 32).

    Args:
        in_channels: channels of the four stages, shallowest first.
        num_classes: K (channels of every score map).
        k: GCN kernel size.

    forward: four maps (N, C_i, H/2^(i+2), W/2^(i+2)) → scores (N, K, H, W).
    """

    def __init__(self, in_channels, num_classes: int, k: int = 15) -> None:
        super().__init__()
        self.gcn = nn.ModuleList(GlobalConv(c, num_classes, k) for c in in_channels)
        self.br_stage = nn.ModuleList(BoundaryRefine(num_classes) for _ in in_channels)
        self.br_fuse = nn.ModuleList(BoundaryRefine(num_classes) for _ in in_channels[:-1])  # after each sum
        self.up_fuse = nn.ModuleList(bilinear_upsampler(num_classes, 2) for _ in in_channels[:-1])
        self.up_out = nn.ModuleList(bilinear_upsampler(num_classes, 2) for _ in range(2))  # stride 4 → 2 → 1
        self.br_out = nn.ModuleList(BoundaryRefine(num_classes) for _ in range(2))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        scores = [br(gcn(f)) for f, gcn, br in zip(feats, self.gcn, self.br_stage)]
        x = scores[-1]
        for i in reversed(range(len(scores) - 1)):
            x = self.br_fuse[i](self.up_fuse[i](x) + scores[i])
        for up, br in zip(self.up_out, self.br_out):
            x = br(up(x))
        return x


@register_model(
    "gcn",
    paper="Peng et al., Large Kernel Matters — Improve Semantic Segmentation by Global Convolutional Network, "
    "CVPR 2017",
    encoders=ENCODERS,
    output_stride=32,
)
class GCN(EncoderDecoder):
    """Global Convolutional Network with Boundary Refinement.

    Args:
        num_classes: K.
        encoder: backbone (paper: ResNet-152; default ``resnet50``), used at output stride 32.
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        kernel_size: k of the GCN blocks (paper: 15).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("gcn", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    input_multiple = 32  # exact ×2 deconvolutions

    def __init__(
        self,
        num_classes: int,
        encoder: str = "resnet50",
        pretrained: bool = True,
        kernel_size: int = 15,
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        check_output_stride("gcn", output_stride, 32)
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=32)
        self.classifier = GCNDecoder(self.encoder.out_channels[1:], num_classes, kernel_size)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(feats[1:])
