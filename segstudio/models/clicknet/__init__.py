"""ClickNet: class-agnostic interactive (click-to-segment) segmentation with an image encoder run once.

Task and training protocol follow RITM (Sofiiuk, Petrov, Konushin, "Reviving Iterative Training with Mask
Guidance for Interactive Segmentation", ICIP 2022, arXiv:2102.06583): the input is the RGB image plus a
positive-click disk map, a negative-click disk map (disks of radius 5 px, their Sec. 3.1) and the previous
mask (their Sec. 3.2, "mask guidance"); the output is one channel of object logits. The iterative click
simulation that trains it lives in :mod:`segstudio.engine.click`.

Deviation (deliberate, for encode-once speed on CPU): RITM fuses the click maps right after the first conv of
the backbone (their Conv1S, Fig. 2), so every click re-runs the whole backbone. Here, as in FocalClick's
split of a heavy image path from a light click-dependent refiner (Chen et al., "FocalClick: Towards
Practical Interactive Image Segmentation", CVPR 2022, Sec. 3) and SAM's image-encoder / prompt-decoder
split, the ImageNet MobileNetV2 encoder (Sandler et al., CVPR 2018) sees the image only; the three guidance
maps are encoded by a small conv pyramid (strides 4, 8, 16) and fused into a light U-shaped decoder at each
of those strides. :meth:`ClickNet.encode_image` runs once per image; :meth:`ClickNet.decode_clicks`
answers each click from the cached features.

Not in the semantic-model registry (``list_models()``): its input (6 channels) and output (one object) break the
registry's contract (RGB in, K class logits out), so the model picker and the per-architecture tests do not
offer or build it; :mod:`segstudio.engine.click` builds it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.models.blocks import ConvBNReLU
from segstudio.models.common import pad_to_multiple, resize
from segstudio.models.encoders import MobileNetV2Encoder

#: Guidance channels: positive-click disks, negative-click disks, previous mask (each float32 in [0, 1]).
GUIDANCE_CHANNELS = 3


class GuidanceEncoder(nn.Module):
    """Click/mask guidance (N, 3, H, W) → features at strides 4, 8, 16 with ``channels`` channels.

    The maps are area-downsampled to stride 4 first (a radius-5 disk keeps its mass), then two strided
    3×3 conv-BN-ReLU stages give strides 8 and 16.
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        c4, c8, c16 = channels
        self.s4 = nn.Sequential(ConvBNReLU(GUIDANCE_CHANNELS, c4, 3), ConvBNReLU(c4, c4, 3))
        self.s8 = nn.Sequential(nn.Conv2d(c4, c8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c8), nn.ReLU(inplace=True))
        self.s16 = nn.Sequential(nn.Conv2d(c8, c16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c16), nn.ReLU(inplace=True))

    def forward(self, g: torch.Tensor, size4: tuple[int, int]) -> list[torch.Tensor]:
        x4 = self.s4(F.adaptive_avg_pool2d(g, size4))
        x8 = self.s8(x4)
        x16 = self.s16(x8)
        return [x4, x8, x16]


class ClickNet(nn.Module):
    """Interactive segmentation net: image + clicks + previous mask → object logits.

    Args:
        num_classes: must be 1 (object logits; the class is the user's choice, not the model's).
        encoder: only ``"mobilenet_v2"`` (output stride 16, last stage dilated).
        pretrained: ImageNet weights for the encoder (random init when not on disk).
        width: decoder width at stride 16 (strides 8 and 4 use ``width // 2`` and ``width // 4``).

    forward(x): float32 (N, 3 + 3, H, W) = ImageNet-normalised RGB, then positive disks, negative disks and
    the previous mask in [0, 1] → ``{"out": logits (N, 1, H, W)}``, any H, W (padded to a multiple of 16
    inside). :meth:`encode_image` + :meth:`decode_clicks` are the same computation split in two, so the
    image features can be cached between clicks.

    Raises:
        ValueError: ``num_classes != 1``, an unknown encoder, or a wrong channel count in ``forward``.

    Example:
        >>> import torch
        >>> from segstudio.models.clicknet import ClickNet
        >>> net = ClickNet(pretrained=False).eval()
        >>> net(torch.randn(1, 6, 64, 96))["out"].shape
        torch.Size([1, 1, 64, 96])
    """

    input_multiple = 16

    def __init__(self, num_classes: int = 1, encoder: str = "mobilenet_v2", pretrained: bool = True, width: int = 96) -> None:
        super().__init__()
        if num_classes != 1:
            raise ValueError(f"clicknet predicts one object mask: num_classes must be 1, got {num_classes}")
        if encoder != "mobilenet_v2":
            raise ValueError(f"clicknet supports encoder 'mobilenet_v2' only, got {encoder!r}")
        self.encoder = MobileNetV2Encoder(pretrained=pretrained, output_stride=16)
        ch = self.encoder.out_channels  # (16, 24, 32, 96, 320) at strides 2, 4, 8, 16, 16
        w16, w8, w4 = width, width // 2, width // 4
        # image neck (click-independent: part of the cached encoding)
        self.neck = nn.ModuleList([ConvBNReLU(ch[1], w4, 1), ConvBNReLU(ch[2], w8, 1), ConvBNReLU(ch[3] + ch[4], w16, 1)])
        self.guidance = GuidanceEncoder((w4 // 2, w8 // 2, w16 // 2))
        self.fuse16 = nn.Sequential(ConvBNReLU(w16 + w16 // 2, w16, 1), ConvBNReLU(w16, w16, 3, dilation=2), ConvBNReLU(w16, w16, 3, dilation=4))
        self.fuse8 = nn.Sequential(ConvBNReLU(w16 + w8 + w8 // 2, w8, 1), ConvBNReLU(w8, w8, 3))
        self.fuse4 = nn.Sequential(ConvBNReLU(w8 + w4 + w4 // 2, w4, 1), ConvBNReLU(w4, w4, 3))
        self.head = nn.Conv2d(w4, 1, 1)

    def encode_image(self, image: torch.Tensor) -> dict:
        """Click-independent part: normalised RGB (N, 3, H, W) → cached features.

        Returns a dict with ``feats`` (stride-4, -8, -16 neck features) and ``size`` (H, W) of the input.
        """
        return self.project(self.encoder(pad_to_multiple(image, self.input_multiple)), image.shape[-2:])

    def project(self, f: list[torch.Tensor], size: tuple[int, int]) -> dict:
        """Encoder pyramid (5 maps, strides 2..16) of an input of ``size`` (H, W) → the cached dict of
        :meth:`encode_image` (the neck's 1×1 projections at strides 4, 8, 16)."""
        feats = [self.neck[0](f[1]), self.neck[1](f[2]), self.neck[2](torch.cat([f[3], f[4]], 1))]
        return {"feats": feats, "size": tuple(int(v) for v in size)}

    def decode_clicks(self, enc: dict, guidance: torch.Tensor) -> torch.Tensor:
        """Click-dependent part: cached ``enc`` + guidance (N, 3, H, W) in [0, 1] → logits (N, 1, H, W).

        ``enc`` features of batch 1 are broadcast over a guidance batch N > 1.
        """
        h, w = enc["size"]
        f4, f8, f16 = enc["feats"]
        n = guidance.shape[0]
        if f4.shape[0] != n:
            f4, f8, f16 = (t.expand(n, -1, -1, -1) for t in (f4, f8, f16))
        g = pad_to_multiple(guidance, self.input_multiple) if self.input_multiple > 1 else guidance
        g4, g8, g16 = self.guidance(g, f4.shape[-2:])
        x = self.fuse16(torch.cat([f16, g16], 1))
        x = self.fuse8(torch.cat([resize(x, f8.shape[-2:]), f8, g8], 1))
        x = self.fuse4(torch.cat([resize(x, f4.shape[-2:]), f4, g4], 1))
        logits = self.head(x)
        hp, wp = g.shape[-2:]
        return resize(logits, (hp, wp))[..., :h, :w]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] != 3 + GUIDANCE_CHANNELS:
            raise ValueError(f"clicknet takes RGB + {GUIDANCE_CHANNELS} guidance channels (N, 6, H, W), got {tuple(x.shape)}")
        return {"out": self.decode_clicks(self.encode_image(x[:, :3]), x[:, 3:])}
