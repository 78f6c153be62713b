"""``labelme``: labelme JSON polygons (``shapes``), written so that they round-trip exactly."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io.formats._common import (
    LABELME_IGNORE,
    LabelItem,
    _check_budget,
    _check_labels,
    _dump_json,
    _err,
    _load_json,
    _outline,
    _points,
    _size,
)
from segstudio.io.formats.registry import LabelFormat, register_format

log = logging.getLogger("segstudio.io.formats")


def _paint_shape(draw: ImageDraw.ImageDraw, shape_type: str, pts: list[tuple[float, float]], value: int) -> None:
    """Rasterise one shape the way labelme's ``utils.shape_to_mask`` does (PIL, filled and outlined)."""
    if shape_type == "polygon":
        if len(pts) == 1:
            draw.point(pts, fill=value)
        else:
            draw.polygon(pts, fill=value, outline=value)
    elif shape_type == "rectangle":
        (x0, y0), (x1, y1) = pts
        draw.rectangle([(min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1))], fill=value, outline=value)
    elif shape_type == "circle":
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=value, outline=value)


def _rasterise(shapes: list[tuple[str, list, int]], h: int, w: int) -> np.ndarray:
    if not shapes:
        return np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
    canvas = Image.new("L", (w, h), IGNORE_INDEX)
    draw = ImageDraw.Draw(canvas)
    for shape_type, pts, value in shapes:
        _paint_shape(draw, shape_type, pts, value)
    out = np.empty((h, w), dtype=np.uint8)
    step = max(1, (1 << 24) // w)  # copy out in strips: peak memory is the canvas + the result, not 3 copies
    for y in range(0, h, step):
        y1 = min(h, y + step)
        out[y:y1] = np.frombuffer(canvas.crop((0, y, w, y1)).tobytes(), dtype=np.uint8).reshape(y1 - y, w)
    return out


def labelme_shapes(labels: np.ndarray, classes: ClassSpec) -> list[dict]:
    """labelme ``shapes`` whose in-order painting (:func:`read_labelme_json`) gives back ``labels`` exactly.

    1. For every class, and for ignore regions enclosed by labelled pixels (label :data:`LABELME_IGNORE`),
       each 8-connected component becomes one polygon: its outer contour (``cv2.findContours``,
       ``RETR_CCOMP``, ``CHAIN_APPROX_SIMPLE``; points are pixel centres, so the filled + outlined
       polygon covers the component *and its holes*). A single-pixel component is a one-pixel rectangle.
    2. Polygons are ordered by filled area, largest first, so whatever lies in a hole is painted after
       (on top of) the region around it: holes need no hole polygons.
    3. The shapes are rasterised as the reader will; every pixel still wrong (where 8-connected regions
       touch only diagonally and their outlines cross) is fixed by appended one-row ``rectangle`` shapes,
       one per run of equal labels. Typical masks need none; noise needs many.

    Args:
        labels: uint8 (H, W) label map.
        classes: names used as shape labels.

    Returns:
        list of labelme shape dicts (``label``, ``points`` [[x, y], ...] in pixels, ``shape_type``,
        ``group_id`` None, ``flags`` {}, ``description`` "").
    """
    h, w = labels.shape
    names = list(classes.names) + [None] * (IGNORE_INDEX - classes.num_classes) + [LABELME_IGNORE]
    comps: list[tuple[int, int, str, list, int]] = []  # (-area, order, type, points, value)
    for value in np.unique(labels).tolist():
        binary = (labels == value).astype(np.uint8)
        contours, hier = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        for c, hh in zip(contours, hier[0] if hier is not None else []):
            if hh[3] != -1:
                continue  # a hole: filled by whatever is inside it, painted later
            pts = c[:, 0, :].tolist()
            x, y, bw, bh = cv2.boundingRect(c)
            if value == IGNORE_INDEX and (x == 0 or y == 0 or x + bw == w or y + bh == h):
                continue  # ignore regions reaching the border are left unpainted
            if len(pts) == 1:
                kind, pts = "rectangle", [pts[0], pts[0]]
            else:
                kind = "polygon"
            area = cv2.contourArea(c) + cv2.arcLength(c, True)  # filled + outline, for ordering only
            comps.append((-area, len(comps), kind, pts, value))
    comps.sort(key=lambda t: (t[0], t[1]))
    plan = [(kind, [tuple(p) for p in pts], value) for _, _, kind, pts, value in comps]
    painted = _rasterise(plan, h, w)
    # One-row runs of wrongly painted pixels with the same true label (vectorised run-length split).
    key = np.where(painted != labels, labels.astype(np.int16), -1)
    start = np.ones((h, w), dtype=bool)
    start[:, 1:] = key[:, 1:] != key[:, :-1]
    end = np.ones((h, w), dtype=bool)
    end[:, :-1] = key[:, :-1] != key[:, 1:]
    ys, x0s = np.nonzero(start & (key >= 0))
    _, x1s = np.nonzero(end & (key >= 0))
    fixes = [("rectangle", [(x0, y), (x1, y)], int(labels[y, x0]))
             for y, x0, x1 in zip(ys.tolist(), x0s.tolist(), x1s.tolist())]
    if fixes:
        log.debug("labelme: %d one-row fix-up rectangles for diagonal contacts", len(fixes))
    return [
        {"label": names[v], "points": [[int(px), int(py)] for px, py in pts], "group_id": None,
         "description": "", "shape_type": kind, "flags": {}}
        for kind, pts, v in plan + fixes
    ]


def write_labelme_json(path: str | Path, labels: np.ndarray, classes: ClassSpec, image_path: str | None = None) -> Path:
    """Atomically write a labelme JSON file for ``labels`` (shapes from :func:`labelme_shapes`).

    What is lossless: reading the file back with :func:`read_labelme_json` gives ``labels`` exactly, for
    *any* label map (1-pixel-wide lines, single pixels, diagonal contacts, holes and nested islands
    included), because the writer checks its polygons against the reader's rasteriser and appends fix-up
    rectangles where they differ. What is not: (a) another tool that rasterises differently from labelme's
    ``shape_to_mask`` (PIL polygon fill + outline) may differ on boundary pixels; (b) tools that treat
    unpainted pixels as background (labelme's ``labelme2voc``) read ignore as class 0 unless their label
    list maps it; (c) editing the polygons in labelme and re-saving keeps only what labelme keeps
    (labelme itself paints shapes in file order too, so the layering survives).

    Args:
        path: output ``.json``.
        labels: uint8 (H, W).
        classes: class names for shape labels.
        image_path: ``imagePath`` to record (relative to the JSON's folder, as labelme does); default
            ``<stem>.png``.

    Raises:
        LabelFormatError: ``labels`` holds ids outside ``classes``.
    """
    _check_labels(labels, classes)
    h, w = labels.shape
    doc = {
        "version": "5.5.0",
        "flags": {},
        "shapes": labelme_shapes(labels, classes),
        "imagePath": image_path or f"{Path(path).stem}.png",
        "imageData": None,
        "imageHeight": h,
        "imageWidth": w,
    }
    return _dump_json(path, doc)


def read_labelme_json(path: str | Path, classes: ClassSpec, shape: tuple[int, int] | None = None) -> LabelItem:
    """Rasterise a labelme JSON file into a label map.

    Shapes are painted in file order (a later shape covers earlier ones, as labelme's ``labelme2voc``),
    each rasterised like labelme's ``shape_to_mask`` (PIL: polygon filled and outlined; ``rectangle`` from
    two corners, inclusive; ``circle`` from centre and a point on it). Points are in pixels (pixel centres
    at integers). Pixels no shape covers, and shapes labelled :data:`LABELME_IGNORE`, are :data:`IGNORE_INDEX`.

    Args:
        path: the JSON file.
        classes: shape labels must be class names (or :data:`LABELME_IGNORE`).
        shape: expected ``(H, W)`` (e.g. of the image); ``None`` accepts the file's.

    Returns:
        :class:`LabelItem` (stem of ``path``, ``image_name`` = ``imagePath``).

    Raises:
        LabelFormatError: missing/ill-typed keys, an unknown label, an unsupported ``shape_type`` (line,
            linestrip, point, mask...), points that are not finite numbers or lie far outside the image,
            a size different from ``shape``, a claimed size over 65535 px a side or over
            :data:`~segstudio.io.images.MAX_PIXELS` (the image reader's limit), outlines over 2**23 pixels in all,
            or shapes painting over 8 times the image's pixels. Every check runs before the label map is allocated.
    """
    return _labelme_item(_load_json(path), path, classes, shape)


def _labelme_item(data, path, classes: ClassSpec, shape: tuple[int, int] | None = None) -> LabelItem:
    """:func:`read_labelme_json` on an already parsed document."""
    if not isinstance(data, dict):
        raise _err(path, "a labelme file must be a JSON object with 'shapes', 'imageHeight' and 'imageWidth'")
    for key in ("shapes", "imageHeight", "imageWidth"):
        if key not in data:
            raise _err(path, f"labelme file has no {key!r}")
    h, w = _size(data["imageHeight"], data["imageWidth"], path, "imageHeight/imageWidth")
    if shape is not None and (h, w) != tuple(shape):
        raise _err(path, f"labelme file is {w}x{h} (WxH) but the image is {shape[1]}x{shape[0]}")
    image_name = data.get("imagePath")
    if image_name is not None and not isinstance(image_name, str):
        raise _err(path, "'imagePath' must be a string")
    if not isinstance(data["shapes"], list):
        raise _err(path, "'shapes' must be a list")
    name_to_id = {n: i for i, n in enumerate(classes.names)}
    name_to_id[LABELME_IGNORE] = IGNORE_INDEX
    lim = 10 * max(h, w)
    plan = []
    outline = paint = 0
    for i, s in enumerate(data["shapes"]):
        where = f"shapes[{i}]"
        if not isinstance(s, dict):
            raise _err(path, f"{where} must be an object")
        if "label" not in s or "points" not in s:
            raise _err(path, f"{where} needs 'label' and 'points'")
        label = s["label"]
        if not isinstance(label, str) or label not in name_to_id:
            raise _err(path, f"{where}: label {label!r} is not a class of classes.json "
                             f"(classes: {', '.join(classes.names)}; {LABELME_IGNORE!r} marks ignore)")
        kind = s.get("shape_type") or "polygon"
        if kind not in ("polygon", "rectangle", "circle"):
            raise _err(path, f"{where}: shape_type {kind!r} is not supported (polygon, rectangle, circle)")
        pts = _points(s["points"], path, f"{where} 'points'", lim, pairs=True)
        if kind != "polygon" and len(pts) != 2:
            raise _err(path, f"{where}: a {kind} needs exactly 2 points, got {len(pts)}")
        if kind == "circle":
            (cx, cy), (px, py) = pts
            r = math.hypot(px - cx, py - cy)
            box = np.array([[cx - r, cy - r], [cx + r, cy + r]])
            outline += int(8 * r) + 1
        else:
            box = pts
            outline += _outline(pts)
        lo, hi = np.clip(box.min(0), 0, (w, h)), np.clip(box.max(0), 0, (w, h))
        paint += int(np.prod(np.ceil(hi - lo) + 1))
        _check_budget(path, outline, paint, h * w)
        plan.append((kind, pts.ravel().tolist() if kind == "polygon" and len(pts) > 1 else [tuple(p) for p in pts.tolist()],
                     name_to_id[label]))
    return LabelItem(Path(path).stem, _rasterise(plan, h, w), image_name)


FORMAT = register_format(LabelFormat(
    "labelme", ".json",
    matches=lambda data: isinstance(data, dict) and "shapes" in data,
    read=lambda path, classes, data: (
        [read_labelme_json(path, classes) if data is None else _labelme_item(data, path, classes)], classes
    ),
    write=lambda path, labels, classes, image: write_labelme_json(path, labels, classes, image),
    needs_classes=True,
    records_image=True,
))
