"""Fine-tune on a folder: :func:`train_on_folder` (the path the CLI's ``segstudio train`` and the GUI's one-click
fine-tune share), the one-click config (:func:`finetune_config`), the fine-tune recipe applied to a config
(:func:`apply_recipe`), and which labelled images validate instead of training (:func:`user_validation_split`,
:func:`holdout_split`).

:func:`train_on_folder` finds the samples, builds or loads the model (a checkpoint's classifier rows follow the
classes by name, :func:`segstudio.core.class_mapping.head_rows`), writes the model card (lineage, content keys of the
images, :mod:`segstudio.engine.heldout`), fills the recipe's fields (:mod:`segstudio.engine.recipe`) and runs the
training loop, :class:`segstudio.engine.trainer.Trainer`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from segstudio.core.labels import ClassSpec, mirror_permutation
from segstudio.data.dataset import SegmentationDataset
from segstudio.data.transforms import eval_transforms, train_transforms
from segstudio.engine import recipe as recipe_mod
from segstudio.engine.cancel import CancelToken
from segstudio.engine.checkpoint import build_model, load_checkpoint, load_state_into, new_card
from segstudio.engine.distributed import current, device_for, distributed_session
from segstudio.engine.heldout import card_content_keys, file_sha1
from segstudio.engine.train_config import RECIPE_FIELDS, TRAIN_SPLITS, TrainConfig
from segstudio.engine.trainer import Callback, Trainer, check_loss_config
from segstudio.io.datasets import find_samples
from segstudio.io.layout import VALIDATION_LIST_FILENAME
from segstudio.core.class_mapping import head_rows
from segstudio.io.project import Project, ProjectError
from segstudio.io.provenance_files import load_human_labels
from segstudio.io.validation import read_validation_list
from segstudio.models import get_model

log = logging.getLogger(__name__)


INHERITED_CARD_KEYS_DROPPED = (
    "created", "name", "training_command", "cpu_latency_ms_360x480", "data_note", "metrics", "training", "imported_from",
)
"""Card fields that describe the parent's own making, not the fine-tuned version's: never inherited."""
MAX_STATS_IMAGES = 64
"""The recipe's data statistics read at most this many training masks (evenly spread)."""


def apply_recipe(config: TrainConfig, stats: recipe_mod.DataStats, fresh_head: bool, device_type: str) -> tuple[TrainConfig, dict]:
    """Fill the ``None`` fields of ``config`` (see :data:`RECIPE_FIELDS`) from :func:`recipe.choose_recipe`.

    Fields that hold a value were chosen explicitly and stay. Returns ``(config, card record)``: the record
    lists what the recipe chose (``choices``), what was given explicitly (``overridden``) and why (``reasons``).

    Raises:
        ValueError: no labelled pixels, or a budget <= 0.
    """
    given = {f: getattr(config, f) for f in RECIPE_FIELDS if getattr(config, f) is not None}
    r = recipe_mod.choose_recipe(stats, fresh_head, device_type, config.budget_s, given=given)
    choice = {
        "epochs": 10**6,
        "batch_size": r.batch_size,
        "lr": r.lr_body,
        "lr_head": r.lr_head,
        "crop_size": tuple(r.crop_size),
        "scale_range": tuple(r.scale_range),
        "loss": r.loss,
        "class_weights": r.class_weights,
        "class_weight_max": r.class_weight_max,
        "freeze_bn": r.bn != "train",
        "adapt_bn": r.bn == "adabn",
        "warmup_fraction": recipe_mod.WARMUP_FRACTION if fresh_head else 0.0,
        "val_interval_s": r.val_interval_s,
        "patience": 0,  # no early stop: a few validation images cannot tell when to stop
        "budget_s": r.budget_s,
        "keep": "last",
    }
    if config.budget_s is None and (config.max_steps is not None or config.epochs is not None):
        # An explicit schedule (steps / epochs) replaces the budget: no time limit, validation every val_every epochs.
        choice.update(budget_s=None, val_interval_s=None, patience=None)
    if "freeze_bn" in given and "adapt_bn" not in given:
        choice["adapt_bn"] = False  # the user's BatchNorm choice stands as given
    filled = {f: v for f, v in choice.items() if f not in given}
    out = replace(config, **filled)
    record = {
        "budget_s": out.budget_s,
        "choices": {k: list(v) if isinstance(v, tuple) else v for k, v in filled.items()},
        "overridden": {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()},
        "bn": "train" if not out.freeze_bn else ("adabn" if out.adapt_bn else "frozen"),
        "reasons": r.reasons,
        "data": {
            "images": stats.num_images,
            "val_images": stats.num_val,
            "short_side": stats.short_side,
            "class_fraction": [round(float(x), 5) for x in stats.class_pixels / max(1, stats.class_pixels.sum())],
            "thickness_px": [round(float(x), 2) for x in stats.thickness_px],
        },
        "device": device_type,
    }
    log.info("fine-tune recipe: %s (explicit: %s)", record["choices"], record["overridden"])
    return out, record


def _recipe_stats(ds: SegmentationDataset, num_val: int) -> recipe_mod.DataStats:
    n = len(ds)
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_STATS_IMAGES)).round().astype(int))
    return recipe_mod.data_stats((ds.load(int(i))[1] for i in idx), ds.num_classes, num_val)


def _median_image_size(paths: list[Path]) -> list[int] | None:
    """Median ``[H, W]`` in pixels of the images ``paths`` (headers only), or ``None`` when none is readable."""
    from PIL import Image

    sizes = []
    for p in paths:
        try:
            with Image.open(p) as im:
                sizes.append((im.height, im.width))
        except OSError:
            continue
    if not sizes:
        return None
    return [int(np.median([s[0] for s in sizes])), int(np.median([s[1] for s in sizes]))]


def _train_splits(data_dir: str | Path, train_split: str) -> tuple[str, ...]:
    """The dataset splits ``train_split`` names (``"train"`` → ``("train",)``, ``"train+val"`` → both).

    Raises:
        ValueError: an unknown ``train_split``, or ``"train+val"`` for a folder that has no ``val.txt`` (and is
            no manifest), which says what to do.
    """
    if train_split not in TRAIN_SPLITS:
        raise ValueError(f"train_split must be one of {', '.join(TRAIN_SPLITS)}; got {train_split!r}")
    splits = tuple(train_split.split("+"))
    if "val" in splits and not (Path(data_dir) / "val.txt").is_file() and not Path(data_dir).is_file():
        raise ValueError(
            f"{data_dir}: --train-split {train_split} needs a dataset folder with train.txt and val.txt (or a manifest); "
            "an image folder's saved labels have no val split: train on them with the default --train-split train"
        )
    return splits


def train_on_folder(
    data_dir: str | Path,
    out_dir: str | Path,
    model_name: str | None = None,
    init: str | Path | None = None,
    config: TrainConfig | None = None,
    model_kwargs: dict | None = None,
    callbacks: list[Callback] | None = None,
    cancel: CancelToken | None = None,
    resume: bool = False,
    extra_card: dict | None = None,
) -> Path:
    """Train on a dataset folder or an app folder with saved labels (the CLI's and GUI's shared path).

    Under ``torchrun`` this joins the process group (:func:`segstudio.engine.distributed.distributed_session`,
    NCCL on CUDA, gloo on the CPU, ``config.dist_timeout_s``) and trains data-parallel; see :class:`Trainer`.

    Args:
        data_dir: dataset layout (``images/``, ``masks/``, splits, ``classes.json``), image folder + ``labels/``,
            or a dataset manifest ``.json`` (:func:`segstudio.engine.cluster.write_manifest`).
        out_dir: run folder for checkpoints.
        model_name: registry name; required unless ``init`` is given.
        init: checkpoint to start from (``"default"`` for the embedded model). When the dataset's
            classes differ from the checkpoint's, the classifier is rebuilt class by class
            (:func:`segstudio.core.class_mapping.head_rows`): a class of the same name, or renamed from one of the
            checkpoint's (an app folder's ``class_aliases``), keeps its learnt row in its new place; a class the
            checkpoint never had starts fresh, and then the classifier learns at the new-head rate. The card
            records the mapping as ``training.head_rows`` (``{class: checkpoint class or None}``).
        config: :class:`TrainConfig`.
        model_kwargs: builder arguments for a new model (e.g. ``{"encoder": "mobilenet_v2"}``).
        resume: continue ``out_dir``'s last checkpoint.
        extra_card: extra model-card fields (e.g. ``parent``, ``name``).

    Returns:
        Path of ``out_dir/model.safetensors``.

    Raises:
        FileNotFoundError: no dataset / no labelled images.
        ValueError: neither ``model_name`` nor ``init``, ``model_name`` contradicts ``init``, or a bad
            ``config.loss`` / ``config.class_weights`` (see :func:`check_loss_config`).
        CheckpointError: ``init`` cannot be loaded.
        Cancelled: when ``cancel`` fired.
        PeerFailure: under ``torchrun``, another rank died or timed out.
    """
    t_start = time.perf_counter()
    config = config or TrainConfig()
    splits = _train_splits(data_dir, config.train_split)
    samples, classes = find_samples(data_dir, "train")
    for split in splits[1:]:
        samples += find_samples(data_dir, split)[0]
    if not samples:
        raise FileNotFoundError(f"{data_dir}: no labelled images to train on; save some corrected labels first")
    if not config.recipe:  # without the recipe every field needs a value: the TrainConfig defaults
        defaults = TrainConfig()
        config = replace(config, **{f: getattr(defaults, f) for f in RECIPE_FIELDS if getattr(config, f) is None})
    if config.loss is not None and config.class_weights is not None:
        check_loss_config(config, classes.num_classes)
    try:
        has_val = (Path(data_dir) / "val.txt").is_file() or Path(data_dir).is_file()  # split list or manifest
        val_samples, _ = find_samples(data_dir, "val") if has_val and "val" not in splits else ([], None)
    except FileNotFoundError:
        val_samples = []
    app_folder = not (Path(data_dir) / "images").is_dir() and not Path(data_dir).is_file()
    if app_folder:  # the images the person set aside for validation never train
        samples, val_samples = user_validation_split(data_dir, samples)
    if not val_samples and config.holdout_fraction > 0 and "val" not in splits and app_folder:
        samples, val_samples = holdout_split(samples, config.holdout_fraction)
    if not samples:
        raise FileNotFoundError(
            f"{data_dir}: every labelled image is set aside for validation ({VALIDATION_LIST_FILENAME}); "
            "keep at least one for training"
        )
    torch.manual_seed(config.seed)
    parent, fresh = None, []
    if init is not None:
        loaded = load_checkpoint(None if str(init) == "default" else init)
        if model_name is not None and model_name != loaded.card["architecture"]:
            raise ValueError(f"--model {model_name} contradicts --init, which is a {loaded.card['architecture']}")
        card = dict(loaded.card)
        model_name = card["architecture"]
        # Each class inherits the classifier row of its name or former name (the app folder's renames), so a
        # class edit carries through: a reordered or renamed class keeps what the model learnt of it.
        old_names = ClassSpec.from_json(card["classes"]).names
        rows = head_rows(old_names, classes.names, _folder_aliases(data_dir) if app_folder else None)
        same_classes = rows == list(range(len(old_names)))
        card["classes"] = classes.to_json()
        model = build_model(card)
        fresh = load_state_into(model, loaded.model.state_dict(), head_rows=None if same_classes else rows)
        if fresh:
            log.info("classes differ from %s: new classifier rows for %s", init, [n for n, j in zip(classes.names, rows) if j is None])
        parent = str(loaded.path)
        for key in INHERITED_CARD_KEYS_DROPPED:
            card.pop(key, None)
        if not same_classes:
            card["training"] = {"head_rows": {n: None if j is None else old_names[j] for n, j in zip(classes.names, rows)}}
    else:
        if model_name is None:
            raise ValueError("give a model name (--model) or a checkpoint to start from (--init)")
        kwargs = dict(model_kwargs or {})
        model = get_model(model_name, classes.num_classes, **{"pretrained": True, **kwargs})  # kwargs may say pretrained=False
        kwargs.pop("pretrained", None)
        pretrained = bool(getattr(getattr(model, "encoder", None), "pretrained", False))
        card = new_card(model_name, classes, kwargs, encoder_pretrained=pretrained)
    card["parent"] = parent
    card["training_data"] = {"path": str(Path(data_dir).resolve()), "images": len(samples), "val_images": len(val_samples)}
    if len(splits) > 1:  # the weights also saw val: its figures are not held-out figures any more
        card["training_data"]["splits"] = list(splits)
    if not (Path(data_dir) / "images").is_dir():  # app folder: which corrected images trained / validated
        card["training_data"]["files"] = [s.image.name for s in samples]
        card["training_data"]["val_files"] = [s.image.name for s in val_samples]
    # Content keys: the Metrics dock's held-out rule (segstudio.engine.heldout) works on any machine and copy.
    card["training_data"]["image_sha1"] = [file_sha1(s.image) for s in samples]
    card["training_data"]["val_image_sha1"] = [file_sha1(s.image) for s in val_samples]
    # perceptual keys + every ancestor's keys (issue 30)
    card["training_data"].update(card_content_keys([s.image for s in samples], [s.image for s in val_samples], loaded.card if init is not None else None))
    size = _median_image_size([s.image for s in samples[:64]])
    if size is not None:  # the Predictor's scale="auto" compares a photo's size with this
        card["training_data"]["image_size"] = size
    card.update(extra_card or {})
    train_set = SegmentationDataset(samples, classes.num_classes)
    recipe_info = None
    if config.recipe:
        device_type = device_for(current(), config.device).type
        # A new classifier on pretrained layers learns faster; a model from scratch has one rate for every layer
        # (the Trainer's groups come from ``fresh``, so the card records what is applied).
        config, recipe_info = apply_recipe(config, _recipe_stats(train_set, len(val_samples)), bool(fresh), device_type)
        check_loss_config(config, classes.num_classes)
    mirror = mirror_permutation(classes.names) if config.hflip else None
    if mirror is not None:  # a mirrored image's left parts are right parts: the labels swap with the flip
        card.setdefault("training", {})["hflip_swaps"] = [[classes.names[i], classes.names[j]] for i, j in enumerate(mirror) if i < j]
    train_set.transform = train_transforms(
        crop_size=tuple(config.crop_size),
        scale_range=tuple(config.scale_range),  # relative to each image's native size, as the Predictor sees it
        hflip=config.hflip,
        vflip=config.vflip,
        rotate=config.rotate,
        translate=config.translate,
        elastic=config.elastic,
        color_jitter=config.color_jitter,
        hflip_permutation=mirror,
    )
    # An app folder's validation scores only the pixels a person painted or changed (its provenance): a model is
    # never graded on predictions accepted unchanged (issue 30).
    human_only = load_human_labels if app_folder else None
    val_set = SegmentationDataset(val_samples, classes.num_classes, eval_transforms(), mask_filter=human_only) if val_samples else None
    if val_samples and app_folder:
        card["training_data"]["val_scored_pixels"] = "person-labelled only (provenance)"
    with distributed_session(config.device, config.dist_timeout_s) as dist_ctx:
        trainer = Trainer(
            model, card, train_set, val_set, config, out_dir, callbacks, cancel, dist_ctx,
            fresh_params=fresh, t_start=t_start, recipe_info=recipe_info,
        )
        if resume:
            trainer.resume(out_dir)
        return trainer.fit()


def _folder_aliases(folder: str | Path) -> dict[str, str]:
    """An app folder's class renames (``{former name: current name}``, :attr:`Project.class_aliases`); none when
    its project file cannot be read (then a renamed class starts a fresh classifier row, with a warning)."""
    try:
        return dict(Project.load(folder).class_aliases)
    except ProjectError as exc:
        log.warning("class renames unknown, renamed classes start fresh: %s", exc)
        return {}


def user_validation_split(folder: str | Path, samples: list) -> tuple[list, list]:
    """Split an app folder's labelled samples into ``(train, validation)`` by ``labels/validation.txt``: the images
    a person set aside for validation (file names, one a line; absent file: none). Nothing else is ever withheld
    from training: every corrected image trains the model.

    Raises:
        ValueError: the list is not UTF-8 text (the message names the file).
    """
    names = read_validation_list(folder)
    if not names:
        return list(samples), []
    return [s for s in samples if s.image.name not in names], [s for s in samples if s.image.name in names]


def holdout_split(samples: list, fraction: float, min_images: int = 5) -> tuple[list, list]:
    """Split labelled samples into ``(train, held_out)`` for validation of an app-folder fine-tune.

    An image is held out when a stable hash (CRC-32) of its file name falls in the lowest ``fraction`` of the
    32-bit range, so its role does not change as more images get labelled; at least one image is held out.
    With fewer than ``min_images`` samples nothing is held out (every image is needed for training).
    """
    import os
    import zlib

    if len(samples) < min_images or fraction <= 0:
        return list(samples), []
    # os.fsencode: the UTF-8 bytes for normal names, and the raw bytes of a non-UTF-8 name (no UnicodeEncodeError).
    key = {id(s): zlib.crc32(os.fsencode(s.image.name)) / 2**32 for s in samples}
    held = [s for s in samples if key[id(s)] < fraction] or [min(samples, key=lambda s: key[id(s)])]
    if len(held) == len(samples):
        held = held[:-1]
    return [s for s in samples if all(s is not h for h in held)], held


def finetune_config(**overrides) -> TrainConfig:
    """The GUI's one-click fine-tune (and ``segstudio train --init``): the recipe within a time budget.

    Every field the recipe chooses (:data:`RECIPE_FIELDS`: crop, batch, loss and class weights, learning rates,
    BatchNorm handling, schedule) is ``None`` here, so :func:`train_on_folder` derives it from the data, the
    model, the device and ``budget_s`` (default: :func:`segstudio.engine.recipe.default_budget_s`, 3 min on a
    CPU, 1 min on CUDA); see :mod:`segstudio.engine.recipe`. Any :class:`TrainConfig` field can be given in
    ``overrides``, and a given field overrides the recipe (e.g. ``max_steps=2`` caps the steps, ``lr=1e-3``
    fixes the rate of the pretrained layers). Every labelled image trains the model except those the person set
    aside in ``labels/validation.txt`` (:func:`user_validation_split`), which draw the validation curve; the model
    is the final weights (``keep="last"``), never a checkpoint picked on a few images.
    """
    base = {f: None for f in RECIPE_FIELDS}
    base.update(recipe=True, holdout_fraction=0.0)
    base.update(overrides)
    return TrainConfig(**base)
