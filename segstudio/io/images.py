"""Reading images for display and inference."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""File extensions treated as images when listing a folder (case-insensitive)."""

MAX_PIXELS = 20000 * 20000
"""Largest image (pixels) we agree to decode."""


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Min-max scale any numeric array to uint8 0..255 over its finite values; NaN and -inf map to 0, +inf to 255."""
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return np.zeros(arr.shape, dtype=np.uint8)
    lo, hi = arr[finite].min(), arr[finite].max()
    scaled = (arr - lo) / (hi - lo) * 255.0 + 0.5 if hi > lo else np.where(finite, 0.0, arr)
    return np.clip(np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0), 0, 255).astype(np.uint8)


def _gray_or_rgb(arr: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from a (H, W) or (H, W, C) array of any numeric dtype (C = 1, 2: gray[+alpha]; 3, 4: RGB[A])."""
    arr = _to_uint8(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    arr = arr[..., :3] if arr.shape[2] >= 3 else arr[..., :1].repeat(3, axis=2)
    return np.ascontiguousarray(arr)


def _read_tiff_fallback(path: Path) -> np.ndarray | None:
    """Read a TIFF Pillow cannot (float RGB, 32-bit, planar...) with tifffile; ``None`` if tifffile cannot either.

    The size is checked from the first page's tags before any pixel data is read.
    """
    import tifffile

    try:
        tf = tifffile.TiffFile(path)
    except Exception:
        return None
    with tf:
        page = tf.pages[0]
        axes = getattr(page, "axes", "")
        shape = dict(zip(axes, page.shape))
        h, w = shape.get("Y", 0), shape.get("X", 0)
        if h * w > MAX_PIXELS:
            raise ImageReadError(f"{path}: image is {w}x{h}, larger than the {MAX_PIXELS} pixel limit")
        if h < 1 or w < 1 or not set(axes) <= {"Y", "X", "S"}:
            raise ImageReadError(f"{path}: unsupported TIFF layout (axes {axes!r}, shape {page.shape})")
        arr = page.asarray()
        if axes.startswith("S"):
            arr = np.moveaxis(arr, 0, -1)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ImageReadError(f"{path}: unsupported TIFF sample type {arr.dtype}")
        return _gray_or_rgb(arr.astype(np.float32) if arr.dtype == bool else arr)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3).

    EXIF orientation is applied (a broken EXIF block is ignored); grayscale, palette, RGBA (alpha
    dropped) and 16-bit / float images are converted (high bit depths are min-max scaled to 0..255).
    The size is checked from the header before any pixel is decoded, so a 20000×20000 header costs
    nothing; Pillow's decompression-bomb limit applies on top of :data:`MAX_PIXELS`.

    Raises:
        ImageReadError: when the file is missing, empty, truncated, not an image, too large, or anything
            else goes wrong while decoding (the message names the file and the reason; never another type).
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device would block the reader forever
            raise ImageReadError(f"{path}: not a regular file")
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageReadError(f"{path}: image is {im.width}x{im.height}, larger than the {MAX_PIXELS} pixel limit")
            if im.width < 1 or im.height < 1:
                raise ImageReadError(f"{path}: image has no pixels ({im.width}x{im.height})")
            im.load()  # decode now: truncation / corruption errors surface here, not inside exif_transpose
            try:
                im = ImageOps.exif_transpose(im)
            except Exception as exc:  # a malformed EXIF block must not make the pixels unreadable
                log.warning("%s: EXIF orientation ignored (%s)", path, exc)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return _gray_or_rgb(np.asarray(im))
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"{path}: is a folder, not an image") from exc
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: image too large to open safely ({exc})") from exc
    except MemoryError as exc:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from exc
    except Exception as exc:  # Pillow raises many types on hostile files (OSError, SyntaxError, struct.error...)
        if path.suffix.lower() in (".tif", ".tiff"):
            try:
                arr = _read_tiff_fallback(path)
            except ImageReadError:
                raise
            except MemoryError:
                raise ImageReadError(f"{path}: not enough memory to decode this image") from exc
            except Exception as exc2:
                raise ImageReadError(f"{path}: cannot read TIFF ({type(exc2).__name__}: {exc2})") from exc2
            if arr is not None:
                return arr
        if path.is_file() and path.stat().st_size == 0:
            raise ImageReadError(f"{path}: the file is empty (0 bytes)") from exc
        raise ImageReadError(f"{path}: cannot read image ({type(exc).__name__}: {exc})") from exc


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name.

    Raises:
        NotADirectoryError: when ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
