"""Reading images for display and inference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""File extensions treated as images when listing a folder (case-insensitive)."""

MAX_PIXELS = 20000 * 20000
"""Largest image (pixels) we agree to decode."""


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    arr = arr.astype(np.float64)
    lo, hi = np.nanmin(arr), np.nanmax(arr)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip((arr - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3).

    EXIF orientation is applied; grayscale, palette, RGBA (alpha dropped) and 16-bit / float images
    are converted (high bit depths are min-max scaled to 0..255).

    Raises:
        ImageReadError: when the file is missing, empty, truncated, not an image, or too large.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageReadError(f"{path}: image is {im.width}x{im.height}, larger than the {MAX_PIXELS} pixel limit")
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = _to_uint8(np.asarray(im))
                return np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
            return np.array(im.convert("RGB"), dtype=np.uint8)
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{path}: cannot read image ({exc})") from exc


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
