"""Shared by the label formats: the error type, LabelItem, limits, PNG/JSON reading with checks."""

from __future__ import annotations

import io as _io
import itertools
import json
import math
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from segstudio.core.labels import ClassSpec, validate_label_map
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.images import MAX_PIXELS


VOC_VOID_COLOR: tuple[int, int, int] = (224, 224, 192)
"""PASCAL VOC's colour for void / boundary pixels (palette index 255)."""

LABELME_IGNORE = "__ignore__"
"""labelme label name of ignore (void) shapes, as in labelme's ``labelme2voc`` example."""

COCO_ANNOTATIONS_NAME = "annotations.json"
"""File name used when ``convert --to coco`` is given a destination folder."""

_MAX_SIDE = 65535
_MAX_FILE_BYTES = 1 << 30
_MAX_TOTAL_PIXELS = 1 << 30  # all label maps of one COCO file (uint8: 1 GiB)
_MAX_OUTLINE_PIXELS = 1 << 23
"""Total outline length (pixels, sum of each edge's longer side) of the polygons / shapes of one file:
rasterising costs ~0.1 µs and ~50 bytes per outline pixel (pycocotools), so 2**23 keeps a file under ~1 s / 0.5 GB.
Hand-drawn or exported outlines are orders of magnitude shorter; zig-zags across a huge image are not."""
_PAINT_FACTOR = 8
_PAINT_SLACK = 1 << 26
"""Shapes / annotations may paint at most ``_PAINT_FACTOR`` times the pixels of their images (+ the slack):
real labels overlap a little, a file repeating a full-image shape thousands of times only costs time."""


class LabelFormatError(ValueError):
    """A label file is malformed or does not fit the classes (the message names the file and the problem)."""


@dataclass
class LabelItem:
    """One label map read from or written to a file.

    Attributes:
        stem: name without suffix, used for output file names (``<stem>.png``).
        labels: uint8 (H, W) label map.
        image_name: the image the labels belong to (COCO ``file_name`` / labelme ``imagePath``), or ``None``.
    """

    stem: str
    labels: np.ndarray
    image_name: str | None = None


# --------------------------------------------------------------------------- helpers


def _err(path, msg: str) -> LabelFormatError:
    return LabelFormatError(f"{path}: {msg}" if path is not None else msg)


def _check_labels(labels: np.ndarray, classes: ClassSpec | None, path=None) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        raise _err(path, f"label map must be a uint8 (H, W) array, got {getattr(labels, 'dtype', type(labels))} "
                         f"{getattr(labels, 'shape', '')}")
    if classes is not None:
        try:
            validate_label_map(labels, classes.num_classes)
        except ValueError as exc:
            raise _err(path, str(exc)) from None
    return labels


def _encode_png(im: Image.Image) -> bytes:
    buf = _io.BytesIO()
    im.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _check_regular(path: Path, limit: int) -> None:
    """Refuse FIFOs/devices (a reader would block forever) and files over ``limit`` bytes."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise _err(path, "not a regular file")
    if st.st_size > limit:
        raise _err(path, f"file is {st.st_size} bytes, over the {limit}-byte limit for label files")


def _open_png(path) -> Image.Image:
    """Open and fully load an image; decoding problems become :class:`LabelFormatError`."""
    path = Path(path)
    _check_regular(path, _MAX_FILE_BYTES)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise _err(path, f"image is {im.width}x{im.height}, larger than the {MAX_PIXELS} pixel limit")
            im.load()
            return im.copy()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except LabelFormatError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as exc:
        raise _err(path, f"cannot decode image ({exc})") from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _size(h, w, path, what: str) -> tuple[int, int]:
    """Validate a declared (height, width) before anything is allocated (same pixel limit as images)."""
    if not (_is_int(h) and _is_int(w)) or h < 1 or w < 1:
        raise _err(path, f"{what}: height/width must be positive integers, got {h!r} x {w!r}")
    if h > _MAX_SIDE or w > _MAX_SIDE or h * w > MAX_PIXELS:
        raise _err(path, f"{what}: the file claims a {w}x{h} (WxH) image, over the limit of {_MAX_SIDE} pixels a side "
                         f"and {MAX_PIXELS} pixels in all (the largest image SegStudio reads); if the image really is "
                         "that large, tile it and its labels into smaller pieces")
    return h, w


def _points(v, path, where: str, lim: float, pairs: bool) -> np.ndarray:
    """A JSON list of finite numbers (``pairs``: of ``[x, y]`` lists) within ``±lim`` → float64 (N, 2), checked
    in C-speed passes (millions of points take milliseconds)."""
    what = "a non-empty list of [x, y] finite numbers" if pairs else "a flat list of finite x, y numbers"
    if not isinstance(v, list) or not v:
        raise _err(path, f"{where}: points must be {what}")
    if pairs and (set(map(type, v)) != {list} or set(map(len, v)) != {2}):
        raise _err(path, f"{where}: points must be {what}")
    flat = list(itertools.chain.from_iterable(v)) if pairs else v  # numpy converts a flat list ~5x faster
    if not set(map(type, flat)) <= {int, float}:
        raise _err(path, f"{where}: points must be {what}")
    try:
        arr = np.asarray(flat, dtype=np.float64)
    except (OverflowError, ValueError):
        raise _err(path, f"{where}: points must be {what}") from None
    if not (np.isfinite(arr).all() and (np.abs(arr) <= lim).all()):
        raise _err(path, f"{where}: points must be {what} within the image (|coordinate| <= {lim:g})")
    if arr.size % 2:
        raise _err(path, f"{where}: points must be {what} (an odd count was given)")
    return arr.reshape(-1, 2)


def _outline(pts: np.ndarray, closed: bool = True) -> int:
    """Outline length in pixels of a polygon (sum over edges of the longer side, + 1 each), what rasterising costs."""
    nxt = np.roll(pts, -1, axis=0) if closed else pts[1:]
    d = np.abs(nxt - pts[: len(nxt)])
    return int(np.ceil(d.max(axis=1)).sum()) + len(pts)


def _check_budget(path, used_outline: int, used_paint: int, pixels: int) -> None:
    if used_outline > _MAX_OUTLINE_PIXELS:
        raise _err(path, f"the shapes' outlines total over {_MAX_OUTLINE_PIXELS} pixels (the limit per file); such "
                         "outlines (e.g. zig-zags across the image) are no hand-drawn or exported labels; simplify "
                         "the polygons or split the file")
    limit = _PAINT_FACTOR * pixels + _PAINT_SLACK
    if used_paint > limit:
        raise _err(path, f"the shapes cover over {used_paint} pixels, more than {_PAINT_FACTOR} times the "
                         f"{pixels} pixels of the image(s) (limit {limit}); remove repeated or duplicated shapes")


def _load_json(path):
    path = Path(path)
    _check_regular(path, _MAX_FILE_BYTES)
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise _err(path, f"not valid JSON ({exc})") from None


def _dump_json(path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode("utf-8"))

