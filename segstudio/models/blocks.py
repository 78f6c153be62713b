"""Building blocks shared by the architectures, each written once (no architecture imports another's blocks).

* :class:`ConvBNReLU`, :class:`ConvBN` (the same without the ReLU), :class:`SeparableConvBNReLU`,
  :class:`DoubleConv` (U-Net's (3×3 conv → BN → ReLU) × 2).
* :class:`ASPP`: Atrous Spatial Pyramid Pooling with image-level features (DeepLab v3, arXiv:1706.05587
  Sec. 3.3; separable branches as in DeepLab v3+, arXiv:1802.02611 Sec. 3.2).
* :class:`PyramidPoolingModule` (PSPNet, arXiv:1612.01105 Sec. 3.2).
* :class:`LargeFOV` (DeepLab-LargeFOV's fc6/fc7, arXiv:1412.7062 Sec. 3.1 / Table 2) and :func:`large_fov_for`.
* :class:`FCNHead`: 3×3 conv + BN + ReLU + dropout + 1×1 classifier (torchvision's ``FCNHead``; PSPNet's
  auxiliary head, Sec. 3.3).
* :class:`MaxUnpool2x`: SegNet's index unpooling (arXiv:1511.00561 Fig. 3).

Every block maps (N, C_in, h, w) float tensors to (N, C_out, h, w) unless its docstring says otherwise.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.common import resize
from segstudio.models.encoders import vgg_imagenet_fc

__all__ = [
    "ASPP",
    "ConvBN",
    "ConvBNReLU",
    "DoubleConv",
    "FCNHead",
    "LargeFOV",
    "MaxUnpool2x",
    "PyramidPoolingModule",
    "SeparableConvBNReLU",
    "large_fov_for",
]


class ConvBNReLU(nn.Sequential):
    """k×k conv (no bias, 'same' padding for odd k and the given dilation) → BN → ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, dilation: int = 1) -> None:
        pad = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, padding=pad, dilation=dilation, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ConvBN(nn.Sequential):
    """k×k conv (no bias, 'same' padding for odd k) → BN, no non-linearity (SegNet-Basic's decoder layer,
    arXiv:1511.00561 Sec. 4.1). Same state_dict layout as :class:`ConvBNReLU` (``0.weight``, ``1.*``)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel_size, padding=(kernel_size - 1) // 2, bias=False),
            nn.BatchNorm2d(cout),
        )


class MaxUnpool2x(nn.MaxUnpool2d):
    """``nn.MaxUnpool2d(2, stride=2)`` to exactly twice the input size: (N, C, h, w) + int64 indices from a
    2×2 stride-2 ``MaxPool2d(return_indices=True)`` → (N, C, 2h, 2w), values at the recorded positions,
    zeros elsewhere (SegNet's sparse up-sampling). Calls the ATen op directly: ``F.max_unpool2d`` checks its
    output size with ``torch._check_value``, which fails under ``torch.jit.trace`` (sizes are tensors there).
    """

    def __init__(self) -> None:
        super().__init__(2, stride=2)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.max_unpool2d(x, indices, [2 * x.shape[-2], 2 * x.shape[-1]])


class DoubleConv(nn.Sequential):
    """(3×3 conv → BN → ReLU) × 2 (U-Net's block, Ronneberger et al. 2015 Fig. 1, with BN and 'same' padding)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise 3×3 (atrous) conv + BN + ReLU, then pointwise 1×1 conv + BN + ReLU (DeepLab v3+ Sec. 3.2)."""

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
        dropout: dropout after the projection.

    The image-pooling branch is a biased 1×1 conv without BatchNorm so batch size 1 trains (BN over a 1×1 map
    of one image is undefined).

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


class PyramidPoolingModule(nn.Module):
    """PSPNet's pyramid pooling module (Sec. 3.2).

    Args:
        cin: input channels C.
        bins: output sizes of the adaptive average pools (paper: 1, 2, 3, 6).
        reduction: channels of each level (default C / len(bins)).

    The 1×1-bin branch has a biased conv without BatchNorm so batch size 1 trains.

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


class LargeFOV(nn.Sequential):
    """fc6 (3×3 conv, dilation ``rate``) → ReLU → dropout → fc7 (1×1) → ReLU → dropout (DeepLab-LargeFOV).

    Shapes: (N, cin, h, w) → (N, channels, h, w).
    """

    def __init__(self, cin: int, channels: int = 1024, rate: int = 12, dropout: float = 0.5) -> None:
        super().__init__(
            nn.Conv2d(cin, channels, 3, padding=rate, dilation=rate),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )

    @torch.no_grad()
    def init_from_vgg_fc(self, w6: torch.Tensor, b6: torch.Tensor, w7: torch.Tensor, b7: torch.Tensor) -> None:
        """Initialise from convolutionalised VGG-16 fc6 (4096, 512, 7, 7) / fc7 (4096, 4096, 1, 1) by
        decimation (DeepLab Sec. 3.1): keep every (4096 / channels)-th filter and taps 0, 3, 6."""
        fc6, fc7 = self[0], self[3]
        step = w6.shape[0] // fc6.out_channels
        fc6.weight.copy_(w6[::step, :, ::3, ::3])
        fc6.bias.copy_(b6[::step])
        fc7.weight.copy_(w7[::step, ::step])
        fc7.bias.copy_(b7[::step])


def large_fov_for(encoder: nn.Module, encoder_name: str, channels: int, rate: int) -> LargeFOV:
    """A :class:`LargeFOV` on ``encoder``'s deepest features, ImageNet-initialised for a pretrained VGG-16."""
    head = LargeFOV(encoder.out_channels[-1], channels, rate)
    if encoder_name.startswith("vgg") and encoder.pretrained and 4096 % channels == 0:
        head.init_from_vgg_fc(*vgg_imagenet_fc(encoder_name))
    return head
