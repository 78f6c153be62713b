"""Accelerator settings shared by prediction and training (issue 33): mixed-precision dtype, DataLoader workers,
cuDNN autotuning and the ``--batch-size auto`` rule. Nothing here changes the CPU path: every helper returns the
CPU's plain settings (fp32, no workers beyond what was asked, batch 1) when the device is not CUDA.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
"""``TrainConfig.amp`` / predict precision choices: ``auto`` = bf16 where the GPU supports it, else fp16;
``off`` = float32. Ignored (float32) on the CPU."""

AUTO_BATCH_MAX = 64
"""Largest batch ``--batch-size auto`` picks (beyond it a GPU gains nothing on 360×480 frames and the first result waits)."""

AUTO_BATCH_MEMORY_FRACTION = 0.5
"""Share of the free GPU memory that ``--batch-size auto`` plans to use (the rest: the allocator's slack, other apps)."""


def amp_dtype(device: torch.device | str, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``device``: ``torch.bfloat16`` / ``torch.float16`` on CUDA, ``None`` (float32, no
    autocast) on any other device or with ``amp="off"``.

    ``"auto"`` picks bfloat16 where ``torch.cuda.is_bf16_supported()`` (Ampere and later: same exponent range as
    float32, so no gradient scaler is needed), else float16 (which needs :class:`torch.amp.GradScaler` in training).

    Raises:
        ValueError: ``amp`` not in :data:`AMP_CHOICES`.
    """
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    device = torch.device(device)
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    try:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    except Exception:  # noqa: BLE001  (an old driver / build: fall back to the always-supported half)
        return torch.float16


def cpu_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one, else ``os.cpu_count()``), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def loader_workers(requested: int | None, device: torch.device | str, world_size: int = 1) -> int:
    """DataLoader worker processes: ``requested`` when given (>= 0); ``None`` → ``min(8, cores / world_size - 1)`` on
    CUDA (decode and augmentation must keep up with the GPU; one core per process stays with the training loop),
    ``0`` elsewhere (the CPU path: the model already uses every core, workers would only compete with it).

    Raises:
        ValueError: a negative ``requested``.
    """
    if requested is not None:
        if requested < 0:
            raise ValueError(f"num_workers must be >= 0, got {requested}")
        return int(requested)
    if torch.device(device).type != "cuda":
        return 0
    return max(0, min(8, cpu_cores() // max(1, int(world_size)) - 1))


def enable_cudnn_autotune(device: torch.device | str) -> bool:
    """Set ``torch.backends.cudnn.benchmark = True`` on CUDA (cuDNN times its convolution algorithms once per input
    shape and keeps the fastest; training crops and predict batches have few shapes). Returns whether it was set."""
    if torch.device(device).type != "cuda":
        return False
    torch.backends.cudnn.benchmark = True
    return True


def parse_batch_size(value: str | int | None) -> int | str | None:
    """``--batch-size``: a positive int, ``"auto"`` or ``None`` (the device's default).

    Raises:
        ValueError: anything else.
    """
    if value is None or isinstance(value, int) and not isinstance(value, bool):
        if value is not None and value < 1:
            raise ValueError(f"batch size must be >= 1 or 'auto', got {value}")
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"batch size must be a positive integer or 'auto', got {value!r}") from None
    if n < 1:
        raise ValueError(f"batch size must be >= 1 or 'auto', got {value!r}")
    return n


def auto_batch_size(per_image_bytes: int | None, device: torch.device | str, *, cpu_default: int = 1,
                    maximum: int = AUTO_BATCH_MAX, fraction: float = AUTO_BATCH_MEMORY_FRACTION) -> int:
    """The batch ``--batch-size auto`` uses: ``fraction`` of the free GPU memory (``torch.cuda.mem_get_info``)
    divided by the measured peak memory of one image (``per_image_bytes``), clipped to ``[1, maximum]``.

    On a device other than CUDA, or with no measurement, ``cpu_default`` (1: on the CPU batching bought nothing
    in ``python -m bench predict_folder``; the convolutions already fill the cores).
    """
    device = torch.device(device)
    if device.type != "cuda" or not per_image_bytes or per_image_bytes <= 0:
        return max(1, int(cpu_default))
    free, _total = torch.cuda.mem_get_info(device)
    n = int(free * fraction // per_image_bytes)
    return max(1, min(int(maximum), n))
