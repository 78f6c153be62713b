"""Post-processing of predicted label maps (no Qt; see the import-linter contracts in pyproject.toml).

Public API (stable; used by ``segstudio predict --crf --morph`` and the GUI preview):

* :func:`refine` ``(image uint8 (H, W, 3), probs float (K, H, W), crf: CRFParams | None, morph: MorphParams | None,
  *, num_classes=None) -> label map uint8 (H, W)``
* :func:`apply_morphology` ``(labels uint8 (H, W), MorphParams, *, num_classes=None, ignore_index=IGNORE_INDEX)
  -> label map uint8 (H, W)``
* :func:`dense_crf` ``(image, probs, CRFParams | None, *, num_classes=None) -> marginals float32 (K, H, W)``
* :class:`CRFParams` (DeepLab v2 defaults), :class:`MorphParams`, :func:`parse_crf_params`, :func:`parse_morph_spec`
* the single morphology steps in :mod:`segstudio.postprocess.morphology`
"""

from segstudio.postprocess.crf import CRFParams, dense_crf
from segstudio.postprocess.morphology import closing, fill_holes, opening, remove_small_components
from segstudio.postprocess.pipeline import MorphParams, apply_morphology, parse_crf_params, parse_morph_spec, refine

__all__ = [
    "CRFParams",
    "MorphParams",
    "apply_morphology",
    "closing",
    "dense_crf",
    "fill_holes",
    "opening",
    "parse_crf_params",
    "parse_morph_spec",
    "refine",
    "remove_small_components",
]
