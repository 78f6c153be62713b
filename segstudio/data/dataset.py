"""``SegmentationDataset``: (image, label map) pairs for training and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from segstudio.core.labels import validate_label_map
from segstudio.io.datasets import DatasetSample
from segstudio.io.images import read_image
from segstudio.io.labels import read_index_png


class SegmentationDataset(Dataset):
    """Image / index-label pairs read with :mod:`segstudio.io`.

    Args:
        samples: pairs from :func:`segstudio.io.find_samples`.
        num_classes: K; masks are validated against it (values 0..K-1 or ignore).
        transform: called as ``transform(tv_tensors.Image, tv_tensors.Mask)`` (see
            :mod:`segstudio.data.transforms`).
        cache: keep decoded uint8 images and masks in memory (fast epochs for small datasets).
        mask_filter: ``f(image path, mask uint8 (H, W)) -> mask`` applied after reading, e.g.
            :func:`segstudio.io.provenance_files.load_human_labels` so a validation set scores only the pixels a person
            painted or changed (issue 30: a model is never graded on its own accepted predictions).

    Items: ``(image float32 (3, H, W), mask int64 (H, W))`` after ``transform``.

    Raises:
        ValueError: when a mask does not match its image's size or holds invalid class ids (the
            message names the file).
    """

    def __init__(
        self,
        samples: Sequence[DatasetSample],
        num_classes: int,
        transform: Callable | None = None,
        cache: bool = True,
        mask_filter: Callable | None = None,
    ) -> None:
        if not samples:
            raise ValueError("SegmentationDataset: no samples (no labelled images found)")
        self.samples = list(samples)
        self.num_classes = num_classes
        self.transform = transform
        self.mask_filter = mask_filter
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded ``(image uint8 (H, W, 3), mask uint8 (H, W))`` of sample ``i``."""
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = self.samples[i]
        image = read_image(s.image)
        mask = read_index_png(s.mask)
        try:
            validate_label_map(mask, self.num_classes, image.shape[:2])
        except ValueError as exc:
            raise ValueError(f"{s.mask}: {exc}") from exc
        if self.mask_filter is not None:
            mask = self.mask_filter(s.image, mask)
        if self._cache is not None:
            self._cache[i] = (image, mask)
        return image, mask

    def __getitem__(self, i: int):
        image, mask = self.load(i)
        img = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        msk = tv_tensors.Mask(torch.from_numpy(mask))
        if self.transform is not None:
            img, msk = self.transform(img, msk)
        return img.as_subclass(torch.Tensor), msk.as_subclass(torch.Tensor)
