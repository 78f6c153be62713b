"""The training options, :class:`TrainConfig`, in a module that imports neither torch nor the rest of the engine,
so that ``segstudio train --help`` (whose flags come from these fields, :mod:`segstudio.engine.options`) starts
in a fraction of a second. The trainer itself is :mod:`segstudio.engine.trainer` (which re-exports both names).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segstudio.engine.option_meta import option, parse_floats, parse_pair

__all__ = ["CLASS_WEIGHT_METHODS", "DEFAULT_TIMEOUT_S", "AMP_CHOICES", "KEEP_CHOICES", "RECIPE_FIELDS", "TRAIN_SPLITS", "TrainConfig"]

CLASS_WEIGHT_METHODS = ("none", "median", "sqrt_median", "inverse")
"""The ``class_weights`` choices: the same tuple as :data:`segstudio.losses.weights.CLASS_WEIGHT_METHODS`
(repeated here because importing ``segstudio.losses`` imports torch; a test checks they are equal)."""

TRAIN_SPLITS = ("train", "train+val")
"""The ``train_split`` choices: the dataset's train split, or train and val together (then nothing is validated
and the last epoch's weights are the model: how CamVid test figures are reported, e.g. ENet, BiSeNet, DDRNet)."""

AMP_CHOICES = ("auto", "bf16", "fp16", "off")
"""The ``amp`` choices (the same tuple as :data:`segstudio.engine.accel.AMP_CHOICES`, repeated here torch-free)."""

KEEP_CHOICES = ("best", "last")
"""The ``keep`` choices: the weights of the best validation, or the final weights."""

DEFAULT_TIMEOUT_S = 600.0
"""Default seconds a ``torchrun`` rank waits in a collective for its peers (:mod:`segstudio.engine.distributed`)."""


@dataclass
class TrainConfig:
    """Training options (all have defaults so a one-click fine-tune needs none).

    Attributes:
        epochs: passes over the training set.
        batch_size: images per optimizer step, over all processes (the *global* batch). Under ``torchrun``
            with W processes each loads ``batch_size / W`` (must divide evenly), so a run gives the same
            steps per epoch, learning-rate schedule and gradient (the mean over the same images) with any W.
        lr: peak learning rate of AdamW (poly decay to 0).
        weight_decay: AdamW decoupled weight decay.
        crop_size: ``(h, w)`` random crop, pixels.
        scale_range: random rescale range (relative to the dataset's typical short side).
        loss: loss spec, a name or a weighted sum such as ``"ce+0.5*dice"`` (see :func:`segstudio.losses.get_loss`).
        class_weights: per-class weights for the ``ce``/``focal`` terms, computed from the training set's
            masks: ``"none"``, ``"median"`` (median-frequency balancing), ``"sqrt_median"`` (its square root, a
            softer balance) or ``"inverse"`` (inverse frequency);
            see :mod:`segstudio.losses.weights`.
        freeze_bn: keep BatchNorm statistics fixed (sensible when fine-tuning on a few images).
        freeze_encoder: train only the decoder/head: the model's ``encoder`` parameters get no gradient and
            its BatchNorm statistics stay fixed (models without an ``encoder`` attribute raise ValueError).
        holdout_fraction: for an image folder with saved labels (no ``val.txt``), hold out about this
            fraction of the labelled images (at least one, chosen by a stable hash of the file name so an
            image keeps its role as more are labelled) for validation; only when 5 or more are labelled.
        num_workers: DataLoader worker processes; ``None`` (default): 0 on the CPU, from the core count on CUDA
            (:func:`segstudio.engine.accel.loader_workers`).
        device: ``auto``, ``cpu``, ``cuda``...
        seed: RNG seed for weights, shuffling and augmentation.
        val_every: validate every N epochs (when there is a validation set).
        train_split: ``"train"`` (default) or ``"train+val"``: a dataset folder's ``train.txt`` and ``val.txt``
            images together, for the final model once a recipe was chosen on train → val. Nothing is
            validated then; the model card's ``training_data.splits`` says which splits the weights saw.
        max_steps: stop after this many steps in total (``None``: run all epochs).
        sync_bn: under ``torchrun`` on CUDA, convert BatchNorm to SyncBatchNorm (statistics over the global
            batch, Zhang et al., "Context Encoding for Semantic Segmentation", CVPR 2018). CUDA only.
        dist_timeout_s: under ``torchrun``, seconds a rank waits in a collective for its peers before
            the job fails (a dead rank ends the job instead of hanging it).
        hflip, vflip, rotate, translate, elastic, color_jitter: augmentation, see
            :func:`segstudio.data.transforms.train_transforms`.
        recipe: let the fine-tune recipe (:mod:`segstudio.engine.recipe`) fill every field below that is
            ``None`` (and ``epochs``, ``batch_size``, ``lr``, ``crop_size``, ``scale_range``, ``loss``,
            ``class_weights``, ``freeze_bn`` when they are ``None``) from the data, the model, the device and
            the budget; fields with a value are kept (an explicit choice overrides the recipe).
            :func:`train_on_folder` applies it; :class:`Trainer` needs concrete values.
        budget_s: time budget, seconds, from the start of :func:`train_on_folder` (statistics, BN adaptation,
            steps, validation, checkpoints). The step time is measured over the first steps, the number of
            steps planned to fill the budget (poly decay over the plan) and training stops on budget.
            ``None``: no time limit (``epochs`` / ``max_steps`` decide), or the device's default with ``recipe``.
        lr_head: learning rate of newly initialised parameters (a new classifier); ``None``: ``lr``.
        warmup_fraction: the pretrained parameters' learning rate ramps up linearly over this share of the
            planned steps (0: no warm-up); freshly initialised ones start at full rate.
        probe_fraction: linear probing then fine-tuning (LP-FT; Kumar et al., "Fine-Tuning can Distort Pretrained
            Features and Underperform Out-of-Distribution", ICLR 2022): for this share of ``budget_s`` (of the
            planned steps without a budget) only the freshly initialised parameters train, at ``lr_head``, with
            the rest frozen (no backward through them, so these steps are cheaper); then every parameter trains
            at ``lr`` with the poly decay over the remaining steps. In [0, 1); 0: no probe. Ignored when no
            parameter is fresh.
        adapt_bn: before training, re-estimate BatchNorm statistics on the training crops (AdaBN), then keep
            them frozen (needs ``freeze_bn``).
        class_weight_max: clip the class weights to this value (``None``: no clip).
        val_interval_s: with ``budget_s``, validate / write checkpoints every this many seconds instead of every
            ``val_every`` epochs (``None``: ``budget_s / 8``).
        keep: ``"best"``: ``model.safetensors`` holds the weights of the best validation mIoU; ``"last"``: the final
            weights (validation, if any, only draws the curve).
        amp: mixed precision on CUDA (see :data:`AMP_CHOICES`; :func:`segstudio.engine.accel.amp_dtype`): ``"auto"``
            bfloat16 where supported, else float16 with a gradient scaler; ``"off"`` float32. No effect on the CPU.
        patience: with ``budget_s`` and validation, stop after this many validations without a better mIoU once
            half the budget is spent (``None``: never early).
    """

    # Each field carries its `segstudio train` flag and help (segstudio.engine.options generates the parser, the
    # config from parsed flags and the flags from a config for the cluster command). Fields the recipe fills
    # (RECIPE_FIELDS) are unset (None) on the command line unless given.
    epochs: int = field(default=10, metadata=option(
        "--epochs", "passes over the training set (default 10; with --init: the budget decides)", type=int))
    batch_size: int = field(default=8, metadata=option(
        "--batch-size", "global batch: images per step over all processes (under torchrun each loads batch/nproc; "
        "default 8, with --init: the recipe's)", type=int))
    lr: float = field(default=1e-3, metadata=option(
        "--lr", "AdamW peak learning rate (default 1e-3; with --init: the recipe's)", type=float))
    weight_decay: float = field(default=1e-4, metadata=option(
        "--weight-decay", "AdamW decoupled weight decay (default 1e-4)", type=float))
    crop_size: tuple[int, int] = field(default=(256, 256), metadata=option(
        "--crop-size", "H,W of random crops (default 256,256; with --init: the recipe's)", type=parse_pair, metavar="H,W"))
    scale_range: tuple[float, float] = field(default=(0.5, 2.0), metadata=option(
        "--scale-range", "random rescale LO,HI (default 0.5,2.0; with --init: the recipe's)", type=parse_floats,
        metavar="LO,HI"))
    loss: str = field(default="ce", metadata=option(
        "--loss", "loss: ce, focal, dice, jaccard (alias iou), lovasz, or a weighted sum such as ce+dice or "
        "ce+0.5*dice (default ce; with --init: the recipe's)", metavar="SPEC"))
    class_weights: str = field(default="none", metadata=option(
        "--class-weights", "weight the ce/focal terms per class, computed from the training masks: median-frequency "
        "balancing (SegNet) or inverse frequency (default none; with --init: the recipe's)",
        choices=CLASS_WEIGHT_METHODS))
    freeze_bn: bool = field(default=False, metadata=option(
        "--freeze-bn", "keep BatchNorm statistics fixed (default off; with --init: the recipe's)"))
    freeze_encoder: bool = field(default=False, metadata=option(
        "--freeze-encoder", "train only the decoder/head (encoder weights and BN fixed)"))
    holdout_fraction: float = field(default=0.0, metadata=option(
        "--holdout-fraction", "image folder with saved labels: hold out about this fraction of the labelled images "
        "for validation (default 0.2 with the recipe, else 0)", type=float, metavar="FRAC", unset=True))
    num_workers: int | None = field(default=None, metadata=option(
        "--workers", "DataLoader worker processes (default: 0 on the CPU; on CUDA from the core count, up to 8)", type=int))
    device: str = field(default="auto", metadata=option("--device", "auto, cpu, cuda, cuda:1, mps (default auto)"))
    seed: int = field(default=0, metadata=option(
        "--seed", "RNG seed for weights, shuffling and augmentation", type=int))
    val_every: int = field(default=1, metadata=option("--val-every", "validate every N epochs", type=int))
    train_split: str = field(default="train", metadata=option(
        "--train-split", "train on the dataset's train split (default) or on train+val (final model once the recipe "
        "was chosen on val; nothing is validated)", choices=TRAIN_SPLITS))
    max_steps: int | None = field(default=None, metadata=option("--max-steps", "stop after this many steps", type=int))
    sync_bn: bool = field(default=False, metadata=option(
        "--sync-bn", "under torchrun on CUDA: SyncBatchNorm (BatchNorm statistics over the global batch)"))
    dist_timeout_s: float = field(default=DEFAULT_TIMEOUT_S, metadata=option(
        "--dist-timeout", "under torchrun: how long a rank waits for its peers before the job fails (default 600)",
        type=float, metavar="SECONDS"))
    hflip: bool = field(default=True, metadata=option("--no-hflip", "no random horizontal flips", group='augmentation (mask-aware, torchvision.transforms.v2)'))
    vflip: bool = field(default=False, metadata=option(
        "--vflip", "random vertical flips (microscopy, aerial)", group='augmentation (mask-aware, torchvision.transforms.v2)'))
    rotate: float = field(default=0.0, metadata=option(
        "--rotate", "random rotation up to +-DEG degrees", type=float, metavar="DEG", group='augmentation (mask-aware, torchvision.transforms.v2)'))
    translate: float = field(default=0.0, metadata=option(
        "--translate", "random shift up to FRAC of the size", type=float, metavar="FRAC", group='augmentation (mask-aware, torchvision.transforms.v2)'))
    elastic: float = field(default=0.0, metadata=option(
        "--elastic", "elastic deformation strength, pixels", type=float, metavar="ALPHA", group='augmentation (mask-aware, torchvision.transforms.v2)'))
    color_jitter: float = field(default=0.2, metadata=option(
        "--jitter", "colour jitter strength (0 disables, default 0.2)", type=float, group='augmentation (mask-aware, torchvision.transforms.v2)'))
    recipe: bool = field(default=False, metadata=option(
        "--recipe", "let the fine-tune recipe choose the unset options (default: on with --init; --no-recipe: "
        "use the plain defaults)", unset=True))
    budget_s: float | None = field(default=None, metadata=option(
        "--budget", "time budget in minutes: the step time is measured and the schedule fills the budget (default "
        "with --init: 3 on a CPU, 1 on a GPU, unless --epochs/--max-steps are given)", type=float, metavar="MIN",
        scale=60.0))
    lr_head: float | None = field(default=None, metadata=option(
        "--lr-head", "learning rate of a newly initialised classifier (default: --lr or the recipe's)", type=float))
    warmup_fraction: float | None = field(default=None, metadata=option(
        "--warmup-fraction", "pretrained layers' learning rate ramps up over this share of the steps (default: "
        "the recipe's, 0 without it)", type=float, metavar="FRAC"))
    probe_fraction: float = field(default=0.0, metadata=option(
        "--probe-fraction", "linear probe first (LP-FT): train only the new classifier, at --lr-head, for this share "
        "of the budget (of the steps without one), then every layer at --lr (default 0: no probe)", type=float,
        metavar="FRAC"))
    adapt_bn: bool | None = field(default=None, metadata=option(
        "--adapt-bn", "re-estimate BatchNorm statistics on the training crops before training (AdaBN; default: "
        "the recipe's)"))
    class_weight_max: float | None = field(default=None, metadata=option(
        "--class-weight-max", "clip class weights to this value (default: the recipe's, no clip without it)",
        type=float, metavar="W"))
    val_interval_s: float | None = field(default=None, metadata=option(
        "--val-interval", "with a budget: validate / write checkpoints every this many seconds (default: budget/8)",
        type=float, metavar="SECONDS"))
    keep: str = field(default="best", metadata=option(
        "--keep", "which weights become model.safetensors: 'best' on validation (default), or 'last' (the fine-tune "
        "recipe's: the final weights of the poly schedule; validation only draws the curve)", choices=KEEP_CHOICES))
    amp: str = field(default="auto", metadata=option(
        "--amp", "mixed precision on CUDA: auto (bfloat16 where the GPU supports it, else float16 with a gradient "
        "scaler; with channels_last), bf16, fp16 or off (float32); the CPU always trains in float32",
        choices=AMP_CHOICES))
    patience: int | None = field(default=None, metadata=option(
        "--patience", "with a budget: stop after this many validations without a better mIoU once half the budget "
        "is spent (default: the recipe's)", type=int))


RECIPE_FIELDS = (
    "epochs", "batch_size", "lr", "lr_head", "crop_size", "scale_range", "loss", "class_weights",
    "class_weight_max", "freeze_bn", "adapt_bn", "warmup_fraction", "val_interval_s", "patience", "budget_s", "keep",
)
"""TrainConfig fields the recipe fills when they are ``None`` (see :func:`segstudio.engine.finetune.apply_recipe`)."""
