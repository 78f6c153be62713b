"""The on-disk names of a project (an image folder opened in the app) and of a training run, spelled once.

An image folder ``F`` opened as a project::

    F/image.png                       the images (never modified)
    F/segstudio.json                  project file: per-image review status, notes (segstudio.io.project)
    F/labels/image.png                saved label map (index PNG)
    F/labels/classes.json             the class list
    F/labels/provenance/image.png     who decided each pixel (segstudio.core.provenance)
    F/labels/validation.txt           images the person set aside for validation: never trained on (one name a line)
    F/labels/.journal/<sha1>.ssj      crash-recovery journal of unsaved edits (segstudio.io.journal)
    F/labels/models/vNNN/             model versions fine-tuned on this folder (segstudio.engine.versions)
    F/labels/models/click_adapted.*   the click decoder adapted to this folder's objects (segstudio.engine.click.adapt)
    F/labels/cluster/                 manifest + command for a cluster run (segstudio.engine.cluster)

A training run folder (and each model version) holds ``model.safetensors``, ``model.json`` (the model card) and
``history.json``. A dataset folder holds ``images/``, ``masks/``, ``classes.json`` and split lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LABELS_DIRNAME = "labels"
CLASSES_FILENAME = "classes.json"
PROJECT_FILENAME = "segstudio.json"
PROVENANCE_DIRNAME = "provenance"
JOURNAL_DIRNAME = ".journal"
MODELS_DIRNAME = "models"
CLUSTER_DIRNAME = "cluster"
VALIDATION_LIST_FILENAME = "validation.txt"
"""In ``labels/``: file names of the images a person set aside for validation (never trained on), one a line."""

WEIGHTS_FILENAME = "model.safetensors"
"""A checkpoint's weights (safetensors) in a run folder / model version."""
CARD_FILENAME = "model.json"
"""A checkpoint's model card (JSON) beside its weights."""
HISTORY_FILENAME = "history.json"
"""Per-epoch training history beside the weights."""


@dataclass(frozen=True)
class ProjectLayout:
    """Paths of the project files of image folder ``folder`` (see the module docstring).

    Attributes:
        folder: the image folder.
    """

    folder: Path

    def __init__(self, folder: str | Path) -> None:
        object.__setattr__(self, "folder", Path(folder))

    @classmethod
    def of_image(cls, image_path: str | Path) -> ProjectLayout:
        """The layout of the folder holding ``image_path``."""
        return cls(Path(image_path).parent)

    @property
    def project_file(self) -> Path:
        return self.folder / PROJECT_FILENAME

    @property
    def labels_dir(self) -> Path:
        return self.folder / LABELS_DIRNAME

    @property
    def classes_file(self) -> Path:
        return self.labels_dir / CLASSES_FILENAME

    @property
    def provenance_dir(self) -> Path:
        return self.labels_dir / PROVENANCE_DIRNAME

    @property
    def journal_dir(self) -> Path:
        return self.labels_dir / JOURNAL_DIRNAME

    @property
    def models_dir(self) -> Path:
        return self.labels_dir / MODELS_DIRNAME

    @property
    def cluster_dir(self) -> Path:
        return self.labels_dir / CLUSTER_DIRNAME

    def label_path(self, image_path: str | Path) -> Path:
        """``labels/<stem>.png`` for an image of this folder."""
        return self.labels_dir / f"{Path(image_path).stem}.png"

    def provenance_path(self, image_path: str | Path) -> Path:
        """``labels/provenance/<stem>.png`` for an image of this folder."""
        return self.provenance_dir / f"{Path(image_path).stem}.png"
