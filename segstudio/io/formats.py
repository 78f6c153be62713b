"""Label-map file formats: read, write, detect and convert.

A label map is a uint8 (H, W) array of class ids ``0..K-1`` or :data:`~segstudio.core.labels.IGNORE_INDEX`
(void). The formats, by :data:`FORMATS` name:

``index``
    8-bit single-channel PNG, pixel value = class id (the app's own format, :mod:`segstudio.io.labels`).
    Lossless.
``voc``
    PASCAL VOC ``SegmentationClass`` style: 8-bit *palette* (mode ``P``) PNG whose indices are class ids
    and whose palette holds the class colours (index :data:`IGNORE_INDEX` gets VOC's void colour
    :data:`VOC_VOID_COLOR`). Reading uses the indices only, never the palette. Lossless.
``color``
    Colour-coded RGB PNG (CamVid / Cityscapes ``*_color.png`` style): each pixel holds its class's colour
    from ``classes.json``; ignore pixels hold the ignore colour (:func:`ignore_color_for`: black, or
    :data:`VOC_VOID_COLOR` when a class is black). Lossless when the class colours are distinct (checked).
    A colour that is neither a class colour nor the ignore colour is an error naming the colour, how many
    pixels hold it and where the first one is.
``coco``
    COCO-style JSON with ``images``, ``categories`` (from ``classes.json``, category id = class id + 1 as
    COCO ids start at 1) and ``annotations``: one per class present per image, ``segmentation`` a compressed
    RLE (``pycocotools.mask.encode``, ``counts`` as str), ``iscrowd`` 0 (as COCO-Stuff), ``area``, ``bbox``.
    Pixels covered by no annotation are ignore. One file may hold many images. Lossless. Reading also
    accepts uncompressed RLE (``counts`` a list) and polygon segmentations (rasterised by pycocotools);
    annotations are painted in file order (a later one wins where they overlap); categories are matched
    to ``classes`` by name.
``labelme``
    labelme JSON (``shapes``, ``imagePath``, ``imageHeight``, ``imageWidth``, ``imageData`` null). See
    :func:`write_labelme_json` for how polygons are made and :func:`read_labelme_json` for the painting
    order; written files round-trip exactly (see there for what exactly is and is not lossless).

Every reader raises :class:`LabelFormatError` (a :class:`ValueError`) for any malformed or inconsistent
content (missing keys, wrong types, unknown class names or colours, size mismatches, corrupt RLE or PNG),
with a message naming the file and what is wrong, and :class:`OSError` (e.g. :class:`FileNotFoundError`)
when the file cannot be read at all. Every writer saves atomically (:func:`segstudio.io.atomic.atomic_write_bytes`).
"""

from __future__ import annotations

import io as _io
import itertools
import json
import logging
import math
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError
from pycocotools import mask as mask_utils

from segstudio.core.labels import IGNORE_INDEX, ClassSpec, validate_label_map
from segstudio.io.atomic import atomic_write_bytes, sweep_stale_temps
from segstudio.io.images import IMAGE_EXTENSIONS, MAX_PIXELS
from segstudio.io.labels import load_classes, save_classes, write_index_png

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("index", "voc", "color", "coco", "labelme")
"""Names accepted by :func:`read_labels`, :func:`write_labels`, :func:`convert` and ``segstudio convert --to``."""

FORMAT_SUFFIX = {"index": ".png", "voc": ".png", "color": ".png", "coco": ".json", "labelme": ".json"}
"""File suffix written for each format."""

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


# --------------------------------------------------------------------------- index / voc


def read_index(path: str | Path, classes: ClassSpec | None = None) -> np.ndarray:
    """Read an index PNG (mode ``L``, or ``P`` whose indices are class ids) as uint8 (H, W).

    Raises:
        LabelFormatError: not an 8-bit single-channel PNG, undecodable, or values outside ``classes``.
        OSError: the file cannot be read.
    """
    im = _open_png(path)
    if im.mode not in ("L", "P"):
        raise _err(path, f"an index label PNG must be 8-bit single-channel (mode L or P), got mode {im.mode!r}; "
                         "for a colour-coded mask use --from color with a classes.json")
    return _check_labels(np.array(im, dtype=np.uint8), classes, path)


def write_voc_png(path: str | Path, labels: np.ndarray, classes: ClassSpec) -> Path:
    """Atomically write ``labels`` as a VOC-style palette PNG (indices = class ids, palette = class colours).

    Palette: class colours at ``0..K-1``, VOC's default colours for unused indices, :data:`VOC_VOID_COLOR`
    at :data:`IGNORE_INDEX`.

    Raises:
        LabelFormatError: ``labels`` is not uint8 (H, W) or holds ids outside ``classes``.
    """
    _check_labels(labels, classes)
    from segstudio.core.labels import default_palette

    pal = np.asarray(default_palette(255) + [VOC_VOID_COLOR], dtype=np.uint8)
    pal[: classes.num_classes] = np.asarray(classes.colors, dtype=np.uint8)
    im = Image.fromarray(labels, mode="P")
    im.putpalette(pal.ravel().tolist())
    return atomic_write_bytes(path, _encode_png(im))


def read_voc_png(path: str | Path, classes: ClassSpec | None = None) -> np.ndarray:
    """Read a palette (mode ``P``) PNG's indices as a uint8 (H, W) label map; the palette is not used.

    Raises:
        LabelFormatError: not a palette PNG, undecodable, or indices outside ``classes``.
    """
    im = _open_png(path)
    if im.mode != "P":
        raise _err(path, f"a VOC label PNG must be a palette image (mode P), got mode {im.mode!r}")
    return _check_labels(np.array(im, dtype=np.uint8), classes, path)


# --------------------------------------------------------------------------- colour-coded


def ignore_color_for(classes: ClassSpec) -> tuple[int, int, int]:
    """Colour of ignore pixels in colour-coded PNGs: black, or :data:`VOC_VOID_COLOR` if a class is black.

    Raises:
        LabelFormatError: both colours are taken by classes, or two classes share a colour (the
            colour-coded format could not tell them apart).
    """
    colors = [tuple(c) for c in classes.colors]
    if len(set(colors)) != len(colors):
        dup = sorted({c for c in colors if colors.count(c) > 1})
        names = [n for n, c in zip(classes.names, colors) if c in dup]
        raise LabelFormatError(f"classes {names} share colours {dup}; a colour-coded mask needs distinct colours")
    for cand in ((0, 0, 0), VOC_VOID_COLOR):
        if cand not in colors:
            return cand
    raise LabelFormatError(f"both (0, 0, 0) and {VOC_VOID_COLOR} are class colours; no colour is left for ignore")


def write_color_png(path: str | Path, labels: np.ndarray, classes: ClassSpec) -> Path:
    """Atomically write an RGB PNG with each pixel in its class colour (ignore: :func:`ignore_color_for`).

    Raises:
        LabelFormatError: bad ``labels`` or classes whose colours are not distinct.
    """
    _check_labels(labels, classes)
    lut = classes.lut(ignore_color_for(classes))
    return atomic_write_bytes(path, _encode_png(Image.fromarray(lut[labels], mode="RGB")))


def read_color_png(path: str | Path, classes: ClassSpec) -> np.ndarray:
    """Map a colour-coded RGB (or fully opaque RGBA) PNG back to class ids, uint8 (H, W).

    Raises:
        LabelFormatError: not RGB, undecodable, transparent pixels, or a colour that is no class colour and
            not the ignore colour (the message gives the colour, its pixel count and first ``(x, y)``).
    """
    im = _open_png(path)
    if im.mode == "RGBA":
        alpha = np.asarray(im.getchannel("A"))
        if (alpha != 255).any():
            raise _err(path, "colour-coded mask has transparent pixels; save it as opaque RGB")
        im = im.convert("RGB")
    if im.mode != "RGB":
        raise _err(path, f"a colour-coded label PNG must be RGB, got mode {im.mode!r}; "
                         "for a single-channel mask use --from index or --from voc")
    rgb = np.asarray(im, dtype=np.uint8)
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(classes.colors)}
    ir, ig, ib = ignore_color_for(classes)
    table[(ir << 16) | (ig << 8) | ib] = IGNORE_INDEX
    uniq, inverse = np.unique(codes.ravel(), return_inverse=True)
    values = np.empty(len(uniq), dtype=np.uint8)
    for j, code in enumerate(uniq.tolist()):
        if code not in table:
            colour = ((code >> 16) & 255, (code >> 8) & 255, code & 255)
            where = np.flatnonzero(codes.ravel() == code)
            y, x = divmod(int(where[0]), codes.shape[1])
            raise _err(path, f"colour {colour} in {where.size} pixels (first at x={x}, y={y}) is not a class colour "
                             f"of classes.json and not the ignore colour {(ir, ig, ib)}")
        values[j] = table[code]
    return values[inverse].reshape(codes.shape)


# --------------------------------------------------------------------------- COCO RLE


def _rle_counts(counts: str, path, where: str) -> np.ndarray:
    """Decode a COCO compressed RLE string to run lengths, int64 (a vectorised port of pycocotools' ``rleFrString``).

    Written only to *validate* before anything is painted: pycocotools' C decoder trusts the counts and
    reads uninitialised memory (or past the string) for strings whose runs do not sum to H*W.
    """
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        raise _err(path, f"{where}: RLE string holds characters outside '0'..'o'") from None
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    bad = np.flatnonzero((c < 0) | (c >= 64))
    if bad.size:
        raise _err(path, f"{where}: RLE string holds character {counts[int(bad[0])]!r} outside '0'..'o'")
    if not c.size:
        return c
    more = (c & 0x20) != 0
    if more[-1]:
        raise _err(path, f"{where}: RLE string ends inside a run length")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    k = ends - starts + 1
    if k.max() > 6:
        raise _err(path, f"{where}: RLE run length too long")
    x = np.zeros(len(starts), dtype=np.int64)
    for j in range(6):  # j-th 5-bit group of every value (at most 6)
        has = k > j
        x[has] |= (c[starts[has] + j] & 0x1F) << (5 * j)
    neg = (c[ends] & 0x10) != 0
    x[neg] |= np.left_shift(np.int64(-1), 5 * k[neg])
    if len(x) > 3:  # pycocotools: x[m] += cnts[m-2] for m > 2, i.e. running sums over odd / even (from 2) indices
        x[1::2] = np.cumsum(x[1::2])
        x[2::2] = np.cumsum(x[2::2])
    if (x < 0).any():
        raise _err(path, f"{where}: RLE holds a negative run length")
    return x


def _fg_spans(runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (column-major flat indices) of the non-empty foreground runs (odd positions)."""
    ends = np.cumsum(runs)
    s, e = (ends - runs)[1::2], ends[1::2]
    keep = e > s
    return s[keep], e[keep]


class _Seg:
    """A validated COCO segmentation: RLE runs (column-major) or polygons (float64 (N, 2) arrays)."""

    def __init__(self, runs: np.ndarray | None = None, polys: list | None = None) -> None:
        self.runs, self.polys = runs, polys


def _check_segmentation(seg, h: int, w: int, path, where: str) -> tuple[_Seg, int, int]:
    """Validate a COCO segmentation against its image size without painting anything.

    Returns ``(seg, outline, paint)``: the parsed segmentation, its polygons' outline length and the pixels
    painting it costs (foreground area for RLE, bounding-box area for polygons).
    """
    if isinstance(seg, dict):
        if "size" not in seg or "counts" not in seg:
            raise _err(path, f"{where}: RLE segmentation needs 'size' and 'counts'")
        size = seg["size"]
        if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
            raise _err(path, f"{where}: RLE 'size' must be [height, width], got {size!r}")
        if tuple(size) != (h, w):
            raise _err(path, f"{where}: RLE size {size[0]}x{size[1]} (HxW) differs from the image's {h}x{w}")
        counts = seg["counts"]
        if isinstance(counts, list):
            if not set(map(type, counts)) <= {int}:
                raise _err(path, f"{where}: uncompressed RLE counts must be non-negative integers")
            try:
                runs = np.asarray(counts, dtype=np.int64)
            except OverflowError:
                raise _err(path, f"{where}: RLE counts exceed the image's {h * w} pixels") from None
            if runs.size and runs.min() < 0:
                raise _err(path, f"{where}: uncompressed RLE counts must be non-negative integers")
            if runs.size and runs.max() > h * w:
                raise _err(path, f"{where}: an RLE run of {int(runs.max())} pixels exceeds the image's {h * w}")
        elif isinstance(counts, str):
            runs = _rle_counts(counts, path, where)
        else:
            raise _err(path, f"{where}: RLE 'counts' must be a string or a list, got {type(counts).__name__}")
        total = int(runs.sum())
        if total != h * w:
            raise _err(path, f"{where}: RLE runs cover {total} pixels, the image has {h * w}")
        return _Seg(runs=runs), 0, int(runs[1::2].sum())
    if isinstance(seg, list):
        lim = 10 * max(h, w)
        polys, outline, paint = [], 0, 0
        for j, poly in enumerate(seg):
            pts = _points(poly, path, f"{where} polygon {j}", lim, pairs=False)
            if len(pts) < 3:
                raise _err(path, f"{where}: a polygon must be a flat list of at least 3 finite (x, y) pairs "
                                 f"within the image")
            outline += _outline(pts)
            lo, hi = np.clip(pts.min(0), 0, (w, h)), np.clip(pts.max(0), 0, (w, h))
            paint += int(np.prod(np.ceil(hi - lo) + 1))
            polys.append(pts)
        return _Seg(polys=polys), outline, paint
    raise _err(path, f"{where}: 'segmentation' must be an RLE object or a list of polygons")


def _paint_runs(flat: np.ndarray, runs: np.ndarray, h: int, w: int, value: int) -> None:
    """Paint the foreground of column-major RLE ``runs`` into ``flat`` (the (W, H) canvas, raveled).

    Few runs: one slice assignment each (cost: runs + painted area); many: pycocotools' C decoder (cost
    H*W, then at most ~200 times the number of runs, i.e. of the file's bytes).
    """
    s, e = _fg_spans(runs)
    if len(s) * 200 < h * w:
        for a, b in zip(s.tolist(), e.tolist()):
            flat[a:b] = value
        return
    rle = mask_utils.frPyObjects({"size": [h, w], "counts": runs.tolist()}, h, w)
    with warnings.catch_warnings():  # pycocotools' __array__ predates numpy 2's copy keyword
        warnings.simplefilter("ignore", DeprecationWarning)
        m = mask_utils.decode(rle)  # (H, W) uint8 0/1, Fortran order: its transpose is (W, H) C order like flat
    np.copyto(flat.reshape(w, h), np.uint8(value), where=m.T.view(bool))


def _paint_segmentation(canvas: np.ndarray, seg: _Seg, value: int) -> None:
    """Paint a validated segmentation into ``canvas``, the (W, H) transposed label map (COCO's column-major)."""
    w, h = canvas.shape
    flat = canvas.reshape(-1)
    if seg.runs is not None:
        _paint_runs(flat, seg.runs, h, w, value)
        return
    for pts in seg.polys:
        rle = mask_utils.frPyObjects([pts.ravel().tolist()], h, w)[0]
        _paint_runs(flat, _rle_counts(rle["counts"].decode("ascii"), None, "polygon"), h, w, value)


def coco_dict(items: list[LabelItem], classes: ClassSpec) -> dict:
    """Build a COCO-style dict for ``items`` (see the module docstring for the layout).

    Raises:
        LabelFormatError: a label map holds ids outside ``classes``.
    """
    images, annotations = [], []
    for img_id, it in enumerate(items, start=1):
        labels = _check_labels(it.labels, classes)
        h, w = labels.shape
        images.append({"id": img_id, "file_name": it.image_name or f"{it.stem}.png", "height": h, "width": w})
        present = np.bincount(labels.ravel(), minlength=256)
        for c in range(classes.num_classes):
            if not present[c]:
                continue
            rle = mask_utils.encode(np.asfortranarray((labels == c).astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": img_id,
                "category_id": c + 1,
                "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
                "area": int(present[c]),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": 0,
            })
    categories = [{"id": i + 1, "name": n, "supercategory": "", "color": list(c)}
                  for i, (n, c) in enumerate(zip(classes.names, classes.colors))]
    return {"info": {"description": "SegStudio semantic segmentation labels"}, "images": images,
            "categories": categories, "annotations": annotations}


def write_coco_json(path: str | Path, items: list[LabelItem], classes: ClassSpec) -> Path:
    """Atomically write ``items`` (one or more label maps) as one COCO-style RLE JSON file.

    Raises:
        LabelFormatError: a label map holds ids outside ``classes``.
    """
    return _dump_json(path, coco_dict(items, classes))


def read_coco_json(path: str | Path, classes: ClassSpec | None = None) -> tuple[list[LabelItem], ClassSpec]:
    """Read a COCO-style JSON with segmentations into label maps, one per image.

    Args:
        path: the JSON file.
        classes: class list to map category *names* onto; ``None`` builds one from ``categories``
            (sorted by id; ``color`` used when present).

    Returns:
        ``(items, classes)``: items in ``images`` order, stems from ``file_name``; pixels covered by no
        annotation are :data:`IGNORE_INDEX`; annotations are painted in file order.

    Raises:
        LabelFormatError: missing/ill-typed keys, unknown category names or ids, unknown image ids,
            duplicate ids or stems, an RLE whose size differs from its image, corrupt RLE (runs not summing to
            H*W), polygons that are not finite numbers near the image, an image over 65535 px a side or over
            :data:`~segstudio.io.images.MAX_PIXELS` (the image reader's limit), images over 2**30 pixels in all,
            polygon outlines over 2**23 pixels in all, or annotations painting over 8 times the images' pixels.
            Every check runs before any label map is allocated, so a header-only claim costs nothing.
    """
    return _coco_items(_load_json(path), path, classes)


def _coco_items(data, path, classes: ClassSpec | None) -> tuple[list[LabelItem], ClassSpec]:
    """:func:`read_coco_json` on an already parsed document."""
    if not isinstance(data, dict):
        raise _err(path, "a COCO file must be a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise _err(path, f"COCO file needs a list {key!r}")
    cats: dict[int, str] = {}
    colors: dict[int, tuple] = {}
    for i, cat in enumerate(data["categories"]):
        if not (isinstance(cat, dict) and _is_int(cat.get("id")) and isinstance(cat.get("name"), str) and cat["name"]):
            raise _err(path, f"categories[{i}] needs an integer 'id' and a non-empty string 'name'")
        if cat["id"] in cats:
            raise _err(path, f"categories[{i}]: repeated category id {cat['id']}")
        cats[cat["id"]] = cat["name"]
        col = cat.get("color")
        if isinstance(col, list) and len(col) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in col):
            colors[cat["id"]] = tuple(col)
    if classes is None:
        if not cats:
            raise _err(path, "COCO file has no categories and no classes.json was given")
        ids = sorted(cats)
        try:
            classes = ClassSpec(tuple(cats[i] for i in ids),
                                tuple(colors[i] for i in ids) if all(i in colors for i in ids) else ())
        except ValueError as exc:
            raise _err(path, f"categories do not form a valid class list: {exc}") from None
    name_to_id = {n: i for i, n in enumerate(classes.names)}
    cat_to_class: dict[int, int] = {}
    for cid, name in cats.items():
        if name not in name_to_id:
            raise _err(path, f"category {name!r} (id {cid}) is not a class of classes.json "
                             f"(classes: {', '.join(classes.names)})")
        cat_to_class[cid] = name_to_id[name]
    items: dict[int, LabelItem] = {}
    sizes: dict[int, tuple[int, int]] = {}
    stems: set[str] = set()
    total_pixels = 0
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not _is_int(img.get("id")) or not isinstance(img.get("file_name"), str):
            raise _err(path, f"images[{i}] needs an integer 'id', a string 'file_name', 'height' and 'width'")
        h, w = _size(img.get("height"), img.get("width"), path, f"images[{i}]")
        stem = Path(img["file_name"].replace("\\", "/")).stem
        if not stem or stem in (".", ".."):
            raise _err(path, f"images[{i}]: file_name {img['file_name']!r} has no usable name")
        if img["id"] in items:
            raise _err(path, f"images[{i}]: repeated image id {img['id']}")
        if stem in stems:
            raise _err(path, f"images[{i}]: two images are named {stem!r}")
        stems.add(stem)
        total_pixels += h * w
        if total_pixels > _MAX_TOTAL_PIXELS:
            raise _err(path, f"images hold more than {_MAX_TOTAL_PIXELS} pixels in all; split the file")
        items[img["id"]] = LabelItem(stem, None, img["file_name"])  # allocated once every annotation is valid
        sizes[img["id"]] = (h, w)
    plan: dict[int, list[tuple[_Seg, int]]] = {k: [] for k in items}
    outline = paint = 0
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise _err(path, f"{where} must be an object")
        for key in ("image_id", "category_id", "segmentation"):
            if key not in ann:
                raise _err(path, f"{where} has no {key!r}")
        if not _is_int(ann["image_id"]) or ann["image_id"] not in items:
            raise _err(path, f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        if not _is_int(ann["category_id"]) or ann["category_id"] not in cat_to_class:
            raise _err(path, f"{where}: category_id {ann['category_id']!r} is not in 'categories'")
        seg, o, p = _check_segmentation(ann["segmentation"], *sizes[ann["image_id"]], path, where)
        outline, paint = outline + o, paint + p
        _check_budget(path, outline, paint, total_pixels)
        plan[ann["image_id"]].append((seg, cat_to_class[ann["category_id"]]))
    for img_id, it in items.items():
        h, w = sizes[img_id]
        if not plan[img_id]:
            it.labels = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
            continue
        canvas = np.full((w, h), IGNORE_INDEX, dtype=np.uint8)  # transposed: COCO runs are column-major
        for seg, value in plan[img_id]:
            _paint_segmentation(canvas, seg, value)
        it.labels = np.ascontiguousarray(canvas.T)
        del canvas
    return list(items.values()), classes


# --------------------------------------------------------------------------- labelme


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


# --------------------------------------------------------------------------- dispatch


def _json_format(data, path) -> str:
    if isinstance(data, dict) and "shapes" in data:
        return "labelme"
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        return "coco"
    raise _err(path, "JSON is neither labelme (has 'shapes') nor COCO (has 'images' and 'annotations')")


def detect_format(path: str | Path) -> str:
    """Guess a label file's format from its content: ``.json`` → ``coco`` or ``labelme`` (by keys),
    ``.png`` → ``index`` (mode L), ``voc`` (mode P) or ``color`` (RGB/RGBA).

    Raises:
        LabelFormatError: unknown suffix or content.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_format(_load_json(path), path)
    if suffix == ".png":
        im = _open_png(path)
        if im.mode == "L":
            return "index"
        if im.mode == "P":
            return "voc"
        if im.mode in ("RGB", "RGBA"):
            return "color"
        raise _err(path, f"PNG mode {im.mode!r} is no label format (index: L, voc: P, color: RGB)")
    raise _err(path, f"cannot tell the label format of a {suffix or 'suffix-less'} file; use .png or .json")


def read_labels(
    path: str | Path, fmt: str | None = None, classes: ClassSpec | None = None
) -> tuple[list[LabelItem], ClassSpec | None]:
    """Read a label file of any format into label maps.

    Args:
        path: the file.
        fmt: one of :data:`FORMATS`, or ``None`` to :func:`detect_format`.
        classes: required for ``color`` and ``labelme``; checks ids for ``index``/``voc``; maps category
            names for ``coco`` (``None``: categories from the file).

    Returns:
        ``(items, classes)``: one item, or one per image for COCO; ``classes`` as given or from the COCO file.

    Raises:
        LabelFormatError: see the per-format readers; also an unknown ``fmt`` or missing ``classes``.
    """
    data = None
    if fmt is None and Path(path).suffix.lower() == ".json":  # parse once, not once to detect and once to read
        data = _load_json(path)
        fmt = _json_format(data, path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise LabelFormatError(f"unknown label format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in ("color", "labelme") and classes is None:
        raise _err(path, f"reading {fmt} labels needs the class list (classes.json)")
    if fmt == "coco":
        return read_coco_json(path, classes) if data is None else _coco_items(data, path, classes)
    if fmt == "labelme":
        return [read_labelme_json(path, classes) if data is None else _labelme_item(data, path, classes)], classes
    reader = {"index": read_index, "voc": read_voc_png, "color": read_color_png}[fmt]
    return [LabelItem(Path(path).stem, reader(path, classes))], classes


def write_labels(
    path: str | Path, labels: np.ndarray, fmt: str, classes: ClassSpec, image_name: str | None = None
) -> Path:
    """Write one label map in ``fmt`` (atomic). ``image_name`` goes to labelme's ``imagePath`` / COCO's ``file_name``.

    Raises:
        LabelFormatError: unknown ``fmt`` or labels outside ``classes``.
    """
    if fmt == "index":
        return write_index_png(path, _check_labels(labels, classes))
    if fmt == "voc":
        return write_voc_png(path, labels, classes)
    if fmt == "color":
        return write_color_png(path, labels, classes)
    if fmt == "labelme":
        return write_labelme_json(path, labels, classes, image_name)
    if fmt == "coco":
        return write_coco_json(path, [LabelItem(Path(path).stem, labels, image_name)], classes)
    raise LabelFormatError(f"unknown label format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------- convert


def find_classes_for(src: str | Path) -> Path | None:
    """``classes.json`` for a label file or folder: in the folder itself, beside the file, or one level up
    (dataset layout ``masks/`` → ``classes.json``); ``None`` if there is none."""
    src = Path(src)
    folder = src if src.is_dir() else src.parent
    for cand in (folder / "classes.json", folder.parent / "classes.json"):
        if cand.is_file():
            return cand
    return None


def _find_image_name(label_file: Path, stem: str, dst_dir: Path) -> str | None:
    """The image a label file belongs to (dataset ``images/`` beside ``masks/``, or the app folder above
    ``labels/``), relative to ``dst_dir``; ``None`` if not found."""
    for folder in (label_file.parent.parent / "images", label_file.parent.parent, label_file.parent):
        for ext in IMAGE_EXTENSIONS:
            cand = folder / f"{stem}{ext}"
            if cand.is_file() and cand.resolve() != label_file.resolve():
                return os.path.relpath(cand.resolve(), dst_dir.resolve())
    return None


def _rebase(image_name: str, label_file: Path, dst_dir: Path) -> str:
    """An image path recorded relative to ``label_file``'s folder, made relative to ``dst_dir`` when the image
    exists; otherwise unchanged."""
    cand = Path(image_name.replace("\\", "/"))
    if not cand.is_absolute():
        cand = label_file.parent / cand
    try:
        if cand.is_file():
            return os.path.relpath(cand.resolve(), dst_dir.resolve())
    except (OSError, ValueError):
        pass
    return image_name


def _source_files(src: Path, fmt: str | None) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such file or folder")
    suffixes = {FORMAT_SUFFIX[fmt]} if fmt else {".png", ".json"}
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                   and p.name != "classes.json" and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{src}: no label files ({', '.join(sorted(suffixes))}) in this folder")
    return files


def convert(
    src: str | Path,
    dst: str | Path,
    to: str,
    classes: ClassSpec | str | Path | None = None,
    from_format: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Convert label files between :data:`FORMATS`.

    Args:
        src: a label file, or a folder of them (``.png``/``.json``, ``classes.json`` skipped; with
            ``from_format`` only that format's suffix).
        dst: for ``to="coco"``: the output ``.json`` file, or a folder that gets :data:`COCO_ANNOTATIONS_NAME`;
            otherwise: an output file when ``src`` yields one label map and ``dst`` has the format's suffix,
            else a folder that gets ``<stem>.png`` / ``<stem>.json`` per label map and a ``classes.json``.
        to: output format.
        classes: a :class:`ClassSpec` or a ``classes.json`` path; default: :func:`find_classes_for` ``src``,
            or the categories of a COCO source.
        from_format: input format, or ``None`` to detect it per file.
        overwrite: replace existing outputs (inputs are never overwritten).

    Image references (COCO ``file_name``, labelme ``imagePath``) are kept pointing at the image: recorded
    paths are re-expressed relative to the output folder when the image exists; for index/voc/color
    sources the image is looked up beside the labels (``../images/<stem>.*`` of a dataset, or the folder
    above ``labels/``), falling back to ``<stem>.png`` in COCO files.

    Returns:
        Paths written.

    Raises:
        LabelFormatError: unreadable/invalid labels, missing classes for a format that needs them.
        FileExistsError: an output exists and ``overwrite`` is False, or an output would replace an input
            (checked for every output before anything is written).
        FileNotFoundError: ``src`` missing or without label files.

    Before writing, temp files that an interrupted earlier save left in the output folder are removed
    (:func:`segstudio.io.atomic.sweep_stale_temps`).
    """
    if to not in FORMATS:
        raise LabelFormatError(f"unknown output format {to!r}; choose one of {', '.join(FORMATS)}")
    if from_format is not None and from_format not in FORMATS:
        raise LabelFormatError(f"unknown input format {from_format!r}; choose one of {', '.join(FORMATS)}")
    src, dst = Path(src), Path(dst)
    files = _source_files(src, from_format)
    if isinstance(classes, (str, Path)):
        spec: ClassSpec | None = load_classes(classes)
    elif classes is None and (found := find_classes_for(src)) is not None:
        spec = load_classes(found)
        log.info("using classes from %s", found)
    else:
        spec = classes
    items: list[tuple[LabelItem, Path]] = []
    for f in files:
        got, file_classes = read_labels(f, from_format, spec)
        if spec is None:
            spec = file_classes
        items.extend((it, f) for it in got)
    if spec is None:
        raise LabelFormatError(f"{src}: no classes.json found beside the labels; pass --classes classes.json")
    stems = [it.stem for it, _ in items]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise LabelFormatError(f"{src}: several label maps are named {dup}; convert them separately")

    suffix = FORMAT_SUFFIX[to]
    one_output = to == "coco" or (len(items) == 1 and src.is_file())
    single_file = dst.suffix.lower() == suffix and not dst.is_dir() and one_output
    if to == "coco":
        out_file = dst if single_file else dst / COCO_ANNOTATIONS_NAME
        outputs = [out_file]
        out_dir = out_file.parent
    else:
        out_dir = dst.parent if single_file else dst
        outputs = [dst] if single_file else [dst / f"{it.stem}{suffix}" for it, _ in items]
    classes_out = None if single_file else out_dir / "classes.json"
    inputs = {f.resolve() for f in files}
    for out in outputs + ([classes_out] if classes_out else []):
        if out.resolve() in inputs:
            raise FileExistsError(f"{out}: would overwrite an input file; choose another destination")
    existing = [o for o in outputs if o.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists ({len(existing)} outputs exist); pass --overwrite to replace")
    write_classes = False
    if classes_out is not None:
        if not classes_out.exists():
            write_classes = True
        else:
            try:
                same = load_classes(classes_out) == spec
            except ValueError:
                same = False
            if not same:
                if not overwrite:
                    raise FileExistsError(f"{classes_out} exists with other classes; pass --overwrite to replace it")
                write_classes = True
    sweep_stale_temps(out_dir)  # temps of an earlier, killed conversion into the same folder
    written = []
    for it, f in items:  # image paths are relative to the label file: make them relative to the output
        if it.image_name is not None:
            it.image_name = _rebase(it.image_name, f, out_dir)
        elif to in ("coco", "labelme"):
            it.image_name = _find_image_name(f, it.stem, out_dir)
    if to == "coco":
        for it, _ in items:
            it.image_name = it.image_name or f"{it.stem}.png"
        written.append(write_coco_json(outputs[0], [it for it, _ in items], spec))
    else:
        for (it, _), out in zip(items, outputs):
            written.append(write_labels(out, it.labels, to, spec, it.image_name if to == "labelme" else None))
    if write_classes:
        written.append(save_classes(classes_out, spec))
    return written
