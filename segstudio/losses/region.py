"""Soft region losses on softmax probabilities: Dice (V-Net) and Jaccard (soft IoU).

Both aggregate over the whole batch: for class ``c`` the sums run over all labelled pixels of all
N images (``p_ic`` = softmax probability of class ``c`` at pixel ``i``, ``g_ic`` = 1 if ``y_i = c``),
then the per-class scores are averaged over the classes selected by ``classes``:

- ``"present"`` (default): classes that occur in the batch's labelled target pixels. Probability
  mass on an absent class is still penalised, through the lower ``p`` of the true class.
- ``"all"``: all K classes; an absent class then scores ``smooth / (P_c + smooth)``, so use ``smooth > 0``.

Ignore pixels contribute to none of the sums; a batch without labelled pixels gives 0.
"""

from __future__ import annotations

import torch

from segstudio.core.labels import IGNORE_INDEX
from segstudio.losses.base import SegLoss, check_classes_mode, one_hot_target, zero_loss

_EPS = 1e-7  # keeps 0/0 out of the "all" mode with smooth = 0


def _region_sums(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, squared: bool):
    """Per-class sums over labelled pixels: intersection Σ p·g, prediction Σ p (or Σ p²), target Σ g; each (K,)."""
    probs = torch.softmax(logits, dim=1)
    onehot, valid = one_hot_target(target, logits.shape[1], ignore_index)
    probs = torch.where(valid.unsqueeze(1), probs, 0.0)
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    pred = (probs * probs if squared else probs).sum(dims)
    true = onehot.sum(dims)
    return inter, pred, true, valid


def _mean_over(scores: torch.Tensor, true: torch.Tensor, classes: str) -> torch.Tensor:
    if classes == "present":
        scores = scores[true > 0]
    return scores.mean()


class DiceLoss(SegLoss):
    """Soft Dice loss (Milletari, Navab, Ahmadi, "V-Net", 3DV 2016, Eq. 1), multi-class.

    ``D_c = (2 Σ_i p_ic g_ic + s) / (Σ_i p_ic² + Σ_i g_ic + s)`` (``g² = g``), ``L = 1 − mean_c D_c``;
    with ``squared=False`` the denominator is ``Σ p_ic + Σ g_ic`` (the form of most later work).

    Args:
        smooth: ``s ≥ 0`` added to numerator and denominator (paper: 0).
        squared: square the probabilities in the denominator, as V-Net does.
        classes: ``"present"`` or ``"all"`` (see :mod:`segstudio.losses.region`).
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output.

    Value range ``[0, 1]``.

    Raises:
        ValueError: negative ``smooth`` or unknown ``classes``.
    """

    name = "dice"

    def __init__(
        self,
        smooth: float = 0.0,
        squared: bool = True,
        classes: str = "present",
        ignore_index: int = IGNORE_INDEX,
        aux_weight: float = 0.4,
    ) -> None:
        super().__init__(ignore_index, aux_weight)
        if not smooth >= 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        self.smooth, self.squared, self.classes = float(smooth), bool(squared), check_classes_mode(classes)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        inter, pred, true, valid = _region_sums(logits, target, self.ignore_index, self.squared)
        if not bool(valid.any()):
            return zero_loss(logits)
        dice = (2 * inter + self.smooth) / (pred + true + self.smooth).clamp_min(_EPS)
        return 1.0 - _mean_over(dice, true, self.classes)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, squared={self.squared}, classes={self.classes!r}"


class JaccardLoss(SegLoss):
    """Soft Jaccard / IoU loss (Rahman & Wang, "Optimizing Intersection-Over-Union in Deep Neural Networks
    for Image Segmentation", ISVC 2016: their I(X), U(X)), multi-class.

    ``J_c = (I_c + s) / (U_c + s)`` with ``I_c = Σ_i p_ic g_ic`` and ``U_c = Σ_i (p_ic + g_ic − p_ic g_ic)``;
    ``L = 1 − mean_c J_c``. For the tight convex surrogate of the Jaccard loss see
    :class:`~segstudio.losses.lovasz.LovaszSoftmax`.

    Args:
        smooth: ``s ≥ 0`` added to numerator and denominator.
        classes: ``"present"`` or ``"all"`` (see :mod:`segstudio.losses.region`).
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output.

    Value range ``[0, 1]``.

    Raises:
        ValueError: negative ``smooth`` or unknown ``classes``.
    """

    name = "jaccard"

    def __init__(
        self, smooth: float = 0.0, classes: str = "present", ignore_index: int = IGNORE_INDEX, aux_weight: float = 0.4
    ) -> None:
        super().__init__(ignore_index, aux_weight)
        if not smooth >= 0:
            raise ValueError(f"smooth must be >= 0, got {smooth}")
        self.smooth, self.classes = float(smooth), check_classes_mode(classes)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        inter, pred, true, valid = _region_sums(logits, target, self.ignore_index, squared=False)
        if not bool(valid.any()):
            return zero_loss(logits)
        jac = (inter + self.smooth) / (pred + true - inter + self.smooth).clamp_min(_EPS)
        return 1.0 - _mean_over(jac, true, self.classes)

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, classes={self.classes!r}"
