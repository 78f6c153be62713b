"""U-Net (Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597).

Implements Fig. 1 of the paper: a contracting path of (3×3 conv + ReLU) ×2 blocks each followed by
2×2 max-pool (channels doubling from ``base_channels``), and an expanding path of 2×2 up-convolution
(transposed conv halving the channels), concatenation with the cropped skip features, and
(3×3 conv + ReLU) ×2; a final 1×1 conv maps to K classes.

Deviations, as most modern re-implementations: 'same' padding (so no cropping is needed and
output size = input size), BatchNorm after each conv, and input padded to a multiple of 2^depth
inside ``forward`` then cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.registry import ModelSpec, register_model


class DoubleConv(nn.Sequential):
    """(3×3 conv → BN → ReLU) × 2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net.

    Args:
        num_classes: K.
        depth: number of 2×2 max-pool steps (paper: 4).
        base_channels: channels of the first block (paper: 64).
        in_channels: input channels (3 for RGB).

    forward: float32 (N, in_channels, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.
    """

    def __init__(self, num_classes: int, depth: int = 4, base_channels: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be >= 1, got {depth}")
        chans = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, chans[0])])
        self.down.extend(DoubleConv(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth)))
        self.up_conv = nn.ModuleList(DoubleConv(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)
        self.multiple = 2**depth

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, conv in zip(self.up, self.up_conv):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
        return {"out": self.classifier(x)[..., :h, :w]}


SPEC = ModelSpec(
    name="unet",
    paper="Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015",
    default_encoder=None,
    output_stride=16,
    input_multiple=16,
    default_loss="ce",
    defaults={"depth": 4, "base_channels": 32},
)


@register_model(SPEC)
def unet(num_classes: int, pretrained: bool = False, encoder: str | None = None, **kwargs) -> UNet:
    """Build :class:`UNet` from random weights (the paper trains from scratch): ``pretrained`` is accepted and
    ignored (the card records ``encoder_pretrained: false``); ``encoder`` must be unset.

    Raises:
        ValueError: ``encoder`` given.
    """
    if encoder not in (None, "none"):
        raise ValueError(f"unet has its own encoder; got encoder={encoder!r}")
    return UNet(num_classes, **kwargs)
