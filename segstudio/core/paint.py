"""Paint operations on label maps as pure numpy functions.

Every operation edits the label map in place and returns the :class:`~segstudio.core.history.Patch`
of the box it changed (or ``None`` when nothing changed), ready for :class:`~segstudio.core.history.History`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segstudio.core.history import Patch, make_patch, mask_bbox


def dab_mask(radius: float) -> np.ndarray:
    """Boolean disc of the given radius (pixels), shape ``(2r+1, 2r+1)`` with ``r = ceil(radius)``."""
    if radius < 0.5:
        raise ValueError(f"brush radius must be >= 0.5 px, got {radius}")
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= radius * radius


def _capsule_box(labels: np.ndarray, points: np.ndarray, radius: float):
    h, w = labels.shape
    r = int(np.ceil(radius))
    y0 = max(int(np.floor(points[:, 0].min())) - r, 0)
    x0 = max(int(np.floor(points[:, 1].min())) - r, 0)
    y1 = min(int(np.ceil(points[:, 0].max())) + r + 1, h)
    x1 = min(int(np.ceil(points[:, 1].max())) + r + 1, w)
    return y0, x0, y1, x1


def stroke_mask(shape: tuple[int, int], points: Sequence[tuple[float, float]], radius: float):
    """Pixels within ``radius`` of the polyline through ``points``.

    Args:
        shape: ``(H, W)`` of the label map.
        points: ``(y, x)`` centres in pixel units (fractions allowed).
        radius: brush radius in pixels, >= 0.5.

    Returns:
        ``(y0, x0, mask)``: top-left of the clipped bounding box and a bool (h, w) mask, or ``None``
        when the stroke lies entirely outside the image.
    """
    if radius < 0.5:
        raise ValueError(f"brush radius must be >= 0.5 px, got {radius}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("a stroke needs at least one point")
    y0, x0, y1, x1 = _capsule_box(np.empty(shape, dtype=bool), pts, radius)
    if y1 <= y0 or x1 <= x0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    r2 = radius * radius
    segs = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    for a, b in segs:
        # Distance from each pixel to segment ab (the stroke is a union of capsules).
        d = b - a
        len2 = float(d @ d)
        if len2 == 0.0:
            t = 0.0
        else:
            t = np.clip(((yy - a[0]) * d[0] + (xx - a[1]) * d[1]) / len2, 0.0, 1.0)
        py = a[0] + t * d[0]
        px = a[1] + t * d[1]
        mask |= (yy - py) ** 2 + (xx - px) ** 2 <= r2
    return y0, x0, mask


def paint_stroke(
    labels: np.ndarray, points: Sequence[tuple[float, float]], radius: float, value: int
) -> Patch | None:
    """Paint ``value`` along a polyline with a round brush (the eraser paints ``IGNORE_INDEX``).

    Args:
        labels: uint8 (H, W) label map, edited in place.
        points: ``(y, x)`` brush centres in pixels.
        radius: brush radius in pixels.
        value: class id (or the ignore value to erase).

    Returns:
        The :class:`Patch` of changed pixels, or ``None``.
    """
    if not 0 <= value <= 255:
        raise ValueError(f"label value must be in 0..255, got {value}")
    res = stroke_mask(labels.shape, points, radius)
    if res is None:
        return None
    y0, x0, mask = res
    h, w = mask.shape
    after = labels[y0 : y0 + h, x0 : x0 + w].copy()
    after[mask] = value
    return make_patch(labels, y0, x0, after)


def paint_dab(labels: np.ndarray, y: float, x: float, radius: float, value: int) -> Patch | None:
    """Paint a single round dab centred at ``(y, x)``; see :func:`paint_stroke`."""
    return paint_stroke(labels, [(y, x)], radius, value)


def _runs(row: np.ndarray, lo: int) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of True in a 1-D bool array, offset by ``lo``."""
    padded = np.concatenate(([False], row, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(lo + int(a), lo + int(b)) for a, b in zip(edges[::2], edges[1::2])]


def flood_mask(labels: np.ndarray, y: int, x: int) -> tuple[int, int, np.ndarray]:
    """The 4-connected region of equal labels containing ``(y, x)`` (what :func:`flood_fill` paints).

    Scan-line flood fill (Heckbert, "A Seed Fill Algorithm", Graphics Gems I, 1990) with the
    run search vectorised in numpy; cost grows with the number of row runs, not pixels.

    Returns:
        ``(y0, x0, mask)``: top-left corner and bool (h, w) mask of the region's bounding box.

    Raises:
        IndexError: when ``(y, x)`` lies outside the label map.
    """
    h, w = labels.shape
    if not (0 <= y < h and 0 <= x < w):
        raise IndexError(f"fill seed ({x}, {y}) lies outside the {w}x{h} label map")
    target = labels == labels[y, x]
    filled = np.zeros_like(target)
    stack = [(int(y), int(x))]
    while stack:
        cy, cx = stack.pop()
        if filled[cy, cx] or not target[cy, cx]:
            continue
        row = target[cy]
        # Extend left and right from cx to the ends of the run.
        left_block = np.flatnonzero(~row[:cx][::-1])
        lo = cx - int(left_block[0]) if len(left_block) else 0
        right_block = np.flatnonzero(~row[cx:])
        hi = cx + int(right_block[0]) if len(right_block) else w
        filled[cy, lo:hi] = True
        for ny in (cy - 1, cy + 1):
            if 0 <= ny < h:
                free = target[ny, lo:hi] & ~filled[ny, lo:hi]
                stack.extend((ny, a) for a, _ in _runs(free, lo))
    y0, y1, x0, x1 = mask_bbox(filled)
    return y0, x0, filled[y0:y1, x0:x1]


def flood_fill(labels: np.ndarray, y: int, x: int, value: int) -> Patch | None:
    """Fill the 4-connected region of equal labels containing ``(y, x)`` with ``value`` (:func:`flood_mask`).

    Raises:
        IndexError: when ``(y, x)`` lies outside the label map.
    """
    y0, x0, mask = flood_mask(labels, y, x)
    if labels[y, x] == value:
        return None
    return paint_mask(labels, y0, x0, mask, value)


def paint_mask(labels: np.ndarray, y0: int, x0: int, mask: np.ndarray, value: int) -> Patch | None:
    """Set ``labels[y0 + i, x0 + j] = value`` wherever ``mask[i, j]`` is True.

    The common last step of the region tools (polygon, lasso, superpixel brush, GrabCut).

    Args:
        labels: uint8 (H, W) label map, edited in place.
        y0, x0: top-left corner of ``mask`` in the label map, pixels.
        mask: bool (h, w); the box ``[y0, y0 + h) x [x0, x0 + w)`` must lie inside the label map.
        value: class id or the ignore value, 0..255.

    Returns:
        The :class:`Patch` of changed pixels, or ``None`` when nothing changed.

    Raises:
        ValueError: on a value outside 0..255, a non-2-D mask, or a box reaching outside the label map.
    """
    if not 0 <= value <= 255:
        raise ValueError(f"label value must be in 0..255, got {value}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (h, w), got shape {mask.shape}")
    h, w = mask.shape
    H, W = labels.shape
    if y0 < 0 or x0 < 0 or y0 + h > H or x0 + w > W:
        raise ValueError(f"mask box ({x0}, {y0}, {w}x{h}) reaches outside the {W}x{H} label map")
    if not mask.any():
        return None
    after = labels[y0 : y0 + h, x0 : x0 + w].copy()
    after[mask] = value
    return make_patch(labels, y0, x0, after)


POLYGON_RULES = ("nonzero", "evenodd")


def polygon_mask(shape: tuple[int, int], points, rule: str = "nonzero"):
    """Pixels whose centres lie inside a closed polygon (scan-line rasterisation, vectorised).

    Pixel ``(row r, column c)`` has its centre at ``x = c, y = r`` (the convention of the brush tools).
    Each edge crossing a pixel-centre row contributes at column ``ceil(x_cross)``; a running sum
    along the row gives the crossing count (``"evenodd"``: inside when odd) or the winding number
    (``"nonzero"``: inside when not 0; upward edges +1, downward -1). Edges use the half-open rule
    ``min(y_a, y_b) <= r < max(y_a, y_b)`` so shared vertices are counted once (Foley et al.,
    *Computer Graphics: Principles and Practice*, 2nd ed., §3.6 "Filling polygons").

    Args:
        shape: ``(H, W)`` of the label map.
        points: (N, 2) float ``(x, y)`` vertices, N >= 3; the polygon is closed automatically.
        rule: ``"nonzero"`` (a lasso looped twice stays filled; Qt's ``WindingFill``) or
            ``"evenodd"`` (self-overlaps become holes; Qt's ``OddEvenFill``, SVG ``evenodd``).

    Returns:
        ``(y0, x0, mask)``: top-left corner and bool (h, w) mask of the polygon's bounding box clipped
        to the image, or ``None`` when no pixel centre lies inside.

    Raises:
        ValueError: fewer than 3 vertices, non-finite coordinates, wrong array shape, or an unknown rule.
    """
    if rule not in POLYGON_RULES:
        raise ValueError(f"polygon fill rule must be one of {POLYGON_RULES}, got {rule!r}")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"polygon points must have shape (N, 2) as (x, y), got {pts.shape}")
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise ValueError("polygon points must be finite numbers")
    H, W = shape
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    # Rows whose centre line y = r each edge crosses: ceil(ymin) <= r < ceil(ymax), clipped to the image.
    ylo = np.minimum(ya, yb)
    yhi = np.maximum(ya, yb)
    r0 = np.clip(np.ceil(ylo), 0, H).astype(np.int64)
    r1 = np.clip(np.ceil(yhi), 0, H).astype(np.int64)
    counts = np.maximum(r1 - r0, 0)
    total = int(counts.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(pts)), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    rows = r0[edge] + (np.arange(total) - start)
    t = (rows - ya[edge]) / (yb[edge] - ya[edge])  # counts > 0 implies ya != yb
    xs = xa[edge] + t * (xb[edge] - xa[edge])
    cols = np.clip(np.ceil(xs), 0, W).astype(np.int64)
    ry0, ry1 = int(rows.min()), int(rows.max()) + 1
    cx0 = int(np.clip(np.ceil(xa.min()), 0, W))
    cx1 = int(np.clip(np.ceil(xa.max()), 0, W))
    if cx1 <= cx0:
        return None
    cols = np.clip(cols, cx0, cx1) - cx0
    acc = np.zeros((ry1 - ry0, cx1 - cx0 + 1), dtype=np.int32)
    step = np.where(yb[edge] > ya[edge], 1, -1) if rule == "nonzero" else np.ones(total, dtype=np.int32)
    np.add.at(acc, (rows - ry0, cols), step)
    run = np.cumsum(acc, axis=1)[:, :-1]
    mask = (run != 0) if rule == "nonzero" else (run % 2 == 1)
    if not mask.any():
        return None
    return ry0, cx0, mask


def polygon_fill(labels: np.ndarray, points, value: int, rule: str = "nonzero") -> Patch | None:
    """Fill a closed polygon (the polygon and lasso tools) with ``value``.

    Args:
        labels: uint8 (H, W) label map, edited in place.
        points: (N, 2) float ``(x, y)`` vertices in pixels (pixel centres at integers), N >= 3.
        value: class id or the ignore value, 0..255.
        rule: ``"nonzero"`` (default) or ``"evenodd"``; see :func:`polygon_mask`.

    Returns:
        The :class:`Patch` of changed pixels, or ``None``.
    """
    if not 0 <= value <= 255:
        raise ValueError(f"label value must be in 0..255, got {value}")
    res = polygon_mask(labels.shape, points, rule)
    if res is None:
        return None
    y0, x0, mask = res
    return paint_mask(labels, y0, x0, mask, value)
