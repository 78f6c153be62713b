"""Per-class morphology on label maps (OpenCV): opening, closing, small-component removal, hole filling.

All functions take a label map, ``uint8`` (H, W) with class ids ``0..K-1`` and possibly
:data:`~segstudio.core.labels.IGNORE_INDEX` (unlabelled), and return a **new** label map of the same shape
and dtype; the input is never modified. Pixels equal to ``ignore_index`` are left exactly as they are and
are never used as a source class: they mean "unlabelled" in user-corrected maps.

Every operation works on all classes at once, from the input map, so the result does not depend on class
order. Opening and closing use OpenCV's default border, which is neutral: regions are not eroded at the image
border, and a gap narrower than the element between a region and the border is closed.

* **opening** (erosion then dilation, Gonzalez & Woods, *Digital Image Processing*, 4th ed., sec. 9.3) of
  each class mask removes parts thinner than the structuring element (spurs, thin bridges, specks);
* **closing** (dilation then erosion) of each class mask fills gaps narrower than the element;
* **small-component removal** deletes connected components (``skimage.measure.label``) of any class with
  fewer than ``min_area`` pixels;
* **hole filling** gives a class every region it encloses (a connected component of the other pixels that
  does not touch the image border) of at most ``max_area`` pixels.

Pixels removed by opening or small-component removal are *reassigned to the surrounding class*: a removed
pixel of class ``c`` takes the class of the nearest kept pixel of another class (Euclidean distance, 5×5
chamfer approximation, ``cv2.distanceTransformWithLabels``), so a speck inside a region takes that region's
class and a component on a boundary is split between its neighbours. Removed pixels never become ignore.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage import measure

from segstudio.core.labels import IGNORE_INDEX

__all__ = ["SHAPES", "check_labels", "structuring_element", "opening", "closing", "remove_small_components", "fill_holes"]

SHAPES = {"ellipse": cv2.MORPH_ELLIPSE, "rect": cv2.MORPH_RECT, "cross": cv2.MORPH_CROSS}
"""Structuring-element shapes by name (OpenCV ``getStructuringElement``)."""


def check_labels(labels: np.ndarray, num_classes: int | None = None, ignore_index: int = IGNORE_INDEX) -> None:
    """Check that ``labels`` is a uint8 label map (H, W) with values ``< num_classes`` or ``ignore_index``.

    Raises:
        ValueError: not a 2-D uint8 numpy array, or (when ``num_classes`` is given) a value that is neither a
            class id nor ``ignore_index``.
    """
    if not isinstance(labels, np.ndarray):
        raise ValueError(f"labels must be a numpy label map uint8 (H, W), got {type(labels).__name__}")
    if labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 label map (H, W), got dtype {labels.dtype}")
    if labels.ndim != 2 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 2-D label map (H, W), got shape {labels.shape}")
    if num_classes is not None:
        bad = (labels >= num_classes) & (labels != ignore_index)
        if bad.any():
            raise ValueError(
                f"labels contain class id(s) {sorted(np.unique(labels[bad]).tolist())[:5]} but there are only "
                f"{num_classes} classes (ids 0..{num_classes - 1}, {ignore_index} = ignore)"
            )


def structuring_element(size: int, shape: str = "ellipse") -> np.ndarray:
    """Structuring element uint8 (size, size) of ones inside ``shape`` (``ellipse``, ``rect`` or ``cross``).

    ``size`` is the diameter in pixels (``>= 1``; ``ellipse`` of size 3 is OpenCV's 3×3 cross).

    Raises:
        ValueError: ``size < 1`` or an unknown shape.
    """
    if int(size) != size or size < 1:
        raise ValueError(f"structuring element size must be an integer >= 1 (pixels), got {size!r}")
    if shape not in SHAPES:
        raise ValueError(f"unknown structuring element shape {shape!r}; use one of {sorted(SHAPES)}")
    return cv2.getStructuringElement(SHAPES[shape], (int(size), int(size)))


def _class_ids(labels: np.ndarray, ignore_index: int) -> list[int]:
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
    return [int(c) for c in present if c != ignore_index]


def _nearest_source(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the flat index of the nearest ``True`` pixel of ``sources`` (bool (H, W), not all False).

    Uses ``cv2.distanceTransformWithLabels`` (Borgefors' 5×5 chamfer approximation of the Euclidean distance;
    the precise mask is not supported there) with ``DIST_LABEL_PIXEL``, which gives every source pixel its
    own Voronoi label. Returns ``(voronoi int32 (H, W), flat index of each label's source)``.
    """
    _, voronoi = cv2.distanceTransformWithLabels(
        (~sources).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )
    where = np.zeros(int(voronoi.max()) + 1, dtype=np.int64)
    where[voronoi[sources]] = np.flatnonzero(sources)
    return voronoi, where


def _reassign(labels: np.ndarray, removed: np.ndarray, ignore_index: int) -> np.ndarray:
    """Copy of ``labels`` where each ``removed`` pixel of class ``c`` takes the class of the nearest kept pixel
    of another class (not ``c``, not ``ignore_index``); where there is none it keeps ``c``."""
    out = labels.copy()
    kept = ~removed & (labels != ignore_index)
    if not removed.any() or not kept.any():
        return out
    flat = labels.ravel()
    # One pass over all kept pixels settles most removed pixels; those whose nearest kept pixel has their own
    # class are redone per class with that class excluded from the sources.
    voronoi, where = _nearest_source(kept)
    fill = flat[where[voronoi[removed]]]
    out[removed] = fill
    same = np.zeros(labels.shape, bool)
    same[removed] = fill == labels[removed]
    for c in np.flatnonzero(np.bincount(labels[same], minlength=256)):
        sources = kept & (labels != c)
        if not sources.any():
            continue
        voronoi, where = _nearest_source(sources)
        target = same & (labels == c)
        out[target] = flat[where[voronoi[target]]]
    return out


def opening(
    labels: np.ndarray,
    size: int,
    *,
    shape: str = "ellipse",
    classes: tuple[int, ...] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Per-class morphological opening: remove parts of each class thinner than the structuring element.

    For each class ``c`` (or only those in ``classes``), the pixels of ``c`` outside ``open(mask_c)`` are
    removed, all classes at once, and take the class of the nearest kept pixel of another class (module
    docstring); where no other class is kept they keep their class.

    Args:
        labels: uint8 label map (H, W).
        size: structuring-element diameter in pixels (``1`` = no change).
        shape: ``ellipse`` (default), ``rect`` or ``cross``.
        classes: class ids to open (default: all present).
        ignore_index: value left untouched.

    Returns:
        New uint8 label map (H, W).

    Raises:
        ValueError: bad ``labels`` (:func:`check_labels`) or element (:func:`structuring_element`).
    """
    check_labels(labels)
    kernel = structuring_element(size, shape)
    removed = np.zeros(labels.shape, bool)
    for c in _class_ids(labels, ignore_index) if classes is None else classes:
        mask = (labels == c).astype(np.uint8)
        removed |= mask.astype(bool) & ~cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel).astype(bool)
    return _reassign(labels, removed, ignore_index)


def closing(
    labels: np.ndarray,
    size: int,
    *,
    shape: str = "ellipse",
    classes: tuple[int, ...] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Per-class morphological closing: fill gaps in each class narrower than the structuring element.

    A pixel of class ``d`` becomes ``c`` when it lies in ``close(mask_c) \\ mask_c`` for exactly one class
    ``c``; where the closings of several classes claim the same pixel it keeps its label (no order bias).
    ``ignore_index`` pixels are never changed.

    Args, Returns, Raises: as :func:`opening`.
    """
    check_labels(labels)
    kernel = structuring_element(size, shape)
    out = labels.copy()
    claims = np.zeros(labels.shape, np.uint8)
    for c in _class_ids(labels, ignore_index) if classes is None else classes:
        mask = (labels == c).astype(np.uint8)
        gained = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel).astype(bool) & ~mask.astype(bool)
        gained &= labels != ignore_index
        out[gained & (claims == 0)] = c
        claims[gained] = np.minimum(claims[gained] + 1, 2)
    contested = claims > 1
    out[contested] = labels[contested]
    return out


def _check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")


def remove_small_components(
    labels: np.ndarray,
    min_area: int,
    *,
    connectivity: int = 8,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Reassign connected components smaller than ``min_area`` pixels to the surrounding class.

    Components are connected regions of one class (``skimage.measure.label``, one pass); every component with
    area ``< min_area`` is removed and its pixels take the class of the nearest kept pixel of another class (so
    a speck inside a region takes that region's class). ``ignore_index`` regions are neither removed nor used
    as a source. Where no other class is kept (e.g. every component is small) pixels keep their class.

    Args:
        labels: uint8 label map (H, W).
        min_area: smallest component kept, in pixels (``<= 1`` keeps everything).
        connectivity: 4 or 8 (default 8, so diagonal chains count as one component).
        ignore_index: value left untouched.

    Returns:
        New uint8 label map (H, W).

    Raises:
        ValueError: bad ``labels``, ``min_area < 0`` or connectivity not 4/8.
    """
    check_labels(labels)
    _check_connectivity(connectivity)
    if int(min_area) != min_area or min_area < 0:
        raise ValueError(f"min_area must be an integer >= 0 (pixels), got {min_area!r}")
    removed = np.zeros(labels.shape, bool)
    if min_area > 1:
        # One pass over all classes: skimage labels connected runs of equal value (ignore = background = 0).
        comp = measure.label(labels, background=ignore_index, connectivity=1 if connectivity == 4 else 2)
        area = np.bincount(comp.ravel())
        small = area < min_area
        small[0] = False
        removed = small[comp]
    return _reassign(labels, removed, ignore_index)


def fill_holes(
    labels: np.ndarray,
    max_area: int,
    *,
    connectivity: int = 8,
    classes: tuple[int, ...] | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Give each class the holes it encloses, up to ``max_area`` pixels each.

    A hole of class ``c`` is a connected component of the pixels that are not ``c`` (using the
    complementary connectivity: 4 when ``c`` is 8-connected and vice versa) that does not touch the image
    border. Holes with area ``<= max_area`` are painted ``c``. Where holes of several classes nest, the
    largest (enclosing) one wins, so the result does not depend on class order. ``ignore_index`` pixels inside a hole count toward
    its area but stay ignore.

    Args:
        labels: uint8 label map (H, W).
        max_area: largest hole filled, in pixels (``0`` = none).
        connectivity: connectivity of the class regions, 4 or 8 (default 8).
        classes: class ids whose holes are filled (default: all present).
        ignore_index: value left untouched.

    Returns:
        New uint8 label map (H, W).

    Raises:
        ValueError: bad ``labels``, ``max_area < 0`` or connectivity not 4/8.
    """
    check_labels(labels)
    _check_connectivity(connectivity)
    if int(max_area) != max_area or max_area < 0:
        raise ValueError(f"max_area must be an integer >= 0 (pixels), got {max_area!r}")
    out = labels.copy()
    if max_area == 0:
        return out
    best = np.zeros(labels.shape, np.int64)  # area of the largest fillable hole covering each pixel so far
    background_conn = 4 if connectivity == 8 else 8
    for c in _class_ids(labels, ignore_index) if classes is None else classes:
        n, comp, stats, _ = cv2.connectedComponentsWithStats((labels != c).astype(np.uint8), connectivity=background_conn)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
        area[0] = 0  # component 0 is class c itself
        area[area > max_area] = 0
        area[np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]])] = 0  # touches the border: not a hole
        hole_area = area[comp]
        paint = hole_area > best
        out[paint] = c
        best[paint] = hole_area[paint]
    keep = labels == ignore_index
    out[keep] = labels[keep]
    return out
