"""U-Net (Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015, arXiv:1505.04597).

Implements Fig. 1 of the paper: a contracting path of (3×3 conv + ReLU) ×2 blocks each followed by
2×2 max-pool (channels doubling from ``base_channels``), and an expanding path of 2×2 up-convolution
(transposed conv halving the channels), concatenation with the cropped skip features, and
(3×3 conv + ReLU) ×2; a final 1×1 conv maps to K classes.

Deviations, as most modern re-implementations: 'same' padding (so no cropping is needed and
output size = input size), BatchNorm after each conv, and input padded to a multiple of 2^depth
inside ``forward`` then cropped back.

With ``encoder=NAME`` (:class:`EncoderUNet`) the contracting path is a torchvision backbone instead
(MobileNetV2, ResNet, VGG; ImageNet weights when on disk), its five feature maps at strides 2–32 playing
the paper's five contracting levels, as in segmentation_models_pytorch's ``Unet`` and TernausNet
(Iglovikov & Shvets, arXiv:1801.05746, a U-Net with an ImageNet VGG-11 encoder). The expanding path is the
paper's: 2×2 up-convolution, concatenation with the skip at the same stride, (3×3 conv + BN + ReLU) ×2;
one last up-convolution without a skip returns to full resolution. Use it when the images are few or the
training is short: the paper's own contracting path starts from random weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import DoubleConv
from segstudio.models.encoders import ENCODERS, get_encoder
from segstudio.models.registry import ModelSpec, register_model

__all__ = ["DoubleConv", "EncoderUNet", "UNet"]



class UNet(EncoderDecoder):
    """U-Net.

    Args:
        num_classes: K.
        depth: number of 2×2 max-pool steps (paper: 4).
        base_channels: channels of the first block (paper: 64).
        in_channels: input channels (3 for RGB).

    forward: float32 (N, in_channels, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("unet", num_classes=2, depth=2, base_channels=4).eval()
        >>> net(torch.randn(1, 3, 50, 70))["out"].shape
        torch.Size([1, 2, 50, 70])
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
        self.input_multiple = 2**depth  # depth exact 2×2 pools

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The contracting path: the output of every level, full resolution first."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        return skips

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        skips = list(feats)
        x = skips.pop()
        for up, conv in zip(self.up, self.up_conv):
            x = conv(torch.cat([skips.pop(), up(x)], dim=1))
        return self.classifier(x)


class EncoderUNet(EncoderDecoder):
    """U-Net whose contracting path is a pretrained-capable backbone (see the module docstring).

    Args:
        num_classes: K.
        encoder: one of :data:`segstudio.models.encoders.ENCODERS`; run at output stride 32 (no dilation),
            its features at strides 2, 4, 8, 16, 32 are the skips / bottleneck.
        pretrained: ImageNet weights for the encoder when on disk (random init otherwise;
            ``self.encoder.pretrained`` says which).
        decoder_channels: widths of the five expanding levels, deepest first (default
            ``(256, 128, 64, 32, 16)``, smp's); each level's up-convolution maps to this width.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W (padded to a multiple of
    32 inside, cropped back).

    Raises:
        ValueError: unknown encoder or not five decoder widths.
    """

    input_multiple = 32

    def __init__(
        self,
        num_classes: int,
        encoder: str = "mobilenet_v2",
        pretrained: bool = True,
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
    ) -> None:
        super().__init__()
        decoder_channels = tuple(int(c) for c in decoder_channels)
        if len(decoder_channels) != 5 or min(decoder_channels) < 1:
            raise ValueError(f"decoder_channels needs five positive widths (deepest first), got {decoder_channels}")
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=32)
        enc = tuple(self.encoder.out_channels)  # strides 2, 4, 8, 16, 32
        skips = (enc[3], enc[2], enc[1], enc[0], 0)  # the skip each level concatenates (none at stride 1)
        cin, ups, convs = enc[4], [], []
        for cout, skip in zip(decoder_channels, skips):
            ups.append(nn.ConvTranspose2d(cin, cout, 2, stride=2))
            convs.append(DoubleConv(cout + skip, cout))
            cin = cout
        self.up, self.up_conv = nn.ModuleList(ups), nn.ModuleList(convs)
        self.classifier = nn.Conv2d(cin, num_classes, 1)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        y = feats[4]
        for level, (up, conv) in enumerate(zip(self.up, self.up_conv)):
            y = up(y)
            if level < 4:
                y = torch.cat([feats[3 - level], y], dim=1)
            y = conv(y)
        return self.classifier(y)


SPEC = ModelSpec(
    name="unet",
    paper="Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image Segmentation, MICCAI 2015",
    default_encoder=None,
    encoders=ENCODERS,
    output_stride=16,  # the paper's path at depth 4; with an encoder: 32
    input_multiple=16,  # likewise (EncoderUNet pads to 32)
    default_loss="ce",
    defaults={},
)


@register_model(SPEC)
def unet(
    num_classes: int,
    pretrained: bool = False,
    encoder: str | None = None,
    depth: int | None = None,
    base_channels: int | None = None,
    **kwargs,
) -> nn.Module:
    """Build a U-Net.

    Without ``encoder`` (the paper): :class:`UNet` from random weights (the paper trains from scratch;
    ``pretrained`` is accepted and ignored, the card records ``encoder_pretrained: false``), ``depth``
    default 4 and ``base_channels`` default 32. With ``encoder``: :class:`EncoderUNet` on that backbone,
    ImageNet-initialised when ``pretrained`` and the weights are on disk; ``kwargs`` may give
    ``decoder_channels``.

    Raises:
        ValueError: ``depth`` / ``base_channels`` together with an encoder (the backbone fixes them),
            ``decoder_channels`` without one, an unknown encoder, or bad sizes.
    """
    if encoder in (None, "none"):
        if "decoder_channels" in kwargs:
            raise ValueError("unet: decoder_channels goes with an encoder; without one use depth/base_channels")
        return UNet(num_classes, depth=4 if depth is None else depth,
                    base_channels=32 if base_channels is None else base_channels, **kwargs)
    if depth is not None or base_channels is not None:
        raise ValueError(
            f"unet with encoder={encoder!r}: the encoder fixes depth and widths; drop depth/base_channels "
            "(or drop the encoder for the paper's own contracting path)"
        )
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r} for unet; choose one of {', '.join(ENCODERS)} or none")
    return EncoderUNet(num_classes, encoder=encoder, pretrained=pretrained, **kwargs)
