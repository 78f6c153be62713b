"""Device selection, the device report of Help ▸ Device and a predict-speed measurement."""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import torch


def available_devices() -> list[str]:
    """Devices usable here, best first: ``"cuda"`` when a CUDA GPU is present, always ``"cpu"``."""
    devs = []
    if torch.cuda.is_available():
        devs.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    devs.append("cpu")
    return devs


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → the best available device; ``"cpu"``/``"cuda"``/``"cuda:1"``/``"mps"`` as given.

    Raises:
        ValueError: a CUDA/MPS device is asked for but not available (the message says what is).
    """
    if name in (None, "", "auto"):
        return torch.device(available_devices()[0])
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but no CUDA GPU is available; use --device cpu or auto")
    if dev.type == "mps" and "mps" not in available_devices():
        raise ValueError(f"device {name!r} asked for but MPS is not available; use --device cpu or auto")
    return dev


_GIB = 1024**3


def _ram_bytes() -> tuple[int | None, int | None]:
    """(total, available) physical memory in bytes from /proc/meminfo or sysconf; None when unknown."""
    try:
        info = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                k, v = line.split(":", 1)
                info[k] = int(v.split()[0]) * 1024
        return info.get("MemTotal"), info.get("MemAvailable")
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), None
    except (ValueError, OSError, AttributeError):
        return None, None


def device_report(device: str | torch.device = "auto") -> dict[str, str]:
    """Human-readable facts about the compute devices, in display order.

    Args:
        device: the device the app predicts on (``"auto"`` → the best available).
    Returns:
        ``{label: text}``: torch version, device in use, CUDA and MPS availability, GPU name(s) with total /
        free memory (CUDA), CPU model, torch threads and logical cores, RAM total / available (GiB).
    """
    dev = resolve_device(str(device))
    out = {"PyTorch": torch.__version__, "Device in use": str(dev), "Available": ", ".join(available_devices())}
    if torch.cuda.is_available():
        out["CUDA"] = f"yes (CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU)"
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            free, total = torch.cuda.mem_get_info(i)
            out[f"GPU {i}"] = f"{props.name}: {total / _GIB:.1f} GiB total, {free / _GIB:.1f} GiB free"
    else:
        out["CUDA"] = "no" + (f" (PyTorch built with CUDA {torch.version.cuda}, no GPU found)" if torch.version.cuda else " (CPU build of PyTorch)")
    mps = getattr(torch.backends, "mps", None)
    out["MPS (Apple)"] = "yes" if mps is not None and mps.is_available() else "no"
    out["CPU"] = platform.processor() or platform.machine()
    out["CPU threads"] = f"{torch.get_num_threads()} used by torch of {os.cpu_count()} logical cores"
    total, avail = _ram_bytes()
    out["RAM"] = "unknown" if total is None else f"{total / _GIB:.1f} GiB" + (f" ({avail / _GIB:.1f} GiB available)" if avail else "")
    return out


def measure_predict_speed(predictor, image: np.ndarray, repeats: int = 3, warmup: int = 1, cancel=None) -> dict:
    """Time ``predictor.predict(image)``.

    Args:
        predictor: a :class:`segstudio.engine.Predictor`.
        image: uint8 (H, W, 3) RGB.
        repeats: timed runs (≥ 1); warmup: untimed runs first (cuDNN autotune, allocator, caches).
        cancel: optional :class:`~segstudio.engine.CancelToken`, checked between runs.
    Returns:
        ``{"ms": median milliseconds per image, "ms_min", "megapixels_per_s", "height", "width", "device", "repeats"}``.
    Raises:
        ValueError: ``repeats < 1``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = torch.cuda.synchronize if predictor.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        predictor.predict(image)
    times = []
    for _ in range(repeats):
        if cancel is not None:
            cancel.check()
        sync()
        t0 = time.perf_counter()
        predictor.predict(image)
        sync()
        times.append(time.perf_counter() - t0)
    h, w = image.shape[:2]
    med = float(np.median(times))
    return {
        "ms": 1000 * med,
        "ms_min": 1000 * min(times),
        "megapixels_per_s": h * w / 1e6 / med,
        "height": h,
        "width": w,
        "device": str(predictor.device),
        "repeats": repeats,
    }
