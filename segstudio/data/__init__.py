"""Datasets and mask-aware transforms (torchvision.transforms.v2 with ``tv_tensors.Mask``)."""

from segstudio.data.dataset import SegmentationDataset
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, to_model_input, train_transforms

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SegmentationDataset",
    "eval_transforms",
    "to_model_input",
    "train_transforms",
]
