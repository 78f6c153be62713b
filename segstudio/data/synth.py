"""Synthetic-shapes dataset: seeded, reproducible, learnable in seconds (for tests, demos and benchmarks).

Each image shows 1–``max_shapes`` filled shapes (circle, rotated rectangle, triangle, ring) drawn in
random order over a textured background, so later shapes occlude earlier ones and a ring's hole shows
whatever lies beneath. Appearance: every shape class has its own base colour (:data:`SYNTH_APPEARANCE`),
jittered per shape by up to ±``color_jitter`` per channel and shaded by a linear ramp; the background
is smooth, muted low-frequency noise (:func:`_background`); finally Gaussian pixel
noise (σ = ``noise`` grey levels) covers everything. Class colour separates the classes, texture and
noise keep it from being trivial.

The mask holds the class id of the visible shape (0 = background) and, when ``ignore_border`` > 0, marks a
band of that many pixels along the inside of every visible shape's boundary as
:data:`~segstudio.core.labels.IGNORE_INDEX` (as PASCAL VOC's void outlines).

Sample ``i`` of seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``: it does not depend on ``n``,
so a larger dataset extends a smaller one with the same seed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.labels import IGNORE_INDEX, ClassSpec
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.labels import save_classes, write_index_png
from segstudio.io.layout import CLASSES_FILENAME

log = logging.getLogger(__name__)

SYNTH_CLASSES = ClassSpec(
    ("background", "circle", "rectangle", "triangle", "ring"),
    ((48, 48, 48), (230, 25, 75), (0, 130, 200), (255, 225, 25), (60, 180, 75)),
)
"""Classes of the synthetic dataset (ids 0..4) with their display colours."""

SYNTH_APPEARANCE: dict[int, tuple[int, int, int]] = {
    1: (200, 60, 50),
    2: (50, 90, 200),
    3: (215, 190, 40),
    4: (60, 170, 80),
}
"""Base RGB colour in which each shape class is *drawn* in the images (class id → colour)."""

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
"""Fractions of samples in train / val / test (contiguous ranges of sample indices)."""


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Muted texture: a coarse grey-level grid (60..180) plus a weaker colour grid (±25), bicubically upsampled."""
    gh, gw = 4 + int(rng.integers(0, 6)), 4 + int(rng.integers(0, 6))
    grid = rng.uniform(60, 180, size=(gh, gw, 1)) + rng.uniform(-25, 25, size=(gh, gw, 3))
    return cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _shape_mask(rng: np.random.Generator, kind: int, h: int, w: int) -> np.ndarray:
    s = min(h, w)
    cx, cy = float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h)
    r = float(rng.uniform(0.1, 0.25) * s)
    m = np.zeros((h, w), np.uint8)
    if kind == 1:
        cv2.circle(m, (round(cx), round(cy)), max(2, round(r)), 1, -1)
    elif kind == 2:
        sides = (2 * r * float(rng.uniform(0.6, 1.4)), 2 * r * float(rng.uniform(0.6, 1.4)))
        box = ((cx, cy), sides, float(rng.uniform(0, 90)))
        cv2.fillPoly(m, [np.round(cv2.boxPoints(box)).astype(np.int32)], 1)
    elif kind == 3:
        a0 = float(rng.uniform(0, 2 * np.pi))
        angles = a0 + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.25, 0.25, 3)
        pts = np.stack([cx + 1.3 * r * np.cos(angles), cy + 1.3 * r * np.sin(angles)], 1)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    else:
        outer = max(4, round(r * 1.1))
        cv2.circle(m, (round(cx), round(cy)), outer, 1, -1)
        cv2.circle(m, (round(cx), round(cy)), max(1, round(outer * float(rng.uniform(0.45, 0.6)))), 0, -1)
    return m.astype(bool)


def synth_sample(
    seed: int,
    index: int,
    size: tuple[int, int] = (128, 128),
    max_shapes: int = 4,
    ignore_border: int = 1,
    noise: float = 8.0,
    color_jitter: int = 25,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw sample ``index`` of dataset ``seed``.

    Args:
        seed, index: select the random stream ``default_rng([seed, index])``; both ``>= 0``.
        size: ``(H, W)`` in pixels, each ``>= 16``.
        max_shapes: at most this many shapes (at least 1).
        ignore_border: width in pixels of the ignore band inside each visible shape's boundary (0: none).
        noise: σ of the Gaussian pixel noise, grey levels.
        color_jitter: per-shape, per-channel uniform colour offset range, grey levels.

    Returns:
        ``(image, mask)``: uint8 (H, W, 3) RGB and uint8 (H, W) with ids of :data:`SYNTH_CLASSES` or
        :data:`~segstudio.core.labels.IGNORE_INDEX`.

    Raises:
        ValueError: a negative seed/index, a size under 16, ``max_shapes < 1`` or ``ignore_border < 0``.
    """
    h, w = size
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    if h < 16 or w < 16:
        raise ValueError(f"synthetic images must be at least 16x16, got {h}x{w}")
    if max_shapes < 1 or ignore_border < 0:
        raise ValueError(f"need max_shapes >= 1 and ignore_border >= 0, got {max_shapes}, {ignore_border}")
    rng = np.random.default_rng([seed, index])
    image = _background(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        kind = int(rng.integers(1, SYNTH_CLASSES.num_classes))
        m = _shape_mask(rng, kind, h, w)
        colour = np.asarray(SYNTH_APPEARANCE[kind], np.float32) + rng.uniform(-color_jitter, color_jitter, 3)
        gx, gy = rng.uniform(-0.3, 0.3, 2) * 40.0 / max(h, w)
        shade = (gx * (xx - w / 2) + gy * (yy - h / 2))[..., None]
        image = np.where(m[..., None], colour + shade, image)
        mask[m] = kind
    image = image + rng.normal(0.0, noise, image.shape)
    if ignore_border:
        kernel = np.ones((3, 3), np.uint8)
        band = np.zeros((h, w), bool)
        for c in range(1, SYNTH_CLASSES.num_classes):
            region = (mask == c).astype(np.uint8)
            if region.any():
                band |= region.astype(bool) & ~cv2.erode(region, kernel, iterations=ignore_border).astype(bool)
        mask[band] = IGNORE_INDEX
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask


def split_counts(n: int) -> dict[str, int]:
    """Samples per split for ``n`` images (:data:`SPLIT_FRACTIONS`; val and test get at least 1 when n >= 3)."""
    n_val = max(1, round(n * SPLIT_FRACTIONS[1])) if n >= 3 else 0
    n_test = max(1, round(n * SPLIT_FRACTIONS[2])) if n >= 3 else 0
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def generate_synth_dataset(
    out_dir: str | Path,
    n: int = 200,
    size: tuple[int, int] | int = (128, 128),
    seed: int = 0,
    ignore_border: int = 1,
    max_shapes: int = 4,
    overwrite: bool = False,
) -> dict:
    """Write a synthetic dataset in the dataset layout SegStudio trains on.

    Writes ``images/synth_0000.png`` …, ``masks/synth_0000.png`` … (uint8 ids, 255 = ignore),
    ``train.txt`` / ``val.txt`` / ``test.txt`` (contiguous index ranges, :func:`split_counts`) and
    ``classes.json`` (:data:`SYNTH_CLASSES`), every file atomically. The same arguments write
    byte-identical files.

    Args:
        out_dir: dataset folder (created).
        n: number of images, ``>= 1``.
        size: ``(H, W)`` or one number for square images.
        seed, ignore_border, max_shapes: see :func:`synth_sample`.
        overwrite: allow writing into a folder that already holds ``images/``, ``masks/`` or ``classes.json``
            (same-named files are replaced, others left alone).

    Returns:
        ``{"n", "size": (H, W), "classes": names, "splits": {split: count}, "path"}``.

    Raises:
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is False.
        ValueError: ``n < 1`` or invalid sample arguments.
    """
    out = Path(out_dir)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    synth_sample(seed, 0, size, max_shapes, ignore_border)  # validate the arguments before touching the disk
    existing = [p for p in (out / "images", out / "masks", out / CLASSES_FILENAME, out / "train.txt") if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds a dataset ({existing[0].name}); pass --overwrite or choose another folder"
        )
    stems = [f"synth_{i:04d}" for i in range(n)]
    for i, stem in enumerate(stems):
        image, mask = synth_sample(seed, i, size, max_shapes, ignore_border)
        ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:  # pragma: no cover - cv2 always encodes uint8 RGB
            raise OSError(f"cannot encode {stem}.png")
        atomic_write_bytes(out / "images" / f"{stem}.png", png.tobytes())
        write_index_png(out / "masks" / f"{stem}.png", mask)
    counts = split_counts(n)
    start = 0
    for split in ("train", "val", "test"):
        part = stems[start : start + counts[split]]
        start += counts[split]
        atomic_write_bytes(out / f"{split}.txt", "".join(f"{s}\n" for s in part).encode("utf-8"))
    save_classes(out / CLASSES_FILENAME, SYNTH_CLASSES)
    atomic_write_bytes(
        out / "SOURCE.md",
        (f"Synthetic shapes written by `segstudio synth` (segstudio.data.synth): n={n}, size={size[0]}x{size[1]}, "
         f"seed={seed}, ignore_border={ignore_border}, max_shapes={max_shapes}.\n"
         f"Settings: {json.dumps({'n': n, 'size': list(size), 'seed': seed})}\n").encode("utf-8"),
    )
    log.info("wrote %d synthetic images to %s", n, out)
    return {"n": n, "size": size, "classes": list(SYNTH_CLASSES.names), "splits": counts, "path": out}
