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

from segstudio.models.common import resize
from segstudio.models.encoders import ENCODERS, get_encoder, vgg_imagenet_fc
from segstudio.models.registry import ModelSpec, register_model


class LargeFOV(nn.Sequential):
    """fc6 (3×3 conv, dilation ``rate``) → ReLU → dropout → fc7 (1×1) → ReLU → dropout.

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


class DeepLabV1(nn.Module):
    """DeepLab-LargeFOV.

    Args:
        num_classes: K.
        encoder: backbone (paper: ``vgg16``).
        pretrained: ImageNet weights for the encoder (random init if not on disk).
        output_stride: 8 (paper) or 16.
        fc_channels: width of fc6/fc7 (LargeFOV: 1024).
        rate: dilation of fc6 (LargeFOV: 12 at output stride 8).

    forward: float32 (N, 3, H, W) → ``{"out": logits (N, K, H, W)}`` for any H, W.
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
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLab v1 needs output_stride 8 or 16, got {output_stride}")
        self.encoder = get_encoder(encoder, pretrained=pretrained, output_stride=output_stride)
        self.fc = large_fov_for(self.encoder, encoder, fc_channels, rate)
        self.classifier = nn.Conv2d(fc_channels, num_classes, 1)
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.classifier(self.fc(self.encoder(x)[-1]))
        return {"out": resize(y, x.shape[-2:])}


SPEC = ModelSpec(
    name="deeplabv1",
    paper="Chen et al., Semantic Image Segmentation with Deep Convolutional Nets and Fully Connected CRFs, ICLR 2015",
    default_encoder="vgg16",
    encoders=ENCODERS,
    output_stride=8,
    input_multiple=1,
    default_loss="ce",
    defaults={"encoder": "vgg16", "output_stride": 8},
)


@register_model(SPEC)
def deeplabv1(num_classes: int, **kwargs) -> DeepLabV1:
    """Build :class:`DeepLabV1` (LargeFOV)."""
    return DeepLabV1(num_classes, **kwargs)
