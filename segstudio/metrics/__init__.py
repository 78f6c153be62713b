"""Segmentation metrics from one streaming confusion matrix."""

from segstudio.metrics.confusion import ConfusionMatrix

__all__ = ["ConfusionMatrix"]
