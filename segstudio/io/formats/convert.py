"""``segstudio convert``: label files between formats, with image references kept pointing at the image."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from segstudio.core.labels import ClassSpec
from segstudio.io.atomic import sweep_stale_temps
from segstudio.io.formats._common import LabelFormatError, LabelItem
from segstudio.io.formats.dispatch import read_labels, write_labels
from segstudio.io.formats.registry import format_names, get_format
from segstudio.io.images import IMAGE_EXTENSIONS
from segstudio.io.labels import load_classes, save_classes
from segstudio.io.layout import CLASSES_FILENAME

log = logging.getLogger("segstudio.io.formats")


def find_classes_for(src: str | Path) -> Path | None:
    """``classes.json`` for a label file or folder: in the folder itself, beside the file, or one level up
    (dataset layout ``masks/`` → ``classes.json``); ``None`` if there is none."""
    src = Path(src)
    folder = src if src.is_dir() else src.parent
    for cand in (folder / CLASSES_FILENAME, folder.parent / CLASSES_FILENAME):
        if cand.is_file():
            return cand
    return None


def _find_image_name(label_file: Path, stem: str, dst_dir: Path) -> str | None:
    """The image a label file belongs to (dataset ``images/`` beside ``masks/``, or the app folder above
    ``labels/``), relative to ``dst_dir``; ``None`` if not found."""
    for folder in (label_file.parent.parent / "images", label_file.parent.parent, label_file.parent):
        for ext in IMAGE_EXTENSIONS:
            cand = folder / f"{stem}{ext}"
            if cand.is_file() and cand.resolve() != label_file.resolve():
                return os.path.relpath(cand.resolve(), dst_dir.resolve())
    return None


def _rebase(image_name: str, label_file: Path, dst_dir: Path) -> str:
    """An image path recorded relative to ``label_file``'s folder, made relative to ``dst_dir`` when the image
    exists; otherwise unchanged."""
    cand = Path(image_name.replace("\\", "/"))
    if not cand.is_absolute():
        cand = label_file.parent / cand
    try:
        if cand.is_file():
            return os.path.relpath(cand.resolve(), dst_dir.resolve())
    except (OSError, ValueError):
        pass
    return image_name


def _source_files(src: Path, fmt: str | None) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: no such file or folder")
    suffixes = {get_format(fmt).suffix} if fmt else {get_format(n).suffix for n in format_names()}
    files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                   and p.name != CLASSES_FILENAME and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{src}: no label files ({', '.join(sorted(suffixes))}) in this folder")
    return files


def convert(
    src: str | Path,
    dst: str | Path,
    to: str,
    classes: ClassSpec | str | Path | None = None,
    from_format: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Convert label files between the registered formats (:data:`~segstudio.io.formats.FORMATS`).

    Args:
        src: a label file, or a folder of them (``.png``/``.json``, ``classes.json`` skipped; with
            ``from_format`` only that format's suffix).
        dst: for ``to="coco"``: the output ``.json`` file, or a folder that gets :data:`~segstudio.io.formats.COCO_ANNOTATIONS_NAME`;
            otherwise: an output file when ``src`` yields one label map and ``dst`` has the format's suffix,
            else a folder that gets ``<stem>.png`` / ``<stem>.json`` per label map and a ``classes.json``.
        to: output format.
        classes: a :class:`ClassSpec` or a ``classes.json`` path; default: :func:`find_classes_for` ``src``,
            or the categories of a COCO source.
        from_format: input format, or ``None`` to detect it per file.
        overwrite: replace existing outputs (inputs are never overwritten).

    Image references (COCO ``file_name``, labelme ``imagePath``) are kept pointing at the image: recorded
    paths are re-expressed relative to the output folder when the image exists; for index/voc/color
    sources the image is looked up beside the labels (``../images/<stem>.*`` of a dataset, or the folder
    above ``labels/``), falling back to ``<stem>.png`` in COCO files.

    Returns:
        Paths written.

    Raises:
        LabelFormatError: unreadable/invalid labels, missing classes for a format that needs them.
        FileExistsError: an output exists and ``overwrite`` is False, or an output would replace an input
            (checked for every output before anything is written).
        FileNotFoundError: ``src`` missing or without label files.

    Before writing, temp files that an interrupted earlier save left in the output folder are removed
    (:func:`segstudio.io.atomic.sweep_stale_temps`).
    """
    out_fmt = get_format(to, "output format")
    if from_format is not None:
        get_format(from_format, "input format")
    src, dst = Path(src), Path(dst)
    files = _source_files(src, from_format)
    if isinstance(classes, (str, Path)):
        spec: ClassSpec | None = load_classes(classes)
    elif classes is None and (found := find_classes_for(src)) is not None:
        spec = load_classes(found)
        log.info("using classes from %s", found)
    else:
        spec = classes
    items: list[tuple[LabelItem, Path]] = []
    for f in files:
        got, file_classes = read_labels(f, from_format, spec)
        if spec is None:
            spec = file_classes
        items.extend((it, f) for it in got)
    if spec is None:
        raise LabelFormatError(f"{src}: no classes.json found beside the labels; pass --classes classes.json")
    stems = [it.stem for it, _ in items]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise LabelFormatError(f"{src}: several label maps are named {dup}; convert them separately")

    suffix = out_fmt.suffix
    many = out_fmt.write_many is not None  # one file for all label maps (COCO)
    one_output = many or (len(items) == 1 and src.is_file())
    single_file = dst.suffix.lower() == suffix and not dst.is_dir() and one_output
    if many:
        out_file = dst if single_file else dst / out_fmt.many_name
        outputs = [out_file]
        out_dir = out_file.parent
    else:
        out_dir = dst.parent if single_file else dst
        outputs = [dst] if single_file else [dst / f"{it.stem}{suffix}" for it, _ in items]
    classes_out = None if single_file else out_dir / CLASSES_FILENAME
    inputs = {f.resolve() for f in files}
    for out in outputs + ([classes_out] if classes_out else []):
        if out.resolve() in inputs:
            raise FileExistsError(f"{out}: would overwrite an input file; choose another destination")
    existing = [o for o in outputs if o.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists ({len(existing)} outputs exist); pass --overwrite to replace")
    write_classes = False
    if classes_out is not None:
        if not classes_out.exists():
            write_classes = True
        else:
            try:
                same = load_classes(classes_out) == spec
            except ValueError:
                same = False
            if not same:
                if not overwrite:
                    raise FileExistsError(f"{classes_out} exists with other classes; pass --overwrite to replace it")
                write_classes = True
    sweep_stale_temps(out_dir)  # temps of an earlier, killed conversion into the same folder
    written = []
    for it, f in items:  # image paths are relative to the label file: make them relative to the output
        if it.image_name is not None:
            it.image_name = _rebase(it.image_name, f, out_dir)
        elif out_fmt.records_image:
            it.image_name = _find_image_name(f, it.stem, out_dir)
    if many:
        for it, _ in items:
            it.image_name = it.image_name or f"{it.stem}.png"
        written.append(out_fmt.write_many(outputs[0], [it for it, _ in items], spec))
    else:
        for (it, _), out in zip(items, outputs):
            written.append(write_labels(out, it.labels, to, spec, it.image_name if out_fmt.records_image else None))
    if write_classes:
        written.append(save_classes(classes_out, spec))
    return written
