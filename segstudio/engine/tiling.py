"""Sliding-window tiling for the :class:`~segstudio.engine.predictor.Predictor`: where the tiles of a large image
start (:func:`tile_starts`, aligned to the network's stride) and how overlapping tiles are blended
(:func:`tile_weight_map`). Pure functions of sizes (torch tensors out, no model).
"""

from __future__ import annotations

import torch

TILE_WEIGHTS = ("gaussian", "constant")
"""Blending weights for overlapping sliding-window tiles."""


def tile_starts(size: int, tile: int, overlap: float, align: int = 1) -> list[int]:
    """Start offsets, multiples of ``align``, of tiles of length ``tile`` covering ``[0, size)``.

    Neighbouring tiles share at least ``overlap`` (a fraction of ``tile``): the stride is
    ``tile * (1 - overlap)`` rounded down to a multiple of ``align`` (and at most ``tile - align``). The last
    tile starts at the first multiple of ``align`` from which a whole tile reaches ``size``; it is clipped
    to the image, so it can be up to ``align - 1`` pixels shorter. Aligning starts to the network's total
    stride keeps every tile on the same feature grid as the whole image (CNNs with stride s are only
    equivariant to shifts by multiples of s), which is what makes tiled and whole-image predictions agree.
    The overlap follows MONAI's ``sliding_window_inference`` (default 0.25) and nnU-Net (0.5).
    ``tile >= size`` → ``[0]``.

    Raises:
        ValueError: ``tile < 2 * align`` or overlap outside ``[0, 1)``.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if tile >= size:
        return [0]
    if tile < 2 * align:
        raise ValueError(f"tile ({tile} px) must be at least twice the alignment ({align} px)")
    stride = (int(tile * (1.0 - overlap)) // align) * align
    stride = max(align, min(stride, ((tile - align) // align) * align))
    starts = list(range(0, size - tile, stride))
    last = -(-(size - tile) // align) * align
    if not starts or last > starts[-1]:
        starts.append(last)
    return starts


def tile_weight_map(h: int, w: int, mode: str = "gaussian", sigma_scale: float = 0.125) -> torch.Tensor:
    """Blending weights float32 (h, w) for one tile, max 1, all > 0.

    ``"gaussian"``: a separable Gaussian centred on the tile with sigma = ``sigma_scale`` × side (nnU-Net,
    Isensee et al., Nature Methods 2021, uses 1/8; MONAI ``sliding_window_inference(mode="gaussian")``
    likewise), floored at 1e-3 so border pixels seen by one tile only still count. Centre pixels, which
    saw the most context, dominate where tiles overlap, which hides tile seams. ``"constant"``: plain average.

    Raises:
        ValueError: unknown mode.
    """
    if mode == "constant":
        return torch.ones(h, w)
    if mode != "gaussian":
        raise ValueError(f"tile weights must be one of {TILE_WEIGHTS}, got {mode!r}")

    def g(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2.0
        s = max(sigma_scale * n, 1e-6)
        return torch.exp(-0.5 * (x / s) ** 2)

    m = g(h)[:, None] * g(w)[None, :]
    return (m / m.max()).clamp_(min=1e-3)
