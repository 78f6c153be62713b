"""GrabCut refinement of a rectangle, seeded with the current labels.

GrabCut (Rother, Kolmogorov, Blake, "GrabCut: Interactive Foreground Extraction using Iterated Graph
Cuts", ACM SIGGRAPH 2004) fits colour GMMs to foreground and background and alternates with a min-cut
of the Gibbs energy of their Eq. (7). We call OpenCV's implementation (:func:`cv2.grabCut`) with a mask
instead of the bare rectangle so the labels already painted steer it.
"""

from __future__ import annotations

import cv2
import numpy as np

from segstudio.core.labels import IGNORE_INDEX


def grabcut_seed_mask(labels: np.ndarray, rect: tuple[int, int, int, int], class_id: int, core_px: int = 2) -> np.ndarray:
    """OpenCV GrabCut trimap for refining ``class_id`` inside ``rect``.

    Outside the rectangle: ``GC_BGD`` (sure background). Inside: pixels already labelled ``class_id``
    more than ``core_px`` pixels from their region's border are ``GC_FGD`` (sure foreground: a prediction's
    core is kept; a region too thin to have such a core, e.g. a scribble, is sure foreground whole), the rest of that class and unlabelled pixels (``IGNORE_INDEX``) are
    ``GC_PR_FGD``, other classes ``GC_PR_BGD``. When that leaves no foreground candidate (the rectangle
    holds only other classes), the whole inside becomes ``GC_PR_FGD`` — plain rectangle initialisation
    as in the paper.

    Why a sure core: on low-contrast street scenes (CamVid) plain rectangle initialisation often collapses
    to an empty foreground (a dark car on a dark road); a few pixels the user or the model already gave
    the class anchor the foreground colour model.

    Args:
        labels: uint8 (H, W) label map.
        rect: ``(x, y, w, h)`` in pixels, clipped to the image.
        class_id: the class being refined.
        core_px: erosion radius (pixels) that separates the sure core from the probable border, >= 0.

    Returns:
        uint8 (H, W) mask with values ``cv2.GC_BGD/GC_FGD/GC_PR_BGD/GC_PR_FGD``.
    """
    x, y, w, h = _clip_rect(rect, labels.shape)
    seed = np.full(labels.shape, cv2.GC_BGD, dtype=np.uint8)
    inside = labels[y : y + h, x : x + w]
    is_class = inside == class_id
    fg = is_class | (inside == IGNORE_INDEX)
    if not fg.any():
        seed[y : y + h, x : x + w] = cv2.GC_PR_FGD
        return seed
    box = np.where(fg, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if core_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * core_px + 1, 2 * core_px + 1))
        core = cv2.erode(is_class.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE).astype(bool)
        if not core.any():  # thin scribbles have no interior: they are the core
            core = is_class
    else:
        core = is_class
    box[core] = cv2.GC_FGD
    seed[y : y + h, x : x + w] = box
    return seed


def _clip_rect(rect, shape) -> tuple[int, int, int, int]:
    x, y, w, h = (int(round(v)) for v in rect)
    H, W = shape
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, W), min(y + h, H)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"GrabCut rectangle {rect} (x, y, w, h) leaves less than 2x2 pixels inside the {W}x{H} image")
    return x0, y0, x1 - x0, y1 - y0


def grabcut_region(
    image: np.ndarray,
    labels: np.ndarray,
    rect: tuple[int, int, int, int],
    class_id: int,
    iterations: int = 5,
    margin: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Foreground of ``class_id`` inside ``rect`` by GrabCut.

    Only a crop around the rectangle (``margin`` pixels on each side, default a quarter of its longer
    side, at least 16) is processed, so the cost follows the rectangle, not the image (8k x 8k images).

    Args:
        image: uint8 (H, W, 3) RGB.
        labels: uint8 (H, W) label map (read only) used as the seed, see :func:`grabcut_seed_mask`.
        rect: ``(x, y, w, h)`` in pixels.
        class_id: the class being refined (0..254).
        iterations: GrabCut iterations (EM rounds of the paper's Fig. 3), >= 1.
        margin: background context around the rectangle, pixels.
        seed: OpenCV RNG seed (k-means initialisation of the GMMs) for reproducible results.

    Returns:
        bool (H, W) mask: True where GrabCut says foreground; always False outside ``rect``.

    Raises:
        ValueError: mismatched shapes, non-RGB image, a rectangle smaller than 2x2 pixels inside the
            image, or ``iterations < 1``.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"GrabCut needs a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if labels.shape != image.shape[:2]:
        raise ValueError(f"label map {labels.shape} and image {image.shape[:2]} differ in size")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    x, y, w, h = _clip_rect(rect, labels.shape)
    H, W = labels.shape
    m = max(16, max(w, h) // 4) if margin is None else int(margin)
    cx0, cy0, cx1, cy1 = max(x - m, 0), max(y - m, 0), min(x + w + m, W), min(y + h + m, H)
    crop_labels = labels[cy0:cy1, cx0:cx1]
    trimap = grabcut_seed_mask(crop_labels, (x - cx0, y - cy0, w, h), class_id)
    bgr = np.ascontiguousarray(image[cy0:cy1, cx0:cx1, ::-1])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    if (trimap == cv2.GC_BGD).any():
        cv2.grabCut(bgr, trimap, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
    # else: the rectangle covers the whole image; there is no background sample to learn from.
    fg = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
    out = np.zeros((H, W), dtype=bool)
    out[y : y + h, x : x + w] = fg[y - cy0 : y - cy0 + h, x - cx0 : x - cx0 + w]
    return out
