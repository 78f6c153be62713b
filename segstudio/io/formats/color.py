"""``color``: colour-coded RGB PNG (CamVid / Cityscapes style), each pixel in its class colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.formats._common import (
    VOC_VOID_COLOR,
    LabelFormatError,
    LabelItem,
    _check_labels,
    _encode_png,
    _err,
    _open_png,
)
from segstudio.io.formats.registry import LabelFormat, register_format


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


FORMAT = register_format(LabelFormat(
    "color", ".png",
    matches=lambda im: im.mode in ("RGB", "RGBA"),
    read=lambda path, classes, _data: ([LabelItem(Path(path).stem, read_color_png(path, classes))], classes),
    write=lambda path, labels, classes, _image: write_color_png(path, labels, classes),
    needs_classes=True,
))
