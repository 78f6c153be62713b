"""``ConfusionMatrix``: streaming, mergeable, bincount-based (as torchvision's references/segmentation)."""

from __future__ import annotations

import numpy as np

from segstudio.core.labels import IGNORE_INDEX


class ConfusionMatrix:
    """K×K confusion matrix ``M[t, p]`` = number of pixels of true class ``t`` predicted as ``p``.

    Args:
        num_classes: K.
        ignore_index: target value whose pixels are skipped.

    Metrics (Long et al., FCN, CVPR 2015, Sec. 5 define pixel acc., mean acc., mean IU, f.w. IU):
        pixel accuracy = Σ_i M_ii / Σ M; class accuracy_i = M_ii / Σ_j M_ij;
        IoU_i = M_ii / (Σ_j M_ij + Σ_j M_ji − M_ii); mIoU = mean over classes present in target or prediction.
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
        """Add another matrix (e.g. from another worker or process) into this one."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes}-class matrix into {self.num_classes}-class one")
        self.mat += other.mat
        return self

    def reset(self) -> None:
        self.mat[:] = 0

    def _div(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.maximum(b, 1), np.nan)

    @property
    def pixel_accuracy(self) -> float:
        total = self.mat.sum()
        return float(np.trace(self.mat) / total) if total else float("nan")

    @property
    def class_accuracy(self) -> np.ndarray:
        """Recall per class, float64 (K,); NaN for classes absent from the target."""
        return self._div(np.diag(self.mat), self.mat.sum(1))

    @property
    def iou(self) -> np.ndarray:
        """IoU per class, float64 (K,); NaN where the class is in neither target nor prediction."""
        tp = np.diag(self.mat)
        return self._div(tp, self.mat.sum(0) + self.mat.sum(1) - tp)

    @property
    def miou(self) -> float:
        """Mean IoU over classes that occur (NaNs skipped)."""
        iou = self.iou
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def summary(self, class_names=None) -> dict:
        """JSON-ready dict: pixel_accuracy, mean_class_accuracy, miou, per-class iou (None for NaN)."""
        names = list(class_names) if class_names is not None else [str(i) for i in range(self.num_classes)]
        clean = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        ca = self.class_accuracy
        return {
            "pixel_accuracy": clean(self.pixel_accuracy),
            "mean_class_accuracy": clean(float(np.nanmean(ca)) if np.isfinite(ca).any() else float("nan")),
            "miou": clean(self.miou),
            "iou": {n: clean(v) for n, v in zip(names, self.iou)},
            "pixels": int(self.mat.sum()),
        }
