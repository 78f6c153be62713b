"""Evaluation of a checkpoint on a dataset split with a confusion matrix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segstudio.core.labels import validate_label_map
from segstudio.engine.predictor import Predictor
from segstudio.io.datasets import find_samples
from segstudio.io.images import read_image
from segstudio.io.labels import read_index_png
from segstudio.metrics import ConfusionMatrix


def evaluate(
    predictor: Predictor,
    data_dir: str | Path,
    split: str = "val",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Predict every image of ``split`` and compare with its mask.

    Returns:
        :meth:`ConfusionMatrix.summary` plus ``"confusion_matrix"`` (K×K list) and ``"images"``.

    Raises:
        ValueError: when the dataset's classes differ from the model's in number.
        FileNotFoundError: missing dataset or split.
    """
    samples, classes = find_samples(data_dir, split)
    if classes.num_classes != predictor.classes.num_classes:
        raise ValueError(
            f"{data_dir} has {classes.num_classes} classes but the model predicts {predictor.classes.num_classes}"
        )
    cm = ConfusionMatrix(classes.num_classes)
    for i, s in enumerate(samples):
        image = read_image(s.image)
        mask = validate_label_map(read_index_png(s.mask), classes.num_classes, image.shape[:2])
        cm.update(mask, predictor.predict(image))
        if progress is not None:
            progress(i + 1, len(samples))
    out = cm.summary(classes.names)
    out["confusion_matrix"] = cm.mat.tolist()
    out["images"] = len(samples)
    out["split"] = split
    return out
