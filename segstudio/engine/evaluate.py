"""Evaluation of a checkpoint on a dataset split with a confusion matrix."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from segstudio.core.labels import validate_label_map
from segstudio.engine.predictor import Predictor
from segstudio.io.datasets import find_samples
from segstudio.io.images import read_image
from segstudio.io.labels import read_index_png
from segstudio.io.visualize import comparison_panel, confusion_matrix_image, write_png
from segstudio.metrics import ConfusionMatrix

CONFUSION_PNG = "confusion_matrix.png"
"""File name of the confusion-matrix picture written into ``save_vis``."""


def evaluate(
    predictor: Predictor,
    data_dir: str | Path,
    split: str = "val",
    progress: Callable[[int, int], None] | None = None,
    save_vis: str | Path | None = None,
    crf=None,
    morph=None,
    limit: int | None = None,
) -> dict:
    """Predict every image of ``split`` and compare with its mask.

    Args:
        predictor: the model to evaluate.
        data_dir: dataset folder or image folder with saved labels (:func:`segstudio.io.find_samples`).
        split: ``train`` / ``val`` / ``test``.
        progress: called as ``progress(done, total)`` after each image.
        save_vis: folder for pictures (created; same-named files replaced): one ``<stem>.png`` per image,
            image | ground truth | prediction | error map (:func:`segstudio.io.visualize.comparison_panel`,
            headed by the image's pixel accuracy and mIoU), and :data:`CONFUSION_PNG`, the row-normalised
            confusion matrix (:func:`segstudio.io.visualize.confusion_matrix_image`).
        crf: :class:`segstudio.postprocess.CRFParams` to refine every prediction with a dense CRF before scoring
            (DeepLab v1/v2's post-processing; Krähenbühl & Koltun 2011), or ``None``.
        morph: :class:`segstudio.postprocess.MorphParams` applied after the argmax, or ``None``.
        limit: evaluate only the first ``limit`` images of the split, in the split list's order (e.g. the first
            20 lines of ``val.txt``), ``>= 1``; ``None`` (default): all of them. Recorded as ``"limit"``.

    Returns:
        :meth:`ConfusionMatrix.summary` plus ``"confusion_matrix"`` (K×K list) and ``"images"``
        (and ``"vis_dir"`` when ``save_vis`` is given).

    Raises:
        ValueError: when the dataset's classes differ from the model's in number, or ``limit < 1``.
        FileNotFoundError: missing dataset or split.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 image, got {limit}")
    samples, classes = find_samples(data_dir, split)
    if limit is not None:
        samples = samples[:limit]
    if classes.num_classes != predictor.classes.num_classes:
        raise ValueError(
            f"{data_dir} has {classes.num_classes} classes but the model predicts {predictor.classes.num_classes}"
        )
    cm = ConfusionMatrix(classes.num_classes)
    vis_dir = Path(save_vis) if save_vis is not None else None
    if vis_dir is not None:
        vis_dir.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(samples):
        image = read_image(s.image)
        mask = validate_label_map(read_index_png(s.mask), classes.num_classes, image.shape[:2])
        if crf is None and morph is None:
            pred = predictor.predict(image)
        else:
            from segstudio.postprocess import refine

            pred = refine(image, predictor.predict_proba(image), crf, morph, num_classes=classes.num_classes)
        cm.update(mask, pred)
        if vis_dir is not None:
            one = ConfusionMatrix(classes.num_classes)
            one.update(mask, pred)
            title = f"{s.image.name}   pixel accuracy {_pct(one.pixel_accuracy)}   mIoU {_pct(one.miou)}"
            write_png(vis_dir / f"{s.image.stem}.png", comparison_panel(image, mask, pred, classes, title))
        if progress is not None:
            progress(i + 1, len(samples))
    out = cm.summary(classes.names)
    out["confusion_matrix"] = cm.mat.tolist()
    out["images"] = len(samples)
    out["split"] = split
    if limit is not None:
        out["limit"] = limit
    out["tta"] = bool(getattr(predictor, "tta", False))
    for key, params in (("crf", crf), ("morph", morph)):  # recorded with the metrics they produced
        if params is not None:
            out[key] = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else str(params)
    if vis_dir is not None:
        title = (f"Confusion matrix ({split}, {len(samples)} images), rows normalised = recall; "
                 f"mIoU {_pct(cm.miou)}")
        write_png(vis_dir / CONFUSION_PNG, confusion_matrix_image(cm.mat, classes.names, title))
        out["vis_dir"] = str(vis_dir)
    return out


def _pct(v: float) -> str:
    return "-" if v is None or v != v else f"{100 * v:.1f}%"
