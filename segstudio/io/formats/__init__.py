"""Label-map file formats: read, write, detect and convert — one module per format behind a small registry.

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

Layout: :mod:`~segstudio.io.formats.registry` (:class:`LabelFormat`: name, suffix, content test, reader, writer;
:func:`register_format`, :func:`get_format`), one module per format (:mod:`.index`, :mod:`.voc`, :mod:`.color`,
:mod:`.coco`, :mod:`.labelme`; each registers itself), :mod:`.dispatch` (:func:`detect_format`,
:func:`read_labels`, :func:`write_labels`) and :mod:`.convert`. A new format is one module that registers a
:class:`LabelFormat`, imported below.
"""

from __future__ import annotations

from segstudio.io.formats._common import (
    COCO_ANNOTATIONS_NAME,
    LABELME_IGNORE,
    VOC_VOID_COLOR,
    LabelFormatError,
    LabelItem,
)
from segstudio.io.formats.registry import LabelFormat, format_names, get_format, register_format

# Registration order is the order of FORMATS and of content detection among formats of one suffix.
from segstudio.io.formats.index import read_index  # noqa: E402  (registers "index")
from segstudio.io.formats.voc import read_voc_png, write_voc_png  # noqa: E402
from segstudio.io.formats.color import ignore_color_for, read_color_png, write_color_png  # noqa: E402
from segstudio.io.formats.coco import (  # noqa: E402
    _check_segmentation,
    _paint_segmentation,
    coco_dict,
    read_coco_json,
    write_coco_json,
)
from segstudio.io.formats.labelme import labelme_shapes, read_labelme_json, write_labelme_json  # noqa: E402
from segstudio.io.formats.dispatch import detect_format, read_labels, write_labels  # noqa: E402
from segstudio.io.formats.convert import convert, find_classes_for  # noqa: E402

FORMATS: tuple[str, ...] = format_names()
"""Names accepted by :func:`read_labels`, :func:`write_labels`, :func:`convert` and ``segstudio convert --to``."""

FORMAT_SUFFIX: dict[str, str] = {name: get_format(name).suffix for name in FORMATS}
"""File suffix written for each format."""

__all__ = [
    "COCO_ANNOTATIONS_NAME",
    "FORMATS",
    "FORMAT_SUFFIX",
    "LABELME_IGNORE",
    "VOC_VOID_COLOR",
    "LabelFormat",
    "LabelFormatError",
    "LabelItem",
    "coco_dict",
    "convert",
    "detect_format",
    "find_classes_for",
    "format_names",
    "get_format",
    "ignore_color_for",
    "labelme_shapes",
    "read_coco_json",
    "read_color_png",
    "read_index",
    "read_labelme_json",
    "read_labels",
    "read_voc_png",
    "register_format",
    "write_coco_json",
    "write_color_png",
    "write_labelme_json",
    "write_labels",
    "write_voc_png",
]
