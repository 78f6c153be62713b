"""``Trainer``: the one training loop behind ``segstudio train`` and the GUI's one-click fine-tune.

Runs AdamW with the poly learning-rate schedule of DeepLab (Chen et al., TPAMI 2018, Sec. 4.1:
``lr = base_lr * (1 - step / max_steps) ** 0.9``), AMP + channels_last on CUDA, plain fp32 on CPU.
Progress goes to callbacks (the CLI prints with tqdm, the GUI turns them into Qt signals); a
:class:`CancelToken` stops it between steps, keeping the last good checkpoint.

Under ``torchrun`` the same loop runs data-parallel (Li et al., "PyTorch Distributed: Experiences on
Accelerating Data Parallel Training", VLDB 2020): the model is wrapped in DistributedDataParallel,
each rank reads its shard through a DistributedSampler and loads ``batch_size / world_size`` images,
rank 0 alone writes checkpoints and reports progress, and validation confusion matrices are summed
over ranks (:mod:`segstudio.engine.distributed`).

Training on a folder (finding the samples, the model card, the recipe) is
:func:`segstudio.engine.finetune.train_on_folder`; the cancel flag is :mod:`segstudio.engine.cancel`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from segstudio.engine import accel
from segstudio.engine import recipe as recipe_mod
from segstudio.engine.cancel import CancelToken
from segstudio.engine.train_config import RECIPE_FIELDS, TrainConfig  # noqa: F401 (RECIPE_FIELDS, TrainConfig re-exported: their old home)
from segstudio.engine.checkpoint import load_checkpoint, save_checkpoint
from segstudio.engine.distributed import (
    DistContext,
    PeerFailure,  # noqa: F401  (re-exported: raised by Trainer.fit)
    all_reduce_agree,
    all_reduce_confusion,
    all_reduce_mean,
    barrier,
    current,
    device_for,
    peer_errors,
)
from segstudio.io.atomic import atomic_write_bytes
from segstudio.io.layout import HISTORY_FILENAME, WEIGHTS_FILENAME
from segstudio.losses import CLASS_WEIGHT_METHODS, class_pixel_counts, compute_class_weights, get_loss
from segstudio.metrics import ConfusionMatrix

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    epoch: int = 0
    step: int = 0
    best_miou: float = -1.0
    history: list = field(default_factory=list)


Callback = Callable[[str, dict], None]
"""``callback(event, info)``: events ``"step"`` (epoch, step, steps_per_epoch, total_steps, loss, lr),
``"epoch"`` (epoch, train_loss, val metrics...), ``"checkpoint"`` (path), ``"done"`` (path)."""


class _SeededItems(Dataset):
    """View of a dataset indexed by ``(index, seed)``: each item is made under its own RNG seed.

    The random augmentation of sample ``i`` in epoch ``e`` then depends only on ``(seed, e, i)``,
    not on which process loads it or what it loaded before, so 1 process and N processes (and a
    resumed run) see the same augmented images. The global torch RNG is forked, not consumed.
    """

    def __init__(self, base) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.base[index]


class EpochSeededSampler(DistributedSampler):
    """DistributedSampler (permutation seeded by ``seed + epoch``) that yields ``(index, item_seed)``.

    ``item_seed`` comes from ``numpy.random.SeedSequence((seed, epoch, index))`` so augmentation is
    identical for any number of replicas (see :class:`_SeededItems`). With ``num_replicas`` W, rank r
    gets permutation positions ``r, r + W, ...``: a loader with batch ``B / W`` on every rank covers
    exactly the positions ``[s B, (s + 1) B)`` of the one-process permutation at step ``s``.
    """

    def __iter__(self):
        for i in super().__iter__():
            yield int(i), int(np.random.SeedSequence((self.seed, self.epoch, int(i))).generate_state(1)[0])


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
        callbacks: progress listeners (called on rank 0 only under ``torchrun``).
        cancel: stop between steps when set.
        dist_ctx: the process group this rank is in (default: the initialised one, if any, see
            :func:`segstudio.engine.distributed.current`). With it the model is wrapped in
            DistributedDataParallel and checkpoints/callbacks happen on rank 0 only.

    The loss is ``get_loss(config.loss, weight=...)``; with ``config.class_weights`` other than ``"none"``
    the weights are computed here from the training set's masks (:mod:`segstudio.losses.weights`) and
    written to the model card as ``training.class_weights = {"method", "weights": {class name: w}}``.

    Raises:
        ValueError: a bad ``config.loss`` / ``config.class_weights``, or a training set without labelled pixels
            when class weights are requested; under ``torchrun`` a ``batch_size`` not divisible by the world
            size, fewer training images than processes, or ``sync_bn`` on the CPU.
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
        dist_ctx: DistContext | None = None,
        fresh_params: Collection[str] = (),
        t_start: float | None = None,
        recipe_info: dict | None = None,
    ) -> None:
        self.config = config or TrainConfig()
        unset = [f for f in ("epochs", "batch_size", "lr", "crop_size", "loss", "class_weights", "freeze_bn") if getattr(self.config, f) is None]
        if unset:
            raise ValueError(
                f"TrainConfig fields {unset} are None (left to the recipe); train through train_on_folder, "
                "or apply segstudio.engine.finetune.apply_recipe first"
            )
        self.t_start = time.perf_counter() if t_start is None else t_start
        self.recipe_info = recipe_info
        self.fresh_params = set(fresh_params)
        self.dist = dist_ctx or current()
        world = self.dist.world_size
        if self.config.batch_size % world:
            raise ValueError(
                f"batch size {self.config.batch_size} is the global batch and must divide evenly over the "
                f"{world} processes (each loads batch_size / {world}); use e.g. --batch-size "
                f"{max(world, self.config.batch_size // world * world)}"
            )
        self.device = device_for(self.dist, self.config.device)
        if self.config.sync_bn and self.device.type == "cpu":
            raise ValueError("--sync-bn needs CUDA (SyncBatchNorm has no CPU kernel); on the CPU use --freeze-bn or neither")
        self.model = model.to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        accel.enable_cudnn_autotune(self.device)  # CUDA only: cuDNN picks the fastest kernels per crop shape
        if self.config.freeze_encoder:
            if not isinstance(getattr(self.model, "encoder", None), torch.nn.Module):
                raise ValueError(f"freeze_encoder: {type(model).__name__} has no encoder to freeze; untick it")
            self.model.encoder.requires_grad_(False)
        if self.config.sync_bn and self.dist.enabled:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if self.dist.enabled:
            # self.model stays the plain module (checkpoints without a "module." prefix); self.net trains.
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        else:
            self.net = self.model
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
        self.rank_batch = self.config.batch_size // world
        self.sampler = EpochSeededSampler(
            train_set, num_replicas=world, rank=self.dist.rank, shuffle=True, seed=self.config.seed, drop_last=world > 1
        )
        if len(self.sampler) == 0:
            raise ValueError(f"{len(train_set)} training image(s) for {world} processes: each needs at least one")
        # Workers: as configured, else from the core count on CUDA (0 on the CPU; accel.loader_workers).
        self.num_workers = accel.loader_workers(self.config.num_workers, self.device, world)
        self.loader = DataLoader(
            _SeededItems(train_set),
            batch_size=self.rank_batch,
            sampler=self.sampler,
            drop_last=len(self.sampler) > self.rank_batch,
            num_workers=self.num_workers,
            generator=g,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if self.num_workers > 0 and self.device.type == "cuda" else None,
        )
        self.steps_per_epoch = len(self.loader)
        self.total_steps = self.steps_per_epoch * self.config.epochs
        if self.config.max_steps is not None:
            self.total_steps = min(self.total_steps, self.config.max_steps)
        self.step_cap = self.total_steps  # epochs / max_steps; a budget plans total_steps below this
        if not 0.0 <= (self.config.probe_fraction or 0.0) < 1.0:
            raise ValueError(f"probe_fraction {self.config.probe_fraction} is outside [0, 1); 0 trains every layer from the start")
        groups, self.lr_groups = self._param_groups()
        self.optimizer = torch.optim.AdamW(groups, lr=self.config.lr, weight_decay=self.config.weight_decay)
        # LP-FT: while probing only the "new" group trains; probe_steps is the step the fine-tune began at.
        self._probe_params = [p for g in groups if g["name"] == "pretrained" for p in g["params"]]
        self.probing = bool(self.config.probe_fraction) and bool(self._probe_params)
        self.probe_steps = 0
        # Per-group factor: poly decay over the (possibly re-planned) total; the pretrained group warms up.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, [(lambda s, name=g["name"]: self._lr_factor(name, s)) for g in groups]
        )
        self.schedule: dict = {"budget_s": self.config.budget_s, "planned_steps": None, "step_s": None, "stopped": None}
        self._step_times: list[float] = []
        # Mixed precision on CUDA: bfloat16 where supported (no scaler needed), else float16 with a GradScaler.
        self.amp_dtype = accel.amp_dtype(self.device, self.config.amp)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.state = TrainState()

    def _autocast(self):
        """``torch.autocast`` with the run's mixed-precision dtype on CUDA; a disabled one on the CPU (float32)."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.use_amp)

    def _param_groups(self) -> tuple[list[dict], dict]:
        """AdamW groups: ``"pretrained"`` at ``lr`` and, when some trainable parameters are freshly initialised
        (``fresh_params``) and either ``lr_head`` differs or the pretrained layers warm up (``warmup_fraction`` > 0),
        ``"new"`` at ``lr_head`` (``lr`` when ``None``). Otherwise one group ``"all"``. Returns (groups, {name: lr})."""
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        lr, lr_head = self.config.lr, self.config.lr_head
        new = [p for n, p in named if n in self.fresh_params]
        head = lr if lr_head is None else lr_head
        warm = (self.config.warmup_fraction or 0.0) > 0 or (self.config.probe_fraction or 0.0) > 0
        if not new or len(new) == len(named) or (head == lr and not warm):
            rate = head if len(new) == len(named) else lr
            return [{"params": [p for _, p in named], "lr": rate, "name": "all"}], {"all": rate}
        old = [p for n, p in named if n not in self.fresh_params]
        return (
            [{"params": old, "lr": lr, "name": "pretrained"}, {"params": new, "lr": head, "name": "new"}],
            {"pretrained": lr, "new": head},
        )

    def _warmup(self) -> int:
        return int(round((self.config.warmup_fraction or 0.0) * (self.total_steps - self.probe_steps)))

    def _lr_factor(self, group: str, step: int) -> float:
        """Multiplier of a group's base rate at ``step``: the poly decay (with the pretrained group's warm-up) over
        the planned steps; with a linear probe (LP-FT), 1 for the new group while probing (0 for the frozen rest),
        then the decay over the steps after the probe, the new group at ``lr`` like every other layer."""
        if self.probing:
            return 1.0 if group == "new" else 0.0
        s0 = self.probe_steps
        f = recipe_mod.lr_factor(step - s0, self.total_steps - s0, self._warmup() if group == "pretrained" else 0)
        if s0 and group == "new":
            f *= self.config.lr / self.lr_groups["new"]
        return f

    def _set_probe(self, on: bool) -> None:
        """Start (``on``) or end the linear probe: freeze or thaw the pretrained parameters. On one process
        they stop taking gradients (the backward pass stops at the classifier); under DDP, whose reducer expects
        every parameter, they keep them and their rate is 0."""
        self.probing = on
        if not self.dist.enabled:
            for p in self._probe_params:
                p.requires_grad_(not on)
        if not on:
            self.probe_steps = self.state.step
            self.schedule.update(probe_steps=self.state.step, probe_s=round(self._elapsed(), 2))
            self._step_times.clear()  # fine-tune steps cost more: plan from their own times
            if self.config.budget_s is not None:
                self.total_steps = self.step_cap  # until the fine-tune's step time is measured
            for g in self.optimizer.param_groups:  # the rates of the next step
                g["lr"] = g["initial_lr"] * self._lr_factor(g["name"], self.state.step)
            log.info("linear probe: %d steps in %.1fs; fine-tuning every layer", self.state.step, self._elapsed())

    def _probe_done(self) -> bool:
        if self.config.budget_s is not None:
            return self._elapsed() >= self.config.probe_fraction * self.config.budget_s
        return self.state.step >= round(self.config.probe_fraction * self.total_steps)

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
        if self.config.class_weight_max is not None:
            weights = np.minimum(weights, self.config.class_weight_max)
        log.info(
            "%s class weights from %d masks in %.1fs: %s",
            self.config.class_weights,
            counts.num_images,
            time.perf_counter() - t0,
            " ".join(f"{w:.3g}" for w in weights),
        )
        return weights

    def _emit(self, event: str, **info) -> None:
        if not self.dist.is_main:
            return
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
            "lr_groups": dict(self.lr_groups),
            "schedule": self._schedule_json(),
            "recipe": self.recipe_info,
            "distributed": None
            if not self.dist.enabled
            else {"world_size": self.dist.world_size, "backend": self.dist.backend, "rank_batch": self.rank_batch},
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
        """Write ``last.*`` and ``last_state.pt`` (rank 0 only; other ranks just return the path)."""
        if not self.dist.is_main:
            return self.out_dir / "last.safetensors"
        path = save_checkpoint(self.out_dir, self.model, self._card(metrics), stem="last")
        buf = io.BytesIO()
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.state.epoch,
                "step": self.state.step,
                "best_miou": self.state.best_miou,
                "probe_steps": self.probe_steps,
                "history": json.dumps(self.state.history),
            },
            buf,
        )
        atomic_write_bytes(self.out_dir / "last_state.pt", buf.getvalue())
        return path

    def resume(self, run_dir: str | Path) -> None:
        """Continue from ``run_dir/last.*`` (weights, optimizer, scheduler, counters).

        The files do not depend on the number of processes that wrote them (plain state dict, global
        step counter, global batch), so a run may resume with a different world size. Under ``torchrun``
        every rank reads them, so ``run_dir`` must be on a file system all nodes share.

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
        self.probe_steps = int(st.get("probe_steps", 0))
        log.info("resumed %s at epoch %d step %d", run_dir, self.state.epoch, self.state.step)

    # -- loops ---------------------------------------------------------------------------------
    def validate(self) -> dict:
        """Full-size evaluation on ``val_set``; returns the confusion-matrix summary.

        Under ``torchrun`` rank r evaluates images ``r, r + W, ...`` (no padding, no duplicates) and the
        K×K counts are summed over ranks, so every rank gets exactly the one-process metrics.

        Raises:
            PeerFailure: a peer died during the reduction.
        """
        cm = ConfusionMatrix(self.num_classes)
        self.model.eval()
        with torch.inference_mode():
            for i in range(self.dist.rank, len(self.val_set), self.dist.world_size):
                self.cancel.check()
                x, y = self.val_set[i]
                x = x.unsqueeze(0).to(self.device)
                with self._autocast():
                    pred = self.model(x)["out"].argmax(1)
                cm.update(y, pred[0])
        all_reduce_confusion(cm, self.dist)
        names = [c["name"] for c in self.card["classes"]]
        return cm.summary(names)

    def fit(self) -> Path:
        """Train until ``epochs`` / ``max_steps`` or cancel; returns the path of ``model.safetensors``.

        Raises:
            Cancelled: after saving nothing new when cancelled (the last good checkpoint stays).
            FloatingPointError: when the loss becomes NaN/inf (training stops; checkpoints untouched).
            PeerFailure: under ``torchrun``, a collective failed because another rank died or timed out.
        """
        with peer_errors(self.dist):
            return self._fit()

    def _elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def _adapt_bn(self, passes: int = 4) -> None:
        """AdaBN (Li et al., ICLR-W 2017): replace BatchNorm running statistics by their cumulative average over
        ``passes`` batches of training crops (forward only, no gradient); the caller then keeps BN frozen."""
        bns = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not bns:
            return
        t0 = time.perf_counter()
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        self.model.train()
        self.sampler.set_epoch(10**6 + self.state.epoch)  # crops other than those of the first epoch
        done = 0
        with torch.no_grad():
            while done < passes:
                for x, _ in self.loader:
                    self.cancel.check()
                    x = x.to(self.device, non_blocking=True)
                    with self._autocast():
                        self.model(x)
                    done += 1
                    if done >= passes:
                        break
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        self.schedule["adabn_s"] = round(time.perf_counter() - t0, 2)
        log.info("AdaBN: BatchNorm statistics from %d batches in %.1fs", done, time.perf_counter() - t0)

    def _replan(self) -> None:
        """With a budget: total steps from the median recent step time and the time left (see
        :func:`segstudio.engine.recipe.plan_total_steps`), at most the epochs / max_steps cap."""
        times = self._step_times[-2 * recipe_mod.REPLAN_EVERY :]
        step_s = float(np.median(times))
        interval = self._interval()
        left = max(0.0, self.config.budget_s - self._elapsed())
        n_checks = 1 + (math.floor(left / interval) if interval else 0)
        # Before the first validation is timed: a full-size forward pass per held-out image costs about a third
        # of a training step (forward + backward over a batch of crops).
        per_check = self.schedule.get("val_s", step_s * len(self.val_set or []) / 3) + self.schedule.get("save_s", 0.3)
        planned = recipe_mod.plan_total_steps(
            self.config.budget_s, self._elapsed(), step_s, self.state.step, reserve_s=n_checks * per_check,
            min_steps=self.state.step + 1,
        )
        # Every rank must run the same number of steps with the same poly schedule: the fewest planned wins.
        self.total_steps = int(all_reduce_agree(min(self.step_cap, planned), self.dist, "min", self._agree_device))
        self.schedule.update(planned_steps=self.total_steps, step_s=round(step_s, 4))

    def _interval(self) -> float | None:
        if self.config.budget_s is None:
            return None
        return self.config.val_interval_s or self.config.budget_s / recipe_mod.VALIDATIONS_PER_BUDGET

    def _out_of_budget(self) -> bool:
        """True when one more step and the final validation + save would overrun the budget."""
        if self.config.budget_s is None or not self._step_times:
            return False
        step_s = float(np.median(self._step_times[-2 * recipe_mod.REPLAN_EVERY :]))
        final = self.schedule.get("val_s", 0.0) + self.schedule.get("save_s", 0.3)
        over = self._elapsed() + step_s + final > self.config.budget_s
        return bool(all_reduce_agree(float(over), self.dist, "max", self._agree_device))  # any rank out: all stop

    @property
    def _agree_device(self) -> torch.device | None:
        """Where :func:`all_reduce_agree` puts its number (NCCL needs CUDA tensors)."""
        return self.device if self.dist.backend == "nccl" else None

    def _fit(self) -> Path:
        torch.manual_seed(self.config.seed + self.state.epoch + 7919 * self.dist.rank)
        np.random.seed(self.config.seed + self.state.epoch + 7919 * self.dist.rank)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        final = self.out_dir / WEIGHTS_FILENAME
        budget = self.config.budget_s
        if budget is not None and self.state.step == 0:
            self.total_steps = self.step_cap  # until the step time is measured
        if self.config.adapt_bn and self.state.step == 0:
            self._adapt_bn()
        if self.probing and self.probe_steps == 0:  # a new run, or one resumed before its probe ended
            self._set_probe(True)
        elif self.probing:  # resumed after the probe
            self.probing = False
        last_check, stale, stop, checked_at = time.perf_counter(), 0, None, self.state.step
        while self.state.epoch < self.config.epochs and self.state.step < self.total_steps and stop is None:
            self.model.train()
            if self.config.freeze_bn or self.config.adapt_bn:
                _freeze_bn(self.model)
            elif self.config.freeze_encoder:
                _freeze_bn(self.model.encoder)
            t0, losses = time.perf_counter(), []
            self.sampler.set_epoch(self.state.epoch)
            for i, (x, y) in enumerate(self.loader):
                self.cancel.check()
                if self._out_of_budget():
                    stop = "budget"
                    break
                t_step = time.perf_counter()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if self.device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with self._autocast():
                    out = self.net(x)
                    loss = self.loss_fn(out, y)  # inside: autocast runs the loss's softmax / NLL in float32
                # The mean over ranks (= the one-process loss when ranks count equal pixels): logged, and the
                # NaN check below then stops every rank together instead of leaving peers waiting.
                mean_loss = all_reduce_mean(loss, self.dist) if self.dist.world_size > 1 else loss.detach()
                if not torch.isfinite(mean_loss):
                    raise FloatingPointError(
                        f"loss became {mean_loss.item()} at step {self.state.step}; lower the learning rate (now "
                        f"{self.scheduler.get_last_lr()[0]:.2e}). The last good checkpoint is kept."
                    )
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                self.state.step += 1
                losses.append(mean_loss.item())
                if self.probing and self._probe_done():
                    self._set_probe(False)
                if budget is not None:
                    # The first step carries one-off costs (allocation, lazy init): not timed.
                    if self.state.step > 1:
                        self._step_times.append(time.perf_counter() - t_step)
                    n = len(self._step_times)
                    if n >= recipe_mod.MEASURE_STEPS and (n == recipe_mod.MEASURE_STEPS or n % recipe_mod.REPLAN_EVERY == 0):
                        self._replan()
                self._emit(
                    "step",
                    epoch=self.state.epoch,
                    step=i + 1,
                    steps_per_epoch=self.steps_per_epoch,
                    global_step=self.state.step,
                    total_steps=self.total_steps,
                    loss=losses[-1],
                    lr=self.scheduler.get_last_lr()[-1],
                )
                if budget is not None and self.state.step >= self.total_steps and self._step_times:
                    self._replan()  # the plan ran out: take any steps the budget still allows
                if self.state.step >= self.total_steps:
                    break
            if losses:
                self.state.epoch += 1
            last_epoch = self.state.epoch >= self.config.epochs or self.state.step >= self.total_steps or stop is not None
            early = budget is not None and not last_epoch and time.perf_counter() - last_check < self._interval()
            if budget is not None:  # every rank validates (a collective) at the same epochs
                early = bool(all_reduce_agree(float(early), self.dist, "min", self._agree_device))
            if budget is not None and (self.state.step == checked_at or early):
                continue  # with a budget, validate and write checkpoints on time, not every epoch
            last_check, checked_at = time.perf_counter(), self.state.step
            info = {"epoch": self.state.epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                    "seconds": time.perf_counter() - t0, "step": self.state.step}
            metrics = None
            periodic = budget is not None or self.state.epoch % self.config.val_every == 0
            if self.val_set is not None and (periodic or last_epoch):
                tv = time.perf_counter()
                metrics = self.validate()
                self.schedule["val_s"] = time.perf_counter() - tv
                info["val_miou"] = metrics["miou"]
                info["val_pixel_accuracy"] = metrics["pixel_accuracy"]
            self.state.history.append(info)
            ts = time.perf_counter()
            self.save_last(metrics)
            main = self.dist.is_main  # only rank 0 writes files (every rank keeps the same state)
            improved = metrics is not None and metrics["miou"] is not None and metrics["miou"] > self.state.best_miou
            if improved:
                self.state.best_miou, stale = metrics["miou"], 0
            if improved and self.config.keep == "best":
                if main:
                    save_checkpoint(self.out_dir, self.model, self._card({"val": metrics}))
                self._emit("checkpoint", path=str(final), epoch=self.state.epoch, step=self.state.step)
            elif self.val_set is None or self.config.keep == "last":
                if main:  # the current weights are the model (their validation, if any, is only reported)
                    save_checkpoint(self.out_dir, self.model, self._card(None if metrics is None else {"val": metrics}))
                self._emit("checkpoint", path=str(final), epoch=self.state.epoch, step=self.state.step)
            else:
                stale += 1
            self.schedule["save_s"] = time.perf_counter() - ts
            if main:
                atomic_write_bytes(self.out_dir / HISTORY_FILENAME, json.dumps(self.state.history, indent=1).encode())
            self._emit("epoch", **info)
            if (
                budget is not None
                and self.config.patience
                and stale >= self.config.patience
                and all_reduce_agree(self._elapsed(), self.dist, "max", self._agree_device) > budget / 2
                and stop is None
            ):
                stop = "early stop"
        if budget is not None:
            # The plan fills the budget, so running out of planned steps is the budget's end too.
            self.schedule["stopped"] = stop or ("max_steps" if self.state.step >= self.step_cap else "budget")
        else:
            self.schedule["stopped"] = "max_steps" if self.state.step >= self.step_cap else "epochs"
        self.schedule["time_s"] = round(self._elapsed(), 2)
        self.schedule["steps_done"] = self.state.step
        log.info("training: %d steps in %.1fs (budget %s, %s)", self.state.step, self._elapsed(), budget, self.schedule["stopped"])
        if self.dist.is_main:  # the final card says how the schedule ended (weights unchanged)
            self._finalise_cards(final)
        if self.dist.is_main and not final.is_file():  # validation never improved on -1, or no epoch finished
            save_checkpoint(self.out_dir, self.model, self._card(None))
        barrier(self.dist)  # every rank returns once rank 0 has written the checkpoint
        self._emit("done", path=str(final))
        return final

    def _finalise_cards(self, final: Path) -> None:
        """Rewrite the schedule (steps, time, why it stopped) into the cards of ``model`` and ``last``."""
        for path in (final.with_suffix(".json"), self.out_dir / "last.json"):
            if not path.is_file():
                continue
            card = json.loads(path.read_text(encoding="utf-8"))
            card.setdefault("training", {})["schedule"] = self._schedule_json()
            atomic_write_bytes(path, (json.dumps(card, indent=1) + "\n").encode("utf-8"))

    def _schedule_json(self) -> dict:
        out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.schedule.items()}
        out["time_s"] = out.get("time_s") or round(self._elapsed(), 2)
        out["lr_groups"] = dict(self.lr_groups)
        out["warmup_steps"] = self._warmup() if len(self.lr_groups) > 1 else 0
        return out


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
