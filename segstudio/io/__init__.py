"""File formats: images, label maps, class lists, dataset folders, atomic saves. No Qt, no torch."""

from segstudio.io.atomic import DiskFullError, atomic_write_bytes
from segstudio.io.images import IMAGE_EXTENSIONS, ImageReadError, list_images, read_image
from segstudio.io.labels import (
    LABELS_DIRNAME,
    LabelReadError,
    label_path_for,
    load_classes,
    read_index_png,
    save_classes,
    save_labels,
    write_index_png,
)
from segstudio.io.datasets import DatasetSample, find_samples
from segstudio.io.layout import ProjectLayout

__all__ = [
    "IMAGE_EXTENSIONS",
    "LABELS_DIRNAME",
    "DatasetSample",
    "DiskFullError",
    "LabelReadError",
    "ProjectLayout",
    "ImageReadError",
    "atomic_write_bytes",
    "find_samples",
    "label_path_for",
    "list_images",
    "load_classes",
    "read_image",
    "read_index_png",
    "save_classes",
    "save_labels",
    "write_index_png",
]
