"""The click protocol of the NoC benchmark and of click training (RITM, Sofiiuk et al., ICIP 2022, arXiv:2102.06583):
objects of a label map (:func:`object_masks`), the next simulated click (:func:`next_click`), IoU and NoC@k
(:func:`iou`, :func:`noc`, :func:`evaluate_object`), the click encoding a model reads (:func:`guidance_maps`), and
GrabCut driven by clicks (:func:`grabcut_from_clicks`, the baseline). numpy and OpenCV only: no model, no torch.
See :mod:`segstudio.engine.click` for the protocol's rules.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from segstudio.core.labels import IGNORE_INDEX

log = logging.getLogger(__name__)

#: Click disk radius in pixels (RITM Sec. 3.1).
CLICK_RADIUS = 5
#: Smallest object, as a fraction of the image's pixels (the NoC benchmark's rule).
MIN_OBJECT_FRACTION = 0.005


@dataclass(frozen=True)
class Click:
    """One user click: pixel ``(y, x)`` (ints, row/column) and its sign (True = positive, object)."""

    y: int
    x: int
    positive: bool


# ---------------------------------------------------------------------------------------------------------
# objects, clicks, metrics (numpy)
# ---------------------------------------------------------------------------------------------------------
def object_masks(
    labels: np.ndarray, classes: list[int] | None = None, min_fraction: float = MIN_OBJECT_FRACTION
) -> list[tuple[int, np.ndarray]]:
    """The objects of a label map: 8-connected components of each class covering >= ``min_fraction`` of it.

    Args:
        labels: uint8 (H, W) label map; ``IGNORE_INDEX`` pixels belong to no object.
        classes: class ids to take (default: every id present except ``IGNORE_INDEX``).
        min_fraction: smallest component, as a fraction of H·W, in [0, 1].

    Returns:
        ``[(class_id, bool (H, W) mask), ...]``, by class id then component size (largest first).

    Raises:
        ValueError: ``labels`` is not 2-D.
    """
    if labels.ndim != 2:
        raise ValueError(f"expected a (H, W) label map, got shape {labels.shape}")
    min_px = max(1, int(math.ceil(min_fraction * labels.size)))
    ids = [int(c) for c in np.unique(labels) if c != IGNORE_INDEX] if classes is None else [int(c) for c in classes]
    out = []
    for c in ids:
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
        big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_px]
        big.sort(key=lambda i: -stats[i, cv2.CC_STAT_AREA])
        out.extend((c, comp == i) for i in big)
    return out


def _inner_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of each True pixel to the nearest False pixel or the image border (float32 (H, W))."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def next_click(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> Click | None:
    """The next simulated click (RITM / Xu et al. 2016 protocol): at the interior point of the largest error.

    False negatives ``gt & ~pred`` and false positives ``pred & ~gt`` (outside ``ignore``) are each
    distance-transformed (the image border counts as boundary); the click goes to the pixel with the larger
    distance, positive when it is a false negative. With an empty ``pred`` this is the object's most
    interior point (the first click).

    Args:
        gt, pred: bool (H, W) object masks (ground truth, current prediction).
        ignore: optional bool (H, W) mask of pixels where errors do not count.

    Returns:
        the :class:`Click`, or ``None`` when there is no error left.

    Raises:
        ValueError: shapes differ.
    """
    if gt.shape != pred.shape or (ignore is not None and ignore.shape != gt.shape):
        raise ValueError(f"gt {gt.shape}, pred {pred.shape} and ignore masks must have one shape")
    gt, pred = gt.astype(bool), pred.astype(bool)
    valid = ~ignore.astype(bool) if ignore is not None else np.ones_like(gt)
    fn, fp = gt & ~pred & valid, pred & ~gt & valid
    if not fn.any() and not fp.any():
        return None
    dfn, dfp = _inner_distance(fn), _inner_distance(fp)
    mfn, mfp = float(dfn.max()), float(dfp.max())
    positive = mfn >= mfp
    dist = dfn if positive else dfp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(int(y), int(x), bool(positive))


def iou(a: np.ndarray, b: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two bool (H, W) masks, pixels in ``ignore`` excluded (1.0 when both are empty)."""
    a, b = a.astype(bool), b.astype(bool)
    if ignore is not None:
        keep = ~ignore.astype(bool)
        a, b = a & keep, b & keep
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def boundary_shift_iou(mask: np.ndarray, ignore: np.ndarray | None = None, px: int = 1) -> tuple[float, float]:
    """IoU of an object mask with itself grown and with itself shrunk by ``px`` pixels.

    A prediction whose whole outline lies ``px`` pixels outside (or inside) the annotated one scores these IoUs, so
    they bound what the NoC protocol's IoU thresholds ask of boundary precision: an object whose value is below
    0.85 needs an answer within less than ``px`` pixel of the annotator's outline, everywhere, to count as
    reached at NoC@85. Grown / shrunk = dilation / erosion with a ``(2 px + 1)`` square (8-neighbourhood);
    the image border is not a boundary.

    Args:
        mask: bool (H, W) object mask (not empty).
        ignore: optional bool (H, W) pixels excluded from the IoU (as in :func:`iou`).
        px: the shift in pixels, ``>= 1``.

    Returns:
        ``(iou_grown, iou_shrunk)``, each in [0, 1].

    Raises:
        ValueError: ``px < 1``, ``mask`` not 2-D or empty.
    """
    if px < 1:
        raise ValueError(f"px must be >= 1, got {px}")
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"expected a non-empty bool (H, W) mask, got shape {mask.shape}")
    m = mask.astype(np.uint8)
    k = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    grown = cv2.dilate(m, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    shrunk = cv2.erode(m, k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return float(iou(mask, grown, ignore)), float(iou(mask, shrunk, ignore))


def structure_width(mask: np.ndarray) -> float:
    """Typical width of an object in pixels: ``2 · median(d) − 1`` over its medial axis, where ``d`` is the
    Euclidean distance to the nearest pixel outside it (a 1-px line gives 1, a 5-px bar 5, a disk about its
    diameter). Medial axis: :func:`skimage.morphology.skeletonize` (Zhang & Suen 1984).

    Args:
        mask: bool (H, W) object mask (not empty).

    Returns:
        the width in pixels, ``>= 1``.

    Raises:
        ValueError: ``mask`` not 2-D or empty.
    """
    from skimage.morphology import skeletonize

    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"expected a non-empty bool (H, W) mask, got shape {mask.shape}")
    m = mask.astype(bool)
    d = cv2.distanceTransform(np.pad(m.astype(np.uint8), 1, mode="edge"), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    axis = skeletonize(m)
    vals = d[axis] if axis.any() else d[m]
    return max(1.0, 2.0 * float(np.median(vals)) - 1.0)


def noc(ious: list[float], threshold: float, max_clicks: int = 20) -> int:
    """Number of clicks to reach ``threshold`` IoU: ``1 + index`` of the first ``ious[i] >= threshold``,
    ``max_clicks`` when none does (the NoC@k of Xu et al. 2016 / RITM). ``ious[i]`` is the IoU after click i+1.

    Raises:
        ValueError: ``max_clicks < 1``.
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
    for i, v in enumerate(ious[:max_clicks]):
        if v >= threshold:
            return i + 1
    return max_clicks


def guidance_maps(clicks: list[Click], shape: tuple[int, int], prev_mask: np.ndarray | None = None,
                  radius: float = CLICK_RADIUS) -> np.ndarray:
    """Model guidance: float32 (3, H, W) = positive-click disks, negative-click disks, previous mask, in {0, 1}.

    A disk holds the pixels within ``radius`` px (Euclidean) of a click (RITM's ``DistMaps(use_disks=True)``).

    Raises:
        ValueError: ``prev_mask`` does not have ``shape``.
    """
    h, w = shape
    g = np.zeros((3, h, w), np.float32)
    r = int(math.ceil(radius))
    for c in clicks:
        y0, y1, x0, x1 = max(c.y - r, 0), min(c.y + r + 1, h), max(c.x - r, 0), min(c.x + r + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disk = (yy - c.y) ** 2 + (xx - c.x) ** 2 <= radius * radius
        g[0 if c.positive else 1, y0:y1, x0:x1][disk] = 1.0
    if prev_mask is not None:
        if prev_mask.shape != (h, w):
            raise ValueError(f"previous mask {prev_mask.shape} does not match the image {(h, w)}")
        g[2] = prev_mask.astype(np.float32)
    return g


def evaluate_object(predict, gt: np.ndarray, max_clicks: int = 20, ignore: np.ndarray | None = None,
                    stop_iou: float | None = None) -> list[float]:
    """Run the NoC click protocol on one object.

    Args:
        predict: ``predict(clicks: list[Click], prev_mask: bool (H, W) | None) -> bool (H, W)``.
        gt: bool (H, W) object mask.
        max_clicks: clicks to simulate.
        ignore: bool (H, W) pixels that count for neither IoU nor errors.
        stop_iou: stop early once IoU reaches it (the NoC values below it are unaffected).

    Returns:
        IoU after each click (``len <= max_clicks``).
    """
    clicks: list[Click] = []
    pred = np.zeros(gt.shape, bool)
    prev = None
    ious = []
    for _ in range(max_clicks):
        c = next_click(gt, pred, ignore)
        if c is None:  # no error left: the last IoU stands (1.0 with nothing to click at all)
            if not ious:
                ious.append(1.0)
            break
        clicks.append(c)
        pred = predict(clicks, prev)
        prev = pred
        ious.append(iou(pred, gt, ignore))
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    return ious


# ---------------------------------------------------------------------------------------------------------
# GrabCut driven by clicks (the baseline)
# ---------------------------------------------------------------------------------------------------------
def grabcut_from_clicks(image: np.ndarray, clicks: list[Click], prev_mask: np.ndarray | None = None,
                        radius: int = CLICK_RADIUS, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """GrabCut (Rother et al., SIGGRAPH 2004; :func:`cv2.grabCut`) seeded by clicks.

    Trimap: outside a box around the positive clicks and ``prev_mask`` (padded by half its size, at least
    20 % of the image's longer side) is sure background; inside, ``prev_mask`` is probable foreground and
    the rest probable background — or, with no previous mask, everything inside is probable foreground
    (rectangle initialisation); positive / negative click disks are sure foreground / background.

    Args:
        image: uint8 (H, W, 3) RGB.
        clicks: at least one; with no positive click the result is empty.
        prev_mask: bool (H, W) previous result, or ``None``.

    Returns:
        bool (H, W) foreground.
    """
    h, w = image.shape[:2]
    pos = [c for c in clicks if c.positive]
    if not pos:
        return np.zeros((h, w), bool)
    ys = [c.y for c in pos]
    xs = [c.x for c in pos]
    if prev_mask is not None and prev_mask.any():
        py, px = np.nonzero(prev_mask)
        ys += [int(py.min()), int(py.max())]
        xs += [int(px.min()), int(px.max())]
    y0, y1, x0, x1 = min(ys), max(ys), min(xs), max(xs)
    pad_y = max((y1 - y0) // 2, int(0.2 * max(h, w)))
    pad_x = max((x1 - x0) // 2, int(0.2 * max(h, w)))
    y0, y1, x0, x1 = max(y0 - pad_y, 0), min(y1 + pad_y + 1, h), max(x0 - pad_x, 0), min(x1 + pad_x + 1, w)
    trimap = np.full((h, w), cv2.GC_BGD, np.uint8)
    if prev_mask is not None and prev_mask.any():
        inside = np.where(prev_mask[y0:y1, x0:x1], cv2.GC_PR_FGD, cv2.GC_PR_BGD)
    else:
        inside = np.full((y1 - y0, x1 - x0), cv2.GC_PR_FGD)
    trimap[y0:y1, x0:x1] = inside
    g = guidance_maps(clicks, (h, w), radius=radius)
    trimap[g[1] > 0] = cv2.GC_BGD
    trimap[g[0] > 0] = cv2.GC_FGD
    if (trimap == cv2.GC_BGD).any() and ((trimap == cv2.GC_PR_FGD) | (trimap == cv2.GC_PR_BGD)).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(int(seed))
        try:
            cv2.grabCut(np.ascontiguousarray(image[:, :, ::-1]), trimap, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as exc:  # degenerate colour models (e.g. a flat image): keep the seeds
            log.debug("grabCut failed: %s", exc)
    return (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
