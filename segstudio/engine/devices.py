"""Device selection."""

from __future__ import annotations

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
