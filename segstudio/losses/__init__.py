"""Segmentation losses; all take logits float (N, K, H, W) and targets int64 (N, H, W) and honour ignore_index.

Every loss accepts a logits tensor or the model output dict ``{"out", "aux" (optional)}``
(:class:`~segstudio.losses.base.SegLoss`). Build them by spec string with :func:`get_loss`
(``"ce"``, ``"ce+dice"``, ``"ce+0.5*dice"``, ``"focal"``, ``"lovasz"``...).

Modules: :mod:`~segstudio.losses.base` (output dict / aux handling, input checks, one-hot),
:mod:`~segstudio.losses.pixelwise` (cross-entropy, Focal), :mod:`~segstudio.losses.region` (soft Dice,
soft Jaccard), :mod:`~segstudio.losses.lovasz` (Lovász-Softmax), :mod:`~segstudio.losses.combined`
(registry, spec strings, weighted sums), :mod:`~segstudio.losses.weights` (class weights from a dataset).
"""

from segstudio.losses.base import SegLoss, check_inputs, one_hot_target
from segstudio.losses.combined import ALIASES, LOSSES, CombinedLoss, get_loss, parse_loss_spec
from segstudio.losses.lovasz import LovaszSoftmax, lovasz_grad, lovasz_softmax_flat
from segstudio.losses.pixelwise import CrossEntropy, FocalLoss
from segstudio.losses.region import DiceLoss, JaccardLoss
from segstudio.losses.weights import (
    CLASS_WEIGHT_METHODS,
    ClassCounts,
    class_pixel_counts,
    compute_class_weights,
    inverse_frequency_weights,
    median_frequency_weights,
)

__all__ = [
    "ALIASES",
    "CLASS_WEIGHT_METHODS",
    "ClassCounts",
    "CombinedLoss",
    "CrossEntropy",
    "DiceLoss",
    "FocalLoss",
    "JaccardLoss",
    "LOSSES",
    "LovaszSoftmax",
    "SegLoss",
    "check_inputs",
    "class_pixel_counts",
    "compute_class_weights",
    "get_loss",
    "inverse_frequency_weights",
    "lovasz_grad",
    "lovasz_softmax_flat",
    "median_frequency_weights",
    "one_hot_target",
    "parse_loss_spec",
]
