"""Label files: 8-bit index PNGs and ``classes.json``, saved atomically."""

from __future__ import annotations

import io as _io
import json
import stat
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labels import ClassSpec, validate_label_map
from segstudio.io.atomic import atomic_write_bytes

from segstudio.io.layout import CLASSES_FILENAME, LABELS_DIRNAME, ProjectLayout  # noqa: F401  (LABELS_DIRNAME re-exported)


def label_path_for(image_path: str | Path) -> Path:
    """Where the app saves the labels of ``image_path``: ``<folder>/labels/<stem>.png``."""
    return ProjectLayout.of_image(image_path).label_path(image_path)


def write_index_png(path: str | Path, labels: np.ndarray, classes: ClassSpec | None = None) -> Path:
    """Atomically write a uint8 (H, W) label map as an 8-bit index PNG (pixel value = class id).

    Without ``classes`` the PNG is single-channel grayscale (mode ``L``). With ``classes`` it is a palette PNG
    (mode ``P``): the stored values are still the class ids, but the PNG's palette holds the class colours
    (:meth:`ClassSpec.lut`, unlabelled / ignore = black), so any image viewer shows the labels in colour.
    Both read back identically with :func:`read_index_png`.

    Raises:
        ValueError: when ``labels`` is not uint8 (H, W).
        OSError: when the file cannot be written; the previous file is left intact.
    """
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"index PNG needs a uint8 (H, W) label map, got {labels.dtype} {labels.shape}")
    buf = _io.BytesIO()
    if classes is None:
        im = Image.fromarray(labels, mode="L")
    else:
        im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
        im.putpalette(classes.lut().reshape(-1).tolist())
    im.save(buf, format="PNG", optimize=False, compress_level=6)
    return atomic_write_bytes(path, buf.getvalue())


class LabelReadError(ValueError):
    """A label file could not be read as a label map; the message names the file, the reason and the fix."""


def read_index_png(path: str | Path) -> np.ndarray:
    """Read an 8-bit index PNG (grayscale ``L``, palette ``P`` or bilevel ``1``) as a uint8 (H, W) label map.

    The size is checked from the header first (same pixel limit as images), so a huge or hostile
    header costs nothing.

    Raises:
        FileNotFoundError: when the file does not exist.
        LabelReadError: (a ``ValueError``) when the file is empty, truncated, not an image, too large, or
            not a single-channel 8-bit image (e.g. a colour-coded mask); the message names the file.
    """
    from segstudio.io.images import MAX_PIXELS

    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block the reader forever
            raise LabelReadError(f"{path}: not a regular file")
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS or im.width < 1 or im.height < 1:
                raise LabelReadError(f"{path}: label file is {im.width}x{im.height} pixels, outside 1..{MAX_PIXELS}")
            if im.mode not in ("L", "P", "1"):
                raise LabelReadError(
                    f"{path}: label file must be an 8-bit single-channel (L) or palette (P) PNG whose values are "
                    f"class ids, got mode {im.mode!r}; convert colour-coded masks first"
                )
            return np.array(im if im.mode != "1" else im.convert("L").point(lambda v: v // 255), dtype=np.uint8)
    except (LabelReadError, FileNotFoundError):
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, DecompressionBombError, struct.error...
        size = path.stat().st_size if path.is_file() else None
        why = "the file is empty (0 bytes)" if size == 0 else f"{type(exc).__name__}: {exc}"
        raise LabelReadError(f"{path}: cannot read label file ({why})") from exc


def save_classes(path: str | Path, classes: ClassSpec) -> Path:
    """Atomically write ``classes.json``."""
    return atomic_write_bytes(path, (json.dumps(classes.to_json(), indent=1) + "\n").encode("utf-8"))


def load_classes(path: str | Path) -> ClassSpec:
    """Read ``classes.json``.

    Raises:
        FileNotFoundError: when the file does not exist.
        ValueError: when the file cannot be read, is not UTF-8 JSON, or is not a valid class list (wrong
            types, missing keys, bad colours, absurd nesting); the message names the file.
    """
    path = Path(path)
    try:
        return ClassSpec.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:  # TypeError (colour 5), RecursionError (deep nesting), OSError (a folder, permissions)
        raise ValueError(f"{path}: not a valid class list ({type(exc).__name__}: {exc})") from exc


def save_labels(image_path: str | Path, labels: np.ndarray, classes: ClassSpec) -> Path:
    """Save the corrected labels of ``image_path`` into ``labels/`` beside it, with ``labels/classes.json``.

    The label file is a palette PNG (values = class ids, palette = class colours, see :func:`write_index_png`).
    Both files are written atomically; returns the label file path.

    Raises:
        ValueError: when ``labels`` holds values outside the classes (nothing is written).
    """
    validate_label_map(labels, classes.num_classes)
    out = label_path_for(image_path)
    write_index_png(out, labels, classes)
    save_classes(out.parent / CLASSES_FILENAME, classes)
    return out
