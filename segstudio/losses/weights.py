"""Class weights for weighted cross-entropy / focal loss, computed from a dataset's label maps (numpy only).

Three schemes, all from per-class pixel statistics (:func:`class_pixel_counts`, ignore pixels skipped):

- **median-frequency balancing** (Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels
  with a Common Multi-Scale Convolutional Architecture", ICCV 2015; used by SegNet,
  Badrinarayanan et al., TPAMI 2017): ``w_c = median_k(freq_k) / freq_c`` where ``freq_c`` =
  pixels of class ``c`` / pixels of the images that contain ``c`` (labelled pixels only: void
  pixels belong to no class);
- **square-root median-frequency** (``"sqrt_median"``): ``sqrt`` of the above, a softer balance (the square-root
  frequency balancing that Mahajan et al., "Exploring the Limits of Weakly Supervised Pretraining", ECCV 2018,
  use to re-sample long-tailed labels, here as loss weights), so a dominant class is not nearly ignored when many
  rare classes share the images;
- **inverse frequency**: ``w_c = total / (K' · pixels_c)`` (scikit-learn's ``"balanced"`` class weight),
  so the pixel-weighted mean weight over the dataset is 1.

Classes that never occur get weight 0 (they have no target pixels to weight) and are left out of the median.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from segstudio.core.labels import IGNORE_INDEX

CLASS_WEIGHT_METHODS = ("none", "median", "sqrt_median", "inverse")
"""Values of ``--class-weights`` / :attr:`TrainConfig.class_weights`."""


@dataclass(frozen=True)
class ClassCounts:
    """Per-class pixel statistics of a set of label maps.

    Attributes:
        pixels: int64 (K,): labelled pixels of class ``c``.
        image_pixels: int64 (K,): labelled pixels (of any class) of the images that contain class ``c``.
        images: int64 (K,): number of images that contain class ``c``.
        num_images: number of label maps counted.
    """

    pixels: np.ndarray
    image_pixels: np.ndarray
    images: np.ndarray
    num_images: int

    @property
    def num_classes(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def total(self) -> int:
        """All labelled pixels."""
        return int(self.pixels.sum())

    @property
    def present(self) -> np.ndarray:
        """bool (K,): classes with at least one pixel."""
        return self.pixels > 0


def _label_maps(source) -> Iterable:
    if hasattr(source, "load") and hasattr(source, "__len__"):  # SegmentationDataset: untransformed masks
        return (source.load(i)[1] for i in range(len(source)))
    return source


def class_pixel_counts(source, num_classes: int, ignore_index: int = IGNORE_INDEX) -> ClassCounts:
    """Count class pixels with ``numpy.bincount``, skipping ``ignore_index``.

    Args:
        source: an iterable of integer label maps (numpy arrays or CPU tensors, any shape, values
            ``0..K-1`` or ``ignore_index``), or a dataset with ``load(i) -> (image, mask)`` and ``len``
            (:class:`segstudio.data.SegmentationDataset`; its full-size, untransformed masks are counted).
        num_classes: K.
        ignore_index: value of void pixels.

    Returns:
        :class:`ClassCounts`.

    Raises:
        ValueError: ``num_classes < 1`` or a label map holds a value outside ``0..K-1`` (other than
            ``ignore_index``); the message gives the map's position and the values.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    images = np.zeros(num_classes, np.int64)
    n = 0
    for n, labels in enumerate(_label_maps(source), start=1):
        m = np.asarray(labels).ravel()
        m = m[m != ignore_index].astype(np.int64)
        if m.size and (m.min() < 0 or m.max() >= num_classes):
            bad = np.unique(m[(m < 0) | (m >= num_classes)])
            raise ValueError(
                f"label map {n - 1} holds values {bad.tolist()}; valid are 0..{num_classes - 1} and {ignore_index}"
            )
        c = np.bincount(m, minlength=num_classes)
        here = c > 0
        pixels += c
        image_pixels[here] += m.size
        images[here] += 1
    return ClassCounts(pixels, image_pixels, images, n)


def _require_pixels(counts: ClassCounts) -> None:
    if counts.total == 0:
        raise ValueError(f"cannot compute class weights: no labelled pixels in {counts.num_images} label maps")


def median_frequency_weights(counts: ClassCounts) -> np.ndarray:
    """Median-frequency balancing weights (Eigen & Fergus 2015; SegNet).

    ``freq_c = pixels_c / image_pixels_c``; ``w_c = median(freq over classes that occur) / freq_c``.

    Args:
        counts: from :func:`class_pixel_counts`.

    Returns:
        float64 (K,), positive for classes that occur; 0 for classes that never occur (they have no
        target pixels, so their weight has no effect on CE or Focal).

    Raises:
        ValueError: no labelled pixels at all.
    """
    _require_pixels(counts)
    present = counts.present
    freq = np.zeros(counts.num_classes, np.float64)
    freq[present] = counts.pixels[present] / counts.image_pixels[present]
    w = np.zeros_like(freq)
    w[present] = np.median(freq[present]) / freq[present]
    return w


def inverse_frequency_weights(counts: ClassCounts) -> np.ndarray:
    """Inverse-frequency weights ``w_c = total / (K' · pixels_c)``, ``K'`` = number of classes that occur.

    Args:
        counts: from :func:`class_pixel_counts`.

    Returns:
        float64 (K,): positive for classes that occur (``Σ_c pixels_c · w_c = total``); 0 for the others.

    Raises:
        ValueError: no labelled pixels at all.
    """
    _require_pixels(counts)
    present = counts.present
    w = np.zeros(counts.num_classes, np.float64)
    w[present] = counts.total / (present.sum() * counts.pixels[present])
    return w


def compute_class_weights(method: str, counts: ClassCounts) -> np.ndarray | None:
    """Weights by method name: ``"none"`` → ``None``, ``"median"``, ``"sqrt_median"``, ``"inverse"`` → float64 (K,).

    Raises:
        ValueError: unknown method, or no labelled pixels.
    """
    if method == "none":
        return None
    if method == "median":
        return median_frequency_weights(counts)
    if method == "sqrt_median":
        return np.sqrt(median_frequency_weights(counts))
    if method == "inverse":
        return inverse_frequency_weights(counts)
    raise ValueError(f"unknown class-weight method {method!r}; choose one of {', '.join(CLASS_WEIGHT_METHODS)}")
