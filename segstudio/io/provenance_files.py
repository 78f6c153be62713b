"""Provenance files: the per-pixel provenance of an image's saved labels (uint8 0 none / 1 model / 2 human / 3 CRF,
:mod:`segstudio.core.provenance`) as an 8-bit PNG at ``<folder>/labels/provenance/<stem>.png``; saving, loading,
and the labels a person made (:func:`load_human_labels`: what validation and held-out figures may score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segstudio.core.provenance import human_labels, validate_provenance
from segstudio.io.labels import read_index_png, write_index_png
from segstudio.io.layout import ProjectLayout


def provenance_path_for(image_path: str | Path) -> Path:
    """Where the provenance of ``image_path``'s labels is saved: ``<folder>/labels/provenance/<stem>.png``."""
    return ProjectLayout.of_image(image_path).provenance_path(image_path)


def save_provenance(image_path: str | Path, prov: np.ndarray) -> Path:
    """Atomically save a uint8 (H, W) provenance map (values 0..3) as an 8-bit PNG; returns its path.

    Raises:
        ValueError: not a valid provenance map (nothing written).
        OSError: cannot write (the old file stays intact).
    """
    validate_provenance(prov)
    return write_index_png(provenance_path_for(image_path), prov)


def load_provenance(image_path: str | Path, shape: tuple[int, int]) -> np.ndarray | None:
    """Read the provenance map of ``image_path``'s labels: uint8 (H, W), or ``None`` when there is none.

    Raises:
        ValueError: the file is not an 8-bit map of ``shape`` with values 0..3 (message names the file).
        OSError: unreadable.
    """
    path = provenance_path_for(image_path)
    if not path.is_file():
        return None
    try:
        return validate_provenance(read_index_png(path), shape)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_human_labels(image_path: str | Path, labels: np.ndarray) -> np.ndarray:
    """``labels`` (the saved label map of ``image_path``, (H, W)) with every pixel no person painted or changed set
    to :data:`~segstudio.core.labels.IGNORE_INDEX`, by the saved provenance file: what held-out and validation
    figures may score (:func:`segstudio.core.provenance.human_labels`). Labels without a provenance file were
    written outside SegStudio (ground truth, an import) and count as a person's.

    Raises:
        ValueError: the provenance file is not an 8-bit map of the labels' shape with values 0..3.
        OSError: it is unreadable.
    """
    return human_labels(labels, load_provenance(image_path, labels.shape[:2]))
