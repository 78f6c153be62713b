"""The label-format registry: each format module registers one :class:`LabelFormat` (its name, file suffix,
content test, reader and writer); :func:`~segstudio.io.formats.dispatch.detect_format`,
:func:`~segstudio.io.formats.dispatch.read_labels`, :func:`~segstudio.io.formats.dispatch.write_labels` and
:func:`~segstudio.io.formats.convert.convert` look formats up here instead of dispatching on strings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.labels import ClassSpec
from segstudio.io.formats._common import LabelFormatError, LabelItem


@dataclass(frozen=True)
class LabelFormat:
    """One label file format.

    Attributes:
        name: the format's name (``segstudio convert --to NAME``).
        suffix: file suffix written and read (``".png"`` or ``".json"``).
        matches: ``matches(content) -> bool``: is this file of the format? ``content`` is the opened PIL image for
            ``.png`` files and the parsed JSON for ``.json`` files (formats of one suffix are tried in
            registration order).
        read: ``read(path, classes, content) -> (items, classes)``: the label maps of the file (``content``: the
            parsed JSON when the caller already has it, else ``None``); ``classes`` as given or from the file.
        write: ``write(path, labels uint8 (H, W), classes, image_name) -> path`` (atomic).
        needs_classes: reading needs the class list (class names or colours live only in ``classes.json``).
        records_image: the file records the image it labels (COCO ``file_name``, labelme ``imagePath``).
        write_many: ``write_many(path, items, classes) -> path`` for a format that holds many label maps in one
            file (COCO); ``None``: one file per label map.
        many_name: with ``write_many``, the file written into a destination folder (``annotations.json``).
    """

    name: str
    suffix: str
    matches: Callable[[Any], bool]
    read: Callable[[Path, ClassSpec | None, Any], tuple[list[LabelItem], ClassSpec | None]]
    write: Callable[[Path, np.ndarray, ClassSpec, str | None], Path]
    needs_classes: bool = False
    records_image: bool = False
    write_many: Callable[[Path, list[LabelItem], ClassSpec], Path] | None = None
    many_name: str | None = None


_FORMATS: dict[str, LabelFormat] = {}


def register_format(fmt: LabelFormat) -> LabelFormat:
    """Add ``fmt`` to the registry (its name must be new).

    Raises:
        ValueError: a format of that name is registered already.
    """
    if fmt.name in _FORMATS:
        raise ValueError(f"label format {fmt.name!r} is registered twice")
    _FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str, what: str = "label format") -> LabelFormat:
    """The registered format ``name``.

    Raises:
        LabelFormatError: no such format (the message lists the registered ones).
    """
    try:
        return _FORMATS[name]
    except (KeyError, TypeError):
        raise LabelFormatError(f"unknown {what} {name!r}; choose one of {', '.join(_FORMATS)}") from None


def format_names() -> tuple[str, ...]:
    """Names of the registered formats, in registration order."""
    return tuple(_FORMATS)


def formats_with_suffix(suffix: str) -> list[LabelFormat]:
    """The registered formats whose files end in ``suffix`` (lower case, with the dot), in registration order."""
    return [f for f in _FORMATS.values() if f.suffix == suffix]
