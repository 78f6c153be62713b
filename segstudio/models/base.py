"""The step every architecture shares, written once: pad → encoder → decoder + head → crop / resize → dict.

Like segmentation_models_pytorch's ``SegmentationModel`` and torchvision's ``_SimpleSegmentationModel``: a
subclass builds ``self.encoder`` (or overrides :meth:`EncoderDecoder.encode`) and implements
:meth:`EncoderDecoder.decode` (decoder + class-score head → logits at some resolution); the base class pads
the input to ``input_multiple``, fits the logits back to the input size and returns
``{"out": logits}`` (+ ``"aux"`` in training mode when :meth:`EncoderDecoder.auxiliary` gives one).
"""

from __future__ import annotations

import torch
from torch import nn

from segstudio.models.common import pad_to_multiple, resize
from segstudio.models.encoders import get_encoder


class EncoderDecoder(nn.Module):
    """Base of the segmentation models: ``forward(x float32 (N, C, H, W)) -> {"out": (N, K, H, W)[, "aux"]}``.

    Class attributes:
        input_multiple: H and W are padded (bottom/right, reflect) to a multiple of this before the encoder
            (1 = no padding); the logits are then cropped back to (H, W).
        output_fit: how logits return to (H, W): ``"crop"`` (logits at the padded input size, the default
            when ``input_multiple > 1``), ``"resize"`` (bilinear up-sampling of coarse logits,
            align_corners=False) or ``"none"`` (already at the input size).

    Subclasses implement :meth:`decode`, and :meth:`auxiliary` when the paper has an auxiliary head.
    """

    input_multiple: int = 1
    output_fit: str = "resize"

    def atrous_encoder(self, encoder: str, pretrained: bool, output_stride: int, strides=(8, 16)) -> nn.Module:
        """``get_encoder(encoder, pretrained, output_stride)`` after checking ``output_stride`` is one of
        ``strides`` (the DeepLab family's dilated encoders: 8 or 16).

        Raises:
            ValueError: naming the model and the strides it supports; an unknown encoder (from get_encoder).
        """
        if output_stride not in strides:
            allowed = " or ".join(map(str, strides))
            raise ValueError(f"{type(self).__name__} needs output_stride {allowed}, got {output_stride}")
        return get_encoder(encoder, pretrained=pretrained, output_stride=output_stride)

    def encode(self, x: torch.Tensor):
        """Padded input (N, C, H', W') → encoder features (whatever :meth:`decode` takes); default ``self.encoder(x)``."""
        return self.encoder(x)

    def decode(self, feats) -> torch.Tensor:
        """Encoder features → logits (N, K, h, w) (decoder + class-score head)."""
        raise NotImplementedError

    def auxiliary(self, feats) -> torch.Tensor | None:
        """Logits of the auxiliary (deep-supervision) head in training mode, or ``None`` (the default)."""
        return None

    def _fit(self, y: torch.Tensor, h, w) -> torch.Tensor:
        fit = "crop" if self.input_multiple > 1 else self.output_fit
        if fit == "crop":
            return y[..., :h, :w]
        if fit == "resize":
            return resize(y, (h, w))
        return y

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = x.shape[-2:]
        feats = self.encode(pad_to_multiple(x, self.input_multiple) if self.input_multiple > 1 else x)
        out = {"out": self._fit(self.decode(feats), h, w)}
        if self.training:
            aux = self.auxiliary(feats)
            if aux is not None:
                out["aux"] = self._fit(aux, h, w)
        return out
