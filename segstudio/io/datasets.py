"""Finding (image, label map) pairs in the two dataset layouts SegStudio reads.

1. *Dataset folder* (as in ``../shared``): ``images/<stem>.png``, ``masks/<stem>.png``, split lists
   ``train.txt`` / ``val.txt`` / ``test.txt`` (one stem per line) and ``classes.json``.
2. *App folder*: a folder of images with a ``labels/`` sub-folder the app saved
   (``labels/<stem>.png`` + ``labels/classes.json``); only images with saved labels are used.
3. *Manifest*: a JSON file listing (image, mask) pairs per split plus the classes (written by
   :func:`segstudio.engine.cluster.write_manifest` to hand a fine-tune to a cluster); see :func:`read_manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segstudio.core.labels import ClassSpec
from segstudio.io.images import IMAGE_EXTENSIONS, list_images
from segstudio.io.labels import label_path_for, load_classes
from segstudio.io.layout import CLASSES_FILENAME, ProjectLayout


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
    if root.is_file() and root.suffix.lower() == ".json":
        return read_manifest(root, split)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        classes_file = root / CLASSES_FILENAME
        if not classes_file.is_file():
            raise FileNotFoundError(f"{root}: dataset folder has no classes.json")
        classes = load_classes(classes_file)
        split_file = root / f"{split or 'train'}.txt"
        if not split_file.is_file() and split is None:
            # No split list: every file in images/ (by path, so a.png and a.jpg are two samples, not one twice).
            samples = []
            for img in list_images(root / "images"):
                mask = root / "masks" / f"{img.stem}.png"
                if not mask.is_file():
                    raise FileNotFoundError(f"{root}: image {img.name} has no mask {mask}")
                samples.append(DatasetSample(img, mask))
            return samples, classes
        if split_file.is_file():
            try:
                stems = [s.strip() for s in split_file.read_text(encoding="utf-8").splitlines() if s.strip()]
            except UnicodeDecodeError as exc:
                raise ValueError(f"{split_file}: split list is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
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
    layout = ProjectLayout(root)
    labels_dir = layout.labels_dir
    if labels_dir.is_dir():
        classes_file = layout.classes_file
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


MANIFEST_FORMAT = "segstudio-dataset-manifest"
"""Value of a manifest's ``"format"`` key (its ``"version"`` is 1)."""


def read_manifest(path: str | Path, split: str | None = None) -> tuple[list[DatasetSample], ClassSpec]:
    """Samples of one split of a dataset manifest (layout 3).

    The manifest is UTF-8 JSON: ``{"format": "segstudio-dataset-manifest", "version": 1, "classes": [{id, name,
    color}, ...], "splits": {"train": [{"image": path, "mask": path}, ...], "val": [...]}}``. Masks are index PNGs
    (values ``0..K-1`` or the ignore index). Relative paths are relative to the manifest's folder, so a folder
    copied to a cluster together with its manifest keeps working.

    Args:
        path: the manifest file.
        split: ``"train"`` (also for ``None``), ``"val"``, ``"test"``...

    Raises:
        FileNotFoundError: the manifest, the split, or a listed image/mask is missing (the message names it).
        ValueError: not UTF-8 JSON, not a SegStudio manifest, or malformed entries/classes.
    """
    import json
    import os

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON dataset manifest ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not a SegStudio dataset manifest (expected \"format\": \"{MANIFEST_FORMAT}\")")
    try:
        classes = ClassSpec.from_json(data.get("classes"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: bad class list ({exc})") from exc
    splits = data.get("splits") or {}
    name = split or "train"
    if name not in splits:
        raise FileNotFoundError(f"{path}: the manifest has no {name!r} split (it has: {', '.join(splits) or 'none'})")
    samples = []
    for i, entry in enumerate(splits[name]):
        if not isinstance(entry, dict) or not {"image", "mask"} <= set(entry):
            raise ValueError(f"{path}: {name} entry {i} must be an object with \"image\" and \"mask\" paths")
        # Absolute paths stay absolute; "../x.png" is normalised (so equal files compare equal).
        image, mask = (Path(os.path.normpath(path.parent / entry[k])) for k in ("image", "mask"))
        for f in (image, mask):
            if not f.is_file():
                raise FileNotFoundError(f"{path}: {name} entry {i} lists {f}, which does not exist")
        samples.append(DatasetSample(image, mask))
    return samples, classes
