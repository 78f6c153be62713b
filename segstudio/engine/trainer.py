"""``Trainer``: the one training loop behind ``segstudio train`` and the GUI's one-click fine-tune.

Runs AdamW with the poly learning-rate schedule of DeepLab (Chen et al., TPAMI 2018, Sec. 4.1:
``lr = base_lr * (1 - step / max_steps) ** 0.9``), AMP + channels_last on CUDA, plain fp32 on CPU.
Progress goes to callbacks (the CLI prints with tqdm, the GUI turns them into Qt signals); a
:class:`CancelToken` stops it between steps, keeping the last good checkpoint.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from segstudio.core.labels import ClassSpec
from segstudio.data.dataset import SegmentationDataset
from segstudio.data.transforms import eval_transforms, train_transforms
from segstudio.engine.checkpoint import (
    build_model,
    load_checkpoint,
    load_state_into,
    new_card,
    save_checkpoint,
)
from segstudio.engine.devices import resolve_device
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.datasets import find_samples
from segstudio.losses import CLASS_WEIGHT_METHODS, class_pixel_counts, compute_class_weights, get_loss
from segstudio.metrics import ConfusionMatrix
from segstudio.models import get_model

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside the training loop when its :class:`CancelToken` was set."""


class CancelToken:
    """Thread-safe cancel flag shared by a worker and whoever may cancel it."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelled."""
        if self._event.is_set():
            raise Cancelled()


@dataclass
class TrainConfig:
    """Training options (all have defaults so a one-click fine-tune needs none).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per step.
        lr: peak learning rate of AdamW (poly decay to 0).
        weight_decay: AdamW decoupled weight decay.
        crop_size: ``(h, w)`` random crop, pixels.
        scale_range: random rescale range (relative to the dataset's typical short side).
        loss: loss spec, a name or a weighted sum such as ``"ce+0.5*dice"`` (see :func:`segstudio.losses.get_loss`).
        class_weights: per-class weights for the ``ce``/``focal`` terms, computed from the training set's
            masks: ``"none"``, ``"median"`` (median-frequency balancing) or ``"inverse"`` (inverse frequency);
            see :mod:`segstudio.losses.weights`.
        freeze_bn: keep BatchNorm statistics fixed (sensible when fine-tuning on a few images).
        freeze_encoder: train only the decoder/head: the model's ``encoder`` parameters get no gradient and
            its BatchNorm statistics stay fixed (models without an ``encoder`` attribute raise ValueError).
        holdout_fraction: for an image folder with saved labels (no ``val.txt``), hold out about this
            fraction of the labelled images (at least one, chosen by a stable hash of the file name so an
            image keeps its role as more are labelled) for validation; only when 5 or more are labelled.
        num_workers: DataLoader worker processes.
        device: ``auto``, ``cpu``, ``cuda``...
        seed: RNG seed for weights, shuffling and augmentation.
        val_every: validate every N epochs (when there is a validation set).
        max_steps: stop after this many steps in total (``None``: run all epochs).
        hflip, vflip, rotate, translate, elastic, color_jitter: augmentation, see
            :func:`segstudio.data.transforms.train_transforms`.
    """

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    crop_size: tuple[int, int] = (256, 256)
    scale_range: tuple[float, float] = (0.5, 2.0)
    loss: str = "ce"
    class_weights: str = "none"
    freeze_bn: bool = False
    freeze_encoder: bool = False
    holdout_fraction: float = 0.0
    num_workers: int = 0
    device: str = "auto"
    seed: int = 0
    val_every: int = 1
    max_steps: int | None = None
    hflip: bool = True
    vflip: bool = False
    rotate: float = 0.0
    translate: float = 0.0
    elastic: float = 0.0
    color_jitter: float = 0.2


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best_miou: float = -1.0
    history: list = field(default_factory=list)


Callback = Callable[[str, dict], None]
"""``callback(event, info)``: events ``"step"`` (epoch, step, steps_per_epoch, total_steps, loss, lr),
``"epoch"`` (epoch, train_loss, val metrics...), ``"checkpoint"`` (path), ``"done"`` (path)."""


def _freeze_bn(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


class Trainer:
    """Train a segmentation model and write checkpoints to ``out_dir``.

    Files in ``out_dir``: ``model.safetensors`` + ``model.json`` (best on validation, or last
    without validation), ``last.safetensors`` + ``last.json`` + ``last_state.pt`` (optimizer and
    counters, for resume; read back with ``torch.load(weights_only=True)``), ``history.json``.

    Args:
        model: module returning ``{"out": logits (N, K, H, W)}``.
        card: model card (architecture, classes, ...) written beside the weights.
        train_set: dataset yielding ``(float32 (3, h, w), int64 (h, w))``.
        val_set: optional full-size validation dataset (batch size 1).
        config: :class:`TrainConfig`.
        out_dir: folder for checkpoints.
        callbacks: progress listeners.
        cancel: stop between steps when set.

    The loss is ``get_loss(config.loss, weight=...)``; with ``config.class_weights`` other than ``"none"``
    the weights are computed here from the training set's masks (:mod:`segstudio.losses.weights`) and
    written to the model card as ``training.class_weights = {"method", "weights": {class name: w}}``.

    Raises:
        ValueError: a bad ``config.loss`` / ``config.class_weights``, or a training set without labelled pixels
            when class weights are requested.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        card: dict,
        train_set,
        val_set=None,
        config: TrainConfig | None = None,
        out_dir: str | Path = "runs/train",
        callbacks: list[Callback] | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        self.device = resolve_device(self.config.device)
        self.model = model.to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.config.freeze_encoder:
            if not isinstance(getattr(self.model, "encoder", None), torch.nn.Module):
                raise ValueError(f"freeze_encoder: {type(model).__name__} has no encoder to freeze; untick it")
            self.model.encoder.requires_grad_(False)
        self.card = card
        self.train_set, self.val_set = train_set, val_set
        self.out_dir = Path(out_dir)
        self.callbacks = list(callbacks or [])
        self.cancel = cancel or CancelToken()
        self.num_classes = len(card["classes"])
        check_loss_config(self.config, self.num_classes)
        self.class_weights = self._compute_class_weights()
        weight = None if self.class_weights is None else torch.as_tensor(self.class_weights, dtype=torch.float32)
        self.loss_fn = get_loss(self.config.loss, weight=weight).to(self.device)
        g = torch.Generator()
        g.manual_seed(self.config.seed)
        self.loader = DataLoader(
            train_set,
            batch_size=self.config.batch_size,
            shuffle=True,
            drop_last=len(train_set) > self.config.batch_size,
            num_workers=self.config.num_workers,
            generator=g,
            persistent_workers=self.config.num_workers > 0,
            pin_memory=self.device.type == "cuda",
        )
        self.steps_per_epoch = len(self.loader)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        if self.config.max_steps is not None:
            self.total_steps = min(self.total_steps, self.config.max_steps)
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: max(0.0, 1.0 - s / max(1, self.total_steps)) ** 0.9
        )
        self.use_amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.state = TrainState()

    def _compute_class_weights(self) -> np.ndarray | None:
        """float64 (K,) weights from the training set's full-size masks, or ``None`` for ``"none"``."""
        if self.config.class_weights == "none":
            return None
        t0 = time.perf_counter()
        ds = self.train_set
        # SegmentationDataset: its full-size, untransformed masks; any other dataset: the masks it yields.
        source = ds if hasattr(ds, "load") else (ds[i][1] for i in range(len(ds)))
        counts = class_pixel_counts(source, self.num_classes)
        weights = compute_class_weights(self.config.class_weights, counts)
        log.info(
            "%s class weights from %d masks in %.1fs: %s",
            self.config.class_weights,
            counts.num_images,
            time.perf_counter() - t0,
            " ".join(f"{w:.3g}" for w in weights),
        )
        return weights

    def _emit(self, event: str, **info) -> None:
        for cb in self.callbacks:
            cb(event, info)

    # -- checkpoints -------------------------------------------------------------------------
    def _card(self, metrics: dict | None) -> dict:
        card = dict(self.card)
        card["training"] = {
            **card.get("training", {}),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
            "epochs_done": self.state.epoch,
            "steps_done": self.state.step,
            "device": str(self.device),
            "class_weights": None
            if self.class_weights is None
            else {
                "method": self.config.class_weights,
                "weights": {c["name"]: float(w) for c, w in zip(self.card["classes"], self.class_weights)},
            },
        }
        if metrics is not None:
            card["metrics"] = metrics
        return card

    def save_last(self, metrics: dict | None = None) -> Path:
        path = save_checkpoint(self.out_dir, self.model, self._card(metrics), stem="last")
        buf = io.BytesIO()
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.state.epoch,
                "step": self.state.step,
                "best_miou": self.state.best_miou,
                "history": json.dumps(self.state.history),
            },
            buf,
        )
        atomic_write_bytes(self.out_dir / "last_state.pt", buf.getvalue())
        return path

    def resume(self, run_dir: str | Path) -> None:
        """Continue from ``run_dir/last.*`` (weights, optimizer, scheduler, counters).

        Raises:
            FileNotFoundError: when the run has no ``last`` checkpoint.
        """
        run_dir = Path(run_dir)
        if not (run_dir / "last_state.pt").is_file():
            raise FileNotFoundError(f"{run_dir}: nothing to resume (no last_state.pt)")
        loaded = load_checkpoint(run_dir / "last.safetensors")
        self.model.load_state_dict(loaded.model.state_dict())
        st = torch.load(run_dir / "last_state.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.state.epoch, self.state.step, self.state.best_miou = st["epoch"], st["step"], st["best_miou"]
        self.state.history = json.loads(st.get("history", "[]"))
        log.info("resumed %s at epoch %d step %d", run_dir, self.state.epoch, self.state.step)

    # -- loops ---------------------------------------------------------------------------------
    def validate(self) -> dict:
        """Full-size evaluation on ``val_set``; returns the confusion-matrix summary."""
        cm = ConfusionMatrix(self.num_classes)
        self.model.eval()
        with torch.inference_mode():
            for i in range(len(self.val_set)):
                self.cancel.check()
                x, y = self.val_set[i]
                x = x.unsqueeze(0).to(self.device)
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    pred = self.model(x)["out"].argmax(1)
                cm.update(y, pred[0])
        names = [c["name"] for c in self.card["classes"]]
        return cm.summary(names)

    def fit(self) -> Path:
        """Train until ``epochs`` / ``max_steps`` or cancel; returns the path of ``model.safetensors``.

        Raises:
            Cancelled: after saving nothing new when cancelled (the last good checkpoint stays).
            FloatingPointError: when the loss becomes NaN/inf (training stops; checkpoints untouched).
        """
        torch.manual_seed(self.config.seed + self.state.epoch)
        np.random.seed(self.config.seed + self.state.epoch)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        final = self.out_dir / "model.safetensors"
        while self.state.epoch < self.config.epochs and self.state.step < self.total_steps:
            self.model.train()
            if self.config.freeze_bn:
                _freeze_bn(self.model)
            elif self.config.freeze_encoder:
                _freeze_bn(self.model.encoder)
            t0, losses = time.perf_counter(), []
            for i, (x, y) in enumerate(self.loader):
                self.cancel.check()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if self.device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    out = self.model(x)
                loss = self.loss_fn(out, y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"loss became {loss.item()} at step {self.state.step}; lower the learning rate (now "
                        f"{self.scheduler.get_last_lr()[0]:.2e}). The last good checkpoint is kept."
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                self.state.step += 1
                losses.append(loss.item())
                self._emit(
                    "step",
                    epoch=self.state.epoch,
                    step=i + 1,
                    steps_per_epoch=self.steps_per_epoch,
                    global_step=self.state.step,
                    total_steps=self.total_steps,
                    loss=losses[-1],
                    lr=self.scheduler.get_last_lr()[0],
                )
                if self.state.step >= self.total_steps:
                    break
            self.state.epoch += 1
            info = {"epoch": self.state.epoch, "train_loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
            metrics = None
            last_epoch = self.state.epoch >= self.config.epochs or self.state.step >= self.total_steps
            if self.val_set is not None and (self.state.epoch % self.config.val_every == 0 or last_epoch):
                metrics = self.validate()
                info["val_miou"] = metrics["miou"]
                info["val_pixel_accuracy"] = metrics["pixel_accuracy"]
            self.state.history.append(info)
            self.save_last(metrics)
            if metrics is not None and metrics["miou"] is not None and metrics["miou"] > self.state.best_miou:
                self.state.best_miou = metrics["miou"]
                save_checkpoint(self.out_dir, self.model, self._card({"val": metrics}))
                self._emit("checkpoint", path=str(final), epoch=self.state.epoch, step=self.state.step)
            elif self.val_set is None:
                save_checkpoint(self.out_dir, self.model, self._card(None))
                self._emit("checkpoint", path=str(final), epoch=self.state.epoch, step=self.state.step)
            atomic_write_bytes(self.out_dir / "history.json", json.dumps(self.state.history, indent=1).encode())
            self._emit("epoch", **info)
        if not final.is_file():  # validation never improved on -1 (cannot happen) or no epoch finished
            save_checkpoint(self.out_dir, self.model, self._card(None))
        self._emit("done", path=str(final))
        return final


def check_loss_config(config: TrainConfig, num_classes: int) -> None:
    """Validate ``config.loss`` and ``config.class_weights`` before any data or model is loaded.

    Raises:
        ValueError: a bad loss spec, an unknown class-weight method, or class weights with a loss that
            takes none (e.g. ``"dice"``).
    """
    if config.class_weights not in CLASS_WEIGHT_METHODS:
        raise ValueError(
            f"unknown class-weight method {config.class_weights!r}; choose one of {', '.join(CLASS_WEIGHT_METHODS)}"
        )
    get_loss(config.loss, weight=None if config.class_weights == "none" else torch.ones(num_classes))


def _base_short_side(ds: SegmentationDataset) -> int:
    image, _ = ds.load(0)
    return int(min(image.shape[:2]))


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

    Args:
        data_dir: dataset layout (``images/``, ``masks/``, splits, ``classes.json``) or image folder + ``labels/``.
        out_dir: run folder for checkpoints.
        model_name: registry name; required unless ``init`` is given.
        init: checkpoint to start from (``"default"`` for the embedded model). When the dataset's
            classes differ from the checkpoint's, the classifier is replaced (fresh init).
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
    """
    config = config or TrainConfig()
    samples, classes = find_samples(data_dir, "train")
    if not samples:
        raise FileNotFoundError(f"{data_dir}: no labelled images to train on; save some corrected labels first")
    check_loss_config(config, classes.num_classes)
    try:
        val_samples, _ = find_samples(data_dir, "val") if (Path(data_dir) / "val.txt").is_file() else ([], None)
    except FileNotFoundError:
        val_samples = []
    if not val_samples and config.holdout_fraction > 0 and not (Path(data_dir) / "images").is_dir():
        samples, val_samples = holdout_split(samples, config.holdout_fraction)
    torch.manual_seed(config.seed)
    parent = None
    if init is not None:
        loaded = load_checkpoint(None if str(init) == "default" else init)
        if model_name is not None and model_name != loaded.card["architecture"]:
            raise ValueError(f"--model {model_name} contradicts --init, which is a {loaded.card['architecture']}")
        card = dict(loaded.card)
        model_name = card["architecture"]
        same_classes = ClassSpec.from_json(card["classes"]).names == classes.names
        card["classes"] = classes.to_json()
        model = build_model(card)
        fresh = load_state_into(model, loaded.model.state_dict(), allow_new_head=not same_classes)
        if fresh:
            log.info("classes differ from %s: new classifier (%s)", init, ", ".join(fresh))
        parent = str(loaded.path)
        card.pop("metrics", None)
    else:
        if model_name is None:
            raise ValueError("give a model name (--model) or a checkpoint to start from (--init)")
        kwargs = dict(model_kwargs or {})
        model = get_model(model_name, classes.num_classes, pretrained=True, **kwargs)
        kwargs.pop("pretrained", None)
        pretrained = bool(getattr(getattr(model, "encoder", None), "pretrained", False))
        card = new_card(model_name, classes, kwargs, encoder_pretrained=pretrained)
    card["parent"] = parent
    card["training_data"] = {"path": str(Path(data_dir).resolve()), "images": len(samples), "val_images": len(val_samples)}
    if not (Path(data_dir) / "images").is_dir():  # app folder: which corrected images trained / validated
        card["training_data"]["files"] = [s.image.name for s in samples]
        card["training_data"]["val_files"] = [s.image.name for s in val_samples]
    card.update(extra_card or {})
    train_set = SegmentationDataset(samples, classes.num_classes)
    train_set.transform = train_transforms(
        crop_size=tuple(config.crop_size),
        scale_range=tuple(config.scale_range),
        base_short_side=_base_short_side(train_set),
        hflip=config.hflip,
        vflip=config.vflip,
        rotate=config.rotate,
        translate=config.translate,
        elastic=config.elastic,
        color_jitter=config.color_jitter,
    )
    val_set = SegmentationDataset(val_samples, classes.num_classes, eval_transforms()) if val_samples else None
    trainer = Trainer(model, card, train_set, val_set, config, out_dir, callbacks, cancel)
    if resume:
        trainer.resume(out_dir)
    return trainer.fit()


def holdout_split(samples: list, fraction: float, min_images: int = 5) -> tuple[list, list]:
    """Split labelled samples into ``(train, held_out)`` for validation of an app-folder fine-tune.

    An image is held out when a stable hash (CRC-32) of its file name falls in the lowest ``fraction`` of the
    32-bit range, so its role does not change as more images get labelled; at least one image is held out.
    With fewer than ``min_images`` samples nothing is held out (every image is needed for training).
    """
    import zlib

    if len(samples) < min_images or fraction <= 0:
        return list(samples), []
    key = {id(s): zlib.crc32(s.image.name.encode("utf-8")) / 2**32 for s in samples}
    held = [s for s in samples if key[id(s)] < fraction] or [min(samples, key=lambda s: key[id(s)])]
    if len(held) == len(samples):
        held = held[:-1]
    return [s for s in samples if all(s is not h for h in held)], held


def finetune_config(**overrides) -> TrainConfig:
    """Defaults of the GUI's one-click fine-tune: short, gentle, BatchNorm frozen (few images).

    40 steps of batch 4 at 256×256 with lr 2e-4 take about a minute on a 2-core CPU for DeepLab v3+ /
    MobileNetV2. Any :class:`TrainConfig` field can be overridden.
    With 5 or more labelled images about 20% are held out for the validation mIoU curve (:func:`holdout_split`).
    """
    base = dict(epochs=1000, batch_size=4, lr=2e-4, crop_size=(256, 256), scale_range=(0.75, 1.5), freeze_bn=True, max_steps=40,
                holdout_fraction=0.2)
    base.update(overrides)
    return TrainConfig(**base)
