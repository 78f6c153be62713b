"""Fully connected (dense) CRF refinement of softmax probabilities, through pydensecrf2.

Model (Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials",
NeurIPS 2011, eq. 1-3): the energy of a labelling ``x`` is

    E(x) = sum_i psi_u(x_i) + sum_{i<j} mu(x_i, x_j) k(f_i, f_j)

with the unary ``psi_u(x_i) = -log P(x_i)`` taken from the network's softmax (as in DeepLab, Chen et al.
2015/2018), the Potts compatibility ``mu`` and two Gaussian kernels over pixel positions ``p`` and
colours ``I`` (eq. 3):

    k(f_i, f_j) = w1 exp(-|p_i - p_j|^2 / 2 theta_alpha^2 - |I_i - I_j|^2 / 2 theta_beta^2)   (bilateral / appearance)
                + w2 exp(-|p_i - p_j|^2 / 2 theta_gamma^2)                                  (Gaussian / smoothness)

Mean-field inference (their Algorithm 1, permutohedral-lattice filtering) runs for a fixed number of
iterations and returns the approximate marginals ``Q`` (K, H, W).

The arithmetic is pydensecrf2's (``pydensecrf.densecrf.DenseCRF2D`` and ``pydensecrf.utils.unary_from_softmax``),
called exactly as its README does, so :func:`dense_crf` gives bit-identical results to a direct call; this
module adds input checks with clear errors and named, documented parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["CRFParams", "dense_crf", "check_image", "check_probs"]

_SUM_TOLERANCE = 1e-3
"""How far the per-pixel sum of probabilities may be from 1 (float16 softmax outputs pass; logits do not)."""


@dataclass(frozen=True)
class CRFParams:
    """Parameters of the dense CRF (names as in DeepLab's Caffe ``DenseCRF`` layer and its ``refine`` tool).

    Defaults are the DeepLab v2 (ResNet-101, PASCAL VOC) values released with Chen et al., "DeepLab: Semantic
    Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018
    (arXiv:1606.00915): ``bi_w=4, bi_xy_std=67, bi_rgb_std=3, pos_w=3, pos_xy_std=1, iterations=10``. DeepLab v1
    (Chen et al., ICLR 2015, sec. 4.1) fixes the smoothness kernel at ``w2 = 3`` (our ``pos_w``) and
    cross-validates ``w1``, ``theta_alpha``, ``theta_beta`` on a held-out VOC subset; the v2 release chose the
    values above. They are in pixels / 8-bit colour units of images around 500×375, a size close to CamVid's
    480×360. Krähenbühl & Koltun (2011) used ``w2 = theta_gamma = 3`` and cross-validated the rest as well.

    Attributes:
        iterations: mean-field iterations (Krähenbühl & Koltun, Algorithm 1), ``>= 1``. DeepLab uses 10;
            5 are usually enough to converge.
        pos_w: ``w2``, weight of the Gaussian (smoothness) kernel, ``>= 0``.
        pos_xy_std: ``theta_gamma``, spatial standard deviation of the Gaussian kernel in pixels, ``> 0``.
        bi_w: ``w1``, weight of the bilateral (appearance) kernel, ``>= 0``.
        bi_xy_std: ``theta_alpha``, spatial standard deviation of the bilateral kernel in pixels, ``> 0``.
        bi_rgb_std: ``theta_beta``, colour standard deviation of the bilateral kernel in 0..255 RGB units, ``> 0``.
        clip: probabilities are clipped to ``[clip, 1]`` before ``-log`` (pydensecrf2's default ``1e-5``),
            so a class the network ruled out costs at most ``-log(clip) = 11.5``. In ``(0, 1)``.

    Raises:
        ValueError: a value outside the ranges above (raised at construction).
    """

    iterations: int = 10
    pos_w: float = 3.0
    pos_xy_std: float = 1.0
    bi_w: float = 4.0
    bi_xy_std: float = 67.0
    bi_rgb_std: float = 3.0
    clip: float = 1e-5

    def __post_init__(self) -> None:
        try:
            ok = not isinstance(self.iterations, (bool, str)) and int(self.iterations) == self.iterations >= 1
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(f"CRFParams.iterations must be an integer >= 1, got {self.iterations!r}")
        object.__setattr__(self, "iterations", int(self.iterations))
        for name in ("pos_w", "bi_w", "pos_xy_std", "bi_xy_std", "bi_rgb_std", "clip"):
            v = getattr(self, name)
            if isinstance(v, (bool, str)) or not isinstance(v, (int, float, np.number)):
                raise ValueError(f"CRFParams.{name} must be a number, got {v!r}")
        for name in ("pos_w", "bi_w"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"CRFParams.{name} (a kernel weight) must be finite and >= 0, got {v!r}")
            object.__setattr__(self, name, v)
        for name in ("pos_xy_std", "bi_xy_std", "bi_rgb_std"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise ValueError(f"CRFParams.{name} (a standard deviation) must be finite and > 0, got {v!r}")
            object.__setattr__(self, name, v)
        if not 0 < float(self.clip) < 1:
            raise ValueError(f"CRFParams.clip must be in (0, 1), got {self.clip!r}")
        object.__setattr__(self, "clip", float(self.clip))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The parameter names, in declaration order (for ``--crf-params KEY=VALUE`` parsing and GUI forms)."""
        return tuple(f.name for f in fields(cls))

    def as_dict(self) -> dict[str, float]:
        """The parameters as a plain ``{name: value}`` dict (JSON-serialisable)."""
        return asdict(self)


def check_image(image: np.ndarray, shape: tuple[int, int] | None = None) -> None:
    """Check that ``image`` is a uint8 RGB array (H, W, 3), optionally of spatial size ``shape`` = (H, W).

    Raises:
        ValueError: not a numpy array, wrong dtype or number of dimensions/channels, or size mismatch.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array (H, W, 3) uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB (H, W, 3) with values 0..255, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be RGB (H, W, 3), got shape {image.shape}; convert grey/RGBA images to RGB first")
    if shape is not None and image.shape[:2] != tuple(shape):
        raise ValueError(f"image is {image.shape[0]}x{image.shape[1]} but the probabilities are {shape[0]}x{shape[1]} (H x W)")


def check_probs(probs: np.ndarray, num_classes: int | None = None) -> None:
    """Check that ``probs`` are per-pixel class probabilities, float (K, H, W), summing to 1 over K.

    Args:
        probs: softmax output of one image, floating dtype (K, H, W), values in [0, 1].
        num_classes: if given, ``K`` must equal it (the model's / project's class count).

    Raises:
        ValueError: not a floating (K, H, W) array, K mismatch, non-finite values, values outside [0, 1], or
            sums over K that differ from 1 by more than 1e-3 (e.g. logits passed instead of softmax output).
    """
    if not isinstance(probs, np.ndarray):
        raise ValueError(f"probs must be a numpy array (K, H, W) of softmax probabilities, got {type(probs).__name__}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probs must be floating point softmax probabilities (K, H, W), got dtype {probs.dtype}")
    if probs.ndim != 3 or min(probs.shape) < 1:
        raise ValueError(f"probs must have shape (K, H, W) (one image, classes first), got {probs.shape}")
    if num_classes is not None and probs.shape[0] != num_classes:
        raise ValueError(f"probs have K={probs.shape[0]} classes but {num_classes} were expected (model/project class count)")
    if probs.shape[0] < 2:
        raise ValueError(f"probs need at least 2 classes, got K={probs.shape[0]}")
    lo, hi = float(probs.min()), float(probs.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("probs contain NaN or infinite values")
    if lo < 0 or hi > 1 + _SUM_TOLERANCE:
        raise ValueError(f"probs must be in [0, 1] (softmax output, not logits), got values in [{lo:.3g}, {hi:.3g}]")
    sums = probs.sum(axis=0, dtype=np.float32)
    err = float(np.abs(sums - 1).max())
    if err > _SUM_TOLERANCE:
        raise ValueError(
            f"probs must sum to 1 over the class axis 0 at every pixel (softmax output), max deviation {err:.3g}; "
            "pass softmax(logits, axis=0), classes first"
        )


def dense_crf(
    image: np.ndarray,
    probs: np.ndarray,
    params: CRFParams | None = None,
    *,
    num_classes: int | None = None,
) -> np.ndarray:
    """Refine softmax probabilities with a fully connected CRF (Krähenbühl & Koltun 2011, as used by DeepLab).

    Unary ``-log(clip(P, params.clip, 1))``, a Gaussian pairwise term (``pos_w``, ``pos_xy_std``) and a
    bilateral pairwise term (``bi_w``, ``bi_xy_std``, ``bi_rgb_std``), both with Potts compatibility,
    ``params.iterations`` mean-field steps. Output equals (bit for bit) a direct pydensecrf2 call::

        d = DenseCRF2D(W, H, K); d.setUnaryEnergy(unary_from_softmax(probs, clip=clip))
        d.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
        d.addPairwiseBilateral(sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=image, compat=bi_w)
        Q = d.inference(iterations)

    Args:
        image: uint8 RGB (H, W, 3), the image the probabilities were predicted from.
        probs: float (K, H, W) softmax probabilities (float32 is used as is; other float types are converted).
        params: CRF parameters; ``None`` means :class:`CRFParams` defaults (DeepLab v2).
        num_classes: if given, ``K`` must equal it.

    Returns:
        Approximate marginals ``Q``, float32 (K, H, W), each pixel summing to 1. Argmax over axis 0 gives the
        refined label map. The inputs are not modified.

    Raises:
        ValueError: see :func:`check_image` and :func:`check_probs`.
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    params = CRFParams() if params is None else params
    check_probs(probs, num_classes)
    k, h, w = probs.shape
    check_image(image, (h, w))
    unary = np.ascontiguousarray(unary_from_softmax(probs, clip=params.clip))  # float32 (K, H*W)
    rgb = np.require(image, requirements=("C", "W"))  # pydensecrf2 rejects read-only buffers (e.g. np.asarray(PIL image))
    crf = dcrf.DenseCRF2D(w, h, k)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.pos_xy_std, compat=params.pos_w)
    crf.addPairwiseBilateral(sxy=params.bi_xy_std, srgb=params.bi_rgb_std, rgbim=rgb, compat=params.bi_w)
    q = crf.inference(params.iterations)
    return np.asarray(q, dtype=np.float32).reshape(k, h, w)
