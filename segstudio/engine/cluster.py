"""Hand a fine-tune to a cluster and take its result back.

1. :func:`write_manifest` lists the labelled (image, mask) pairs and the classes in one JSON file
   (read back by :func:`segstudio.io.datasets.read_manifest`, so ``segstudio train --data manifest.json``
   trains on exactly those files, split as written).
2. :func:`torchrun_command` writes the exact ``torchrun ... -m segstudio train ...`` command line that
   runs the same :class:`~segstudio.engine.train_config.TrainConfig` on N GPUs per node and M nodes
   (single node: ``--standalone``; several: c10d rendezvous).
3. :func:`import_checkpoint` copies the run's ``model.safetensors`` + ``model.json`` into the image
   folder's model versions (``labels/models/vNNN``) so the app can switch to it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path

from segstudio.core.labels import ClassSpec
from segstudio.engine.checkpoint import load_checkpoint, resolve_checkpoint
from segstudio.engine.options import config_to_args
from segstudio.engine.finetune import holdout_split
from segstudio.engine.train_config import TrainConfig
from segstudio.engine.versions import next_version_dir
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.datasets import MANIFEST_FORMAT, DatasetSample, find_samples
from segstudio.io.labels import load_classes
from segstudio.io.layout import CARD_FILENAME, HISTORY_FILENAME, WEIGHTS_FILENAME, ProjectLayout

log = logging.getLogger(__name__)

DEFAULT_RDZV_PORT = 29400
"""torchrun's conventional c10d rendezvous port."""


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` when both are on one drive, else absolute; always with ``/``."""
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


def write_manifest(
    path: str | Path, splits: dict[str, list[DatasetSample]], classes: ClassSpec, relative: bool = True
) -> Path:
    """Write a dataset manifest (format of :func:`segstudio.io.datasets.read_manifest`) atomically.

    Args:
        path: the ``.json`` file to write (its folder is created).
        splits: ``{"train": [...], "val": [...]}``; ``"train"`` must not be empty.
        classes: the class list the masks index.
        relative: store paths relative to the manifest's folder (portable when the folder travels with
            it, e.g. ``rsync`` of the image folder); ``False`` stores absolute paths.

    Returns:
        ``path``.

    Raises:
        ValueError: no training samples, or ``path`` not ending in ``.json``.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path}: a manifest must be a .json file")
    if not splits.get("train"):
        raise ValueError("the manifest needs at least one training image (save some corrected labels first)")
    base = path.parent
    base.mkdir(parents=True, exist_ok=True)
    fmt = (lambda p: _rel(Path(p), base)) if relative else (lambda p: Path(p).resolve().as_posix())
    data = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "classes": classes.to_json(),
        "splits": {name: [{"image": fmt(s.image), "mask": fmt(s.mask)} for s in items] for name, items in splits.items()},
    }
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
    return path


def manifest_for_folder(folder: str | Path, path: str | Path, holdout_fraction: float = 0.0) -> Path:
    """Manifest of every labelled image of an app folder (or dataset folder), with an optional held-out val split.

    The split is the one :func:`segstudio.engine.finetune.train_on_folder` would make locally
    (:func:`~segstudio.engine.finetune.holdout_split`); a dataset folder keeps its ``val.txt``.

    Raises:
        FileNotFoundError: not a dataset / no labelled images.
    """
    folder = Path(folder)
    samples, classes = find_samples(folder, "train")
    if not samples:
        raise FileNotFoundError(f"{folder}: no labelled images; save some corrected labels first")
    val: list[DatasetSample] = []
    if (folder / "val.txt").is_file():
        val, _ = find_samples(folder, "val")
    elif holdout_fraction > 0 and not (folder / "images").is_dir():
        samples, val = holdout_split(samples, holdout_fraction)
    return write_manifest(path, {"train": samples, "val": val}, classes)


# Resolved before the command is written: holdout_fraction becomes the manifest's val split; recipe is the CLI's
# default with --init (torchrun_command adds --no-recipe when a fine-tune config does without it).
_NOT_FLAGS = ("holdout_fraction", "recipe")


def train_args(config: TrainConfig) -> list[str]:
    """The ``segstudio train`` flags that reproduce ``config`` (every option spelled out, defaults included;
    ``holdout_fraction`` and ``recipe`` excepted, see ``_NOT_FLAGS``). Generated from the flags TrainConfig's
    fields carry (:func:`segstudio.engine.options.config_to_args`)."""
    return config_to_args(config, skip=_NOT_FLAGS)


def torchrun_command(
    data: str | Path,
    output: str | Path,
    config: TrainConfig,
    *,
    model: str | None = None,
    init: str | Path | None = None,
    model_kwargs: dict | None = None,
    nproc_per_node: int = 1,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
    rdzv_id: str = "segstudio",
    launcher: str = "torchrun",
    resume: bool = False,
) -> list[str]:
    """The exact command that runs ``segstudio train`` with ``config`` under torchrun.

    One node: ``torchrun --standalone --nproc-per-node N -m segstudio train ...``. Several nodes (run the
    same command on each): ``torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint
    HOST:PORT --rdzv-id ID -m segstudio train ...``. ``config.batch_size`` is the global batch, split over the
    ``N × M`` processes.

    Args:
        data: dataset folder or manifest (:func:`write_manifest`) as the cluster sees it.
        output: run folder on the cluster (shared by the nodes).
        config: the training options (see :func:`train_args`).
        model: architecture name for a new model; or ``init``: checkpoint to start from (``"default"``).
        model_kwargs: builder arguments for a new model (``--encoder``, ``--output-stride``, ``--model-arg``).
        nproc_per_node: processes (GPUs) per node, >= 1.
        nnodes: nodes, >= 1.
        rdzv_endpoint: ``HOST[:PORT]`` of the rendezvous (node 0's address); required when ``nnodes > 1``.
        rdzv_id: job id shared by the nodes.
        launcher: ``"torchrun"`` or e.g. ``"python -m torch.distributed.run"`` (split on spaces).
        resume: add ``--resume`` (continue the run in ``output``; any number of processes).

    Returns:
        The argv list; join it with :func:`format_command` for a shell.

    Raises:
        ValueError: bad process counts, a missing rendezvous endpoint, neither/both of ``model``/``init``, or a
            global batch that does not divide over the processes.
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise ValueError(f"need at least one process per node and one node, got {nproc_per_node} × {nnodes}")
    if (model is None) == (init is None):
        raise ValueError("give exactly one of model (a new architecture) or init (a checkpoint to fine-tune)")
    world = nproc_per_node * nnodes
    if config.batch_size is not None and config.batch_size % world:
        raise ValueError(
            f"the global batch {config.batch_size} does not divide over {world} processes ({nnodes} node(s) × "
            f"{nproc_per_node}); pick a batch size that is a multiple of {world}"
        )
    cmd = shlex.split(launcher)
    if nnodes == 1:
        cmd += ["--standalone", f"--nproc-per-node={nproc_per_node}"]
    else:
        if not rdzv_endpoint:
            raise ValueError("several nodes need a rendezvous endpoint HOST[:PORT] (the first node's address)")
        if ":" not in rdzv_endpoint:
            rdzv_endpoint = f"{rdzv_endpoint}:{DEFAULT_RDZV_PORT}"
        cmd += [
            f"--nnodes={nnodes}",
            f"--nproc-per-node={nproc_per_node}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={rdzv_endpoint}",
            f"--rdzv-id={rdzv_id}",
        ]
    cmd += ["-m", "segstudio", "train", "--data", str(data), "-o", str(output)]
    if model is not None:
        cmd += ["--model", model]
        for k, v in (model_kwargs or {}).items():
            if k == "encoder":
                cmd += ["--encoder", str(v)]
            elif k == "output_stride":
                cmd += ["--output-stride", str(v)]
            else:
                cmd += [f"--model-arg={k}={json.dumps(v) if not isinstance(v, str) else v}"]
    else:
        cmd += ["--init", str(init)]
        if not config.recipe:
            cmd.append("--no-recipe")
    cmd += train_args(config)
    if resume:
        cmd.append("--resume")
    return cmd


def format_command(argv: list[str]) -> str:
    """A POSIX-shell line for ``argv`` (quoted where needed), as the GUI shows it for copying."""
    return shlex.join(argv)


def import_checkpoint(src: str | Path, folder: str | Path, name: str | None = None) -> Path:
    """Copy a trained checkpoint into ``folder``'s model versions as a new ``labels/models/vNNN``.

    The weights are copied byte for byte; the card gets ``name`` (default ``"<folder>/vNNN"``) and
    ``imported_from``. The checkpoint is loaded first, so a broken file is refused before anything is written.

    Args:
        src: ``model.safetensors`` (with ``model.json`` beside it) or a run folder.
        folder: the image folder whose versions receive it.
        name: display name for the model picker.

    Returns:
        Path of the new version's ``model.safetensors``.

    Raises:
        CheckpointError: ``src`` is missing or does not load.
        ValueError: the checkpoint's classes differ from the folder's saved ``labels/classes.json``.
    """
    folder = Path(folder)
    weights = resolve_checkpoint(src)
    loaded = load_checkpoint(weights)
    saved = ProjectLayout(folder).classes_file
    if saved.is_file():
        mine = load_classes(saved)
        if mine.names != loaded.classes.names:
            raise ValueError(
                f"{weights} predicts {', '.join(loaded.classes.names)} but {folder} is labelled with "
                f"{', '.join(mine.names)}; train on this folder's manifest or open the matching folder"
            )
    dst = next_version_dir(folder)
    dst.mkdir(parents=True)
    card = dict(loaded.card)
    card["name"] = name or f"{folder.name}/{dst.name}"
    card["imported_from"] = str(weights.resolve())
    # Card first: a version counts (list_versions) only once its weights exist, i.e. when both are written.
    atomic_write_bytes(dst / CARD_FILENAME, (json.dumps(card, indent=1) + "\n").encode("utf-8"))
    for extra in (HISTORY_FILENAME,):
        if (weights.parent / extra).is_file():
            atomic_write_bytes(dst / extra, (weights.parent / extra).read_bytes())
    atomic_write_bytes(dst / WEIGHTS_FILENAME, weights.read_bytes())
    log.info("imported %s as %s", weights, dst)
    return dst / WEIGHTS_FILENAME
