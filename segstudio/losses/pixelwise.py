"""Per-pixel losses: (class-weighted) cross-entropy and Focal loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from segstudio.core.labels import IGNORE_INDEX
from segstudio.losses.base import SegLoss, as_class_vector, check_class_vector, zero_loss


class CrossEntropy(SegLoss):
    """Pixel-wise (class-weighted) cross-entropy over the labelled pixels.

    ``L = Σ_i w[y_i] · (−log softmax(z_i)[y_i]) / Σ_i w[y_i]`` over pixels ``i`` with ``y_i != ignore_index``
    (``w ≡ 1`` without weights: the plain mean; this is :func:`torch.nn.functional.cross_entropy` with
    ``reduction="mean"``). For dataset-derived weights (median-frequency balancing as in SegNet,
    Badrinarayanan et al. 2017, after Eigen & Fergus 2015; inverse frequency) see
    :mod:`segstudio.losses.weights`.

    Args:
        weight: optional per-class weights, K non-negative floats (stored as a float32 buffer).
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output (see :class:`~segstudio.losses.base.SegLoss`).

    A batch without labelled pixels gives 0 (with zero gradients) rather than NaN.

    Raises:
        ValueError: ``weight`` is not a 1-D non-negative vector, or its length differs from K.
    """

    name = "ce"
    accepts_class_weights = True

    def __init__(self, weight=None, ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4) -> None:
        super().__init__(ignore_index, aux_weight)
        self.register_buffer("weight", as_class_vector(weight, "weight"))

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_class_vector(self.weight, logits.shape[1], "weight")
        if not bool((target != self.ignore_index).any()):
            return zero_loss(logits)
        weight = None if self.weight is None else self.weight.to(logits.dtype)
        return F.cross_entropy(logits, target, weight=weight, ignore_index=self.ignore_index)


class FocalLoss(SegLoss):
    """Focal loss (Lin, Goyal, Girshick, He, Dollár, "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 5).

    Softmax form per pixel: ``FL_i = −α_{y_i} · (1 − p_i)^γ · log p_i`` with ``p_i = softmax(z_i)[y_i]``,
    reduced as ``L = Σ_i w[y_i] · FL_i / Σ_i w[y_i]`` over labelled pixels (``w ≡ 1`` without weights:
    the mean). With ``γ = 0``, ``alpha=None`` it equals :class:`CrossEntropy` with the same ``weight``.

    Args:
        gamma: focusing parameter ``γ ≥ 0`` (paper: 2).
        alpha: balancing factor ``α``: a float (one factor for all classes, as the paper's α in the
            multi-class softmax form), K per-class floats (``α_t = alpha[y]``, the paper's α_t), or
            ``None`` (1). Unlike ``weight``, it does not enter the normaliser.
        weight: optional per-class weights (dataset-derived, see :mod:`segstudio.losses.weights`), K floats.
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output.

    A batch without labelled pixels gives 0.

    Raises:
        ValueError: negative ``gamma``, invalid ``alpha``/``weight``, or a per-class vector of the wrong length.
    """

    name = "focal"
    accepts_class_weights = True

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: float | Sequence[float] | None = None,
        weight=None,
        ignore_index: int = IGNORE_INDEX,
        aux_weight: float = 0.4,
    ) -> None:
        super().__init__(ignore_index, aux_weight)
        if not gamma >= 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        if alpha is None or isinstance(alpha, (int, float)):
            if alpha is not None and not alpha > 0:
                raise ValueError(f"focal alpha must be > 0, got {alpha}")
            self.alpha_scalar = None if alpha is None else float(alpha)
            self.register_buffer("alpha", None)
        else:
            self.alpha_scalar = None
            self.register_buffer("alpha", as_class_vector(alpha, "alpha"))
        self.register_buffer("weight", as_class_vector(weight, "weight"))

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1]
        check_class_vector(self.weight, k, "weight")
        check_class_vector(self.alpha, k, "alpha")
        valid = target != self.ignore_index
        if not bool(valid.any()):
            return zero_loss(logits)
        t = torch.where(valid, target, torch.zeros_like(target)).long()
        logpt = F.log_softmax(logits, dim=1).gather(1, t.unsqueeze(1)).squeeze(1)  # (N, H, W)
        loss = -logpt
        if self.gamma != 0:
            loss = (1.0 - logpt.exp()).pow(self.gamma) * loss
        if self.alpha is not None:
            loss = self.alpha.to(loss.dtype)[t] * loss
        elif self.alpha_scalar is not None:
            loss = self.alpha_scalar * loss
        w = valid.to(loss.dtype) if self.weight is None else torch.where(valid, self.weight.to(loss.dtype)[t], 0.0)
        return torch.where(valid, w * loss, 0.0).sum() / w.sum()

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha_scalar if self.alpha is None else self.alpha.tolist()}"
