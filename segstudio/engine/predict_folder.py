"""The predict-folder pipeline: images in, label maps (and overlays) out, one bad image never ending the run.

:func:`predict_images` is the shared core (decode on a prefetch thread and batch same-size images through
:meth:`Predictor.predict_many`, optional CRF / morphology post-processing, per-image errors reported, not
raised, cancellation between images); :func:`predict_folder` adds the files ``segstudio predict`` writes:
``<stem>.png`` (index PNG, class ids) and ``<stem>_overlay.png`` per image, atomically, never over an input.
The GUI's folder prediction should call :func:`predict_images` too (it passes its in-memory images).
"""

from __future__ import annotations

import hashlib
import io as _io
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segstudio.engine.fast_predict import ImagePrediction  # noqa: F401 (re-exported: its old home)
from segstudio.engine.predictor import Predictor

log = logging.getLogger(__name__)


def collect_images(items: Iterable[str | Path]) -> list[Path]:
    """The image files named by ``items``: files as given, folders expanded (:func:`segstudio.io.list_images`).

    Raises:
        FileNotFoundError: an item that is neither a file nor a folder.
    """
    from segstudio.io import list_images

    out: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            out.extend(list_images(p))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def output_names(images: Sequence[Path], max_bytes: int = 255) -> dict[Path, tuple[str, str]]:
    """``{image: (label file name, overlay file name)}``: ``<stem>.png`` and ``<stem>_overlay.png``, made unique
    when two inputs share a stem (``a.png``, ``a.jpg`` -> ``a.jpg.png``; the same name in two folders gets
    ``~<hash>``) and shortened (stem cut, 8-hex hash of the full path added) when a name would exceed
    ``max_bytes`` bytes."""
    stems = Counter(p.stem for p in images)
    names = Counter(p.name for p in images)
    out = {}
    for p in images:
        stem = p.stem if stems[p.stem] == 1 else p.name
        tag = hashlib.sha1(os.fsencode(str(p.resolve()))).hexdigest()[:8]
        if names[p.name] > 1:  # same file name in two input folders
            stem = f"{stem}~{tag}"
        if len(os.fsencode(stem + "_overlay.png")) > max_bytes:
            stem = os.fsdecode(os.fsencode(stem)[: max_bytes - 40]) + "~" + tag
        out[p] = (f"{stem}.png", f"{stem}_overlay.png")
    return out


def predict_images(
    predictor: Predictor,
    items: Iterable[str | Path | np.ndarray],
    *,
    batch_size: int | None = None,
    crf=None,
    morph=None,
    cancel=None,
) -> Iterator[ImagePrediction]:
    """Predict image files or uint8 (H, W, 3) arrays in order; errors are yielded per image, never raised.

    Args:
        predictor: the model to run.
        items: paths or arrays (consumed lazily; files are decoded on a prefetch thread).
        batch_size: see :meth:`Predictor.predict_many` (``None``: 4 on a GPU, 1 on the CPU).
        crf: :class:`segstudio.postprocess.CRFParams` for a dense CRF on the probabilities, or ``None``.
        morph: :class:`segstudio.postprocess.MorphParams` (per-class morphology after argmax), or ``None``.
        cancel: a :class:`~segstudio.engine.cancel.CancelToken` (anything with ``check()``) checked before
            each image; its ``Cancelled`` propagates.

    Yields:
        :class:`ImagePrediction`, one per input, in input order.
    """
    post = crf is not None or morph is not None
    num_classes = len(predictor.classes.names)
    results = predictor.predict_many(items, batch_size=batch_size, output="proba" if post else "labels", errors="yield")
    try:
        for res in results:
            if cancel is not None:
                cancel.check()
            if res.error is not None:
                yield ImagePrediction(res.index, None, res.image, res.error)
                continue
            labels = res.output
            if post:
                from segstudio.postprocess import refine

                try:
                    labels = refine(res.image, res.output, crf, morph, num_classes=num_classes)
                except Exception as exc:  # one bad image must not end the run
                    yield ImagePrediction(res.index, None, res.image, exc)
                    continue
            yield ImagePrediction(res.index, labels, res.image)
    finally:
        results.close()  # stops the prefetch thread when the caller stops early (cancel, break)


@dataclass
class FolderPrediction:
    """What :func:`predict_folder` did.

    Attributes:
        output: the folder written to.
        written: label-map files written, in input order.
        failed: ``{image path: reason}`` of the images with no output (unreadable, failed prediction or write).
    """

    output: Path
    written: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)


def predict_folder(
    predictor: Predictor,
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    opacity: float = 0.5,
    batch_size: int | str | None = None,
    crf=None,
    morph=None,
    progress: Callable[[int, int], None] | None = None,
    cancel=None,
    pipeline: str = "auto",
    decode_workers: int | None = None,
    write_workers: int | None = None,
) -> FolderPrediction:
    """``segstudio predict``: write ``<stem>.png`` (uint8 index PNG of class ids) and ``<stem>_overlay.png``
    (the label map blended over the image with ``opacity`` in [0, 1]) into ``output`` for every image in
    ``inputs`` (files or folders), each file atomically; stale temporary files of a killed earlier run are removed.

    Args:
        predictor, batch_size, crf, morph, cancel: see :func:`predict_images`.
        inputs: image files or folders (see :func:`collect_images`).
        output: output folder (created).
        batch_size: an int, ``"auto"`` (from the free GPU memory; 1 on the CPU) or ``None`` (the device's default).
        progress: ``progress(done, total)`` after each image.
        pipeline: ``"auto"`` (the batched pipeline of :mod:`segstudio.engine.fast_predict` when it serves the
            options: no TTA, no CRF / morphology; else the per-image :func:`predict_images`), ``"batched"`` or
            ``"per-image"`` (force one; ``"batched"`` with TTA or post-processing raises ``ValueError``).
        decode_workers: decoding threads of the batched pipeline (default: 8 on CUDA, 1 on the CPU).
        write_workers: threads that encode and write the PNGs (default: ``min(8, cores)`` on CUDA, 2 on the CPU).

    Returns:
        :class:`FolderPrediction`; unreadable images and failed predictions are logged and listed, not raised.

    Raises:
        FileNotFoundError: an input does not exist, or no images were found.
        ValueError: an output file would overwrite an input image.
    """
    from segstudio.io import ImageReadError
    from segstudio.io.atomic import sweep_stale_temps

    images = collect_images(inputs)
    if not images:
        raise FileNotFoundError("no images found in " + ", ".join(str(i) for i in inputs))
    out = Path(output)
    names = output_names(images)
    resolved = {p.resolve() for p in images}
    clash = [out / n for pair in names.values() for n in pair if (out / n).resolve() in resolved]
    if clash:
        raise ValueError(f"writing to {out} would overwrite the input image {clash[0]}; choose another output folder (-o)")
    out.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(out)  # temps a killed earlier run left behind (segstudio.io.atomic)
    result = FolderPrediction(out)
    from segstudio.engine.accel import cpu_cores
    from segstudio.engine.fast_predict import WriterPool, fast_path_supported, predict_batched

    if pipeline not in ("auto", "batched", "per-image"):
        raise ValueError(f"pipeline must be 'auto', 'batched' or 'per-image', got {pipeline!r}")
    batched = pipeline == "batched" or (pipeline == "auto" and fast_path_supported(predictor, crf, morph))
    if batched:
        if not fast_path_supported(predictor, crf, morph):
            raise ValueError("the batched pipeline does not do TTA, CRF or morphology; use pipeline='per-image'")
        stream = predict_batched(predictor, images, batch_size=batch_size, decode_workers=decode_workers, cancel=cancel)
    else:
        if batch_size == "auto":
            from segstudio.engine.fast_predict import resolve_batch_size
            from segstudio.io import read_image

            try:
                first = read_image(images[0])
            except ImageReadError:
                first = None
            batch_size = resolve_batch_size(predictor.prepare(), "auto", first)
        stream = predict_images(predictor, images, batch_size=batch_size, crf=crf, morph=morph, cancel=cancel)
    if write_workers is None:
        write_workers = max(1, min(8, cpu_cores())) if predictor.device.type == "cuda" else 2
    done = 0

    def record(path: Path, exc: Exception | None) -> None:
        nonlocal done
        if exc is None:
            result.written.append(out / names[path][0])
        elif isinstance(exc, ImageReadError):
            log.error("%s", exc)
            result.failed[path] = str(exc)
        else:  # one bad file must not end the run (nor print a traceback)
            log.error("%s: prediction not written (%s: %s)", path, type(exc).__name__, exc)
            result.failed[path] = f"{type(exc).__name__}: {exc}"
        done += 1
        if progress is not None:
            progress(done, len(images))

    with WriterPool(write_workers) as writers:
        try:
            for res in stream:
                path = images[res.index]
                if res.error is not None:
                    # keep the input order of `written` / progress: earlier writes are reported first
                    for key, exc in writers.drain():
                        record(key, exc)
                    record(path, res.error)
                    continue
                label_name, overlay_name = names[path]
                for key, exc in writers.submit(path, _write_pair, out / label_name, out / overlay_name, res.image,
                                               res.labels, predictor.classes, opacity):
                    record(key, exc)
        finally:
            stream.close()  # stops decoding when the caller stops early (cancel)
        for key, exc in writers.close():
            record(key, exc)
    return result


OVERLAY_COMPRESS_LEVEL = 1
"""zlib level of the overlay PNGs (a preview; the label maps keep :func:`segstudio.io.write_index_png`'s level 6).
Level 1 encodes a 480×360 overlay several times faster than Pillow's default 6 for files ~15 % larger (measured
on CamVid frames, issue 33); the pixels are the same."""


def _write_pair(label_path: Path, overlay_path: Path, image: np.ndarray, labels: np.ndarray, classes, opacity: float) -> None:
    """Write the uint8 (H, W) label map as an index PNG and its overlay on the uint8 (H, W, 3) image, each atomically
    (temporary file, fsync, ``os.replace``; :func:`segstudio.io.atomic_write_bytes`)."""
    from PIL import Image

    from segstudio.core import blend_overlay
    from segstudio.io import atomic_write_bytes, write_index_png

    write_index_png(label_path, labels)
    buf = _io.BytesIO()
    Image.fromarray(blend_overlay(image, labels, classes, opacity)).save(buf, format="PNG", compress_level=OVERLAY_COMPRESS_LEVEL)
    atomic_write_bytes(overlay_path, buf.getvalue())
