"""Checkpoint format: ``model.safetensors`` (weights) + ``model.json`` (the model card).

The card holds everything needed to rebuild and use the model: architecture and builder
arguments, classes and palette, input normalisation, training data and metrics, lineage.

Untrusted files: weights load from safetensors (no code can run). A ``.pt`` / ``.pth`` file (e.g. a
PyTorch state dict from elsewhere) is read only with ``torch.load(weights_only=True)``, whose
restricted unpickler accepts tensors and plain containers and refuses any other object, so a
malicious pickle cannot run code; it still needs a model card (``<stem>.json`` beside it, or a
``"card"`` entry inside). Weights that do not fit the card's architecture or classes give a
:class:`CheckpointError` naming the mismatch.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import dataclass
from importlib import resources as _resources
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from segstudio.core.labels import ClassSpec
from segstudio.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.layout import WEIGHTS_FILENAME
from segstudio.models import get_model

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def _bundled_dir(name: str) -> Path:
    """Folder ``<name>`` of the bundled resources: ``segstudio/resources/<name>`` of an installed package, else
    ``resources/<name>`` at the top level of the source checkout this package runs from.

    The repository keeps the bundled models and samples in a top-level ``resources/`` folder; the wheel ships it
    inside the package as ``segstudio/resources`` (package data of the ``segstudio.resources`` package, mapped to
    ``resources/`` by ``package-dir`` in pyproject.toml), located with :mod:`importlib.resources`. pip installs
    wheels unzipped, so the traversable is a real folder; a zipped install (zipimport) is not supported and gives a
    path that does not exist (loading the default model then raises :class:`CheckpointError` naming it). A source
    checkout (``PYTHONPATH`` or an editable install) has no ``segstudio/resources``: the top-level folder is used.
    """
    installed = Path(str(_resources.files("segstudio").joinpath("resources", name)))
    if installed.is_dir():
        return installed
    checkout = Path(__file__).resolve().parents[2] / "resources" / name
    return checkout if checkout.is_dir() else installed


DEFAULT_MODEL_DIR = _bundled_dir("models")
"""Bundled models: ``<name>.safetensors`` + ``<name>.json`` card (+ ``<name>.md``)."""
SAMPLES_DIR = _bundled_dir("samples")
"""Bundled sample images (CamVid frames; ``isbi2012/`` EM slices), ground truth under ``ground_truth/``."""
DEFAULT_MODEL_NAME = "camvid_deeplabv3plus_mobilenetv2"


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not fit the model it is loaded into."""


@dataclass
class LoadedModel:
    """A model ready for inference or fine-tuning, with its card (the parsed ``model.json``)."""

    model: torch.nn.Module
    card: dict
    path: Path | None = None

    @property
    def classes(self) -> ClassSpec:
        return ClassSpec.from_json(self.card["classes"])

    @property
    def mean(self) -> tuple[float, float, float]:
        return tuple(self.card.get("normalization", {}).get("mean", IMAGENET_MEAN))

    @property
    def std(self) -> tuple[float, float, float]:
        return tuple(self.card.get("normalization", {}).get("std", IMAGENET_STD))

    @property
    def display_name(self) -> str:
        return self.card.get("name") or (self.path.parent.name if self.path else self.card["architecture"])


def default_checkpoint() -> Path:
    """Path of the embedded default model's weights."""
    return DEFAULT_MODEL_DIR / f"{DEFAULT_MODEL_NAME}.safetensors"


def _card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


PICKLE_SUFFIXES = (".pt", ".pth")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a ``.safetensors`` / ``.pt`` / ``.pth`` file or a run folder holding ``model.safetensors``.

    Raises:
        CheckpointError: when nothing loadable is there, or the model card is missing beside a
            ``.safetensors`` file (a ``.pt`` may carry its card inside).
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILENAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint (expected a .safetensors/.pt/.pth file or a run folder with model.safetensors)"
        )
    if path.suffix.lower() not in PICKLE_SUFFIXES and not _card_path(path).is_file():
        raise CheckpointError(f"{path}: the model card {_card_path(path).name} is missing beside the weights")
    return path


def _read_pickled_weights(path: Path, map_location: str) -> tuple[dict[str, torch.Tensor], dict | None]:
    """State dict (and an embedded card, if any) of a ``.pt``/``.pth`` file, via ``torch.load(weights_only=True)``.

    Accepted layouts: a plain state dict; ``{"state_dict" | "model" | "model_state_dict": state dict, "card": dict
    or JSON text (optional)}``. A ``module.`` prefix (DataParallel/DDP) is removed.

    Raises:
        CheckpointError: the file holds anything but tensors and plain containers (refused, nothing ran),
            is not a PyTorch file, or has no state dict.
    """
    import pickle

    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().split("\n\n")[0].strip()[:200]
        raise CheckpointError(
            f"{path}: refused to load: weights_only=True could not read it as plain tensors ({detail}). It holds "
            "Python objects other than tensors (which could run code when unpickled; nothing was run) or is not a "
            "PyTorch file. Re-save only the state_dict, or use safetensors"
        ) from exc
    except Exception as exc:  # not a zip/pickle, truncated...
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from exc
    card = None
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                card = obj.get("card")
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path}: no state dict (name -> tensor) found in the file")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    if isinstance(card, str):
        try:
            card = json.loads(card)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{path}: embedded model card is not valid JSON ({exc})") from exc
    return obj, card if isinstance(card, dict) else None


def build_model(card: dict, pretrained: bool = False) -> torch.nn.Module:
    """Instantiate the architecture described by a card (random or ImageNet-initialised weights)."""
    kwargs = dict(card.get("model_kwargs", {}))
    kwargs["pretrained"] = pretrained
    return get_model(card["architecture"], num_classes=len(card["classes"]), **kwargs)


def _class_dims(key: str, new: torch.Tensor, old: torch.Tensor, new_k: int) -> int:
    """How many leading dims of classifier tensor ``key`` index classes: 0 (a class-independent tensor), 1 (one
    row per class: a scoring conv's weight or bias), or 2 (class × class: a deconvolution or refinement conv that
    maps class maps to class maps, e.g. FCN's ``upscore``, GCN's boundary refinement)."""
    if "classifier" not in key.split(".") or new.ndim == 0 or new.shape[0] != new_k:
        return 0
    old_k = old.shape[0] if old.ndim else -1
    if new.ndim >= 2 and new.shape[1] == new_k and old.ndim >= 2 and old.shape[1] == old_k:
        return 2
    return 1


def copy_head_rows(model: torch.nn.Module, old_state: dict[str, torch.Tensor], rows: list[int | None]) -> list[str]:
    """Build ``model``'s classifier from an old classifier, class by class: new class ``i`` gets old row
    ``rows[i]`` (see :func:`segstudio.core.class_mapping.head_rows`); a class with ``None`` keeps the model's current
    values (its fresh initialisation, when called on a newly built model).

    Every parameter / buffer under a ``classifier`` module whose first dim is the new class count
    (``len(rows)``) is assembled; one whose second dim is the class count too (class × class) is mapped on both
    dims (an entry between two inherited classes is copied, any entry touching a new class stays fresh), so a
    pure reorder gives exactly the old function with the classes permuted. Other keys are left alone.

    Args:
        model: the new model (its classifier sized for ``len(rows)`` classes).
        old_state: the old model's state dict (its classifier sized for the old class count).
        rows: ``list[int | None]``, for each new class its old row or ``None``.

    Returns:
        The keys assembled, in ``model.state_dict()`` order.

    Raises:
        CheckpointError: an assembled key is missing from ``old_state``, a row is out of the old classifier's
            range, or the old and new tensors differ in a dim other than the class dims.
    """
    own = model.state_dict()
    new_k = len(rows)
    done, load = [], {}
    for k, v in own.items():
        if "classifier" not in k.split(".") or v.ndim == 0 or v.shape[0] != new_k:
            continue
        if k not in old_state:
            raise CheckpointError(f"checkpoint does not fit the model: missing {k}")
        old = old_state[k]
        dims = _class_dims(k, v, old, new_k)
        old_k = old.shape[0] if old.ndim else 0
        if old.ndim != v.ndim or old.shape[dims:] != v.shape[dims:]:
            raise CheckpointError(f"checkpoint does not fit the model: {k}: checkpoint {tuple(old.shape)} vs model {tuple(v.shape)}")
        bad = [j for j in rows if j is not None and not 0 <= j < old_k]
        if bad:
            raise CheckpointError(f"{k}: rows {bad} are outside the checkpoint's {old_k} classes")
        out = v.detach().clone()
        pairs = [(i, j) for i, j in enumerate(rows) if j is not None]
        if pairs:
            dst = torch.tensor([i for i, _ in pairs], device=v.device)
            src = torch.tensor([j for _, j in pairs], device=v.device)
            old = old.to(device=v.device, dtype=v.dtype)
            if dims == 2:
                out[dst.unsqueeze(1), dst.unsqueeze(0)] = old[src.unsqueeze(1), src.unsqueeze(0)]
            else:
                out[dst] = old[src]
        load[k] = out
        done.append(k)
    model.load_state_dict(load, strict=False)
    return done


def load_state_into(
    model: torch.nn.Module, state: dict[str, torch.Tensor], allow_new_head: bool = False, head_rows: list[int | None] | None = None
) -> list[str]:
    """Copy ``state`` into ``model``; returns the keys left at their fresh initialisation.

    With ``allow_new_head`` the classifier weights may differ in shape (a new class set): those keys
    are skipped and returned. Any other missing, unexpected or mis-shaped key is an error.

    With ``head_rows`` (for each of the model's classes the row of ``state``'s classifier it inherits, or
    ``None``: :func:`segstudio.core.class_mapping.head_rows`) the classifier is assembled by :func:`copy_head_rows`
    instead, whatever its shapes: inherited rows are copied to their new places, the others stay at their fresh
    initialisation. Its keys are returned when any class is ``None`` (a partly new head), else none are.

    Raises:
        CheckpointError: naming the mismatch: a different number of classes (classifier shapes), a
            different architecture (most keys missing / unexpected), or each key that does not fit with
            both shapes.
    """
    own = model.state_dict()
    fresh, problems, load = [], [], {}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = []
    head_keys = set()
    if head_rows is not None:
        head_keys = {k for k, v in own.items() if "classifier" in k.split(".") and v.ndim and v.shape[0] == len(head_rows)}
        head_keys &= set(state)  # a missing one is reported below
    for k, v in own.items():
        if k not in state or k in head_keys:
            continue
        if state[k].shape != v.shape:
            if allow_new_head and "classifier" in k.split("."):
                fresh.append(k)
            else:
                shaped.append(k)
                problems.append(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}")
        else:
            load[k] = state[k].to(v.dtype)
    if missing or unexpected or shaped:
        head = [k for k in shaped if "classifier" in k.split(".") and own[k].ndim >= 1]
        summary = []
        if len(missing) + len(unexpected) > max(4, len(own) // 4):
            summary.append(
                f"different architecture: {len(missing)} of the model's {len(own)} weights are missing and "
                f"{len(unexpected)} weights are unknown to it (e.g. missing {missing[:2]}, unknown {unexpected[:2]})"
            )
        if head and not missing and not unexpected:
            k = head[0]
            summary.append(
                f"different number of classes: the checkpoint's classifier has {state[k].shape[0]} outputs, "
                f"the model card / project has {own[k].shape[0]} classes"
            )
        details = [f"missing {k}" for k in missing[:5]] + problems[:5] + [f"unexpected {k}" for k in unexpected[:5]]
        raise CheckpointError("checkpoint does not fit the model: " + "; ".join(summary + details))
    if head_keys:
        assembled = copy_head_rows(model, state, list(head_rows))
        fresh += assembled if any(j is None for j in head_rows) else []
    model.load_state_dict(load, strict=False)
    return fresh


def load_checkpoint(path: str | Path | None = None, map_location: str = "cpu") -> LoadedModel:
    """Load weights + card; ``None`` loads the embedded default model.

    Raises:
        CheckpointError: missing files, malformed card, unknown architecture, or weights that do not
            fit the architecture (message names the mismatch).
    """
    weights = resolve_checkpoint(path if path is not None else default_checkpoint())
    pickled = weights.suffix.lower() in PICKLE_SUFFIXES
    state, card = _read_pickled_weights(weights, map_location) if pickled else (None, None)
    card_file = _card_path(weights)
    try:
        if card is None:
            if not card_file.is_file():
                raise CheckpointError(
                    f"{weights}: a .pt/.pth file needs a model card: put {card_file.name} (architecture, model_kwargs, "
                    "classes) beside it, or save a dict with 'state_dict' and 'card'"
                )
            card = json.loads(card_file.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise CheckpointError(f"{card_file}: the model card must be a JSON object")
        for key in ("architecture", "classes"):
            if key not in card:
                raise CheckpointError(f"{card_file}: card lacks {key!r}")
        ClassSpec.from_json(card["classes"])
    except CheckpointError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{card_file}: invalid model card ({exc})") from exc
    try:
        model = build_model(card)
    except KeyError as exc:
        raise CheckpointError(f"{weights}: {exc.args[0]}") from exc
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{weights}: the card's model_kwargs do not build a {card['architecture']} ({exc})") from exc
    if state is None:
        try:
            state = load_file(str(weights), device=map_location)
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointError(f"{weights}: cannot read safetensors ({exc})") from exc
    try:
        load_state_into(model, state)
    except CheckpointError as exc:
        raise CheckpointError(f"{weights}: {exc} (card: {card['architecture']}, {len(card['classes'])} classes)") from exc
    model.eval()
    return LoadedModel(model, card, weights)


def save_checkpoint(
    out_dir: str | Path, model: torch.nn.Module, card: dict, half: bool = False, stem: str = "model"
) -> Path:
    """Write ``<out_dir>/<stem>.safetensors`` and ``<stem>.json`` atomically; returns the weights path.

    Args:
        half: store floating-point tensors as float16 (halves the file; loading casts back to float32).
    """
    out_dir = Path(out_dir)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v
    card = dict(card)
    card.setdefault("format_version", FORMAT_VERSION)
    card.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    card["num_parameters"] = int(sum(p.numel() for p in model.parameters()))
    card["weights_dtype"] = "float16" if half else "float32"
    weights = out_dir / f"{stem}.safetensors"
    atomic_write_bytes(weights, save(state, metadata={"format": "pt"}))
    atomic_write_bytes(_card_path(weights), (json.dumps(card, indent=1) + "\n").encode("utf-8"))
    return weights


def new_card(architecture: str, classes: ClassSpec, model_kwargs: dict, **extra) -> dict:
    """A fresh model card for ``architecture`` trained on ``classes``."""
    card = {
        "architecture": architecture,
        "model_kwargs": model_kwargs,
        "classes": classes.to_json(),
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input": "RGB uint8 / 255"},
    }
    card.update(extra)
    return card
