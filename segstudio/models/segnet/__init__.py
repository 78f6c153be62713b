"""SegNet (Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture
for Image Segmentation", TPAMI 2017, arXiv:1511.00561): ``segnet`` and its small from-scratch variant
``segnet_basic``.

Both share the index-pooling encoder and index-unpooling decoder written once here
(:class:`PoolIndexEncoder`, :class:`IndexUnpoolingNet`): each encoder stage ends in a 2×2 stride-2
max-pool that also returns its **max-pooling indices**, and the decoder stage of the same level, in reverse
order, starts with a ``MaxUnpool2d`` that places its input at the positions recorded by that pool's indices
(sparse up-sampling, no learned up-sampling and no skip concatenation of feature maps, Fig. 3).

``segnet`` implements Fig. 2 and Sec. 3 of the paper:
- Encoder: the 13 convolutional layers of VGG-16 (3×3 conv + BatchNorm + ReLU) in 5 blocks (ImageNet
  weights of torchvision's ``vgg16_bn`` when on disk; its fully connected layers are dropped).
- Decoder: for each encoder block, in reverse order, the unpooling followed by a mirrored stack of 3×3
  conv + BN + ReLU.
- A final 3×3 convolution to K class scores (the paper's softmax classifier input).
With 12 classes this has 29.4 M parameters (paper, Table 6: 29.5 M).
Deviation: H, W are padded inside ``forward`` to a multiple of 32 and the output cropped back.

``segnet_basic`` implements SegNet-Basic (Sec. 4.1, Table 1), the variant the paper trains from scratch on
CamVid:
- 4 encoder stages, each one 7×7 conv with 64 feature maps (no bias) + BatchNorm + ReLU, then a 2×2
  stride-2 (non-overlapping) max-pool storing its indices;
- 4 decoder stages, each the index unpooling then one 7×7 conv with 64 feature maps (no bias) + BatchNorm,
  **without ReLU** ("no ReLU non-linearity is present in the decoder network", Sec. 4.1; the authors'
  Caffe ``segnet_basic_train.prototxt`` has none either);
- a 1×1 convolution to K class scores (with bias).
With K classes it has 7·7·3·64 + 7·(7·7·64·64) conv weights + 8·2·64 BatchNorm scales/shifts + 64·K + K
classifier weights = 1,415,360 + 65·K parameters (1.416 M for CamVid's 11 classes).
Deviations: no ImageNet weights exist for it (random init only, as in the paper); the authors' Caffe
model also applies a local response normalisation to the RGB input and biases before each BN (both not in
the paper's text; SegStudio normalises the input with the data set's mean/std); H, W are padded inside
``forward`` to a multiple of 16 and the output cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import ConvBN, ConvBNReLU, MaxUnpool2x
from segstudio.models.common import check_output_stride
from segstudio.models.encoders import vgg16_features
from segstudio.models.registry import register_model


class PoolIndexEncoder(nn.Module):
    """Conv blocks, each followed by a 2×2 stride-2 ``MaxPool2d(return_indices=True)``.

    Args:
        blocks: the conv blocks, shallowest first; block i maps ``out_channels[i-1]`` to ``out_channels[i]``
            channels at the resolution of its input.
        out_channels: channels of each block's output.

    forward: (N, C, H, W), H and W multiples of 2^len(blocks) → ``(x, indices, sizes)``: the last pool's
    output (N, out_channels[-1], H/2^L, W/2^L), the pools' int64 index tensors and the pre-pool sizes,
    block 1 first.
    """

    def __init__(self, blocks, out_channels) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.pools = nn.ModuleList(nn.MaxPool2d(2, stride=2, return_indices=True) for _ in self.blocks)
        self.out_channels = tuple(out_channels)

    def forward(self, x: torch.Tensor):
        indices, sizes = [], []
        for block, pool in zip(self.blocks, self.pools):
            x = block(x)
            sizes.append(x.shape[-2:])
            x, idx = pool(x)
            indices.append(idx)
        return x, indices, sizes


class SegNetEncoder(PoolIndexEncoder):
    """VGG-16-BN conv blocks with index-returning max-pools.

    Args:
        pretrained: ImageNet ``vgg16_bn`` weights when on disk (``self.pretrained`` says if loaded).

    forward: (N, 3, H, W), H and W multiples of 32 → ``(x, indices, sizes)``: the pool5 output
    (N, 512, H/32, W/32), the five pools' index tensors and the five pre-pool sizes, block 1 first.
    """

    def __init__(self, pretrained: bool = True) -> None:
        features, pretrained = vgg16_features(batch_norm=True, pretrained=pretrained)
        blocks, start = [], 0
        for i, layer in enumerate(features):
            if isinstance(layer, nn.MaxPool2d):
                blocks.append(features[start:i])
                start = i + 1
        super().__init__(blocks, (64, 128, 256, 512, 512))
        self.pretrained = pretrained


class IndexUnpoolingNet(EncoderDecoder):
    """SegNet's decoder step, written once: ``decoder[i]`` (deepest level first) takes the output of
    ``unpools[level]`` fed with the indices of ``encoder.pools[level]``, ``level = L-1-i``; then
    ``classifier``.

    Subclasses build ``encoder`` (a :class:`PoolIndexEncoder`), ``unpools`` (L :class:`MaxUnpool2x`),
    ``decoder`` (L modules, deepest first) and ``classifier``, and set ``input_multiple = 2^L`` so every
    pre-pool size is exactly twice the pooled one.
    """

    def decode(self, feats) -> torch.Tensor:
        x, indices, _ = feats
        for level, block in zip(reversed(range(len(self.unpools))), self.decoder):
            x = block(self.unpools[level](x, indices[level]))
        return self.classifier(x)


@register_model(
    "segnet",
    paper="Badrinarayanan, Kendall, Cipolla, SegNet: A Deep Convolutional Encoder-Decoder Architecture, TPAMI 2017",
    encoders=("vgg16_bn",),
    output_stride=32,
)
class SegNet(IndexUnpoolingNet):
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


@register_model(
    "segnet_basic",
    paper="Badrinarayanan, Kendall, Cipolla, SegNet: A Deep Convolutional Encoder-Decoder Architecture, TPAMI 2017, "
    "Sec. 4.1 (SegNet-Basic)",
    output_stride=16,
)
class SegNetBasic(IndexUnpoolingNet):
    """SegNet-Basic (TPAMI 2017, Sec. 4.1 / Table 1): 4 encoder and 4 decoder stages of one 7×7 conv with 64
    feature maps each, pooling-index up-sampling, a 1×1 classifier; trained from random weights.

    Args:
        num_classes: K.
        decoder_relu: add a ReLU after each decoder BN (default ``False``: the paper's decoder has none).
        pretrained, encoder, output_stride: accepted for the common builder interface: ``pretrained`` is
            ignored (no ImageNet weights exist for this net), ``encoder`` must be unset (``None``/``"none"``),
            ``output_stride`` ``None`` or 16.

    ``unpools[i]`` consumes the indices of ``encoder.pools[i]``; ``decoder`` is ordered deepest first.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W (padded to a multiple of
    16 inside, cropped back).

    Raises:
        ValueError: an encoder or an output stride other than 16 is asked for.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("segnet_basic", num_classes=11, pretrained=False).eval()
        >>> net(torch.randn(1, 3, 45, 61))["out"].shape
        torch.Size([1, 11, 45, 61])
        >>> sum(p.numel() for p in net.parameters())  # 1,415,360 + 65 * 11
        1416075
    """

    DEPTH, WIDTH, KERNEL = 4, 64, 7  # Sec. 4.1: four stages, 64 feature maps, 7×7 kernels

    input_multiple = 16  # four exact 2×2 pools / unpools

    def __init__(
        self,
        num_classes: int,
        decoder_relu: bool = False,
        pretrained: bool = False,
        encoder: str | None = None,
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        check_output_stride("segnet_basic", output_stride, 16)
        if encoder not in (None, "none"):
            raise ValueError(f"segnet_basic has no separate encoder (four 7×7 conv stages); got encoder={encoder!r}")
        w, k = self.WIDTH, self.KERNEL
        self.encoder = PoolIndexEncoder(
            [ConvBNReLU(3 if i == 0 else w, w, kernel_size=k) for i in range(self.DEPTH)], (w,) * self.DEPTH
        )
        self.unpools = nn.ModuleList(MaxUnpool2x() for _ in range(self.DEPTH))
        layer = ConvBNReLU if decoder_relu else ConvBN
        self.decoder = nn.ModuleList(layer(w, w, kernel_size=k) for _ in range(self.DEPTH))  # deepest level first
        self.classifier = nn.Conv2d(w, num_classes, 1)
