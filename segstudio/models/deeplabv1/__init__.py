"""DeepLab v1, DeepLab-LargeFOV variant (Chen, Papandreou, Kokkinos, Murphy, Yuille, "Semantic Image
Segmentation with Deep Convolutional Nets and Fully Connected CRFs", ICLR 2015, arXiv:1412.7062).

Implements Sec. 3.1 and the "DeepLab-LargeFOV" row of Table 2:
- Atrous VGG-16 with output stride 8: pool4 and pool5 become 3×3 stride-1 pools and the conv5 layers
  are dilated by 2 (the "hole algorithm"); other encoders are dilated the same way (DeepLab v2/v3 style).
- LargeFOV head: fc6 as a 3×3 convolution with input stride (rate) 12 and 1024 channels, fc7 as a 1×1
  conv to 1024 (ReLU + dropout 0.5 after each), fc8 a 1×1 conv to K. With ImageNet VGG-16 weights on disk,
  fc6/fc7 are the paper's *decimated* ImageNet fc layers (every 4th filter, 7×7 → 3×3 by taking every
  3rd tap).
- Logits are bilinearly up-sampled ×8 to the input size. The paper follows them with a fully connected
  CRF (Sec. 4): apply ``segstudio.postprocess`` DenseCRF to the softmax of ``"out"``.

With 21 classes on VGG-16 this has 20.5 M parameters (paper, Table 2: 20.5 M).
Deviation: pool1–pool3 are torchvision's 2×2 pools (ceil mode) rather than the Caffe model's 3×3 stride-2
pools (same strides, same parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.base import EncoderDecoder
from segstudio.models.blocks import LargeFOV, large_fov_for
from segstudio.models.encoders import ENCODERS
from segstudio.models.registry import register_model

__all__ = ["DeepLabV1", "LargeFOV", "large_fov_for"]



@register_model(
    "deeplabv1",
    paper="Chen et al., Semantic Image Segmentation with Deep Convolutional Nets and Fully Connected CRFs, ICLR 2015",
    encoders=ENCODERS,
)
class DeepLabV1(EncoderDecoder):
    """DeepLab-LargeFOV.

    Args:
        num_classes: K.
        encoder: backbone (paper: ``vgg16``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 (paper) or 16.
        fc_channels: width of fc6/fc7 (LargeFOV: 1024).
        rate: dilation of fc6 (LargeFOV: 12 at output stride 8).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.

    Example:
        >>> import torch
        >>> from segstudio.models import get_model
        >>> net = get_model("deeplabv1", num_classes=5, pretrained=False, encoder="resnet18").eval()
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
    ) -> None:
        super().__init__()
        self.encoder = self.atrous_encoder(encoder, pretrained, output_stride)
        self.fc = large_fov_for(self.encoder, encoder, fc_channels, rate)
        self.classifier = nn.Conv2d(fc_channels, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.fc(feats[-1]))
