"""One entry point for post-processing a prediction, shared by the CLI (``segstudio predict --crf --morph``)
and the GUI preview: :func:`refine` (probabilities → label map) and :func:`apply_morphology` (label map →
label map), configured by :class:`~segstudio.postprocess.crf.CRFParams` and :class:`MorphParams`.

Both functions are pure: they return new arrays and never modify their inputs, so a caller can keep the
previous label map as its single undo step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from segstudio.core.labels import IGNORE_INDEX
from segstudio.postprocess.crf import CRFParams, check_image, check_probs, dense_crf
from segstudio.postprocess.morphology import (
    SHAPES,
    check_labels,
    closing,
    fill_holes,
    opening,
    remove_small_components,
)

__all__ = ["MorphParams", "refine", "apply_morphology", "parse_crf_params", "parse_morph_spec"]


@dataclass(frozen=True)
class MorphParams:
    """Which morphology steps to run, and their sizes; a value of 0 skips that step.

    Steps run in this order (each on the previous result): small-component removal, opening, closing, hole
    filling (see :mod:`segstudio.postprocess.morphology`). Specks go first because a speck inside a region
    would otherwise make that region's opening eat the pixels around it.

    Attributes:
        open: opening structuring-element diameter in pixels (0 or 1 = off); removes spurs/specks thinner than it.
        close: closing structuring-element diameter in pixels (0 or 1 = off); fills gaps narrower than it.
        min_area: components smaller than this many pixels are reassigned to the surrounding class (0 = off).
        fill_holes: holes enclosed by one class of at most this many pixels are filled with it (0 = off).
        shape: structuring-element shape, ``ellipse`` (default), ``rect`` or ``cross``.
        connectivity: 4 or 8 (default), for components and hole enclosures.

    Raises:
        ValueError: negative or non-integer sizes, unknown shape, connectivity not 4/8.
    """

    open: int = 0
    close: int = 0
    min_area: int = 0
    fill_holes: int = 0
    shape: str = "ellipse"
    connectivity: int = 8

    def __post_init__(self) -> None:
        for name in ("open", "close", "min_area", "fill_holes"):
            v = getattr(self, name)
            try:
                ok = not isinstance(v, (bool, str)) and int(v) == v and v >= 0
            except (TypeError, ValueError, OverflowError):
                ok = False
            if not ok:
                raise ValueError(f"MorphParams.{name} must be an integer >= 0 (pixels; 0 = off), got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.shape not in SHAPES:
            raise ValueError(f"MorphParams.shape must be one of {sorted(SHAPES)}, got {self.shape!r}")
        if self.connectivity not in (4, 8):
            raise ValueError(f"MorphParams.connectivity must be 4 or 8, got {self.connectivity!r}")

    @property
    def active(self) -> bool:
        """True when at least one step would run."""
        return self.open > 1 or self.close > 1 or self.min_area > 1 or self.fill_holes > 0

    def as_dict(self) -> dict[str, object]:
        """The parameters as a plain dict (JSON-serialisable)."""
        return asdict(self)


def apply_morphology(
    labels: np.ndarray,
    params: MorphParams,
    *,
    num_classes: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Run the morphology steps of ``params`` on a label map.

    Args:
        labels: uint8 label map (H, W), class ids ``0..K-1`` and ``ignore_index`` (left untouched).
        params: steps and sizes.
        num_classes: if given, every non-ignore value must be ``< num_classes``.
        ignore_index: the unlabelled value (default :data:`~segstudio.core.labels.IGNORE_INDEX`).

    Returns:
        New uint8 label map (H, W); ``labels`` is not modified.

    Raises:
        ValueError: bad label map or class ids (:func:`~segstudio.postprocess.morphology.check_labels`).
    """
    check_labels(labels, num_classes, ignore_index)
    out = labels.copy()
    kw = {"shape": params.shape, "ignore_index": ignore_index}
    if params.min_area > 1:
        out = remove_small_components(out, params.min_area, connectivity=params.connectivity, ignore_index=ignore_index)
    if params.open > 1:
        out = opening(out, params.open, **kw)
    if params.close > 1:
        out = closing(out, params.close, **kw)
    if params.fill_holes > 0:
        out = fill_holes(out, params.fill_holes, connectivity=params.connectivity, ignore_index=ignore_index)
    return out


def refine(
    image: np.ndarray,
    probs: np.ndarray,
    crf: CRFParams | None = None,
    morph: MorphParams | None = None,
    *,
    num_classes: int | None = None,
) -> np.ndarray:
    """Post-process one prediction: optional dense CRF, argmax, optional morphology → label map.

    This is the function the CLI (``segstudio predict --crf --morph SPEC``) and the GUI preview call.

    Args:
        image: uint8 RGB (H, W, 3), the image the probabilities belong to (used by the CRF's bilateral term;
            checked even without CRF so that a mismatched pair is caught early).
        probs: float (K, H, W) softmax probabilities (e.g. :meth:`segstudio.engine.Predictor.predict_proba`).
        crf: CRF parameters, or ``None`` for no CRF (``CRFParams()`` = DeepLab v2 defaults).
        morph: morphology steps, or ``None`` for none.
        num_classes: if given, ``K`` must equal it.

    Returns:
        Label map uint8 (H, W) with class ids ``0..K-1`` (never ignore). Inputs are not modified.

    Raises:
        ValueError: bad image or probabilities (shape, dtype, size mismatch, not summing to 1, K mismatch).
    """
    if crf is not None:
        probs = dense_crf(image, probs, crf, num_classes=num_classes)  # checks both inputs
    else:
        check_probs(probs, num_classes)
        check_image(image, probs.shape[1:])
    if probs.shape[0] > IGNORE_INDEX:
        raise ValueError(f"a uint8 label map holds at most {IGNORE_INDEX} classes, got K={probs.shape[0]}")
    labels = probs.argmax(axis=0).astype(np.uint8)
    if morph is not None and morph.active:
        labels = apply_morphology(labels, morph)
    return labels


def _parse_pairs(text: str, what: str, names: tuple[str, ...], aliases: dict[str, str] | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        key = (aliases or {}).get(key, key)
        if not sep or not value.strip():
            raise ValueError(f"{what}: expected KEY=VALUE items separated by commas, got {item!r}")
        if key not in names:
            raise ValueError(f"{what}: unknown key {key!r}; known: {', '.join(names)}")
        out[key] = value.strip()
    return out


def parse_crf_params(text: str) -> CRFParams:
    """Parse ``"bi_w=5,bi_xy_std=50,iterations=5"`` into :class:`CRFParams` (unset keys keep their defaults).

    Keys are the :class:`CRFParams` field names (``-`` may stand for ``_``); an empty string gives the defaults.

    Raises:
        ValueError: malformed item, unknown key, a value that is not a number, or out of range.
    """
    types = {f.name: f.type for f in fields(CRFParams)}
    kw: dict[str, object] = {}
    for key, value in _parse_pairs(text, "CRF parameters", CRFParams.names()).items():
        try:
            kw[key] = int(value) if types[key] in (int, "int") else float(value)
        except ValueError:
            raise ValueError(f"CRF parameters: {key} needs a number, got {value!r}") from None
    return CRFParams(**kw)


_MORPH_ALIASES = {"opening": "open", "closing": "close", "holes": "fill_holes", "min_size": "min_area"}


def parse_morph_spec(text: str) -> MorphParams:
    """Parse ``"open=3,close=3,min-area=64,fill-holes=256"`` into :class:`MorphParams`.

    Keys: ``open``, ``close``, ``min-area``, ``fill-holes`` (pixels), ``shape`` (ellipse/rect/cross),
    ``connectivity`` (4/8); ``-`` and ``_`` are interchangeable. Unset keys are off (0) / default.

    Raises:
        ValueError: malformed item, unknown key, non-integer size, or a value out of range.
    """
    names = tuple(f.name for f in fields(MorphParams))
    kw: dict[str, object] = {}
    for key, value in _parse_pairs(text, "morphology spec", names, _MORPH_ALIASES).items():
        if key == "shape":
            kw[key] = value
            continue
        try:
            kw[key] = int(value)
        except ValueError:
            raise ValueError(f"morphology spec: {key} needs an integer number of pixels, got {value!r}") from None
    if not kw:
        raise ValueError("morphology spec is empty; e.g. open=3,close=3,min-area=64,fill-holes=256")
    return MorphParams(**kw)
