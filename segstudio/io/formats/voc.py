"""``voc``: PASCAL VOC ``SegmentationClass`` palette PNG (indices = class ids, palette = class colours). Lossless."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labels import ClassSpec
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.formats._common import (
    VOC_VOID_COLOR,
    LabelItem,
    _check_labels,
    _encode_png,
    _err,
    _open_png,
)
from segstudio.io.formats.registry import LabelFormat, register_format


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


FORMAT = register_format(LabelFormat(
    "voc", ".png",
    matches=lambda im: im.mode == "P",
    read=lambda path, classes, _data: ([LabelItem(Path(path).stem, read_voc_png(path, classes))], classes),
    write=lambda path, labels, classes, _image: write_voc_png(path, labels, classes),
))
