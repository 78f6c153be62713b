"""Mask-aware training augmentation: image and label map move together; exposed pixels are ignore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from segstudio.core.labels import IGNORE_INDEX
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transforms


def _pair(h: int = 96, w: int = 128):
    """An image whose red channel encodes the class of the label map exactly (class k → red 40·k)."""
    rng = np.random.default_rng(0)
    labels = np.zeros((h, w), np.uint8)
    labels[10:50, 20:70] = 1
    labels[60:90, 80:120] = 2
    labels[:, :5] = 3
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = labels * 40
    image[..., 1] = rng.integers(0, 255, (h, w), dtype=np.uint8)
    return tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), tv_tensors.Mask(torch.from_numpy(labels))


def _red_255(x: torch.Tensor) -> torch.Tensor:
    """Undo normalisation of the red channel → values in 0..255."""
    return (x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255


@pytest.mark.parametrize(
    "options",
    [
        dict(vflip=True),
        dict(rotate=45.0),
        dict(translate=0.2),
        dict(rotate=30.0, translate=0.1, vflip=True),
    ],
)
def test_geometric_augmentation_keeps_image_and_mask_aligned(options):
    torch.manual_seed(0)
    t = train_transforms(crop_size=(64, 96), scale_range=(1.0, 1.0), base_short_side=96, color_jitter=0.0, **options)
    image, mask = _pair()
    exposed_seen = False
    for _ in range(20):
        x, y = t(image, mask)
        assert x.shape == (3, 64, 96) and x.dtype == torch.float32
        assert y.shape == (64, 96) and y.dtype == torch.int64
        valid = y != IGNORE_INDEX
        exposed_seen |= bool((~valid).any())
        # Nearest-neighbour masks only hold the original ids (or ignore): no interpolated classes.
        assert set(torch.unique(y).tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
        # Where both are valid, the image's red channel still tells the mask's class. Bilinear image
        # resampling blurs edges, so compare away from class boundaries only.
        red_class = torch.round(_red_255(x) / 40).long()
        interior = valid.clone()
        interior[1:-1, 1:-1] &= (y[:-2, 1:-1] == y[1:-1, 1:-1]) & (y[2:, 1:-1] == y[1:-1, 1:-1])
        interior[1:-1, 1:-1] &= (y[1:-1, :-2] == y[1:-1, 1:-1]) & (y[1:-1, 2:] == y[1:-1, 1:-1])
        interior[[0, -1], :] = False
        interior[:, [0, -1]] = False
        agree = (red_class[interior] == y[interior]).float().mean().item()
        assert agree > 0.97, f"image and mask drifted apart under {options}: {agree:.3f}"
    if options.get("rotate") or options.get("translate"):
        assert exposed_seen, "rotation/translation must expose pixels, and they must be ignore_index"


def test_vflip_flips_both():
    torch.manual_seed(1)
    t = train_transforms(crop_size=(96, 128), scale_range=(1.0, 1.0), base_short_side=96, hflip=False, vflip=True, color_jitter=0.0)
    image, mask = _pair()
    flips = 0
    for _ in range(12):
        _, y = t(image, mask)
        if torch.equal(y, mask.flip(0).long()):
            flips += 1
        else:
            assert torch.equal(y, mask.long())
    assert 0 < flips < 12


def test_elastic_deforms_but_keeps_ids():
    torch.manual_seed(2)
    t = train_transforms(crop_size=(96, 128), scale_range=(1.0, 1.0), base_short_side=96, hflip=False, elastic=40.0, color_jitter=0.0)
    image, mask = _pair()
    _, y = t(image, mask)
    assert not torch.equal(y, mask.long())
    assert set(torch.unique(y).tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}
    # A deformation, not a scramble: most pixels keep their class.
    assert (y == mask.long()).float().mean() > 0.8


@pytest.mark.parametrize("bad", [dict(rotate=-1), dict(translate=1.5), dict(elastic=-3), dict(color_jitter=-0.1)])
def test_bad_augmentation_options_raise(bad):
    with pytest.raises(ValueError, match="augmentation"):
        train_transforms(**bad)


def test_mirror_swaps_left_and_right_classes():
    """Car parts (issue 29's stress proxy): left/right parts are separate classes, so a mirrored training crop must
    swap them, or the flip teaches the model that the two sides look alike."""
    from torchvision import tv_tensors

    from segstudio.core.labels import IGNORE_INDEX, mirror_permutation
    from segstudio.data.transforms import RandomHorizontalFlipSwap

    names = ["background", "left_mirror", "front-Left door", "right_mirror", "front-Right door", "hood"]
    perm = mirror_permutation(names)
    assert perm == [0, 3, 4, 1, 2, 5]
    assert mirror_permutation(["background", "left", "sky"]) is None  # nothing to pair with
    assert mirror_permutation(["a", "b"]) is None
    mask = torch.tensor([[1, 0, 2, IGNORE_INDEX], [3, 4, 5, 1]], dtype=torch.uint8)
    image = torch.arange(8, dtype=torch.uint8).reshape(1, 2, 4).expand(3, 2, 4).clone()
    flip = RandomHorizontalFlipSwap(perm)
    flip.p = 1.0
    im2, m2 = flip(tv_tensors.Image(image), tv_tensors.Mask(mask))
    assert torch.equal(im2, image.flip(-1))
    assert m2.tolist() == [[IGNORE_INDEX, 4, 0, 3], [3, 5, 2, 1]]  # mirrored, then left <-> right
    with pytest.raises(ValueError, match="permutation"):
        RandomHorizontalFlipSwap([0, 0, 1])
