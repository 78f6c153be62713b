"""Evaluation pictures drawn with numpy + OpenCV: image | ground truth | prediction | error panels and a
row-normalised confusion-matrix image. Everything is uint8 RGB; :func:`write_png` saves atomically.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io.atomic import atomic_write_bytes

CORRECT_COLOR: tuple[int, int, int] = (0, 158, 115)
"""Error map: correctly predicted pixels (Okabe–Ito bluish green, tinted over the grey image)."""
WRONG_COLOR: tuple[int, int, int] = (240, 30, 30)
"""Error map: wrongly predicted pixels (strong red, nearly opaque)."""
IGNORE_COLOR: tuple[int, int, int] = (20, 20, 20)
"""Error map and ground-truth panel: ignore (void) pixels, dark."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BG = (255, 255, 255)
_FG = (20, 20, 20)


def _gray3(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, axis=2).astype(np.float32)


def error_map(image: np.ndarray, target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Where the prediction is right, wrong, or not scored, over a grey copy of the image.

    Args:
        image: uint8 (H, W, 3) RGB.
        target: uint8 (H, W) ground truth; :data:`IGNORE_INDEX` pixels are not scored.
        pred: integer (H, W) prediction.

    Returns:
        uint8 (H, W, 3) RGB: correct pixels 35 % :data:`CORRECT_COLOR` over the grey image, wrong pixels
        85 % :data:`WRONG_COLOR`, ignore pixels 75 % :data:`IGNORE_COLOR`.

    Raises:
        ValueError: the three arrays differ in size.
    """
    if image.shape[:2] != target.shape or target.shape != pred.shape:
        raise ValueError(f"image {image.shape[:2]}, target {target.shape} and prediction {pred.shape} differ in size")
    gray = _gray3(image)
    ignore = target == IGNORE_INDEX
    wrong = ~ignore & (pred != target)
    out = np.empty_like(gray)
    groups = ((~ignore & ~wrong, CORRECT_COLOR, 0.35), (wrong, WRONG_COLOR, 0.85), (ignore, IGNORE_COLOR, 0.75))
    for sel, colour, a in groups:
        out[sel] = (1 - a) * gray[sel] + a * np.asarray(colour, np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def label_overlay(image: np.ndarray, labels: np.ndarray, classes: ClassSpec, opacity: float = 0.6) -> np.ndarray:
    """Class colours over the image (``opacity`` 0..1); ignore pixels are darkened towards :data:`IGNORE_COLOR`.

    Returns uint8 (H, W, 3) RGB. Raises ValueError when sizes differ.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {labels.shape} differ in size")
    img = image.astype(np.float32)
    colour = classes.lut(IGNORE_COLOR)[labels].astype(np.float32)
    a = np.where(labels == IGNORE_INDEX, 0.75, opacity)[..., None].astype(np.float32)
    return np.clip((1 - a) * img + a * colour + 0.5, 0, 255).astype(np.uint8)


def _text_size(text: str, scale: float, thick: int) -> tuple[int, int, int]:
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thick)
    return w, h, base


def _put(canvas: np.ndarray, text: str, x: int, y: int, scale: float, colour=_FG, thick: int = 1) -> None:
    """Draw ``text`` with its baseline at ``y`` (canvas is RGB; colour is RGB)."""
    cv2.putText(canvas, text, (int(x), int(y)), _FONT, scale, tuple(int(c) for c in colour), thick, cv2.LINE_AA)


def _fit(text: str, max_w: int, scale: float, thick: int = 1) -> str:
    if _text_size(text, scale, thick)[0] <= max_w:
        return text
    while len(text) > 1 and _text_size(text + "..", scale, thick)[0] > max_w:
        text = text[:-1]
    return text + ".."


def _header(tile: np.ndarray, title: str, height: int, scale: float) -> np.ndarray:
    bar = np.full((height, tile.shape[1], 3), 235, np.uint8)
    t = _fit(title, tile.shape[1] - 8, scale)
    tw, th, _ = _text_size(t, scale, 1)
    _put(bar, t, (tile.shape[1] - tw) // 2, (height + th) // 2, scale)
    return np.concatenate([bar, tile], 0)


def _legend(width: int, entries: list[tuple[tuple[int, int, int], str]], scale: float) -> np.ndarray:
    """Rows of colour swatch + name, wrapped to ``width``."""
    _, th, _ = _text_size("Ag", scale, 1)
    sw, pad, row_h = th + 4, 6, th + 12
    rows, x, y = [[]], pad, 0
    for colour, name in entries:
        w = sw + 4 + _text_size(name, scale, 1)[0] + 14
        if x + w > width and rows[-1]:
            rows.append([])
            x = pad
        rows[-1].append((x, colour, name))
        x += w
    canvas = np.full((row_h * len(rows) + 4, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = r * row_h + 4
        for x, colour, name in row:
            cv2.rectangle(canvas, (x, y + 2), (x + sw, y + 2 + sw - 2), tuple(int(c) for c in colour), -1)
            cv2.rectangle(canvas, (x, y + 2), (x + sw, y + 2 + sw - 2), (120, 120, 120), 1)
            _put(canvas, name, x + sw + 4, y + sw - 1, scale)
    return canvas


def comparison_panel(
    image: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    classes: ClassSpec,
    title: str | None = None,
    min_tile_width: int = 240,
    max_tile_width: int = 640,
) -> np.ndarray:
    """One evaluation picture: image | ground truth | prediction | error map, headed and with legends.

    Tiles are resized (nearest neighbour for labels, area/linear for the image) so each is between
    ``min_tile_width`` and ``max_tile_width`` pixels wide. Below the tiles: a legend of the classes that
    occur in the target or prediction, and the error-map key (correct / wrong / ignore).

    Args:
        image: uint8 (H, W, 3) RGB.
        target: uint8 (H, W) ground truth (ignore = :data:`IGNORE_INDEX`).
        pred: integer (H, W) prediction, ids ``0..K-1``.
        classes: names and colours.
        title: line above the tiles (e.g. file name and per-image scores).

    Returns:
        uint8 RGB panel, about (H·s + 90, 4·W·s + 3·gap, 3) with ``s`` the tile scale.

    Raises:
        ValueError: sizes differ.
    """
    h, w = target.shape
    if image.shape[:2] != (h, w) or pred.shape != (h, w):
        raise ValueError(f"image {image.shape[:2]}, target {target.shape} and prediction {pred.shape} differ in size")
    pred = pred.astype(np.uint8)
    scale = 1.0
    if w < min_tile_width:
        scale = math.ceil(min_tile_width / w)
    elif w > max_tile_width:
        scale = max_tile_width / w
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def rs(a: np.ndarray, nearest: bool) -> np.ndarray:
        if size == (w, h):
            return a
        interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return cv2.resize(a, size, interpolation=interp)

    img = rs(image, nearest=scale > 1)
    t, p = rs(target, True), rs(pred, True)
    valid = target != IGNORE_INDEX
    wrong_pct = 100.0 * float((pred[valid] != target[valid]).mean()) if valid.any() else float("nan")
    font = 0.5
    hdr = 26
    tiles = [
        _header(img, "image", hdr, font),
        _header(label_overlay(img, t, classes), "ground truth", hdr, font),
        _header(label_overlay(img, p, classes), "prediction", hdr, font),
        _header(error_map(img, t, p), "errors" + ("" if math.isnan(wrong_pct) else f" ({wrong_pct:.1f}% wrong)"),
                hdr, font),
    ]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2], gap, tiles[3]], 1)
    present = sorted(set(np.unique(target).tolist()) | set(np.unique(pred).tolist()) - {IGNORE_INDEX})
    entries = [(classes.colors[c], classes.names[c]) for c in present if c < classes.num_classes]
    entries += [(IGNORE_COLOR, "ignore"), (CORRECT_COLOR, "correct"), (WRONG_COLOR, "wrong")]
    parts = [row, _legend(row.shape[1], entries, 0.45)]
    if title:
        bar = np.full((28, row.shape[1], 3), 255, np.uint8)
        _put(bar, _fit(title, row.shape[1] - 12, 0.55), 6, 20, 0.55)
        parts.insert(0, bar)
    return np.concatenate(parts, 0)


def _blues(v: np.ndarray) -> np.ndarray:
    """0..1 → RGB from near-white to dark blue (the sequential 'Blues' ramp, linearly interpolated)."""
    stops = np.array([[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]], np.float32)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    f = (x - i)[..., None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


def _compact(n: int) -> str:
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{suf}"
    return str(int(n))


def confusion_matrix_image(mat: np.ndarray, names: list[str] | tuple[str, ...], title: str | None = None) -> np.ndarray:
    """Row-normalised confusion matrix as a picture.

    Cell ``(t, p)`` shows ``M[t, p] / Σ_j M[t, j]`` (the fraction of class ``t``'s pixels predicted as ``p``;
    the diagonal is per-class recall) as a number and a white→blue shade. Rows: true class (names on the
    left); columns: predicted class (names above, vertical); the right column gives each row's pixel count.
    Rows without pixels are grey with "-"; exact zeros show "0", non-zero values under 0.005 "<.01". Values
    are written when cells are at least 26 px.

    Args:
        mat: integer (K, K) counts ``M[true, pred]`` (:class:`segstudio.metrics.ConfusionMatrix` ``.mat``).
        names: K class names.
        title: heading (default describes the normalisation).

    Returns:
        uint8 RGB image.

    Raises:
        ValueError: ``mat`` is not square or does not match ``names``.
    """
    mat = np.asarray(mat, dtype=np.float64)
    k = len(names)
    if mat.shape != (k, k):
        raise ValueError(f"confusion matrix must be ({k}, {k}) for {k} names, got {mat.shape}")
    rows = mat.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = mat / rows[:, None]
    cell = int(np.clip(560 // max(k, 1), 14, 56))
    font = 0.45
    label_w = max(_text_size(n, font, 1)[0] for n in names) + 14
    _, th, _ = _text_size("Ag", font, 1)
    top_h = label_w  # column names are drawn vertically
    support_w = max(_text_size(t, font, 1)[0] for t in ["pixels"] + [_compact(int(r)) for r in rows]) + 16
    title_h, axis_h = 30, 22
    width = label_w + k * cell + support_w + 10
    title = title or f"Confusion matrix, rows normalised (recall); {_compact(int(rows.sum()))} labelled pixels"
    width = max(width, _text_size(title, 0.55, 1)[0] + 20)
    height = title_h + axis_h + top_h + k * cell + 10
    canvas = np.full((height, width, 3), 255, np.uint8)
    x0, y0 = label_w, title_h + axis_h + top_h
    _put(canvas, _fit(title, width - 12, 0.55), 6, 20, 0.55)
    _put(canvas, "true class (rows) \\ predicted class (columns)", 6, title_h + 15, font, (90, 90, 90))
    for i in range(k):
        y = y0 + i * cell
        name = _fit(names[i], label_w - 12, font)
        _put(canvas, name, label_w - 8 - _text_size(name, font, 1)[0], y + (cell + th) // 2, font)
        _put(canvas, _compact(int(rows[i])), x0 + k * cell + 8, y + (cell + th) // 2, font, (90, 90, 90))
        for j in range(k):
            x = x0 + j * cell
            v = norm[i, j]
            colour = (225, 225, 225) if np.isnan(v) else tuple(int(c) for c in _blues(np.array(v)))
            cv2.rectangle(canvas, (x, y), (x + cell - 1, y + cell - 1), colour, -1)
            if cell >= 26:
                if np.isnan(v) or mat[i, j] == 0:
                    txt = "-" if np.isnan(v) else "0"
                else:
                    txt = "<.01" if v < 0.005 else f"{v:.2f}".lstrip("0") if v < 0.995 else "1"
                tw = _text_size(txt, 0.4, 1)[0]
                fg = (255, 255, 255) if (not np.isnan(v) and v > 0.55) else (40, 40, 40)
                _put(canvas, txt, x + (cell - tw) // 2, y + (cell + th) // 2, 0.4, fg)
        # outline the diagonal cell so recall is easy to find
        cv2.rectangle(canvas, (x0 + i * cell, y), (x0 + (i + 1) * cell - 1, y + cell - 1), (60, 60, 60), 1)
    _put(canvas, "pixels", x0 + k * cell + 8, y0 - 8, font, (90, 90, 90))
    # vertical column names: draw horizontally on a strip, rotate 90° counter-clockwise
    strip = np.full((cell * k, top_h, 3), 255, np.uint8)
    for j in range(k):
        name = _fit(names[j], top_h - 12, font)
        _put(strip, name, 6, j * cell + (cell + th) // 2, font)
    rotated = np.ascontiguousarray(np.rot90(strip))  # (top_h, cell*k): text reads bottom-to-top
    canvas[y0 - top_h : y0, x0 : x0 + k * cell] = rotated
    return canvas


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Atomically write a uint8 (H, W, 3) RGB array as PNG.

    Raises:
        ValueError: not uint8 (H, W, 3). OSError: cannot write (the old file is kept).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise OSError(f"{path}: cannot encode PNG")
    return atomic_write_bytes(path, buf.tobytes())
