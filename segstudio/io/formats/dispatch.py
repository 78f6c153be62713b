"""The format-independent entry points: :func:`detect_format`, :func:`read_labels`, :func:`write_labels`, each
looking the format up in the registry (:mod:`segstudio.io.formats.registry`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.labels import ClassSpec
from segstudio.io.formats._common import LabelItem, _err, _load_json, _open_png
from segstudio.io.formats.registry import LabelFormat, formats_with_suffix, get_format


def _json_format(data, path) -> str:
    for fmt in formats_with_suffix(".json"):
        if fmt.matches(data):
            return fmt.name
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
        for fmt in formats_with_suffix(".png"):
            if fmt.matches(im):
                return fmt.name
        raise _err(path, f"PNG mode {im.mode!r} is no label format (index: L, voc: P, color: RGB)")
    raise _err(path, f"cannot tell the label format of a {suffix or 'suffix-less'} file; use .png or .json")


def read_labels(
    path: str | Path, fmt: str | None = None, classes: ClassSpec | None = None
) -> tuple[list[LabelItem], ClassSpec | None]:
    """Read a label file of any format into label maps.

    Args:
        path: the file.
        fmt: one of :data:`~segstudio.io.formats.FORMATS`, or ``None`` to :func:`detect_format`.
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
    spec: LabelFormat = get_format(fmt)
    if spec.needs_classes and classes is None:
        raise _err(path, f"reading {fmt} labels needs the class list (classes.json)")
    return spec.read(path, classes, data)


def write_labels(
    path: str | Path, labels: np.ndarray, fmt: str, classes: ClassSpec, image_name: str | None = None
) -> Path:
    """Write one label map in ``fmt`` (atomic). ``image_name`` goes to labelme's ``imagePath`` / COCO's ``file_name``.

    Raises:
        LabelFormatError: unknown ``fmt`` or labels outside ``classes``.
    """
    return get_format(fmt).write(path, labels, classes, image_name)
