"""Segmentation losses; all take logits (N, K, H, W) and targets int64 (N, H, W) and honour ignore_index."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.core.labels import IGNORE_INDEX

LOSSES = ("ce",)


class CrossEntropy(nn.Module):
    """Pixel-wise cross-entropy ``-mean_i log softmax(z_i)[y_i]`` over non-ignored pixels.

    Args:
        weight: optional per-class weights, float32 (K,).
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output when the model returns one (PSPNet uses 0.4).
    """

    def __init__(self, weight: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4):
        super().__init__()
        self.register_buffer("weight", weight if weight is None else weight.float())
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight

    def forward(self, outputs: dict[str, torch.Tensor] | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = {"out": outputs}
        loss = F.cross_entropy(outputs["out"].float(), target, weight=self.weight, ignore_index=self.ignore_index)
        if "aux" in outputs:
            aux = F.cross_entropy(outputs["aux"].float(), target, weight=self.weight, ignore_index=self.ignore_index)
            loss = loss + self.aux_weight * aux
        return loss


def get_loss(name: str, **kwargs) -> nn.Module:
    """Loss by name (``"ce"``).

    Raises:
        ValueError: unknown name.
    """
    if name == "ce":
        return CrossEntropy(**kwargs)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
