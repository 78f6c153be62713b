"""Lovász-Softmax loss (Berman, Rannen Triki, Blaschko, "The Lovász-Softmax loss: A tractable surrogate for
the optimization of the intersection-over-union measure in neural networks", CVPR 2018).

Follows the authors' reference code (github.com/bermanmaxim/LovaszSoftmax, ``pytorch/lovasz_losses.py``):
for each class ``c`` the pixel errors ``m_i = |g_ic − p_ic|`` are sorted in decreasing order and dotted
with :func:`lovasz_grad` of the sorted ground truth — the gradient of the Lovász extension of the
Jaccard loss ``Δ_J`` (paper, Algorithm 1), evaluated at ``m``. The loss is the mean over classes.
Here all classes are processed at once (a column-wise sort) instead of in a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from segstudio.core.labels import IGNORE_INDEX
from segstudio.losses.base import SegLoss, zero_loss


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors (paper, Algorithm 1).

    Args:
        gt_sorted: float (P,) or (P, C): ground-truth indicators (0/1) ordered by decreasing error,
            one column per class.

    Returns:
        float, same shape: ``g_1 = Δ_J({π_1})``, ``g_i = Δ_J({π_1..π_i}) − Δ_J({π_1..π_{i−1}})`` with
        ``Δ_J = 1 − |intersection| / |union|`` of the foreground with the first ``i`` pixels taken as
        mispredicted.
    """
    gts = gt_sorted.sum(0)
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.shape[0] > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)
    return jaccard


def lovasz_softmax_flat(
    probas: torch.Tensor, labels: torch.Tensor, classes: str | Sequence[int] = "present"
) -> torch.Tensor:
    """Multi-class Lovász-Softmax on flattened, labelled pixels.

    Args:
        probas: float (P, C) class probabilities (rows sum to 1).
        labels: int64 (P,) ground truth in ``0..C-1`` (ignore pixels already removed).
        classes: ``"present"`` (classes that occur in ``labels``), ``"all"``, or a list of class ids.

    Returns:
        Float scalar: ``mean_c Σ_i m_(i)c · lovasz_grad(g_(i)c)``; 0 (attached to ``probas``) when
        there are no pixels or no selected class.
    """
    if probas.shape[0] == 0:
        return zero_loss(probas)
    num_classes = probas.shape[1]
    fg = F.one_hot(labels.long(), num_classes).to(probas.dtype)  # (P, C)
    errors = (fg - probas).abs()
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    fg_sorted = fg.gather(0, perm)
    losses = (errors_sorted * lovasz_grad(fg_sorted)).sum(0)  # (C,)
    if classes == "present":
        losses = losses[fg.sum(0) > 0]
    elif classes != "all":
        losses = losses[torch.as_tensor(list(classes), dtype=torch.long, device=losses.device)]
    return losses.mean() if losses.numel() else zero_loss(probas)


class LovaszSoftmax(SegLoss):
    """Lovász-Softmax loss: a convex surrogate of ``1 − mIoU`` on softmax probabilities.

    Args:
        classes: ``"present"`` (default, as the paper's experiments: classes in the labelled target),
            ``"all"``, or a list of class ids to average over.
        per_image: compute the loss per image and average over the images that have labelled pixels
            (otherwise over the whole batch as one set of pixels, the reference code's default).
        ignore_index: target value excluded from the loss.
        aux_weight: weight of the ``"aux"`` output.

    Value range ``[0, 1]``; equals the mean Jaccard loss ``1 − IoU_c`` of the hard prediction when the
    probabilities are one-hot. A batch without labelled pixels gives 0.

    Raises:
        ValueError: invalid ``classes``.
    """

    name = "lovasz"

    def __init__(
        self,
        classes: str | Sequence[int] = "present",
        per_image: bool = False,
        ignore_index: int = IGNORE_INDEX,
        aux_weight: float = 0.4,
    ) -> None:
        super().__init__(ignore_index, aux_weight)
        if isinstance(classes, str):
            if classes not in ("present", "all"):
                raise ValueError(f"classes must be 'present', 'all' or a list of class ids, got {classes!r}")
        else:
            classes = [int(c) for c in classes]
            if not classes:
                raise ValueError("classes: empty list of class ids")
        self.classes, self.per_image = classes, bool(per_image)

    def _flat(self, probas: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(n, K, H, W), (n, H, W) → loss over the labelled pixels of these images."""
        p = probas.permute(0, 2, 3, 1).reshape(-1, probas.shape[1])
        t = target.reshape(-1)
        valid = t != self.ignore_index
        return lovasz_softmax_flat(p[valid], t[valid], self.classes)

    def compute(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probas = torch.softmax(logits, dim=1)
        if not isinstance(self.classes, str) and max(self.classes) >= logits.shape[1]:
            raise ValueError(f"classes {self.classes} outside 0..{logits.shape[1] - 1}")
        if not self.per_image:
            return self._flat(probas, target)
        labelled = (target != self.ignore_index).flatten(1).any(1).tolist()
        losses = [self._flat(probas[i : i + 1], target[i : i + 1]) for i in range(len(labelled)) if labelled[i]]
        return torch.stack(losses).mean() if losses else zero_loss(logits)

    def extra_repr(self) -> str:
        return f"classes={self.classes!r}, per_image={self.per_image}"
