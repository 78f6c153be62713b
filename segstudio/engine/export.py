"""Export a checkpoint as ONNX or TorchScript, verified on a real image; run an exported ONNX file.

What an exported file holds:

* the network: input ``input``, float32 (N, 3, H, W), the image already normalised as the model card says
  (RGB uint8 → ``x / 255`` → ``(x - mean) / std``); output ``logits``, float32 (N, K, H, W) (the model's ``"out"``;
  the training-only ``"aux"`` head is dropped). With ``fp16`` the weights and arithmetic are float16, the inputs
  and outputs stay float32 (casts inside the graph).
* the normalisation and the class list: in ONNX ``metadata_props`` (keys ``segstudio.card``, the whole model card
  as JSON, plus ``classes``, ``normalization``, ``dynamic_shapes``, ``input_size``, ``precision``); for
  TorchScript the same keys in a JSON file beside it (``<file>.json``).

Shapes: by default the graph has the fixed input size of the verification image (batch 1); with
``dynamic_shapes`` batch, height and width are symbolic (torch.export ``Dim``; height and width from 32 px).

Verification (always, before the file replaces anything at the destination): the written file is loaded with
ONNX Runtime (ONNX) or ``torch.jit.load`` (TorchScript) and run on a real image; its logits are compared with the
float32 PyTorch model on the same input: the maximum absolute logit difference and the fraction of pixels whose
argmax (label) agrees are reported, and an :class:`ExportError` is raised when they miss the tolerance. With
``dynamic_shapes`` a second input (batch 2, a different, odd size) is checked too.

ONNX needs the ``export`` extra (``pip install segstudio[export]``: onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import copy
import io
import itertools
import json
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from segstudio.data.transforms import to_model_input
from segstudio.engine.checkpoint import SAMPLES_DIR, LoadedModel
from segstudio.io.atomic import atomic_write_bytes, temp_prefix

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "input", "logits"
TOLERANCES = {False: (1e-3, 0.999), True: (0.5, 0.99)}
"""``{fp16: (max abs logit difference, min label agreement)}`` an export must meet against float32 PyTorch.
float32 exports agree to rounding (measured ~1e-5, 100 % of labels); float16 ones differ by float16 rounding
(measured ~0.03 on the default model's logits, 99.8 % of labels)."""
MIN_DYNAMIC_SIDE = 32


class ExportError(ValueError):
    """The export failed, the exported file does not reproduce the PyTorch model within the tolerance, or a
    file given to the onnxruntime backend is not a loadable SegStudio export."""


@dataclass(frozen=True)
class ExportCheck:
    """Agreement of an exported file with the float32 PyTorch model on one input.

    Attributes:
        input_shape: (N, 3, H, W) of the checked input.
        max_abs_diff: max |logit_exported - logit_torch| over all outputs (logit units).
        label_agreement: fraction in [0, 1] of pixels whose argmax over classes is the same.
    """

    input_shape: tuple[int, ...]
    max_abs_diff: float
    label_agreement: float

    def __str__(self) -> str:
        n, _, h, w = self.input_shape
        return f"{n}x{h}x{w}: max |logit diff| {self.max_abs_diff:.3g}, labels agree on {100 * self.label_agreement:.3f} % of pixels"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how well it reproduces the PyTorch model."""

    path: Path
    format: str
    checks: tuple[ExportCheck, ...]
    metadata: dict[str, str]


class _LogitsOnly(torch.nn.Module):
    """``{"out": logits}`` model → a module returning the logits tensor, optionally running in float16."""

    def __init__(self, model: torch.nn.Module, fp16: bool) -> None:
        super().__init__()
        self.model = model
        self.fp16 = fp16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fp16:
            x = x.half()
        return self.model(x)["out"].float()


def default_example_image() -> np.ndarray:
    """The first bundled sample image (CamVid frame, uint8 (360, 480, 3)): the real image exports are checked on."""
    from segstudio.io import read_image

    paths = sorted(SAMPLES_DIR.glob("*.png"))
    if not paths:
        raise ExportError(f"no sample image in {SAMPLES_DIR}; pass an image to verify the export on")
    return read_image(paths[0])


def export_metadata(loaded: LoadedModel, fmt: str, dynamic_shapes: bool, fp16: bool, input_size: tuple[int, int]) -> dict[str, str]:
    """String key → string value metadata stored with an export (ONNX ``metadata_props`` / the TorchScript JSON)."""
    classes = loaded.classes
    return {
        "segstudio.card": json.dumps(loaded.card),
        "architecture": str(loaded.card.get("architecture", "")),
        "classes": json.dumps(list(classes.names)),
        "normalization": json.dumps(
            {"mean": list(loaded.mean), "std": list(loaded.std), "input": "RGB uint8 / 255, then (x - mean) / std, NCHW float32"}
        ),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "output": "logits float32 (N, K, H, W); labels = argmax over K",
        "dynamic_shapes": json.dumps(bool(dynamic_shapes)),
        "input_size": json.dumps(None if dynamic_shapes else list(input_size)),
        "precision": "float16" if fp16 else "float32",
        "format": fmt,
    }


def _onnx_bytes(module: torch.nn.Module, x: torch.Tensor, dynamic_shapes: bool, metadata: dict[str, str]) -> bytes:
    try:
        import onnx  # noqa: F401  (the exporter needs it; a clear error here beats one deep inside torch.onnx)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the export extra: pip install 'segstudio[export]' ({exc})") from exc
    import onnx

    dyn = None
    if dynamic_shapes:
        # Dim.DYNAMIC: torch.export infers the range (named Dims with explicit ranges trip over the derived
        # sizes of padded / transposed-conv graphs such as FCN's); sizes below MIN_DYNAMIC_SIDE are untested.
        dyn = {"x": {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}}
    quiet = [logging.getLogger(n) for n in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)  # their INFO/WARNING lines (initializer dedup, ambiguous attrs) are not ours
    try:
        program = torch.onnx.export(
            module, (x,), None, dynamo=True, dynamic_shapes=dyn, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME], optimize=True, verbose=False,
        )
    except Exception as exc:  # the exporter raises many types; name it and the model
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc)[:500]}") from exc
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = "SegStudio export: input normalised RGB float32 NCHW, output logits; see metadata_props"
    return proto.SerializeToString()


@contextmanager
def _quiet_torchscript():
    """torch 2.10+ marks TorchScript deprecated (a FutureWarning per trace/save/load) and the tracer warns about
    every size it records; the verification below, not these warnings, decides whether the export is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def _torchscript_bytes(module: torch.nn.Module, x: torch.Tensor, metadata: dict[str, str]) -> bytes:
    try:
        with torch.no_grad(), _quiet_torchscript():
            traced = torch.jit.trace(module, (x,), check_trace=False)
            buf = io.BytesIO()
            torch.jit.save(traced, buf, _extra_files={"segstudio.json": json.dumps(metadata)})
    except Exception as exc:
        raise ExportError(f"torch.jit.trace failed: {type(exc).__name__}: {str(exc)[:500]}") from exc
    return buf.getvalue()


def _run_exported(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        return OnnxRuntimeModel(path).run(x.numpy())
    with _quiet_torchscript():
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(x).float().numpy()


def compare_logits(exported: np.ndarray, reference: np.ndarray) -> ExportCheck:
    """Compare float (N, K, H, W) logits of an export with the PyTorch reference of the same shape.

    Raises:
        ExportError: the shapes differ.
    """
    if exported.shape != reference.shape:
        raise ExportError(f"the exported model returns logits of shape {exported.shape}, PyTorch {reference.shape}")
    diff = float(np.abs(exported.astype(np.float64) - reference).max())
    agree = float((exported.argmax(1) == reference.argmax(1)).mean())
    return ExportCheck(tuple(int(s) for s in reference.shape), diff, agree)


def export_model(
    loaded: LoadedModel,
    path: str | os.PathLike,
    fmt: str = "onnx",
    *,
    dynamic_shapes: bool = False,
    fp16: bool = False,
    image: np.ndarray | None = None,
    tolerance: tuple[float, float] | None = None,
) -> ExportResult:
    """Export ``loaded`` to ``path`` as ``fmt`` (``"onnx"`` / ``"torchscript"``), verified on a real image.

    The file is written to a temp file beside ``path``, run on ``image`` (uint8 (H, W, 3) RGB; default: the
    first bundled sample) and compared with the float32 PyTorch model; only when it agrees within
    ``tolerance`` (max abs logit difference, min label agreement; default :data:`TOLERANCES`) does it replace
    ``path``. TorchScript exports also get ``<path>.json`` (the metadata, see the module docstring).

    Returns:
        :class:`ExportResult` with the checks made (one; two with ``dynamic_shapes``).

    Raises:
        ValueError: unknown format, or ``image`` is not uint8 RGB, or is smaller than 32 px with dynamic shapes.
        ExportError: the exporter failed, ONNX packages are missing, or the export disagrees with PyTorch
            (nothing is written at ``path`` then).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give the file to write, e.g. {path / 'model.onnx'}")
    image = default_example_image() if image is None else image
    x = to_model_input(image, loaded.mean, loaded.std)[None]
    h, w = x.shape[-2:]
    if dynamic_shapes and min(h, w) < MIN_DYNAMIC_SIDE:
        raise ValueError(f"the verification image must be at least {MIN_DYNAMIC_SIDE} px a side, got {w}x{h}")
    model = loaded.model.eval()
    if any(t.device.type != "cpu" for t in itertools.chain(model.parameters(), model.buffers())):
        model = copy.deepcopy(model).cpu().eval()  # a model on the GPU exports from a CPU copy (it is left where it is)
    with torch.no_grad():
        ref_fn = lambda t: model(t)["out"].float().numpy().astype(np.float64)  # noqa: E731
        inputs = [x]
        if dynamic_shapes:  # a second, odd size and batch 2: the graph must not have baked the first shape in
            h2, w2 = max(MIN_DYNAMIC_SIDE, h - 37), w + 21
            x2 = torch.nn.functional.interpolate(x, size=(h2, w2), mode="bilinear", align_corners=False)
            inputs.append(torch.cat([x2, x2.flip(-1)]))
        refs = [ref_fn(t) for t in inputs]
        module = _LogitsOnly(copy.deepcopy(model).half() if fp16 else copy.deepcopy(model), fp16).eval()
    metadata = export_metadata(loaded, fmt, dynamic_shapes, fp16, (int(h), int(w)))
    data = _onnx_bytes(module, x, dynamic_shapes, metadata) if fmt == "onnx" else _torchscript_bytes(module, x, metadata)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        max_diff, min_agree = tolerance or TOLERANCES[bool(fp16)]
        checks = []
        for t, ref in zip(inputs, refs):
            try:
                out = _run_exported(tmp, fmt, t)
            except ExportError:
                raise
            except Exception as exc:
                raise ExportError(
                    f"the exported {fmt} file fails on an input of shape {tuple(t.shape)}: {type(exc).__name__}: {str(exc)[:400]}"
                ) from exc
            check = compare_logits(out, ref)
            log.debug("export check %s", check)
            checks.append(check)
            if not (check.max_abs_diff <= max_diff and check.label_agreement >= min_agree):
                raise ExportError(
                    f"the exported {fmt} model does not reproduce PyTorch ({check}; tolerance: max diff {max_diff}, "
                    f"agreement {100 * min_agree:.1f} %); {path} not written"
                )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if fmt == "torchscript":
        atomic_write_bytes(sidecar_json(path), (json.dumps(metadata, indent=1) + "\n").encode("utf-8"))
    return ExportResult(path, fmt, tuple(checks), metadata)


def sidecar_json(path: str | os.PathLike) -> Path:
    """``model.pt`` → ``model.pt.json``: the metadata file written beside a TorchScript export."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class OnnxRuntimeModel(torch.nn.Module):
    """An exported ONNX file behind the model contract: ``forward(x float32 (N, 3, H, W)) -> {"out": logits}``.

    Runs ONNX Runtime's CPU execution provider with ``torch.get_num_threads()`` intra-op threads (the same
    thread count PyTorch uses, so the two compare fairly). The session is shared by copies (``deepcopy``
    returns the same object: ONNX Runtime sessions are thread-safe for ``run``). A file exported with a fixed
    input size runs a batch image by image and rejects other sizes with a ``ValueError``.

    Raises:
        ExportError: onnxruntime is not installed, or the file is not a loadable ONNX model.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ExportError(f"the onnxruntime backend needs: pip install 'segstudio[export]' ({exc})") from exc
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ExportError(f"{self.path}: ONNX Runtime cannot load it ({type(exc).__name__}: {str(exc)[:300]})") from exc
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in inp.shape)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __deepcopy__(self, memo) -> "OnnxRuntimeModel":
        return self

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 3, H, W) normalised input → float32 (N, K, H, W) logits (numpy)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, _, h, w = x.shape
        fixed = self.input_shape
        if fixed[2] is not None and fixed[3] is not None and (h, w) != (fixed[2], fixed[3]):
            raise ValueError(
                f"{self.path.name} was exported for {fixed[3]}x{fixed[2]} inputs, got {w}x{h}; "
                "export again with --dynamic-shapes to predict other sizes"
            )
        if fixed[0] is not None and n != fixed[0]:
            return np.concatenate([self.run(x[i : i + 1]) for i in range(n)])
        return self.session.run(None, {self.input_name: x})[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.run(x.detach().float().cpu().numpy())
        return {"out": torch.from_numpy(out).to(x.device)}


def load_onnx(path: str | os.PathLike, threads: int | None = None) -> LoadedModel:
    """An ONNX file written by :func:`export_model` as a :class:`LoadedModel` (model: :class:`OnnxRuntimeModel`,
    card: the exported model card, so classes and normalisation are the checkpoint's).

    Raises:
        ExportError: not a SegStudio export (no ``segstudio.card`` metadata), or not loadable.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    model = OnnxRuntimeModel(path, threads)
    try:
        card = json.loads(model.metadata["segstudio.card"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ExportError(
            f"{path}: no SegStudio model card in its metadata (export it with `segstudio export`)"
        ) from exc
    return LoadedModel(model.eval(), card, path)
