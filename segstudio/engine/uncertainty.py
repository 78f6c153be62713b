"""Per-pixel uncertainty of a segmentation model and ranking of images for active learning.

The measures are the uncertainty-sampling query strategies of B. Settles, "Active Learning Literature
Survey", Computer Sciences Technical Report 1648, University of Wisconsin–Madison, 2009, Sec. 3.1,
applied per pixel to the softmax probabilities ``p_k`` of the K classes:

- entropy (Settles Eq. 3 / Shannon): ``H = −Σ_k p_k log p_k``, divided by its maximum ``log K`` so that
  0 = certain (one class has all the mass) and 1 = uniform over the K classes;
- margin (Settles Eq. 2, Scheffer et al. 2001): ``1 − (p_(1) − p_(2))`` with ``p_(1) ≥ p_(2)`` the two
  largest probabilities, so 0 = certain and 1 = a tie between the two best classes.

An image's score is the mean of its map (``mean_uncertainty``); :func:`rank_by_uncertainty` sorts images so
that the ones the model is least sure about come first ("correct next").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Hashable

import numpy as np
import torch

METHODS = ("entropy", "margin")

_EPS = 1e-12


def _as_proba(proba) -> np.ndarray:
    """float32 (K, H, W) numpy view of numpy / torch probabilities; checks the shape and K."""
    if isinstance(proba, torch.Tensor):
        proba = proba.detach().float().cpu().numpy()
    proba = np.asarray(proba, dtype=np.float32)
    if proba.ndim != 3:
        raise ValueError(f"probabilities must be (K, H, W), got shape {proba.shape}")
    if proba.shape[0] < 2:
        raise ValueError(f"uncertainty needs at least 2 classes, got K={proba.shape[0]}")
    return proba


def entropy_map(proba) -> np.ndarray:
    """Normalised Shannon entropy per pixel.

    Args:
        proba: softmax probabilities float (K, H, W), numpy or torch, each pixel summing to 1, K ≥ 2.
    Returns:
        float32 (H, W) in [0, 1]: ``−Σ_k p_k log p_k / log K`` (Settles 2009, Sec. 3.1, Eq. 3).
    Raises:
        ValueError: not 3-D, or K < 2.
    """
    p = _as_proba(proba)
    k = p.shape[0]
    h = np.zeros(p.shape[1:], dtype=np.float32)
    tmp = np.empty_like(h)
    for c in range(k):  # one class at a time, in place: memory stays 2×(H, W) even for large images
        pc = p[c]
        np.maximum(pc, _EPS, out=tmp)
        np.log(tmp, out=tmp)
        tmp *= pc
        h -= tmp
    h /= np.float32(np.log(k))
    return np.clip(h, 0.0, 1.0, out=h)


def margin_map(proba) -> np.ndarray:
    """One minus the margin between the two most probable classes per pixel.

    Args:
        proba: softmax probabilities float (K, H, W), numpy or torch, K ≥ 2.
    Returns:
        float32 (H, W) in [0, 1]: ``1 − (p_(1) − p_(2))`` (Settles 2009, Sec. 3.1, Eq. 2).
    Raises:
        ValueError: not 3-D, or K < 2.
    """
    p = _as_proba(proba)
    # Running best / second best over the classes, one (H, W) plane at a time: ~2x faster than a sort or
    # top-k along the class axis (strided) and no (K, H, W) temporary.
    best = p[0].copy()
    second = np.full_like(best, -np.inf)
    tmp = np.empty_like(best)
    for c in range(1, p.shape[0]):
        np.minimum(best, p[c], out=tmp)
        np.maximum(second, tmp, out=second)
        np.maximum(best, p[c], out=best)
    best -= second
    np.subtract(1.0, best, out=best)
    return np.clip(best, 0.0, 1.0, out=best)


def uncertainty_map(proba, method: str = "entropy") -> np.ndarray:
    """:func:`entropy_map` or :func:`margin_map` by name; float32 (H, W) in [0, 1].

    Raises:
        ValueError: unknown ``method`` (the message lists :data:`METHODS`), or bad ``proba``.
    """
    if method == "entropy":
        return entropy_map(proba)
    if method == "margin":
        return margin_map(proba)
    raise ValueError(f"unknown uncertainty method {method!r}; choose one of {', '.join(METHODS)}")


def mean_uncertainty(umap: np.ndarray) -> float:
    """Mean of an (H, W) uncertainty map, a float in [0, 1] (the image's active-learning score).

    Raises:
        ValueError: an empty map.
    """
    umap = np.asarray(umap)
    if umap.size == 0:
        raise ValueError("empty uncertainty map")
    return float(umap.mean(dtype=np.float64))


def rank_by_uncertainty(scores: Mapping[Hashable, float] | Iterable[tuple[Hashable, float]]) -> list[tuple[Hashable, float]]:
    """Sort images most-uncertain first (ties keep their given order).

    Args:
        scores: ``{image: mean uncertainty}`` or ``(image, score)`` pairs; NaN scores go last.
    Returns:
        ``[(image, score), ...]`` with descending score.
    """
    items = list(scores.items() if isinstance(scores, Mapping) else scores)
    return sorted(items, key=lambda kv: (np.isnan(kv[1]), -kv[1] if not np.isnan(kv[1]) else 0.0))
