"""``index``: 8-bit single-channel PNG, pixel value = class id (the app's own format). Lossless."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.labels import ClassSpec
from segstudio.io.formats._common import (
    LabelItem,
    _check_labels,
    _err,
    _open_png,
)
from segstudio.io.formats.registry import LabelFormat, register_format
from segstudio.io.labels import write_index_png


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


FORMAT = register_format(LabelFormat(
    "index", ".png",
    matches=lambda im: im.mode == "L",
    read=lambda path, classes, _data: ([LabelItem(Path(path).stem, read_index(path, classes))], classes),
    write=lambda path, labels, classes, _image: write_index_png(path, _check_labels(labels, classes)),
))
