"""Open the model a command names: a bundled model, a checkpoint file or run folder, or an exported ONNX file.

This module sits above :mod:`segstudio.engine.checkpoint` (PyTorch checkpoints) and
:mod:`segstudio.engine.export` (ONNX files) and imports both; neither imports it.
"""

from __future__ import annotations

from pathlib import Path

from segstudio.engine.checkpoint import DEFAULT_MODEL_DIR, load_checkpoint


def open_model(checkpoint: str | Path | None = None, bundled: str | None = None, backend: str = "torch"):
    """The model a command names: ``bundled`` (a bundled model's name, ``resources/models/<name>``), or
    ``checkpoint``: ``None`` / ``"default"`` (the default model), a path (``model.safetensors``, a run folder,
    ``.pt``), or a bundled model's name when no such path exists. ``backend="onnxruntime"``: ``checkpoint`` is an
    ONNX file written by ``segstudio export`` (:func:`segstudio.engine.export.load_onnx`).

    Raises:
        FileNotFoundError: no bundled model of that name (the message lists them).
        ValueError: ``onnxruntime`` without a ``.onnx`` checkpoint.
        CheckpointError: the file does not load.
    """
    if backend == "onnxruntime":
        if not checkpoint or Path(checkpoint).suffix.lower() != ".onnx":
            raise ValueError("--backend onnxruntime runs an exported model: pass --checkpoint FILE.onnx (see `segstudio export`)")
        from segstudio.engine.export import load_onnx  # imports onnxruntime: only for this backend

        return load_onnx(checkpoint)
    if bundled:
        cand = DEFAULT_MODEL_DIR / f"{bundled}.safetensors"
        if not cand.is_file():
            names = sorted(p.stem for p in DEFAULT_MODEL_DIR.glob("*.safetensors"))
            raise FileNotFoundError(f"no bundled model {bundled!r}; bundled: {', '.join(names) or 'none'}")
        return load_checkpoint(cand)
    if checkpoint is None or str(checkpoint) == "default":
        return load_checkpoint(None)
    named = DEFAULT_MODEL_DIR / f"{checkpoint}.safetensors"
    if not Path(checkpoint).exists() and named.is_file():  # a bundled model by name, e.g. isbi2012_unet
        return load_checkpoint(named)
    return load_checkpoint(checkpoint)
