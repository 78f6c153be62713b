"""``ConfusionMatrix``: streaming, mergeable, bincount-based (as torchvision's references/segmentation)."""

from __future__ import annotations

import numpy as np

from segstudio.core.labels import IGNORE_INDEX

class ConfusionMatrix:
    """K×K confusion matrix ``M[t, p]`` = number of pixels of true class ``t`` predicted as ``p``.

    Accumulates batches with :meth:`update` (``numpy.bincount``) and combines matrices from other
    workers or processes with :meth:`merge`; every metric is a function of ``M`` alone, so merged
    batches give exactly the metrics of one pass over all of them.

    Args:
        num_classes: K.
        ignore_index: target value whose pixels are skipped.

    Metrics, with ``TP_c = M_cc``, ``FN_c = Σ_j M_cj − M_cc`` (row), ``FP_c = Σ_j M_jc − M_cc`` (column),
    ``t_c = Σ_j M_cj`` (target pixels of ``c``); Long, Shelhamer, Darrell, "Fully Convolutional Networks
    for Semantic Segmentation", CVPR 2015, Sec. 5 define pixel accuracy, mean accuracy, mean IU and
    frequency-weighted IU:

    - pixel accuracy ``Σ_c TP_c / Σ_c t_c``;
    - class accuracy = recall ``TP_c / t_c``; mean class accuracy = their mean;
    - precision ``TP_c / (TP_c + FP_c)``;
    - IoU ``TP_c / (TP_c + FP_c + FN_c)``; mIoU = their mean;
    - frequency-weighted IoU ``Σ_c t_c · IoU_c / Σ_c t_c``;
    - F1 ``2 TP_c / (2 TP_c + FP_c + FN_c)`` (the harmonic mean of precision and recall, 0 when either is 0);
      Dice is the same number on hard labels (:attr:`dice` is :attr:`f1`).

    NaN handling: a per-class value whose denominator is 0 is NaN ("undefined"), never 0: recall for a
    class absent from the target, precision for a class never predicted, IoU/F1/Dice for a class in
    neither. A class absent from the target but predicted has recall NaN, precision 0, IoU 0, F1 0. Means
    (``mean_*``, ``miou``) skip NaNs, i.e. average over the classes where the metric is defined, and are
    NaN when none is (this matches scikit-learn's ``zero_division=np.nan`` for macro averages). Scalar
    metrics over no pixels are NaN. :meth:`summary` writes NaN as ``None`` (JSON ``null``).
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, target, pred) -> None:
        """Add a batch. ``target`` and ``pred`` are integer arrays (or torch tensors) of equal shape.

        Raises:
            ValueError: shapes differ, or a non-ignored value is outside ``0..K-1``.
        """
        t = np.asarray(target.cpu() if hasattr(target, "cpu") else target).ravel().astype(np.int64)
        p = np.asarray(pred.cpu() if hasattr(pred, "cpu") else pred).ravel().astype(np.int64)
        if t.shape != p.shape:
            raise ValueError(f"target and prediction sizes differ: {t.shape} vs {p.shape}")
        keep = t != self.ignore_index
        t, p = t[keep], p[keep]
        k = self.num_classes
        if t.size and (t.min() < 0 or t.max() >= k or p.min() < 0 or p.max() >= k):
            raise ValueError(f"labels must be in 0..{k - 1} (or {self.ignore_index} in the target)")
        self.mat += np.bincount(k * t + p, minlength=k * k).reshape(k, k)

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix (e.g. from another worker or process) into this one; returns ``self``.

        Raises:
            ValueError: the class counts differ.
        """
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class matrix into {self.num_classes}-class one")
        self.mat += other.mat
        return self

    def reset(self) -> None:
        """Zero the counts."""
        self.mat[:] = 0

    @staticmethod
    def _div(a, b) -> np.ndarray:
        """``a / b`` elementwise as float64, NaN where ``b == 0``."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        out = np.full(np.broadcast(a, b).shape, np.nan)
        np.divide(a, b, out=out, where=b > 0)
        return out

    @staticmethod
    def _nanmean(values: np.ndarray) -> float:
        finite = values[np.isfinite(values)]
        return float(finite.mean()) if finite.size else float("nan")

    # -- counts ---------------------------------------------------------------------------------
    @property
    def tp(self) -> np.ndarray:
        """True positives per class, int64 (K,)."""
        return np.diag(self.mat).copy()

    @property
    def support(self) -> np.ndarray:
        """Target pixels per class (row sums ``t_c``), int64 (K,)."""
        return self.mat.sum(1)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted pixels per class (column sums), int64 (K,)."""
        return self.mat.sum(0)

    @property
    def pixels(self) -> int:
        """Counted (non-ignored) pixels."""
        return int(self.mat.sum())

    # -- per-class metrics, float64 (K,) in [0, 1] or NaN ----------------------------------------
    @property
    def class_accuracy(self) -> np.ndarray:
        """Recall per class, float64 (K,); NaN for classes absent from the target."""
        return self._div(self.tp, self.support)

    recall = class_accuracy

    @property
    def precision(self) -> np.ndarray:
        """Precision per class, float64 (K,); NaN for classes never predicted."""
        return self._div(self.tp, self.predicted)

    @property
    def iou(self) -> np.ndarray:
        """IoU per class, float64 (K,); NaN where the class is in neither target nor prediction."""
        tp = self.tp
        return self._div(tp, self.support + self.predicted - tp)

    @property
    def f1(self) -> np.ndarray:
        """F1 per class ``2TP / (2TP + FP + FN)``, float64 (K,); NaN where the class is in neither target nor prediction."""
        return self._div(2 * self.tp, self.support + self.predicted)

    dice = f1
    """Dice coefficient per class; on hard labels identical to :attr:`f1`."""

    # -- scalar metrics, float in [0, 1] or NaN ------------------------------------------------
    @property
    def pixel_accuracy(self) -> float:
        """Correct pixels / counted pixels; NaN without pixels."""
        total = self.mat.sum()
        return float(np.trace(self.mat) / total) if total else float("nan")

    @property
    def mean_class_accuracy(self) -> float:
        """Mean of :attr:`class_accuracy` over classes present in the target (= :attr:`mean_recall`)."""
        return self._nanmean(self.class_accuracy)

    @property
    def mean_recall(self) -> float:
        """Mean recall over classes present in the target (same as :attr:`mean_class_accuracy`)."""
        return self.mean_class_accuracy

    @property
    def mean_precision(self) -> float:
        """Mean precision over classes that were predicted."""
        return self._nanmean(self.precision)

    @property
    def miou(self) -> float:
        """Mean IoU over classes that occur in target or prediction (NaNs skipped)."""
        return self._nanmean(self.iou)

    @property
    def mean_f1(self) -> float:
        """Mean F1 over classes that occur in target or prediction."""
        return self._nanmean(self.f1)

    @property
    def mean_dice(self) -> float:
        """Mean Dice over classes that occur in target or prediction (= :attr:`mean_f1`)."""
        return self.mean_f1

    @property
    def fw_iou(self) -> float:
        """Frequency-weighted IoU ``Σ_c t_c IoU_c / Σ_c t_c`` (Long et al. 2015, Sec. 5); NaN without pixels.

        Classes absent from the target have weight 0.
        """
        t = self.support
        if not t.sum():
            return float("nan")
        iou = np.where(t > 0, self.iou, 0.0)
        return float((t * iou).sum() / t.sum())

    def summary(self, class_names=None) -> dict:
        """JSON-ready dict of all metrics (NaN written as ``None``).

        Keys: ``pixel_accuracy``, ``mean_class_accuracy``, ``miou``, ``fw_iou``, ``mean_precision``,
        ``mean_recall``, ``mean_f1``, ``mean_dice`` (floats or ``None``); ``iou``, ``precision``, ``recall``,
        ``f1``, ``dice`` (``{class name: float or None}``); ``support`` (``{class name: target pixels}``);
        ``pixels`` (int).
        """
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for a {self.num_classes}-class matrix")
        clean = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        per_class = lambda values: {n: clean(v) for n, v in zip(names, values)}  # noqa: E731
        return {
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_class_accuracy": clean(self.mean_class_accuracy),
            "miou": clean(self.miou),
            "fw_iou": clean(self.fw_iou),
            "mean_precision": clean(self.mean_precision),
            "mean_recall": clean(self.mean_recall),
            "mean_f1": clean(self.mean_f1),
            "mean_dice": clean(self.mean_dice),
            "iou": per_class(self.iou),
            "precision": per_class(self.precision),
            "recall": per_class(self.recall),
            "f1": per_class(self.f1),
            "dice": per_class(self.dice),
            "support": {n: int(v) for n, v in zip(names, self.support)},
            "pixels": self.pixels,
        }
