"""The batched predict pipeline (issue 33): feed a GPU at its speed, and never be slower than the per-image
:meth:`Predictor.predict_many` on the CPU.

Stages, each overlapping the others:

1. **decode** in a thread pool (:class:`concurrent.futures.ThreadPoolExecutor`; Pillow releases the GIL while it
   inflates PNG / JPEG data), a bounded look-ahead of files in flight;
2. **batch**: consecutive images of one size are stacked (uint8, N × H × W × 3) into pinned host memory on CUDA
   and copied with ``non_blocking=True``; normalisation ``(x / 255 - mean) / std`` runs on the device, on the
   uint8 batch seen as NCHW (its strides are already channels_last, so no layout copy is made);
3. **model** under ``torch.inference_mode`` with bfloat16 autocast on CUDA (float16 where bf16 is not supported;
   see :func:`segstudio.engine.accel.amp_dtype`) and cuDNN autotuning; the argmax runs on the device and only the
   uint8 label maps come back (pinned, non-blocking), one batch in flight while the previous one is handed out;
4. **write** (in :func:`segstudio.engine.predict_folder.predict_folder`): label-map and overlay PNGs are encoded
   and written atomically by a :class:`WriterPool`.

On the CPU the arithmetic is exactly the per-image path's (same normalisation ops, same folded channels_last
model, same argmax), so the labels are bit-identical to :meth:`Predictor.predict`.

Images the fast path does not handle — above ``max_pixels`` (sliding windows) or at an inference scale other than
1 — go through the Predictor's own per-image path (:meth:`Predictor._predict_arrays`) in place, in order;
test-time augmentation and CRF / morphology post-processing are not batched here at all
(:func:`fast_path_supported` says so and the caller uses :func:`segstudio.engine.predict_folder.predict_images`).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from segstudio.engine.accel import amp_dtype, auto_batch_size, cpu_cores, enable_cudnn_autotune
from segstudio.engine.predictor import Predictor, fast_argmax, is_out_of_memory

log = logging.getLogger(__name__)


class ImagePrediction(NamedTuple):
    """One result of :func:`segstudio.engine.predict_folder.predict_images` and :func:`predict_batched`.

    Attributes:
        index: position of the input, 0-based.
        labels: uint8 (H, W) label map of model class ids; ``None`` when ``error`` is set.
        image: the decoded uint8 (H, W, 3) RGB image (``None`` when it could not be read).
        error: why this input has no prediction (unreadable file: ``segstudio.io.ImageReadError``; a failed
            forward pass or post-processing: that exception), else ``None``.
    """

    index: int
    labels: np.ndarray | None
    image: np.ndarray | None
    error: Exception | None = None


def fast_path_supported(predictor: Predictor, crf=None, morph=None) -> bool:
    """Whether :func:`predict_batched` serves ``predictor``'s options: no test-time augmentation and no CRF /
    morphology post-processing (those need the per-image probabilities; they keep today's path)."""
    return not predictor.tta and crf is None and morph is None


def default_decode_workers(device: torch.device) -> int:
    """Decode threads: ``min(8, cores)`` on CUDA (the GPU waits for the CPU), 1 on the CPU (one thread overlaps
    decoding with the model as the old prefetch thread did; more would take cores from the convolutions)."""
    return max(1, min(8, cpu_cores())) if device.type == "cuda" else 1


def measure_image_bytes(predictor: Predictor, image: np.ndarray, dtype: torch.dtype | None = None) -> int | None:
    """Peak CUDA memory, in bytes, that one uint8 (H, W, 3) ``image`` costs through the model (input, activations
    under autocast ``dtype``, logits, labels); ``None`` off CUDA or when the measurement itself fails."""
    device = predictor.device
    if device.type != "cuda":
        return None
    try:
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        _run_batch(predictor, [image], dtype, pending=False)
        torch.cuda.synchronize(device)
        return max(1, torch.cuda.max_memory_allocated(device) - base)
    except Exception as exc:  # noqa: BLE001  (auto batch size then falls back to the default)
        log.warning("could not measure the per-image GPU memory (%s); batch size 1", exc)
        return None


def resolve_batch_size(predictor: Predictor, batch_size: int | str | None, first_image: np.ndarray | None,
                       dtype: torch.dtype | None = None) -> int:
    """The batch for :func:`predict_batched`: an int as given; ``None`` → 8 on CUDA, 1 on the CPU; ``"auto"`` →
    :func:`segstudio.engine.accel.auto_batch_size` from the free GPU memory and the measured footprint of
    ``first_image`` (1 on the CPU, or when there is nothing to measure).

    Raises:
        ValueError: a batch size below 1 or an unknown string.
    """
    if batch_size is None:
        return 8 if predictor.device.type == "cuda" else 1
    if batch_size == "auto":
        per = None if first_image is None else measure_image_bytes(predictor, first_image, dtype)
        n = auto_batch_size(per, predictor.device)
        log.info("batch size auto: %d (%s per image)", n, "unmeasured" if per is None else f"{per / 2**20:.0f} MiB")
        return n
    if isinstance(batch_size, str) or int(batch_size) < 1:
        raise ValueError(f"batch size must be >= 1 or 'auto', got {batch_size!r}")
    return int(batch_size)


class _Pending:
    """A batch whose uint8 labels (N, H, W) are on their way to the host; :meth:`wait` returns them."""

    def __init__(self, labels: torch.Tensor, event=None, keep=None) -> None:
        self.labels, self.event, self.keep = labels, event, keep

    def wait(self) -> torch.Tensor:
        if self.event is not None:
            self.event.synchronize()
            self.event = self.keep = None
        return self.labels


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float32 (N, 3, H, W) with channels_last strides: ``(x / 255 - mean) / std``, the same
    operations as :func:`segstudio.data.transforms.to_model_input` (so the CPU result is bit-identical)."""
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    m, s = _mean_std(tuple(mean), tuple(std), x.device)
    return (x - m) / s


_STATS: dict = {}


def _mean_std(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (1, 3, 1, 1) mean and std on ``device``, made once: building them per batch would copy from pageable
    memory, which waits for the work queued on the GPU and so stalls the pipeline."""
    key = (mean, std, str(device))
    if key not in _STATS:
        with torch.inference_mode(False), torch.no_grad():
            _STATS[key] = (torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1),
                           torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1))
    return _STATS[key]


def _run_batch(predictor: Predictor, images: list[np.ndarray], dtype: torch.dtype | None, pending: bool = True,
               inputs: list[torch.Tensor | None] | None = None) -> _Pending:
    """Same-size uint8 (H, W, 3) images → uint8 labels (N, H, W) on the host (as a :class:`_Pending`).

    ``inputs``: the images already normalised on the CPU (float32 (3, H, W) each, by the decode threads), used
    when every one is given (the CPU path); else the uint8 batch is normalised here (on the device on CUDA)."""
    device = predictor.device
    n, (h, w) = len(images), images[0].shape[:2]
    cuda = device.type == "cuda"
    stage = None
    if inputs is not None and not cuda and all(t is not None for t in inputs):
        x = inputs[0][None] if n == 1 else torch.stack(inputs)
    else:
        stage = torch.empty((n, h, w, 3), dtype=torch.uint8, pin_memory=cuda)
        np.stack(images, out=stage.numpy())
    with torch.inference_mode():
        if stage is not None:
            x = stage.to(device, non_blocking=True) if cuda else stage
            x = _normalise(x, predictor.loaded.mean, predictor.loaded.std)
        if predictor.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # a no-op: the permuted NHWC batch already is
        else:
            x = x.contiguous()  # the layout the per-image path gives such a model (same kernels, same bits)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = predictor._runner(x)["out"]
        labels = fast_argmax(logits if cuda else logits.float())
        if not cuda:
            return _Pending(labels)
        host = torch.empty((n, h, w), dtype=torch.uint8, pin_memory=True)
        host.copy_(labels, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
    res = _Pending(host, event, keep=(stage, labels))
    if not pending:
        res.wait()
    return res


def _decoded(items: Iterable, workers: int, lookahead: int, load) -> Iterator[tuple[int, object, Exception | None]]:
    """``(index, load(item), error)`` in input order; ``load`` runs on ``workers`` threads, ``lookahead`` in flight."""

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segstudio-decode") as pool:
        window: collections.deque[tuple[int, Future]] = collections.deque()
        try:
            for i, item in enumerate(items):
                window.append((i, pool.submit(load, item)))
                if len(window) >= lookahead:
                    yield _result(*window.popleft())
            while window:
                yield _result(*window.popleft())
        finally:
            for _, fut in window:
                fut.cancel()


def _result(i: int, fut: Future):
    try:
        return i, fut.result(), None
    except Exception as exc:  # noqa: BLE001  (reported per image by the caller)
        return i, None, exc


def predict_batched(
    predictor: Predictor,
    items: Iterable[str | Path | np.ndarray],
    *,
    batch_size: int | str | None = None,
    decode_workers: int | None = None,
    precision: str = "auto",
    cancel=None,
) -> Iterator[ImagePrediction]:
    """Label maps of image files or uint8 (H, W, 3) arrays, in input order, through the batched pipeline.

    Args:
        predictor: the prepared model and its options; ``predictor.tta`` must be off (see
            :func:`fast_path_supported`). Images it would tile or rescale are predicted by its per-image path.
        items: paths or arrays, consumed lazily.
        batch_size: images per forward pass: an int >= 1, ``"auto"`` (from the free GPU memory, see
            :func:`resolve_batch_size`) or ``None`` (8 on CUDA, 1 on the CPU).
        decode_workers: decoding threads (default :func:`default_decode_workers`).
        precision: autocast on CUDA: ``"auto"`` (bf16, fp16 where bf16 is unsupported; float32 when the predictor
            was built with ``amp=False``), ``"bf16"``, ``"fp16"`` or ``"off"``. The CPU always runs float32.
        cancel: anything with ``check()`` (a ``CancelToken``), checked before each image; its exception propagates.

    Yields:
        :class:`~segstudio.engine.predict_folder.ImagePrediction` ``(index, labels uint8 (H, W), image, error)``:
        an unreadable file (``ImageReadError``) or an image the model fails on carries ``error`` and the run goes
        on (a failing batch is retried image by image through the Predictor, with its out-of-memory fallbacks).

    Raises:
        ValueError: TTA is on, or a bad ``batch_size`` / ``precision``.
    """
    if predictor.tta:
        raise ValueError("predict_batched does not do test-time augmentation; use predict_images")
    predictor.prepare()
    device = predictor.device
    dtype = amp_dtype(device, "auto" if predictor.amp else "off") if precision == "auto" else amp_dtype(device, precision)
    enable_cudnn_autotune(device)
    workers = decode_workers or default_decode_workers(device)
    fixed = None if batch_size in (None, "auto") else resolve_batch_size(predictor, batch_size, None)
    size = fixed
    lookahead = max(2 * (fixed or 8), 2 * workers)
    inflight: _Flight | None = None

    def per_image(i: int, image: np.ndarray) -> ImagePrediction:
        try:
            return ImagePrediction(i, predictor._predict_arrays([image], "labels")[0].numpy(), image)
        except Exception as exc:  # noqa: BLE001  (one bad image must not end the run)
            return ImagePrediction(i, None, image, exc)

    def launch(batch: list) -> Iterator[ImagePrediction]:
        """Start ``batch`` on the device; yield the results of the batch before it (one batch in flight)."""
        nonlocal inflight, size
        try:
            started = _Flight(batch, _run_batch(predictor, [b[1] for b in batch], dtype,
                                                inputs=[inputs.pop(b[0], None) for b in batch]))
        except Exception as exc:  # noqa: BLE001  (out of memory or a bad image: per image, with the fallbacks)
            log.debug("batch of %d failed (%s); predicting one by one", len(batch), exc)
            if is_out_of_memory(exc) and len(batch) > 1:  # later batches: half as large
                size = max(1, len(batch) // 2)
                predictor._notice(f"out of memory on {predictor.device} with a batch of {len(batch)}; batches of {size} from now on")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            yield from drain()
            for i, image in batch:
                yield per_image(i, image)
            return
        yield from drain()
        inflight = started

    def drain() -> Iterator[ImagePrediction]:
        nonlocal inflight
        if inflight is None:
            return
        flight, inflight = inflight, None
        try:
            labels = flight.pending.wait().numpy()
        except Exception as exc:  # noqa: BLE001  (an asynchronous device error surfaces here)
            for i, image in flight.batch:
                yield per_image(i, image)
            return
        for k, (i, image) in enumerate(flight.batch):
            yield ImagePrediction(i, labels[k].copy() if len(flight.batch) > 1 else labels[k], image)

    from segstudio.io import read_image

    mean, std = predictor.loaded.mean, predictor.loaded.std

    def load(item) -> tuple[np.ndarray, torch.Tensor | None]:
        """Decode; on the CPU also normalise here, off the model's thread (as the old prefetch thread did)."""
        image = item if isinstance(item, np.ndarray) else read_image(item)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        if device.type != "cpu" or predictor._alone(*image.shape[:2]):
            return image, None
        with torch.inference_mode():
            return image, _normalise(torch.from_numpy(image)[None], mean, std)[0]

    batch: list[tuple[int, np.ndarray]] = []
    inputs: dict[int, torch.Tensor | None] = {}
    for i, loaded_item, exc in _decoded(items, workers, lookahead, load):
        image = None if exc is not None else loaded_item[0]
        if cancel is not None:
            cancel.check()
        if exc is not None:
            yield from launch(batch) if batch else drain()
            batch = []
            yield from drain()
            yield ImagePrediction(i, None, None, exc)
            continue
        if size is None:
            size = resolve_batch_size(predictor, batch_size, image, dtype)
        alone = predictor._alone(*image.shape[:2])
        if batch and (alone or batch[0][1].shape != image.shape or len(batch) >= size):
            yield from launch(batch)
            batch = []
        if alone:
            yield from drain()
            yield per_image(i, image)
            continue
        batch.append((i, image))
        inputs[i] = loaded_item[1]
    if batch:
        yield from launch(batch)
    yield from drain()


class _Flight:
    def __init__(self, batch: list, pending: _Pending) -> None:
        self.batch, self.pending = batch, pending


class WriterPool:
    """Encode and write output files on a thread pool, a bounded number in flight, results handed back in order.

    ``submit(key, fn, *args)`` queues ``fn(*args)``; once more than ``max_pending`` are queued, the oldest is
    waited for first. :meth:`done` yields ``(key, exception or None)`` of finished jobs in submission order;
    :meth:`close` waits for all of them. A job's exception is returned, never raised (one failed write must not
    end the run). Each job is expected to write atomically (:func:`segstudio.io.atomic_write_bytes`).
    """

    def __init__(self, workers: int = 2, max_pending: int | None = None) -> None:
        self.workers = max(1, int(workers))
        self.max_pending = max_pending or 4 * self.workers
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="segstudio-write")
        self._queue: collections.deque[tuple[object, Future]] = collections.deque()

    def submit(self, key, fn, *args) -> list[tuple[object, Exception | None]]:
        """Queue ``fn(*args)``; returns the jobs that finished (or had to be waited for), in order."""
        self._queue.append((key, self._pool.submit(fn, *args)))
        out = []
        while self._queue and (len(self._queue) > self.max_pending or self._queue[0][1].done()):
            out.append(self._pop())
        return out

    def _pop(self) -> tuple[object, Exception | None]:
        key, fut = self._queue.popleft()
        try:
            fut.result()
            return key, None
        except Exception as exc:  # noqa: BLE001
            return key, exc

    def drain(self) -> list[tuple[object, Exception | None]]:
        """Wait for every queued job; returns their ``(key, exception or None)`` in order (the pool stays open)."""
        return [self._pop() for _ in range(len(self._queue))]

    def close(self) -> list[tuple[object, Exception | None]]:
        """Wait for every queued job; returns their ``(key, exception or None)`` in order and shuts the pool down."""
        out = self.drain()
        self._pool.shutdown(wait=True)
        return out

    def __enter__(self) -> "WriterPool":
        return self

    def __exit__(self, *exc) -> None:
        for _, fut in self._queue:
            fut.cancel()
        self._pool.shutdown(wait=True)
