"""SegNet (Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture
for Image Segmentation", TPAMI 2017, arXiv:1511.00561).

Implements Fig. 2 and Sec. 3 of the paper:
- Encoder: the 13 convolutional layers of VGG-16 (3×3 conv + BatchNorm + ReLU) in 5 blocks, each block
  ending in a 2×2 stride-2 max-pool that also returns its **max-pooling indices** (ImageNet weights of
  torchvision's ``vgg16_bn`` when on disk; its fully connected layers are dropped).
- Decoder: for each encoder block, in reverse order, a ``MaxUnpool2d`` that places the values at the
  positions recorded by the matching pool's indices (sparse up-sampling, no learned up-sampling and no
  skip concatenation of feature maps), followed by a mirrored stack of 3×3 conv + BN + ReLU.
- A final 3×3 convolution to K class scores (the paper's softmax classifier input).

With 12 classes this has 29.4 M parameters (paper, Table 6: 29.5 M).
Deviation: H, W are padded inside ``forward`` to a multiple of 32 and the output cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ConvBNReLU, MaxUnpool2x
from segstudio.models.common import check_output_stride
from segstudio.models.encoders import vgg16_features
from segstudio.models.registry import register_model


class SegNetEncoder(nn.Module):
    """VGG-16-BN conv blocks with index-returning max-pools.

    Args:
        pretrained: ImageNet ``vgg16_bn`` weights when on disk (``self.pretrained`` says if loaded).

    forward: (N, 3, H, W), H and W multiples of 32 → ``(x, indices, sizes)``: the pool5 output
    (N, 512, H/32, W/32), the five pools' index tensors and the five pre-pool sizes, block 1 first.
    """

    out_channels = (64, 128, 256, 512, 512)

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        features, self.pretrained = vgg16_features(batch_norm=True, pretrained=pretrained)
        blocks, start = [], 0
        for i, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                blocks.append(features[start:i])
                start = i + 1
        self.blocks = nn.ModuleList(blocks)
        self.pools = nn.ModuleList(nn.MaxPool2d(2, stride=2, return_indices=True) for _ in blocks)

    def forward(self, x: torch.Tensor):
        indices, sizes = [], []
        for block, pool in zip(self.blocks, self.pools):
            x = block(x)
            sizes.append(x.shape[-2:])
            x, idx = pool(x)
            indices.append(idx)
        return x, indices, sizes


@register_model(
    "segnet",
    paper="Badrinarayanan, Kendall, Cipolla, SegNet: A Deep Convolutional Encoder-Decoder Architecture, TPAMI 2017",
    encoders=("vgg16_bn",),
    output_stride=32,
)
class SegNet(EncoderDecoder):
    """SegNet encoder–decoder with pooling-index up-sampling.

    Args:
        num_classes: K.
        pretrained: ImageNet weights for the VGG-16-BN encoder (random init if not on disk).

    ``unpools[i]`` consumes the indices of ``encoder.pools[i]``.

        encoder: accepted for the common builder interface; must be ``None`` or ``"vgg16_bn"``.
        output_stride: likewise; must be ``None`` or 32.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("segnet", num_classes=5, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    # decoder conv widths per level, level 5 (deepest) first; mirrors VGG-16's 2-2-3-3-3 blocks
    DECODER = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))

    input_multiple = 32  # five exact 2×2 pools / unpools

    def __init__(
        self, num_classes: int, pretrained: bool = True, encoder: str = "vgg16_bn", output_stride: int | None = None
    ) -> None:
        super().__init__()
        check_output_stride("segnet", output_stride, 32)
        if encoder not in (None, "vgg16_bn"):
            raise ValueError(f"segnet's encoder is VGG-16-BN with pooling indices; got encoder={encoder!r}")
        self.encoder = SegNetEncoder(pretrained=pretrained)
        self.unpools = nn.ModuleList(MaxUnpool2x() for _ in range(5))
        decoder, cin = [], 512
        for widths in self.DECODER:
            layers = []
            for cout in widths:
                layers.append(ConvBNReLU(cin, cout))
                cin = cout
            decoder.append(nn.Sequential(*layers))
        self.decoder = nn.ModuleList(decoder)  # deepest level first
        self.classifier = nn.Conv2d(cin, num_classes, 3, padding=1)

    def decode(self, feats) -> torch.Tensor:
        x, indices, _ = feats
        # Padded to a multiple of 32, every pre-pool size is exactly twice the pooled one (MaxUnpool2x).
        for level, block in zip(reversed(range(5)), self.decoder):
            x = block(self.unpools[level](x, indices[level]))
        return self.classifier(x)
