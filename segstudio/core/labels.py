"""Label maps, class specifications and colour overlays.

A *label map* is a 2-D ``numpy.uint8`` array (H, W) whose values are class ids ``0..K-1`` or
:data:`IGNORE_INDEX` (255) for pixels that are unlabelled / void and must be ignored by losses and
metrics. This module is the one place where the ignore value is spelled out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

IGNORE_INDEX: int = 255
"""Label value for void / unlabelled pixels (as in CamVid, Pascal VOC and torchvision's references)."""

MAX_CLASSES: int = IGNORE_INDEX
"""Largest number of classes an 8-bit label map can hold next to :data:`IGNORE_INDEX`."""


def default_palette(n: int) -> list[tuple[int, int, int]]:
    """Return ``n`` distinct RGB colours (Pascal VOC's bit-interleaving palette).

    Args:
        n: number of colours, ``0 <= n <= 255``.

    Returns:
        List of ``(r, g, b)`` tuples with values in ``0..255``.

    Source: the colour map of the PASCAL VOC development kit (``VOCdevkit/VOCcode/VOClabelcolormap.m``).
    """
    if not 0 <= n <= MAX_CLASSES:
        raise ValueError(f"default_palette: n must be in 0..{MAX_CLASSES}, got {n}")
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return colours


@dataclass(frozen=True)
class ClassSpec:
    """The ordered class list of a project or model: names and display colours.

    Attributes:
        names: class names; index ``i`` is class id ``i``.
        colors: one ``(r, g, b)`` colour per class, values ``0..255``.

    Raises:
        ValueError: if names and colours differ in length, a name is empty or repeated, there are
            more than 255 classes, or a colour is not three integers in ``0..255``.
    """

    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if len(names) > MAX_CLASSES:  # before default_palette, which would fail with a palette message
            raise ValueError(f"ClassSpec supports at most {MAX_CLASSES} classes, got {len(names)}")
        colors = tuple(tuple(int(v) for v in c) for c in self.colors) or tuple(default_palette(len(names)))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "colors", colors)
        if not names:
            raise ValueError("ClassSpec needs at least one class name")
        if len(names) > MAX_CLASSES:
            raise ValueError(f"ClassSpec supports at most {MAX_CLASSES} classes, got {len(names)}")
        if len(colors) != len(names):
            raise ValueError(f"ClassSpec has {len(names)} names but {len(colors)} colours")
        if any(not n.strip() for n in names):
            raise ValueError("ClassSpec: class names must not be empty")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"ClassSpec: repeated class names {dup}")
        for n, c in zip(names, colors):
            if len(c) != 3 or any(not 0 <= v <= 255 for v in c):
                raise ValueError(f"ClassSpec: colour of class {n!r} must be three ints in 0..255, got {c}")

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.names)

    def lut(self, ignore_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Colour look-up table, uint8 (256, 3): row ``i`` is the colour of class ``i``.

        Rows ``K..255`` (including :data:`IGNORE_INDEX`) get ``ignore_color``.
        """
        lut = np.empty((256, 3), dtype=np.uint8)
        lut[:] = ignore_color
        lut[: self.num_classes] = np.asarray(self.colors, dtype=np.uint8)
        return lut

    def to_json(self) -> list[dict]:
        """The ``classes.json`` form: ``[{"id": 0, "name": ..., "color": [r, g, b]}, ...]``."""
        return [{"id": i, "name": n, "color": list(c)} for i, (n, c) in enumerate(zip(self.names, self.colors))]

    @classmethod
    def from_json(cls, items: list[dict]) -> "ClassSpec":
        """Build from the ``classes.json`` form; ids must be ``0..K-1`` (any order).

        Raises:
            ValueError: when an entry lacks ``id``/``name``, or ids are not exactly ``0..K-1``.
        """
        if not isinstance(items, list) or not items:
            raise ValueError("classes.json must be a non-empty list of {id, name, color} objects")
        try:
            by_id = {int(it["id"]): it for it in items}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"classes.json: every entry needs an integer 'id' ({exc!r})") from exc
        if sorted(by_id) != list(range(len(items))):
            raise ValueError(f"classes.json: ids must be 0..{len(items) - 1} without gaps, got {sorted(by_id)}")
        palette = default_palette(len(items))
        names, colors = [], []
        for i in range(len(items)):
            it = by_id[i]
            if "name" not in it:
                raise ValueError(f"classes.json: entry with id {i} has no 'name'")
            names.append(it["name"])
            colors.append(tuple(it.get("color", palette[i])))
        return cls(tuple(names), tuple(colors))


_MIRROR_WORDS = {"left": "right", "right": "left"}


def mirror_permutation(names: Sequence[str]) -> list[int] | None:
    """The class a left-right mirror turns each class into, from the class names, or ``None`` when none changes.

    A class whose name has the word ``left`` (or ``right``; words split on ``_``, ``-``, spaces, case-insensitive)
    becomes the class whose name is the same with that word swapped, when the list has it (``back_left_door`` ↔
    ``back_right_door``). A mirrored training image keeps its labels true only with this swap (car parts: a flip
    without it teaches the model that left and right parts look alike).

    Returns:
        ``perm`` (K,) with ``perm[c]`` the class of mirrored ``c`` (a permutation), or ``None`` (identity).
    """
    import re

    index = {n.lower(): i for i, n in enumerate(names)}
    perm = list(range(len(names)))
    for i, name in enumerate(names):
        parts = re.split(r"([_\-\s]+)", name.lower())
        swapped = "".join(_MIRROR_WORDS.get(p, p) for p in parts)
        j = index.get(swapped)
        if j is not None and j != i:
            perm[i] = j
    if any(perm[perm[i]] != i for i in range(len(perm))):  # not a pairing (e.g. duplicate names): no swap
        return None
    return None if perm == list(range(len(names))) else perm


def new_label_map(height: int, width: int, fill: int = IGNORE_INDEX) -> np.ndarray:
    """A new uint8 label map (H, W) filled with ``fill`` (default: all ignore / unlabelled)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"label map size must be positive, got {height}x{width}")
    return np.full((height, width), fill, dtype=np.uint8)


def validate_label_map(labels: np.ndarray, num_classes: int, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Check that ``labels`` is a valid uint8 (H, W) label map for ``num_classes`` classes.

    Args:
        labels: array to check.
        num_classes: ``K``; valid values are ``0..K-1`` and :data:`IGNORE_INDEX`.
        shape: expected ``(H, W)``, or ``None`` to accept any.

    Returns:
        ``labels`` unchanged.

    Raises:
        ValueError: naming the wrong dtype, shape, or the offending values and how many pixels hold them.
    """
    if labels.ndim != 2:
        raise ValueError(f"label map must be 2-D (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8:
        raise ValueError(f"label map must be uint8, got {labels.dtype}")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise ValueError(f"label map is {labels.shape[1]}x{labels.shape[0]} (WxH) but the image is {shape[1]}x{shape[0]}")
    bad = (labels >= num_classes) & (labels != IGNORE_INDEX)
    if bad.any():
        values = np.unique(labels[bad])
        raise ValueError(
            f"label map holds values {values.tolist()} in {int(bad.sum())} pixels, but only 0..{num_classes - 1} "
            f"and {IGNORE_INDEX} (ignore) are valid for {num_classes} classes"
        )
    return labels


def colorize(labels: np.ndarray, classes: ClassSpec) -> np.ndarray:
    """Colour image uint8 (H, W, 3) RGB of a label map; ignore pixels are black."""
    return classes.lut()[labels]


def blend_overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec, opacity: float = 0.5) -> np.ndarray:
    """Blend a label map over an RGB image.

    Args:
        image: uint8 (H, W, 3) RGB.
        labels: uint8 (H, W) label map; ignore pixels leave the image unchanged.
        classes: palette source.
        opacity: weight of the class colour, ``0..1``.

    Returns:
        uint8 (H, W, 3) RGB: ``(1 - a) * image + a * colour`` where labelled, ``image`` elsewhere.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in 0..1, got {opacity}")
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {labels.shape} differ in size")
    colour = colorize(labels, classes).astype(np.float32)
    out = image.astype(np.float32)
    mask = (labels != IGNORE_INDEX)[..., None]
    out = np.where(mask, (1.0 - opacity) * out + opacity * colour, out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
