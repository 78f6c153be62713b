"""Fully Convolutional Networks: FCN-32s, FCN-16s, FCN-8s (Long, Shelhamer, Darrell, "Fully
Convolutional Networks for Semantic Segmentation", CVPR 2015, arXiv:1411.4038; PAMI 2017 version).

Implements Sec. 3–4 and Fig. 3 of the paper:
- VGG-16 encoder (conv1_1 … pool5) with its fully connected layers *convolutionalised*: fc6 as a 7×7
  conv to 4096 channels, fc7 as a 1×1 conv to 4096 (ReLU + dropout 0.5 after each; width configurable).
  With ImageNet weights on disk, fc6/fc7 are initialised from torchvision's VGG-16 classifier.
  Other encoders (ResNet, MobileNetV2) have no hidden fully connected layers to convolutionalise: their
  last features are scored directly, unless ``fc_channels`` asks for fc6/fc7 anyway.
- 1×1 class-scoring layers: ``score_fr`` on fc7, ``score_pool4`` (16s, 8s) and ``score_pool3`` (8s),
  the skip scorers zero-initialised "so the net starts with unmodified predictions" (Sec. 4.2).
- Learned up-sampling by transposed convolutions initialised to bilinear interpolation (Sec. 3.3):
  32s: one ×32; 16s: ×2 of the stride-32 scores, summed with pool4 scores, then ×16; 8s: additionally
  ×2 and summed with pool3 scores, then ×8 ("deep jet", Fig. 3).

Deviation: instead of the paper's 100-pixel input padding and Caffe ``Crop`` layers, the input is padded
to a multiple of 32 inside ``forward`` (fc6 uses 'same' padding 3) and the output cropped back, which
aligns the skip maps exactly. Every num_classes-dependent layer (scorers and transposed convs) lives
under ``classifier`` so a checkpoint can be re-headed for a new class set.
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.common import bilinear_upsampler, check_output_stride
from segstudio.models.encoders import ENCODERS, get_encoder, vgg_imagenet_fc
from segstudio.models.registry import register_model

_PAPER = "Long, Shelhamer, Darrell, Fully Convolutional Networks for Semantic Segmentation, CVPR 2015"


# The three variants are data: FCN-32s (one ×32 up-sampling of the fc7 scores), FCN-16s (fc7 scores ×2 + pool4
# scores, then ×16), FCN-8s (… + pool3 scores, then ×8).
@register_model("fcn8s", paper=_PAPER, encoders=ENCODERS, output_stride=32, fixed={"variant": 8})
@register_model("fcn16s", paper=_PAPER, encoders=ENCODERS, output_stride=32, fixed={"variant": 16})
@register_model("fcn32s", paper=_PAPER, encoders=ENCODERS, output_stride=32, fixed={"variant": 32})

class FCN(EncoderDecoder):
    """FCN-32s / 16s / 8s.

    Args:
        num_classes: K.
        variant: 32, 16 or 8 (the stride of the finest scores fused).
        encoder: backbone (paper: ``vgg16``); its features at strides 8/16/32 play pool3/pool4/pool5.
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        fc_channels: width of fc6/fc7 (paper: 4096); ``None`` = 4096 for VGG encoders and no fc6/fc7
            for the others; 0 = no fc6/fc7.
        dropout: dropout after fc6 and fc7 (paper: 0.5).

        output_stride: accepted for the common builder interface; must be ``None`` or 32.

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("fcn8s", num_classes=5, pretrained=False, encoder="resnet18").eval()
        >>> net(torch.randn(1, 3, 64, 96))["out"].shape
        torch.Size([1, 5, 64, 96])
    """

    input_multiple = 32  # aligns the skip maps exactly (instead of the paper's 100-px padding and crops)

    def __init__(
        self,
        num_classes: int,
        variant: int = 32,
        encoder: str = "vgg16",
        pretrained: bool = True,
        fc_channels: int | None = None,
        dropout: float = 0.5,
        output_stride: int | None = None,
    ) -> None:
        super().__init__()
        check_output_stride(f"fcn{variant}s", output_stride, 32)
        if variant not in (32, 16, 8):
            raise ValueError(f"FCN variant must be 32, 16 or 8, got {variant}")
        self.variant = variant
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=32)
        chans = self.encoder.out_channels
        if fc_channels is None:
            fc_channels = 4096 if encoder.startswith("vgg") else 0
        if fc_channels:
            fc6 = nn.Conv2d(chans[4], fc_channels, 7, padding=3)
            fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
            if encoder.startswith("vgg") and self.encoder.pretrained and fc_channels == 4096:
                w6, b6, w7, b7 = vgg_imagenet_fc(encoder)
                with torch.no_grad():
                    for param, value in ((fc6.weight, w6), (fc6.bias, b6), (fc7.weight, w7), (fc7.bias, b7)):
                        param.copy_(value)
            self.fc = nn.Sequential(
                fc6, nn.ReLU(inplace=True), nn.Dropout(dropout), fc7, nn.ReLU(inplace=True), nn.Dropout(dropout)
            )
        else:
            self.fc = nn.Identity()
        heads = {"score_fr": nn.Conv2d(fc_channels or chans[4], num_classes, 1)}
        if variant <= 16:
            heads["score_pool4"] = nn.Conv2d(chans[3], num_classes, 1)
            heads["upscore2"] = bilinear_upsampler(num_classes, 2)
        if variant == 8:
            heads["score_pool3"] = nn.Conv2d(chans[2], num_classes, 1)
            heads["upscore_pool4"] = bilinear_upsampler(num_classes, 2)
        heads["upscore"] = bilinear_upsampler(num_classes, variant)
        for name in ("score_pool4", "score_pool3"):
            if name in heads:
                nn.init.zeros_(heads[name].weight)
                nn.init.zeros_(heads[name].bias)
        self.classifier = nn.ModuleDict(heads)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        cls = self.classifier
        score = cls["score_fr"](self.fc(feats[4]))
        if self.variant <= 16:
            score = cls["upscore2"](score) + cls["score_pool4"](feats[3])
        if self.variant == 8:
            score = cls["upscore_pool4"](score) + cls["score_pool3"](feats[2])
        return cls["upscore"](score)
