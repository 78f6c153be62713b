"""``coco``: COCO-style JSON, one compressed-RLE annotation per class present per image; many images per file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io.formats._common import (
    _MAX_TOTAL_PIXELS,
    COCO_ANNOTATIONS_NAME,
    LabelItem,
    _check_budget,
    _check_labels,
    _dump_json,
    _err,
    _is_int,
    _load_json,
    _outline,
    _points,
    _size,
)
from segstudio.io.formats.registry import LabelFormat, register_format


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


FORMAT = register_format(LabelFormat(
    "coco", ".json",
    matches=lambda data: isinstance(data, dict) and "shapes" not in data and "annotations" in data and "images" in data,
    read=lambda path, classes, data: read_coco_json(path, classes) if data is None else _coco_items(data, path, classes),
    write=lambda path, labels, classes, image: write_coco_json(path, [LabelItem(Path(path).stem, labels, image)], classes),
    records_image=True,
    write_many=write_coco_json,
    many_name=COCO_ANNOTATIONS_NAME,
))
