"""Finding (image, label map) pairs in the two dataset layouts SegStudio reads.

1. *Dataset folder* (as in ``../shared``): ``images/<stem>.png``, ``masks/<stem>.png``, split lists
   ``train.txt`` / ``val.txt`` / ``test.txt`` (one stem per line) and ``classes.json``.
2. *App folder*: a folder of images with a ``labels/`` sub-folder the app saved
   (``labels/<stem>.png`` + ``labels/classes.json``); only images with saved labels are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segstudio.core.labels import ClassSpec
from segstudio.io.images import IMAGE_EXTENSIONS, list_images
from segstudio.io.labels import LABELS_DIRNAME, label_path_for, load_classes


@dataclass(frozen=True)
class DatasetSample:
    """One training/evaluation pair: image file and its index-PNG label file."""

    image: Path
    mask: Path


def _find_image(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def find_samples(root: str | Path, split: str | None = None) -> tuple[list[DatasetSample], ClassSpec]:
    """List the samples of a dataset in either layout.

    Args:
        root: dataset folder (layout 1) or image folder with ``labels/`` (layout 2).
        split: ``"train"``, ``"val"``, ``"test"`` for layout 1 (``None``: train, or every image in
            ``images/`` if there is no ``train.txt``); ignored for layout 2, which uses every labelled image.

    Returns:
        ``(samples, classes)``.

    Raises:
        FileNotFoundError: when ``root`` has neither layout, a split list is missing, or a listed
            image or mask is absent (the message names the file).
        ValueError: ``classes.json`` or a split list cannot be parsed (the message names the file).
    """
    root = Path(root)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        classes_file = root / "classes.json"
        if not classes_file.is_file():
            raise FileNotFoundError(f"{root}: dataset folder has no classes.json")
        classes = load_classes(classes_file)
        split_file = root / f"{split or 'train'}.txt"
        if split_file.is_file():
            try:
                stems = [s.strip() for s in split_file.read_text(encoding="utf-8").splitlines() if s.strip()]
            except UnicodeDecodeError as exc:
                raise ValueError(f"{split_file}: split list is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        elif split is None:
            stems = [p.stem for p in list_images(root / "images")]
        else:
            raise FileNotFoundError(f"{root}: no split list {split_file.name}")
        samples = []
        for stem in stems:
            img = _find_image(root / "images", stem)
            mask = root / "masks" / f"{stem}.png"
            if img is None:
                raise FileNotFoundError(f"{root}: image for {stem!r} listed in {split_file.name} is missing from images/")
            if not mask.is_file():
                raise FileNotFoundError(f"{root}: mask {mask} listed in {split_file.name} is missing")
            samples.append(DatasetSample(img, mask))
        return samples, classes
    labels_dir = root / LABELS_DIRNAME
    if labels_dir.is_dir():
        classes_file = labels_dir / "classes.json"
        if not classes_file.is_file():
            raise FileNotFoundError(f"{labels_dir}: no classes.json beside the saved labels")
        classes = load_classes(classes_file)
        samples = [
            DatasetSample(img, label_path_for(img)) for img in list_images(root) if label_path_for(img).is_file()
        ]
        return samples, classes
    raise FileNotFoundError(
        f"{root}: not a dataset. Expected images/ + masks/ + classes.json, or an image folder with labels/ saved by SegStudio"
    )
