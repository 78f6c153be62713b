"""Mask-aware transforms built from torchvision.transforms.v2.

Images travel as ``tv_tensors.Image`` (uint8 → float32 normalised at the end) and label maps as
``tv_tensors.Mask`` (resized with nearest neighbour, padded with the ignore index).
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segstudio.core.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _MaskToLong(torch.nn.Module):
    def forward(self, image, mask):
        return image, mask.to(torch.long)


class RandomRelativeResize(v2.RandomResize):
    """Resize each sample by a random factor ``s ~ U(lo, hi)`` of its *own* size (short side ``round(s * min(H, W))``,
    aspect ratio kept, at least 8 pixels).

    :class:`torchvision.transforms.v2.RandomResize` draws an absolute short side, which maps images of different
    sizes onto one size; the Predictor works at each image's native size (or shrinks only much larger photos,
    ``scale="auto"``), so relative factors keep training and inference at the same object scale.

    Raises:
        ValueError: ``lo <= 0`` or ``hi < lo``.
    """

    def __init__(self, lo: float, hi: float, antialias: bool = True) -> None:
        if lo <= 0 or hi < lo:
            raise ValueError(f"scale range must satisfy 0 < lo <= hi, got ({lo}, {hi})")
        super().__init__(8, 9, antialias=antialias)
        self.lo, self.hi = float(lo), float(hi)

    def make_params(self, flat_inputs: list) -> dict:
        image = next(x for x in flat_inputs if isinstance(x, (tv_tensors.Image, torch.Tensor)))
        h, w = v2.functional.get_size(image)
        s = self.lo + (self.hi - self.lo) * float(torch.rand(()))
        return dict(size=[max(8, round(s * min(h, w)))])


class RandomHorizontalFlipSwap(v2.RandomHorizontalFlip):
    """Random left-right mirror (p = 0.5) that also maps each class of the mask to its mirror class.

    Args:
        permutation: ``perm`` (K,) with ``perm[c]`` the class of mirrored class ``c``
            (:func:`segstudio.core.labels.mirror_permutation`, e.g. ``left_mirror`` ↔ ``right_mirror``); ignore
            pixels stay ignore.

    Raises:
        ValueError: ``permutation`` is not a permutation of ``0..K-1``.
    """

    def __init__(self, permutation) -> None:
        super().__init__(p=0.5)
        perm = [int(v) for v in permutation]
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f"mirror classes must be a permutation of 0..{len(perm) - 1}, got {perm}")
        lut = torch.arange(256, dtype=torch.uint8)
        lut[: len(perm)] = torch.tensor(perm, dtype=torch.uint8)
        self.lut = lut

    def transform(self, inpt, params):
        out = super().transform(inpt, params)
        if isinstance(out, tv_tensors.Mask):
            mapped = self.lut.to(out.device)[out.long()] if out.dtype == torch.uint8 else self.lut.to(out.device).long()[out.long()]
            return tv_tensors.wrap(mapped.to(out.dtype), like=out)
        return out


def train_transforms(
    crop_size: tuple[int, int] = (256, 256),
    scale_range: tuple[float, float] = (0.5, 2.0),
    base_short_side: int | None = None,
    hflip: bool = True,
    vflip: bool = False,
    rotate: float = 0.0,
    translate: float = 0.0,
    elastic: float = 0.0,
    color_jitter: float = 0.2,
    hflip_permutation=None,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> v2.Compose:
    """Mask-aware training augmentation from torchvision.transforms.v2.

    Order: random scale → rotate/translate → random crop (padded with ignore) → elastic → flips →
    colour jitter → normalise. Geometric ops move image and mask together; the mask is resampled with
    nearest neighbour and newly exposed pixels get ``IGNORE_INDEX`` (255) so they add no loss.

    Args:
        crop_size: ``(h, w)`` of the training crops (patches of large images), pixels.
        scale_range: random rescale factor range ``(lo, hi)``: relative to each image's own size
            (:class:`RandomRelativeResize`), or to ``base_short_side`` when that is given.
        base_short_side: short side (pixels) that scale 1.0 maps to for every image (``None``, the default:
            scale 1.0 is each image's native size, as the Predictor sees it).
        hflip: random horizontal flip with p = 0.5.
        vflip: random vertical flip with p = 0.5 (microscopy, aerial images; not street scenes).
        rotate: maximum rotation, degrees (0 disables); angle uniform in ``[-rotate, rotate]``.
        translate: maximum shift as a fraction of width/height (0 disables).
        elastic: displacement magnitude alpha of an elastic deformation, pixels (0 disables); sigma 5.
            Ronneberger et al., "U-Net", MICCAI 2015, used elastic deformations for the ISBI membranes.
        color_jitter: brightness/contrast/saturation strength (0 disables).
        hflip_permutation: with ``hflip``, the class each class becomes when mirrored
            (:func:`segstudio.core.labels.mirror_permutation`; ``None``: every class stays itself).

    Call as ``t(tv_tensors.Image uint8 (3, H, W), tv_tensors.Mask uint8 (H, W))`` →
    ``(float32 (3, h, w) normalised, int64 (h, w))``.

    Raises:
        ValueError: a negative or out-of-range option.
    """
    if rotate < 0 or not 0 <= translate < 1 or elastic < 0 or color_jitter < 0:
        raise ValueError(
            f"augmentation options must be >= 0 (translate < 1): rotate={rotate}, translate={translate}, "
            f"elastic={elastic}, color_jitter={color_jitter}"
        )
    fill = {tv_tensors.Mask: IGNORE_INDEX, "others": 0}
    if base_short_side is None:
        ops: list = [RandomRelativeResize(*scale_range)]
    else:
        lo = max(8, int(base_short_side * scale_range[0]))
        hi = max(lo + 1, int(base_short_side * scale_range[1]))
        ops = [v2.RandomResize(lo, hi, antialias=True)]
    if rotate > 0 or translate > 0:
        ops.append(v2.RandomAffine(degrees=rotate, translate=(translate, translate) if translate else None, fill=fill))
    ops.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill=fill))
    if elastic > 0:  # after the crop: the displacement field costs O(crop), not O(image)
        ops.append(v2.ElasticTransform(alpha=float(elastic), sigma=5.0, fill=fill))
    if hflip:
        ops.append(v2.RandomHorizontalFlip() if hflip_permutation is None else RandomHorizontalFlipSwap(hflip_permutation))
    if vflip:
        ops.append(v2.RandomVerticalFlip())
    if color_jitter > 0:
        ops.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    ops += [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std), _MaskToLong()]
    return v2.Compose(ops)


def eval_transforms(mean=IMAGENET_MEAN, std=IMAGENET_STD) -> v2.Compose:
    """Full-size evaluation: only dtype conversion and normalisation."""
    return v2.Compose(
        [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std), _MaskToLong()]
    )


def to_model_input(image: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (H, W, 3) RGB → float32 (3, H, W) normalised tensor ``(x / 255 - mean) / std``."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (x - m) / s
