"""``SegLoss``: the one place that unwraps a model's output dict, adds the auxiliary-head term and checks shapes.

Every loss in :mod:`segstudio.losses` subclasses :class:`SegLoss` and implements only
:meth:`SegLoss.compute` on plain logits; :meth:`SegLoss.forward` accepts either a logits tensor or
the model contract's dict ``{"out": logits, "aux": logits (optional)}`` and returns
``compute(out) + aux_weight * compute(aux)``. A :class:`~segstudio.losses.combined.CombinedLoss`
sums its terms' ``compute`` results, so the auxiliary term is added exactly once for a weighted sum too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from segstudio.core.labels import IGNORE_INDEX

CLASS_MODES = ("present", "all")
"""Which classes region losses (Dice, Jaccard, Lovász) average over: those present in the (valid)
target of the batch, or all K."""


def check_inputs(logits: torch.Tensor, target: torch.Tensor) -> None:
    """Check the loss contract: logits float (N, K, H, W), target integer (N, H, W) of the same N, H, W.

    Raises:
        ValueError: naming the offending shape or dtype.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"loss inputs must be tensors, got {type(logits).__name__} and {type(target).__name__}")
    if logits.ndim != 4:
        raise ValueError(f"logits must be (N, K, H, W), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    if target.ndim != 3 or target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"target must be (N, H, W) = {(logits.shape[0], *logits.shape[2:])} to match logits "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"target must hold integer class ids (int64), got {target.dtype}")


def one_hot_target(target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX):
    """One-hot encoding of a label batch with ignore pixels all-zero.

    Args:
        target: int64 (N, H, W), values ``0..K-1`` or ``ignore_index``.
        num_classes: K.
        ignore_index: target value of void pixels.

    Returns:
        ``(onehot, valid)``: float32 (N, K, H, W) with 1 at the true class (all zeros at ignore pixels),
        and bool (N, H, W), True where the pixel is labelled.

    Raises:
        RuntimeError: (from :func:`torch.nn.functional.one_hot`) a non-ignored value outside ``0..K-1``.
    """
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(torch.float32)
    return onehot * valid.unsqueeze(1), valid


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    return logits if logits.dtype == torch.float64 else logits.float()


def zero_loss(logits: torch.Tensor) -> torch.Tensor:
    """A 0-valued scalar still attached to ``logits``' graph (for batches without labelled pixels)."""
    return logits.sum() * 0.0


class SegLoss(nn.Module):
    """Base of all segmentation losses.

    Subclasses set :attr:`name` (the spec-string name, see :func:`segstudio.losses.get_loss`) and
    implement :meth:`compute`.

    Args:
        ignore_index: target value excluded from the loss (default :data:`~segstudio.core.labels.IGNORE_INDEX`).
        aux_weight: weight of the ``"aux"`` output when the model returns one (PSPNet, Zhao et al. 2017, uses 0.4).

    Call: ``loss(outputs, target)`` with ``outputs`` a float tensor (N, K, H, W) or a dict
    ``{"out": (N, K, H, W), "aux": (N, K, H, W) (optional)}`` and ``target`` int64 (N, H, W); returns a
    scalar of the logits' dtype. Half-precision logits (AMP's float16/bfloat16) are cast to float32
    first; float64 stays float64 (for gradient checks).

    Raises:
        ValueError: wrong shapes/dtypes, or a dict without ``"out"``.
    """

    name: ClassVar[str] = ""
    accepts_class_weights: ClassVar[bool] = False
    """Whether the loss takes per-class ``weight`` (the dataset-derived class weights)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.ignore_index = int(ignore_index)
        self.aux_weight = float(aux_weight)

    def forward(self, outputs: Mapping[str, torch.Tensor] | torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            outputs = {"out": outputs}
        if not isinstance(outputs, Mapping) or "out" not in outputs:
            raise ValueError("loss expects logits or the model output dict {'out': logits, 'aux': logits (optional)}")
        check_inputs(outputs["out"], target)
        loss = self.compute(_at_least_float32(outputs["out"]), target)
        if outputs.get("aux") is not None:
            check_inputs(outputs["aux"], target)
            loss = loss + self.aux_weight * self.compute(_at_least_float32(outputs["aux"]), target)
        return loss

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of one logits tensor: float32/float64 (N, K, H, W), int64 (N, H, W) → scalar of that dtype."""
        raise NotImplementedError


def check_classes_mode(classes: str) -> str:
    """Validate a region loss's ``classes`` argument (one of :data:`CLASS_MODES`)."""
    if classes not in CLASS_MODES:
        raise ValueError(f"classes must be one of {', '.join(CLASS_MODES)}, got {classes!r}")
    return classes


def as_class_vector(values, name: str) -> torch.Tensor | None:
    """``None`` or a 1-D float32 tensor of per-class values (``weight``, ``alpha``)."""
    if values is None:
        return None
    t = torch.as_tensor(values, dtype=torch.float32).detach().clone()
    if t.ndim != 1 or t.numel() == 0:
        raise ValueError(f"{name} must be a 1-D sequence of per-class values, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError(f"{name} must be finite and non-negative, got {t.tolist()}")
    return t


def check_class_vector(values: torch.Tensor | None, num_classes: int, name: str) -> None:
    if values is not None and values.numel() != num_classes:
        raise ValueError(f"{name} has {values.numel()} entries but the logits have {num_classes} classes")
